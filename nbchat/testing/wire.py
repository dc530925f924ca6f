"""What every endpoint of the stand-in shares: the server's state (scripted answers, quirks,
the requests received), the request handler's answers, and scripted faults before and
during a stream. Standard library only; nothing of nbchat's runtime."""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

STAND_IN = "nbchat-stand-in"
_SCRIPT_LOCK = threading.Lock()


@dataclass
class Script:
    """One scripted answer. Unset fields keep the default (echo) behaviour."""

    text: str | None = None
    chunks: list[str] | None = None  # exact stream pieces (overrides splitting ``text``)
    status: int = 200
    error: str = "scripted error"
    error_type: str | None = None
    param: str | None = None
    code: str | None = None
    retry_after: str | None = None
    delay: float = 0.0  # before the response starts
    chunk_delay: float = 0.0  # between stream chunks
    usage: bool = True  # report usage (in streams: only if stream_options asks)
    finish_reason: str | None = "stop"
    reset_before: bool = False  # reset the connection before any byte
    reset_after: int | None = None  # reset after this many content chunks
    malformed_at: int | None = None  # send invalid JSON at this chunk
    error_event_at: int | None = None  # send an error event at this chunk
    truncate_after: int | None = None  # end the stream cleanly, without finish or [DONE]
    stall_at: int | None = None  # pause for ``stall`` seconds before this content chunk
    stall: float = 0.0
    times: int = 1  # how many requests this answer serves
    tool_calls: list[dict[str, Any]] | None = None  # ask for calls: [{"name", "arguments", "id"?}]
    argument_pieces: int = 3  # a streamed call's arguments arrive in this many chunks
    model: str | None = None  # serves only requests for this model (others go on to the next script)
    contains: str | None = None  # serves only requests whose last message contains this text

    def serves(self, body: Any) -> bool:
        if self.model is None and self.contains is None:
            return True
        if not isinstance(body, dict):
            return False
        if self.model is not None and body.get("model") != self.model:
            return False
        if self.contains is None:
            return True
        last = (body.get("messages") or [{}])[-1]
        said = last.get("content") if isinstance(last, dict) else last
        return self.contains in (said if isinstance(said, str) else json.dumps(said))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Script:
        return cls(**data)


@dataclass
class Quirks:
    """Ways real OpenAI-compatible servers differ, to test that nbchat copes with each."""

    no_stream_usage: bool = False  # ignore stream_options (llama.cpp's server)
    reject_stream_options: bool = False  # answer 400 to a request carrying stream_options
    ignore_n: bool = False  # always one choice
    no_models: bool = False  # no GET /models endpoint
    no_logprobs: bool = False  # ignore logprobs
    no_finish_reason: bool = False  # finish_reason always null
    reject_json_schema: bool = False  # answer 400 to response_format json_schema (json_object is fine)
    reject_tools: bool = False  # answer 400 to a request that offers tools
    extra_fields: dict[str, Any] = field(default_factory=dict)  # added to every chunk and reply
    text_only: bool = False  # answer 400 to images and files, as a model without vision does
    # refuse these, in real servers' words: refusals.Refuse items (named, not imported: the
    # refusals module builds on this one, and a circle of imports, even for types, is one too many)
    refuse: list[Any] = field(default_factory=list)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None
    at: float = field(default_factory=time.monotonic)  # when it arrived
    status: int | None = None  # the status it was answered with


@dataclass
class StandIn:
    """What a stand-in server holds: its models, the requests it received, the answers
    scripted for it and its quirks; ``url`` is its ``base_url`` once it runs."""

    host: str = "127.0.0.1"
    port: int = 0
    models: list[str] = field(default_factory=lambda: [STAND_IN, "gpt-4o-mini", "gpt-4o"])
    requests: list[Received] = field(default_factory=list)
    scripts: deque[Script] = field(default_factory=deque)
    quirks: Quirks = field(default_factory=Quirks)
    open_streams: int = 0
    inflight: int = 0  # chat requests being answered now
    max_inflight: int = 0  # the most at once (a map's concurrency bound)
    # what answers a request no queued script serves (the command line's --latency), and a
    # fault that answers every ``fault_every``-th such request instead (--status, --drop-after)
    default: Script = field(default_factory=lambda: Script(times=0))
    fault: Script | None = None
    fault_every: int = 1
    answered: int = 0  # requests answered by ``default`` or ``fault``

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def script(self, **kwargs: Any) -> None:
        self.scripts.append(Script(**kwargs))

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies of the chat requests received, oldest first."""
        return [r.body for r in self.requests if r.path.endswith("/chat/completions")]

    def next_script(self, body: Any = None) -> Script:
        """The first queued answer that serves this request (``body``), used up after ``times``."""
        with _SCRIPT_LOCK:
            position = next((i for i, s in enumerate(self.scripts) if s.serves(body)), None)
            if position is None:
                self.answered += 1
                faulty = self.fault is not None and self.answered % self.fault_every == 0
                return dataclasses.replace(self.fault if faulty and self.fault else self.default)
            script = self.scripts[position]
            script.times -= 1
            if script.times <= 0:
                del self.scripts[position]
            return script


class Handler(BaseHTTPRequestHandler):
    """One request to the stand-in: what every endpoint uses to answer it."""

    stand_in: StandIn
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # or each small write waits ~40 ms for an ACK

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _record(self, body: Any) -> None:
        self._received = Received(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        self.stand_in.requests.append(self._received)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        received = getattr(self, "_received", None)
        if received is not None and received.status is None:
            received.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, script: Script) -> None:
        error = {
            "message": script.error,
            "type": script.error_type or error_type(script.status),
            "param": script.param,
            "code": script.code,
        }
        headers = {"Retry-After": script.retry_after} if script.retry_after else {}
        self._json(script.status, {"error": error}, headers)

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send RST: the client sees "connection reset"
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def error_type(status: int) -> str:
    return {
        401: "invalid_request_error",
        403: "permission_denied",
        404: "invalid_request_error",
        429: "rate_limit_exceeded",
    }.get(status, "server_error" if status >= 500 else "invalid_request_error")


Route = Callable[[Handler, bytes], None]  # an endpoint: (the request, its raw body)


def body_of(handler: Handler, raw: bytes) -> Any:
    """The request's JSON body, recorded; ``None`` (after a 400 answer) when it is not JSON."""
    try:
        body = json.loads(raw or b"null")
    except json.JSONDecodeError:
        handler._record(raw.decode(errors="replace"))
        handler._json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
        return None
    handler._record(body)
    return body


def bad_request(handler: Handler, message: str, param: str | None = None) -> None:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    handler._json(400, {"error": error})


def scripted(handler: Handler) -> Script | None:
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
    handler: Handler,
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
