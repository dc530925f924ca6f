"""Chat Completions on the wire: a streamed or whole reply read into a ``Completion`` (the
synchronous path of a cell, ``Chat.send`` and a tool round), one whole reply awaited (the
concurrent path of a map), and the server's model list. The only code that calls the SDK
for them; failures are read by :mod:`nbchat.transports.errors`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..events import TextDelta
from .shape import Events, check_finished, choices_of, clean_usage, model_name, stream_class

PATH = "/chat/completions"


def run(client: Any, body: dict[str, Any], completion: Any) -> Iterator[TextDelta]:
    """Send ``body``; yield ``(choice index, text)`` as the reply arrives, filling ``completion``.
    (A server that refuses a part of the request is asked again by the engine, which learns.)"""
    if body.get("stream"):
        yield from _stream(client, body, completion)
        return
    # client.post skips the SDK's per-message transform (~0.15 ms a message)
    # and its model parsing: the body is already in wire format.
    completion.take_whole(client.post(PATH, body=body, cast_to=object))
    for index, text in zip(sorted(completion.parts), completion.texts, strict=True):
        if text:
            yield TextDelta(index, text)


async def whole(client: Any, body: dict[str, Any]) -> Any:
    """One whole (not streamed) reply to ``body`` through an ``AsyncOpenAI`` client."""
    return await client.post(PATH, body=body, cast_to=object)


def model_ids(client: Any) -> Any:
    """``GET /models`` as the server sent it."""
    return client.get("/models", cast_to=object)


def _stream(client: Any, body: dict[str, Any], completion: Any) -> Iterator[TextDelta]:
    events = Events(client, PATH, body, stream_class())
    for chunk in events:
        completion.model = model_name(chunk.get("model")) or completion.model
        if chunk.get("usage") is not None:
            completion.usage = clean_usage(chunk["usage"])
        for choice in choices_of(chunk):
            taken = completion.take_choice(choice, "delta")
            if taken:
                yield TextDelta(*taken)
    completion.done = events.done
    check_finished(completion, int(body.get("n") or 1), events.done)
