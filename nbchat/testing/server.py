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
import sys
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from . import batches, chat, completions, images, organization, responses
from .wire import STAND_IN, Handler, Route, Script, StandIn

__all__ = ["ROUTES", "STAND_IN", "StandInServer"]


def queue_scripts(handler: Handler, raw: bytes) -> None:
    """``POST /_standin/script``: queue answers from another process (a notebook's kernel)."""
    try:
        body = json.loads(raw or b"null")
    except json.JSONDecodeError:
        return handler._json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
    for item in body if isinstance(body, list) else [body]:
        handler.stand_in.scripts.append(Script.from_dict(item))
    handler._json(200, {"queued": len(handler.stand_in.scripts)})


# Every endpoint of the stand-in, in one table: (method, path suffix) -> endpoint. A ``*``
# stands for one path segment (an id); the first suffix that matches answers.
ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/chat/completions"): chat.completions,
    ("GET", "/models"): chat.models,
    ("POST", "/v1/completions"): completions.completions,
    ("POST", "/v1/responses"): responses.responses,
    ("POST", "/v1/images/generations"): images.generations,
    ("POST", "/v1/images/edits"): images.edits,
    ("POST", "/files"): batches.upload,
    ("GET", "/files"): batches.list_files,
    ("GET", "/files/*"): batches.retrieve_file,
    ("GET", "/files/*/content"): batches.file_content,
    ("DELETE", "/files/*"): batches.delete_file,
    ("POST", "/batches"): batches.create_batch,
    ("GET", "/batches/*"): batches.retrieve_batch,
    ("POST", "/batches/*/cancel"): batches.cancel_batch,
    ("GET", "/v1/organization/costs"): organization.costs,
    ("POST", "/_standin/script"): queue_scripts,
}


def find_route(method: str, path: str) -> Route | None:
    """The endpoint for ``path`` (without its query)."""
    bare = path.split("?")[0].rstrip("/")
    for (m, suffix), endpoint in ROUTES.items():
        if m != method:
            continue
        if "*" in suffix:
            if re.search(re.escape(suffix).replace(r"\*", "[^/]+") + "$", bare):
                return endpoint
        elif bare.endswith(suffix):
            return endpoint
    return None


class _Handler(Handler):
    def do_GET(self) -> None:
        self._route(b"")

    def do_DELETE(self) -> None:
        self._route(b"")

    def do_POST(self) -> None:
        self._route(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _route(self, raw: bytes) -> None:
        endpoint = find_route(self.command, self.path)
        if endpoint is not None:
            return endpoint(self, raw)
        self._record(_readable(raw))
        self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})


def _readable(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw.decode(errors="replace")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a map opens many connections at once; the default backlog is 5

    def handle_error(self, request: Any, client_address: Any) -> None:

        # clients drop idle keep-alive connections; that is not worth a traceback
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


@dataclass
class StandInServer(StandIn):
    """A running stand-in server; ``url`` is its ``base_url``."""

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
    main()
