"""What a server's reply may look like: the checks every wire API shares, so a hostile or
broken server gets the same treatment whichever API the cell uses. A malformed reply is
one readable line and nothing is recorded; malformed usage is dropped (then estimated);
text is always valid Unicode."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from ..errors import RequestFailed
from ..events import Chunk, StreamEnd, Whole
from ..secret import one_line, redact_foreign

MAX_CHOICES = 128  # the API's limit on n; a larger index is a malformed event
MAX_PARTS = 64  # reasoning summary parts; a larger index is a malformed event


def malformed(what: str) -> RequestFailed:
    return RequestFailed(f"the server sent a malformed reply ({what}); nothing was recorded")


def kind(value: Any) -> str:
    """What ``value`` is, shortly, for a message about it."""
    return "null" if value is None else f"{type(value).__name__} {one_line(repr(value), 40)}"


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12


def index_of(value: Any, what: str, limit: int = MAX_CHOICES) -> int:
    """A choice's (or part's) index: missing or null is 0; anything but a small
    non-negative integer is malformed (a huge one would allocate that many slots)."""
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < limit:
        raise malformed(f"{what} is {kind(value)}")
    return value


def text_of(value: Any, what: str) -> str:
    """A text field: a string, or nothing (null or missing) — never a number or object
    turned into text."""
    if value is None or isinstance(value, str):
        return value or ""
    raise malformed(f"{what} is {kind(value)}, not text")


def content_text(content: Any, index: int) -> str:
    """A message's or delta's ``content``: a string, or (some servers) a list of text parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return "".join(p["text"] for p in content if isinstance(p.get("text"), str))
    raise malformed(f"choice {index + 1}'s content is {kind(content)}, not text")


def valid_text(text: str) -> str:
    """``text`` as valid Unicode: surrogate pairs joined, lone surrogates replaced."""
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def joined(pending: dict[Any, str], key: Any, text: str) -> str:
    """``text`` as valid text, a high surrogate that ends it held back in ``pending``
    until the next piece of the same stream (``key``) brings its low half: a pair split
    across deltas (\\ud83d + \\ude00) is joined, a lone half becomes U+FFFD."""
    text = pending.pop(key, "") + text
    if text and "\ud800" <= text[-1] <= "\udbff":
        text, pending[key] = text[:-1], text[-1]
    return valid_text(text)


CHAT_COUNTS = ("prompt_tokens", "completion_tokens")
IMAGE_COUNTS = ("input_tokens", "output_tokens")


def clean_usage(usage: Any, required: tuple[str, ...] = CHAT_COUNTS) -> dict[str, Any] | None:
    """The token counts of ``usage`` (and its ``*_details`` tables of counts), or ``None``
    when it is malformed (a ``required`` count missing or not a count): then nbchat
    estimates them, as for a server that reports none, and the reply itself is not lost."""
    if not isinstance(usage, dict):
        return None
    counts: dict[str, Any] = {k: v for k, v in usage.items() if isinstance(k, str) and is_count(v)}
    for key, value in usage.items():
        if isinstance(key, str) and key.endswith("_details") and isinstance(value, dict):
            counts[key] = {k: v for k, v in value.items() if isinstance(k, str) and is_count(v)}
    if any(name not in counts for name in required):
        return None
    return counts


def model_name(value: Any) -> str | None:
    return one_line(value, 200) or None if isinstance(value, str) else None


def finish_reason(value: Any) -> str:
    return one_line(value, 40) if isinstance(value, str) else "unknown"


def words(body: Any, depth: int = 0) -> str | None:
    """The server's own words in an error body, whatever its shape: OpenAI's
    ``{"error": {"message": …}}``, ``{"error": "text"}``, FastAPI's ``{"detail": …}``,
    nested or listed ones, or plain text."""
    if depth > 6:
        return None
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        known = ("message", "error", "detail", "msg", "title", "description", "error_description")
        for key in known:
            said = words(body.get(key), depth + 1)
            if said:
                return said
        for key, value in list(body.items())[:8]:  # words nested under a name of its own
            if key not in known and isinstance(value, (dict, list)):
                said = words(value, depth + 1)
                if said:
                    return said
    if isinstance(body, list):
        parts = [said for item in body[:3] if (said := words(item, depth + 1))]
        return "; ".join(parts) or None
    return None


