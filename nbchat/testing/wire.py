"""What the stand-in's newer endpoints share: scripted faults before and during a stream."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Script, _Handler


def body_of(handler: _Handler, raw: bytes) -> Any:
    """The request's JSON body, recorded; ``None`` (after a 400 answer) when it is not JSON."""
    try:
        body = json.loads(raw or b"null")
    except json.JSONDecodeError:
        handler._record(raw.decode(errors="replace"))
        handler._json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
        return None
    handler._record(body)
    return body


def bad_request(handler: _Handler, message: str, param: str | None = None) -> None:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    handler._json(400, {"error": error})


def scripted(handler: _Handler) -> Script | None:
    """The next script, after its delay; ``None`` when it already answered (an error, a reset)."""
    script = handler.stand_in.next_script()
    if script.delay:
        time.sleep(script.delay)
    if script.reset_before:
        handler._reset()
        return None
    if script.status != 200:
        handler._error(script)
        return None
    return script


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


def stream(
    handler: _Handler,
    script: Script,
    opening: Iterable[bytes],
    content: Iterable[bytes],
    closing: Iterable[bytes],
    error_event: Callable[[], bytes],
    paced: Iterable[bytes] = (),
) -> None:
    """Send a server-sent event stream, applying the script's mid-stream faults at the
    k-th ``content`` event; ``paced`` events (tool-call deltas) follow the content at the
    script's pace, without faults."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler.stand_in.open_streams += 1
    try:
        for event in opening:
            handler._chunk(event)
        for k, event in enumerate(content):
            if script.chunk_delay:
                time.sleep(script.chunk_delay)
            if k == script.stall_at:
                time.sleep(script.stall)
            if k == script.reset_after:
                return handler._reset()
            if k == script.malformed_at:
                handler._chunk(b"data: {this is not json\n\n")
            if k == script.error_event_at:
                handler._chunk(error_event())
            if k == script.truncate_after:
                return handler._chunk(b"")
            handler._chunk(event)
        for event in paced:
            if script.chunk_delay:
                time.sleep(script.chunk_delay)
            handler._chunk(event)
        for event in closing:
            handler._chunk(event)
        handler._chunk(b"")
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        handler.stand_in.open_streams -= 1
