"""Chat Completions on the wire: a streamed or whole reply as events (the synchronous path
of a cell, ``Chat.send`` and a tool round), one whole reply awaited (the concurrent path of
a map), and the server's model list. The only code that calls the SDK for them; it keeps
nothing and changes nothing: ``Completion.fold`` builds the reply from its events, and
failures are read by :mod:`nbchat.transports.errors`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..events import Chunk, Event, StreamEnd, Whole
from . import shape

PATH = "/chat/completions"


def read(client: Any, body: dict[str, Any], stream_class: Any) -> Iterator[Chunk | Whole | StreamEnd]:
    """This API's events (:func:`nbchat.transports.shape.read`); :func:`fold` builds the reply."""
    return shape.read(client, PATH, body, stream_class)


def fold(completion: Any, event: Chunk | Whole | StreamEnd, body: dict[str, Any]) -> Iterator[Event]:
    """Take one of :func:`read`'s events into the reply (``Completion.fold``)."""
    return completion.fold(event)  # type: ignore[no-any-return]


async def whole(client: Any, body: dict[str, Any]) -> Any:
    """One whole (not streamed) reply to ``body`` through an ``AsyncOpenAI`` client."""
    return await client.post(PATH, body=body, cast_to=object)


def model_ids(client: Any) -> Any:
    """``GET /models`` as the server sent it."""
    return client.get("/models", cast_to=object)