def reported(error: Any, doing: str = "during the reply") -> RequestFailed:
    """An error the server reported inside a reply (a stream's error event, a failed
    response), in one readable line whatever its shape. The transport redacts it."""
    said = redact_foreign(one_line(words(error) or "no details"), ())
    code = error.get("code") if isinstance(error, dict) else None
    if not code and isinstance(error, dict) and isinstance(error.get("error"), dict):
        code = error["error"].get("code")
    suffix = f" ({one_line(code, 60)})" if isinstance(code, str) and code else ""
    return RequestFailed(f"the server reported an error {doing}: {said}{suffix}", said=said)


class Events:
    """The events of a streamed reply to ``body`` posted to ``path``, each a JSON object;
    the connection is closed however the reading ends (also on KeyboardInterrupt).
    ``done`` says whether the closing ``[DONE]`` arrived (``stream_class`` notes it)."""

    def __init__(self, client: Any, path: str, body: dict[str, Any], stream_class: Any, **post: Any) -> None:
        self.done = False
        self._stream = client.post(
            path, body=body, cast_to=object, stream=True, stream_cls=stream_class, **post
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        stream = self._stream
        try:
            for event in stream:
                if not isinstance(event, dict):
                    raise RequestFailed("the server sent a stream event that is not a JSON object")
                yield event
        finally:
            stream.response.close()
        self.done = bool(stream.done)


def choice_index(choice: Any, completion: Any) -> int | None:
    """The index of a choice of a chunk or whole reply (``None`` for a null choice), its
    finish reason recorded; a choice that is not an object is malformed."""
    if choice is None:
        return None
    if not isinstance(choice, dict):
        raise malformed(f"a choice is {kind(choice)}, not an object")
    index = index_of(choice.get("index"), "a choice's index")
    completion.parts.setdefault(index, [])
    if choice.get("finish_reason") is not None:
        completion.finish[index] = finish_reason(choice["finish_reason"])
    return index


def choices_of(data: dict[str, Any]) -> list[Any]:
    """A chunk's (or whole reply's) ``choices``: a list, or none at all."""
    choices = data.get("choices")
    if choices is not None and not isinstance(choices, list):
        raise malformed(f"'choices' is {kind(choices)}, not a list")
    return choices or []


def check_finished(completion: Any, asked: int, done: bool, what: str = "the reply") -> None:
    """A stream that ended (no ``[DONE]``) while any of the ``asked`` choices is
    unfinished records nothing."""
    expected = sorted(set(range(asked)) | set(completion.parts))
    unfinished = [i for i in expected if i not in completion.finish]
    if not done and unfinished:
        which = what if asked == 1 else f"choice {unfinished[0] + 1}"
        raise RequestFailed(
            f"the stream ended before {which} was complete (no finish_reason); "
            "nothing was recorded — re-run the cell"
        )


@functools.cache
def stream_class() -> Any:
    """The SDK's stream of plain dicts, noting whether the closing ``[DONE]`` arrived:
    a connection that just closes mid-reply otherwise looks like a normal end."""
    from openai import Stream

    from .. import wallclock

    class DoneStream(Stream[object]):
        done = False

        def _iter_events(self) -> Iterator[Any]:
            for sse in super()._iter_events():
                wallclock.renew()  # the limit (setting: timeout) is on each gap, not the whole reply
                if sse.data.startswith("[DONE]"):
                    self.done = True
                yield sse

    return DoneStream


def read(
    client: Any, path: str, body: dict[str, Any], stream_class: Any
) -> Iterator[Chunk | Whole | StreamEnd]:
    """Send ``body`` to ``path`` of a text API; yield each event of a streamed reply and then
    its end, or the whole reply. It keeps and changes nothing: the API's ``fold`` builds the
    reply (and a server that refuses a part of the request is asked again by the engine)."""
    if not body.get("stream"):
        # client.post skips the SDK's per-message transform (~0.15 ms a message)
        # and its model parsing: the body is already in wire format.
        yield Whole(client.post(path, body=body, cast_to=object))
        return
    events = Events(client, path, body, stream_class)
    for event in events:
        yield Chunk(event)
    yield StreamEnd(events.done, int(body.get("n") or 1))
