"""A small MCP server for demos and tests, written with the official ``mcp`` SDK
(``pip install 'nbchat[mcp]'``). It is a stand-in, like the chat stand-in: its tools are
toys (add, count words, keep notes, draw a chart), not a service.

Over stdio (what an ``mcpServers`` entry with ``"command"`` starts)::

    python -m nbchat.testing.mcp_example

Over streamable HTTP on 127.0.0.1 (prints its URL on the first line of stdout); with
``MCP_EXAMPLE_TOKEN`` set, every request must carry ``Authorization: Bearer <token>``::

    python -m nbchat.testing.mcp_example --http [--port N]

``--faults`` adds tools that misbehave on purpose (fail, sleep, crash, show_env) and tell
where they run (where, pid), for tests of what a client does when a server errs, hangs or dies.
"""

import argparse
import json
import os
import socket
import struct
import sys
import time
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

NOTES: list[str] = []


def build(faults: bool = False) -> "MCPServer":
    """The server and its tools."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.utilities.types import Image
    from mcp_types import ToolAnnotations

    server = MCPServer(
        "nbchat-example",
        instructions="A stand-in MCP server for nbchat's demos and tests.",
        log_level="WARNING",
    )
    reads = ToolAnnotations(read_only_hint=True)

    @server.tool(annotations=reads)
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    @server.tool(annotations=reads)
    def word_count(text: str) -> dict[str, int]:
        """Count the words and characters of a text."""
        return {"words": len(text.split()), "characters": len(text)}

    @server.tool()
    def remember(note: str) -> str:
        """Keep a note for later (it changes the server's state, so a client asks first)."""
        NOTES.append(note)
        return f"noted ({len(NOTES)} in all)"

    @server.tool(annotations=reads)
    def notes() -> list[str]:
        """The notes kept so far."""
        return list(NOTES)

    @server.tool(annotations=reads)
    def chart(values: list[float]) -> Image:
        """Draw the values as a small bar chart (a PNG image)."""
        return Image(data=bar_chart(values), format="png")

    if faults:
        add_faults(server, reads)
    return server


def add_faults(server: "MCPServer", reads: Any) -> None:
    """Tools that misbehave on purpose."""

    @server.tool(annotations=reads)
    def fail(message: str) -> str:
        """Fail with this message (the result is an error)."""
        from mcp.server.mcpserver.exceptions import ToolError

        raise ToolError(message)

    @server.tool(annotations=reads)
    def sleep(seconds: float) -> str:
        """Wait this long, then answer."""
        time.sleep(seconds)
        return f"slept {seconds} s"

    @server.tool(annotations=reads)
    def crash() -> str:
        """Exit the server process in the middle of the call."""
        print("example server: crashing on purpose", file=sys.stderr, flush=True)
        os._exit(3)

    @server.tool(annotations=reads)
    def where() -> str:
        """The server's working folder."""
        return os.getcwd()

    @server.tool(annotations=reads)
    def pid() -> int:
        """The server's process id."""
        return os.getpid()

    @server.tool(annotations=reads)
    def show_env(name: str) -> str:
        """The value of one of the server's environment variables (a leaky server)."""
        return os.environ.get(name, "(not set)")


def bar_chart(values: list[float], width: int = 8, height: int = 32) -> bytes:
    """A PNG of ``values`` as bars (the standard library only)."""
    values = values or [0.0]
    top = max(max(values), 1e-9)
    columns = [round(v / top * height) for v in values]
    rows = []
    for y in range(height):
        line = bytearray([0])  # filter byte: none
        for bar in columns:
            filled = height - y <= bar
            line += bytes([40, 90, 160] if filled else [255, 255, 255]) * width
        rows.append(bytes(line))
    size = (width * len(columns), height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", *size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def guarded(app: Any, token: str) -> Any:
    """``app`` behind a bearer token: any HTTP request without it is a 401."""
    expected = f"Bearer {token}".encode()

    async def check(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            body = json.dumps({"error": "invalid_token", "error_description": "a valid token is needed"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                }
            )
            await send({"type": "http.response.body", "body": body.encode()})
            return
        await app(scope, receive, send)

    return check


def serve_http(server: Any, port: int) -> None:
    import uvicorn

    app = server.streamable_http_app()
    token = os.environ.get("MCP_EXAMPLE_TOKEN")
    if token:
        app = guarded(app, token)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)  # before the URL is printed: a client that connects at once waits, not refused
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on")).run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nbchat.testing.mcp_example", description=__doc__)
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    parser.add_argument("--port", type=int, default=0, help="with --http: the port (default: any free one)")
    parser.add_argument("--faults", action="store_true", help="add tools that fail, hang or crash")
    args = parser.parse_args(argv)
    # run as a script, its folder comes first on sys.path: the stand-in's own modules
    # (server.py, images.py) must not shadow the SDK's imports
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    server = build(faults=args.faults)
    if args.http:
        serve_http(server, args.port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
