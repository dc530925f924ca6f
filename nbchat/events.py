"""The events a reply stream yields: what arrived, in the order it arrived. No IPython.

A transport turns a wire API into events; ``ReplyStream.events()`` yields them; one
consumer (``render.consume``) reads them and hands each to the view that paints it. A new
capability adds an event kind and a paint method, never another loop.

Each event is a small immutable value with a ``kind``; a view paints kind ``k`` in its
``on_k`` method and skips kinds it has no method for (a terminal may skip images).

Kinds so far:

- ``text`` — :class:`TextDelta` ``(choice, text)``: the next piece of the text of choice
  ``choice`` (0-based). It unpacks like the ``(index, text)`` pairs older code read.
- ``reasoning`` — :class:`ReasoningDelta` ``(text)``: the next piece of a reasoning
  summary (the Responses API), painted in a collapsible *Thinking* block above the reply.
- ``tool_call`` — :class:`ToolEvent` ``(call, done)``: a call about to run, then with its result.
- ``image_partial`` and ``image`` — :class:`ImagePartial` / :class:`ImageDone`
  ``(number, png)``: a partial image (replaced by the next), a finished one.
- ``replayed`` — :class:`Replayed` ``(asked)``: the reply comes from the reply cache. It
  comes first; the reply's other events (reasoning, tool calls with their stored results,
  the whole text of each choice) follow at once, so every view paints a replay as it
  paints a reply, in full on the first paint.

What a transport reads off the wire: ``chunk``, ``whole`` and ``stream_end`` —
:class:`Chunk`, :class:`Whole`, :class:`StreamEnd` — which its ``fold`` takes into the reply
(the transport keeps and changes nothing); views never see them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:  # a tool call is core data of its own (nbchat.tools); the event only carries it
    from .tools import ToolCall


class Event(Protocol):
    """What every event has: the name of the view method that paints it is ``on_<kind>``."""

    @property
    def kind(self) -> str: ...


class TextDelta(NamedTuple):
    """The next piece of the text of choice ``choice``."""

    choice: int
    text: str

    @property
    def kind(self) -> str:
        return "text"

    @property
    def size(self) -> int:
        return len(self.text)


class ReasoningDelta(NamedTuple):
    """The next piece of a reasoning model's summary of its thinking (the Responses API),
    painted in a collapsible *Thinking* block above the reply; the summary so far is in
    ``Completion.reasoning``."""

    text: str

    @property
    def kind(self) -> str:
        return "reasoning"

    @property
    def size(self) -> int:
        return len(self.text)


class Replayed(NamedTuple):
    """The reply is answered from the reply cache (first asked at ``asked``, epoch seconds)."""

    asked: float

    @property
    def kind(self) -> str:
        return "replayed"

    @property
    def size(self) -> int:
        return 0


class ToolEvent(NamedTuple):
    """A tool call in the reply stream: once when it is about to run, once with its result."""

    call: ToolCall
    done: bool

    @property
    def kind(self) -> str:
        return "tool_call"

    @property
    def size(self) -> int:
        return 1


class ImagePartial(NamedTuple):
    """A partial image of image ``number`` (0-based), to be replaced by the next one."""

    number: int
    png: bytes

    @property
    def kind(self) -> str:
        return "image_partial"


class ImageDone(NamedTuple):
    """Image ``number`` (0-based) is complete."""

    number: int
    png: bytes

    @property
    def kind(self) -> str:
        return "image"


class Chunk(NamedTuple):
    """One event of a streamed reply (a chunk, or a Responses API event), as the server sent
    it; the API's ``fold`` turns it into what a view paints."""

    data: Any

    @property
    def kind(self) -> str:
        return "chunk"


class Whole(NamedTuple):
    """A whole (not streamed) reply, as the server sent it."""

    data: Any

    @property
    def kind(self) -> str:
        return "whole"


class StreamEnd(NamedTuple):
    """A streamed reply ended: ``done`` if its closing ``[DONE]`` arrived; ``asked`` choices."""

    done: bool
    asked: int

    @property
    def kind(self) -> str:
        return "stream_end"


__all__ = [
    "Chunk",
    "Event",
    "ImageDone",
    "ImagePartial",
    "ReasoningDelta",
    "Replayed",
    "StreamEnd",
    "TextDelta",
    "ToolEvent",
    "Whole",
]
