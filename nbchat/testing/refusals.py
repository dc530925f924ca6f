"""The stand-in's refusals: what real servers refuse, in their own words, as a status (400 or
500) or as an error event that opens a stream. Tests set ``server.quirks.refuse``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import wire

if TYPE_CHECKING:
    from .wire import Handler

# what each server says, and the parameter its error names (None: it names none)
WORDS: dict[str, tuple[str, str | None]] = {
    # OpenAI, to a reasoning model
    "temperature": (
        "Unsupported value: 'temperature' does not support 0.2 with this model. "
        "Only the default (1) value is supported.",
        "temperature",
    ),
    "max_tokens": (
        "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
        "max_tokens",
    ),
    "seed": ("Unrecognized request argument supplied: seed", None),
    # llama-cpp-python's server: pydantic's words, answered with a 500
    "json_schema": (
        "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
        "'ctx': {'expected': \"'text' or 'json_object'\"}}]",
        None,
    ),
    "stream_options": ("Unrecognized request argument supplied: stream_options", "stream_options"),
    # OpenAI's newest reasoning models
    "tools": (
        "Function tools with reasoning_effort are not supported for this model in "
        "/v1/chat/completions. Please use /v1/responses instead.",
        "tools",
    ),
    # llama.cpp's server without a projector
    "image": (
        "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj",
        None,
    ),
}


@dataclass
class Refuse:
    """Refuse ``what`` (a key of ``WORDS``) with ``status``; ``"event"``: as an error event
    opening a 200 stream (a request that does not stream gets a 500). Only ``models``, when
    given, refuse it."""

    what: str
    status: int | str = 400
    models: tuple[str, ...] = ()

    def carried(self, body: dict[str, Any]) -> bool:
        """The request carries what this server refuses."""
        if self.models and body.get("model") not in self.models:
            return False
        if self.what == "json_schema":
            return (body.get("response_format") or {}).get("type") == "json_schema"
        if self.what == "tools":
            return bool(body.get("tools"))
        if self.what == "image":
            return any(
                isinstance(p, dict) and p.get("type") == "image_url"
                for m in body.get("messages") or ()
                if isinstance(m, dict) and isinstance(m.get("content"), list)
                for p in m["content"]
            )
        return self.what in body


def refused(handler: Handler, body: dict[str, Any], api: str = "chat") -> bool:
    """Answer with the refusal of the first of the server's ``refuse`` the request carries
    (``api``: the error event in the shape of chat completions or of the Responses API)."""
    for refuse in handler.stand_in.quirks.refuse:
        if refuse.what == "tools" and api == "responses":
            continue  # what the refusal itself asks for
        if refuse.carried(body):
            message, param = WORDS[refuse.what]
            status = 500 if refuse.status == "event" else int(refuse.status)
            kind = "invalid_request_error" if status < 500 else "internal_server_error"
            error = {"message": message, "type": kind, "param": param, "code": None}
            if refuse.status == "event" and body.get("stream"):
                _error_event(handler, error | {"type": "error"} if api == "responses" else {"error": error})
            else:
                handler._json(status, {"error": error})
            return True
    return False


def _error_event(handler: Handler, event: dict[str, Any]) -> None:
    received = getattr(handler, "_received", None)
    if received is not None:
        received.status = 200
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler._chunk(wire.sse(event, event=event.get("type")))
    handler._chunk(b"")
