"""nbchat's offline stand-in: a small OpenAI-compatible server on 127.0.0.1 (stdlib only).

It is not a model. By default it echoes the last message back ("Echo: …"), so chat
notebooks, demos and tests run without a key or a network. Tests script its replies and
faults (status codes, delays, dropped connections, malformed events) and read the
requests it received. Run it with ``python -m nbchat.testing.server`` (``--help`` lists
its options: latency, faults; docs/stand-in.md shows them at work).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nbchat import content, tokens
from nbchat.testing import refusals, wire
from nbchat.testing.refusals import Refuse
from nbchat.testing.tool_calls import call_deltas, rejects_tools, scripted_calls, tool_results, written_calls

STAND_IN = "nbchat-stand-in"

# Endpoints beyond chat completions register here, each from its own module under
# nbchat/testing/, so the server grows one handler per endpoint without a routing ladder.
# A route is (method, path suffix) -> handler(request_handler, raw_body_bytes).
Route = Callable[["_Handler", bytes], None]
ROUTES: dict[tuple[str, str], Route] = {}


def route(method: str, suffix: str) -> Callable[[Route], Route]:
    """Register ``handler`` for requests whose path (without query) ends with ``suffix``."""

    def register(handler: Route) -> Route:
        ROUTES[(method, suffix)] = handler
        return handler

    return register


def _find_route(method: str, path: str) -> Route | None:
    """The handler for ``path``; a ``*`` in a suffix stands for one path segment (an id)."""
    bare = path.split("?")[0].rstrip("/")
    for (m, suffix), handler in ROUTES.items():
        if m != method:
            continue
        if "*" in suffix:
            if re.search(re.escape(suffix).replace(r"\*", "[^/]+") + "$", bare):
                return handler
        elif bare.endswith(suffix):
            return handler
    return None


_TOKENS = re.compile(r"\s*\S+|\s+")
# the stand-in "thinks" a fixed number of tokens per reasoning_effort
REASONING_TOKENS = {"low": 16, "medium": 64, "high": 256, "xhigh": 512}


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
    refuse: list[Refuse] = field(default_factory=list)  # refuse these, in real servers' words


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None
    at: float = field(default_factory=time.monotonic)  # when it arrived
    status: int | None = None  # the status it was answered with


@dataclass
class StandInServer:
    """A running stand-in server; ``url`` is its ``base_url``."""

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

    def start(self) -> StandInServer:
        handler = type("Handler", (_Handler,), {"stand_in": self})
        self._httpd = _Server((self.host, self.port), handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> StandInServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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


def reply_text(body: dict[str, Any]) -> str:
    from .structured import reply_json, wants_json

    if wants_json(body):
        return reply_json(body)
    messages = body.get("messages") or [{}]
    results = tool_results(messages)
    if results is not None:  # after tool calls: echo their results, so a tool loop ends
        return f"Echo: {' | '.join(results)}"
    last = messages[-1].get("content") if isinstance(messages[-1], dict) else None
    if isinstance(last, list) and content.is_valid(last):
        # parts arrive as text, with each image or file named: "[image/png 640×480]"
        return f"Echo: {''.join(_seen(p) for p in last)}"
    return f"Echo: {last if isinstance(last, str) else json.dumps(last)}"


def _content_tokens(value: Any) -> int:
    """Prompt tokens of a message's content; images by OpenAI's tile rule, as OpenAI bills."""
    if isinstance(value, str):
        return count_tokens(value)
    if not isinstance(value, list) or not content.is_valid(value):
        return 0
    return sum(count_tokens(p["text"]) if p["type"] == "text" else tokens.part_tokens(p) for p in value)


def _seen(part: dict[str, Any]) -> str:
    if part["type"] == "text":
        return str(part["text"])
    if part["type"] == "file":
        return f"[file {part['file'].get('filename') or part['file'].get('file_id') or '?'}]"
    url = str(part["image_url"]["url"])
    info = content.url_info(url)
    if info is None:
        return f"[image {url}]"
    mime, _, pixels = info
    return f"[{mime} {pixels[0]}×{pixels[1]}]" if pixels else f"[{mime}]"


def count_tokens(text: str) -> int:
    return len(_TOKENS.findall(text))


def completion_parts(
    body: dict[str, Any], script: Script, quirks: Quirks
) -> tuple[list[list[str]], list[str | None]]:
    """Each choice's pieces after ``stop`` and ``max_tokens``, and its finish_reason."""
    calling = bool(script.tool_calls) and script.text is None and script.chunks is None
    base = "" if calling else script.text if script.text is not None else reply_text(body)
    n = 1 if quirks.ignore_n else int(body.get("n") or 1)
    stops = body.get("stop") or []
    stops = [stops] if isinstance(stops, str) else stops
    choices, reasons = [], []
    for i in range(n):
        text = base if i == 0 else f"{base} (choice {i + 1})"
        pieces = list(script.chunks) if script.chunks is not None and i == 0 else _TOKENS.findall(text)
        reason: str | None = None if quirks.no_finish_reason else script.finish_reason
        if script.tool_calls and i == 0 and reason == "stop":
            reason = "tool_calls"
        joined = "".join(pieces)
        cut = min((joined.find(s) for s in stops if s and s in joined), default=-1)
        if cut >= 0:
            pieces, reason = _TOKENS.findall(joined[:cut]), reason and "stop"
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if limit is not None and len(pieces) > limit:
            pieces, reason = pieces[:limit], reason and "length"
        choices.append(pieces)
        reasons.append(reason)
    return choices, reasons


def logprob_entry(token: str, position: int, top: int) -> dict[str, Any]:
    logprob = -round(0.05 + 0.4 * (position % 7), 3)
    alternatives = [token, token.upper(), token.strip() + "?"][: max(top, 0)]
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode()),
        "top_logprobs": [
            {"token": alt, "logprob": round(logprob - k * 1.5, 3), "bytes": list(alt.encode())}
            for k, alt in enumerate(alternatives)
        ],
    }


_COUNT_LOCK = threading.Lock()
_SCRIPT_LOCK = threading.Lock()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a map opens many connections at once; the default backlog is 5

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        # clients drop idle keep-alive connections; that is not worth a traceback
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    stand_in: StandInServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # or each small write waits ~40 ms for an ACK

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- routing ------------------------------------------------------------------------

    def do_GET(self) -> None:
        handler = _find_route("GET", self.path)
        if handler is not None:
            return handler(self, b"")
        self._record(None)
        if self.path.rstrip("/").endswith("/models") and not self.stand_in.quirks.no_models:
            script = self.stand_in.scripts[0] if self.stand_in.scripts else None
            if script is not None and script.status != 200:
                self.stand_in.next_script()
                return self._error(script)
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "nbchat stand-in (not a model)"}
                for m in self.stand_in.models
            ]
            return self._json(200, {"object": "list", "data": data})
        self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

    def do_DELETE(self) -> None:
        handler = _find_route("DELETE", self.path)
        if handler is not None:
            return handler(self, b"")
        self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        counted = self.path.split("?")[0].endswith("/chat/completions")
        if counted:
            with _COUNT_LOCK:
                self.stand_in.inflight += 1
                self.stand_in.max_inflight = max(self.stand_in.max_inflight, self.stand_in.inflight)
        try:
            self._post()
        finally:
            if counted:
                with _COUNT_LOCK:
                    self.stand_in.inflight -= 1

    def _post(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        handler = _find_route(self.command, self.path)
        if handler is not None:
            return handler(self, raw)
        try:
            body = json.loads(raw or b"null")
        except json.JSONDecodeError:
            self._record(raw.decode(errors="replace"))
            return self._json(
                400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}}
            )
        if self.path.startswith("/_standin/script"):
            for item in body if isinstance(body, list) else [body]:
                self.stand_in.scripts.append(Script.from_dict(item))
            return self._json(200, {"queued": len(self.stand_in.scripts)})
        self._record(body)
        if not self.path.split("?")[0].endswith("/chat/completions"):
            return self._json(
                404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}}
            )
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
            return self._json(
                400,
                {
                    "error": {
                        "message": "'model' and 'messages' are required",
                        "type": "invalid_request_error",
                        "param": "messages",
                    }
                },
            )
        if "/openai/deployments/" in self.path and (
            "api-version=" not in self.path or "api-key" not in self.headers
        ):
            return self._json(
                401,
                {
                    "error": {
                        "message": "Azure requests need ?api-version= and an api-key header",
                        "type": "invalid_request_error",
                    }
                },
            )
        quirks = self.stand_in.quirks
        if refusals.refused(self, body):
            return None
        if quirks.reject_tools and (refusal := rejects_tools(body)):
            return self._json(400, refusal)
        if quirks.reject_stream_options and "stream_options" in body:
            return self._json(
                400,
                {
                    "error": {
                        "message": "Unrecognized request argument supplied: stream_options",
                        "type": "invalid_request_error",
                        "param": "stream_options",
                    }
                },
            )
        if quirks.reject_json_schema and (body.get("response_format") or {}).get("type") == "json_schema":
            return self._json(
                400,
                {
                    "error": {
                        "message": "response_format json_schema is not supported by this server",
                        "type": "invalid_request_error",
                        "param": "response_format",
                    }
                },
            )
        refused = _refused_part(body) if quirks.text_only else None
        if refused is not None:
            return self._json(400, {"error": refused})
        script = self.stand_in.next_script(body)
        if script.tool_calls is None and script.text is None and script.chunks is None:
            script = dataclasses.replace(script, tool_calls=written_calls(body))
        if script.delay:
            time.sleep(script.delay)
        if script.reset_before:
            return self._reset()
        if script.status != 200:
            return self._error(script)
        if body.get("stream"):
            return self._stream(body, script)
        return self._whole(body, script)

    # -- answers ------------------------------------------------------------------------

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
            "type": script.error_type or _error_type(script.status),
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

    def _usage(self, body: dict[str, Any], choices: list[list[str]]) -> dict[str, Any]:
        prompt = 3 + sum(
            3 + _content_tokens(m.get("content")) for m in body["messages"] if isinstance(m, dict)
        )
        # like OpenAI: reasoning tokens are part of the completion tokens, reported apart
        reasoning = REASONING_TOKENS.get(str(body.get("reasoning_effort")), 0)
        completion = sum(len(c) for c in choices) + reasoning
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }

    def _whole(self, body: dict[str, Any], script: Script) -> None:
        choices, reasons = completion_parts(body, script, self.stand_in.quirks)
        top = body.get("top_logprobs") or 0
        logprobs = body.get("logprobs") and not self.stand_in.quirks.no_logprobs
        calls = scripted_calls(script.tool_calls)
        data: dict[str, Any] = {
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": STAND_IN,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": "".join(pieces)}
                    | ({"tool_calls": calls, "content": "".join(pieces) or None} if calls and i == 0 else {}),
                    "finish_reason": reasons[i],
                    "logprobs": {"content": [logprob_entry(t, k, top) for k, t in enumerate(pieces)]}
                    if logprobs
                    else None,
                }
                for i, pieces in enumerate(choices)
            ],
        }
        if script.usage:
            data["usage"] = self._usage(body, choices)
        self._json(200, data | self.stand_in.quirks.extra_fields)

    def _stream(self, body: dict[str, Any], script: Script) -> None:
        choices, reasons = completion_parts(body, script, self.stand_in.quirks)
        top = body.get("top_logprobs") or 0
        base = {
            "id": "chatcmpl-standin",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": STAND_IN,
        }

        def event(choices_: list[dict[str, Any]], **extra: Any) -> bytes:
            return wire.sse(base | {"choices": choices_} | extra)

        opening = [
            event(
                [
                    {"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                    for i in range(len(choices))
                ]
            )
        ]
        content = []
        for k in range(max(map(len, choices), default=0)):
            batch = []
            for i, pieces in enumerate(choices):
                if k < len(pieces):
                    choice: dict[str, Any] = {
                        "index": i,
                        "delta": {"content": pieces[k]},
                        "finish_reason": None,
                    }
                    if body.get("logprobs") and not self.stand_in.quirks.no_logprobs:
                        choice["logprobs"] = {"content": [logprob_entry(pieces[k], k, top)]}
                    batch.append(choice)
            content.append(event(batch))
        calls = [
            event([{"index": 0, "delta": delta, "finish_reason": None}])
            for delta in call_deltas(scripted_calls(script.tool_calls), script.argument_pieces)
        ]
        closing = [
            event([{"index": i, "delta": {}, "finish_reason": reasons[i]} for i in range(len(choices))])
        ]
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        if script.usage and wants_usage and not self.stand_in.quirks.no_stream_usage:
            closing.append(event([], usage=self._usage(body, choices)))
        closing.append(b"data: [DONE]\n\n")
        error = {"error": {"message": "scripted error event", "type": "server_error"}}
        wire.stream(self, script, opening, content, closing, lambda: wire.sse(error), paced=calls)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def _refused_part(body: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's answer when a model without vision is sent an image (or a file)."""
    for i, message in enumerate(body["messages"]):
        parts = message.get("content") if isinstance(message, dict) else None
        for j, part in enumerate(parts if isinstance(parts, list) else []):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in ("image_url", "file"):
                return {
                    "message": f"Invalid content type. {kind} is only supported by certain models.",
                    "type": "invalid_request_error",
                    "param": f"messages.[{i}].content.[{j}].type",
                    "code": None,
                }
    return None


def _error_type(status: int) -> str:
    return {
        401: "invalid_request_error",
        403: "permission_denied",
        404: "invalid_request_error",
        429: "rate_limit_exceeded",
    }.get(status, "server_error" if status >= 500 else "invalid_request_error")


def main(argv: list[str] | None = None) -> None:
    """``python -m nbchat.testing.server [--port N] [--latency S] [--status CODE] …``"""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Faults answer every request unless --every says otherwise.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="S", help="wait S seconds before each reply"
    )
    parser.add_argument(
        "--chunk-delay", type=float, default=0.0, metavar="S", help="S seconds between streamed pieces"
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--status", type=int, metavar="CODE", help="answer with this HTTP error (401, 429, 500, …)"
    )
    faults.add_argument("--message", default="scripted error", help="the error's message (with --status)")
    faults.add_argument("--retry-after", metavar="S", help="a Retry-After header (with --status 429)")
    faults.add_argument(
        "--drop-after", type=int, metavar="N", help="drop the connection after N streamed pieces"
    )
    faults.add_argument("--every", type=int, default=1, metavar="N", help="the fault hits every N-th request")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be at least 1")
    server = StandInServer(port=args.port)
    server.default = Script(times=0, delay=args.latency, chunk_delay=args.chunk_delay)
    if args.status is not None or args.drop_after is not None:
        server.fault = dataclasses.replace(
            server.default,
            status=args.status or 200,
            error=args.message,
            retry_after=args.retry_after,
            reset_after=args.drop_after,
        )
        server.fault_every = args.every
    server.start()
    print(f"nbchat stand-in server (echo, not a model) at {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    # the package's copy of this module, where the endpoints register (not this __main__)
    from nbchat.testing import server as package_copy

    package_copy.main()
