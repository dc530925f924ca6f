"""MCP servers as tools: start a declared server when first used, list its tools, call them.

The official ``mcp`` SDK (the ``nbchat[mcp]`` extra) is async. Every server's session lives
on one event loop in a background thread, so a kernel's own loop is never blocked or
re-entered; the caller's thread waits in short ticks, where a kernel interrupt lands. A
server lives until ``stop_all`` (``%unload_ext``, the interpreter's exit).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import concurrent.futures
import importlib.util
import json
import logging
import re
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any, TextIO

from .errors import NbChatError
from .mcpconfig import ServerConfig, servers_of, split
from .secret import credentials, one_line, redact_foreign
from .tools import Deferred, Tool, ToolError, ToolFailed, ToolResult

EXTRA = "pip install 'nbchat[mcp]'"
TICK = 0.1  # seconds between checks for a kernel interrupt while a server works
_OPENAI_NAME = re.compile(r"[^A-Za-z0-9_-]")
_GONE = {"ConnectError", "RemoteProtocolError", "ReadError", "BrokenResourceError", "ClosedResourceError"}


_QUIET = logging.NullHandler()


class ServerFailed(NbChatError):
    """A server could not start (the message names it and quotes its last lines)."""


# -- the loop ---------------------------------------------------------------------------

_LOOP: asyncio.AbstractEventLoop | None = None
_LOCK = threading.Lock()


def loop() -> asyncio.AbstractEventLoop:
    """One event loop for every MCP session of this process, in a daemon thread."""
    global _LOOP
    with _LOCK:
        if _LOOP is None or _LOOP.is_closed():
            new = asyncio.new_event_loop()
            threading.Thread(target=new.run_forever, name="nbchat-mcp", daemon=True).start()
            _LOOP = new
        return _LOOP


def wait(future: concurrent.futures.Future[Any], timeout: float) -> Any:
    """The future's result within ``timeout`` seconds (``TimeoutError`` after), waiting in
    ticks so that Ctrl-C reaches the caller."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            return future.result(timeout=max(0.0, min(TICK, left)))
        except concurrent.futures.TimeoutError:
            if future.done():
                raise  # the coroutine itself timed out
            if left <= 0:
                raise TimeoutError from None


# -- one server ---------------------------------------------------------------------------


class Server:
    """A declared server and its session: ``not started``, ``running`` or ``failed``."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.state = "not started"
        self.problem = ""  # why it failed, in one line
        self.tools: list[Any] = []  # the SDK's Tool objects, as listed
        self.session: Any = None
        self._stop: asyncio.Event | None = None
        self._task: concurrent.futures.Future[Any] | None = None
        self._log: TextIO | None = None  # the server's stderr (a local one)
        self._refused = ""  # an HTTP error status the server answered while starting
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.config.name

    def ensure(self, timeout: float) -> None:
        """Start the server unless it runs; ``ServerFailed`` says why it cannot."""
        with self._lock:
            if self.state == "running" and self.session is not None:
                return
            self._start(timeout)

    def _start(self, timeout: float) -> None:
        self._close()
        if self.config.kind == "stdio":
            self._log = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        self._refused = ""
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._task = asyncio.run_coroutine_threadsafe(self._serve(ready), loop())
        _stop_at_exit()
        try:
            wait(ready, timeout)
        except KeyboardInterrupt:
            self._halt("interrupted while starting")
            raise
        except TimeoutError:
            self._halt(f"it did not answer within {timeout:g} s (mcp_timeout)")
            raise ServerFailed(self._failure()) from None
        except Exception as e:
            self._halt(self._why(e))
            raise ServerFailed(self._failure()) from None
        self.state, self.problem = "running", ""

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        """The session's whole life in one task (the SDK's contexts are entered and left in
        the same task): connect, list the tools, then wait to be told to stop."""
        self._stop = stop = asyncio.Event()
        try:
            async with AsyncExitStack() as stack:
                session = await self._connect(stack)
                await session.initialize()
                tools, cursor = [], None
                while True:
                    from mcp_types import PaginatedRequestParams

                    params: Any = PaginatedRequestParams(cursor=cursor) if cursor else None
                    listed = await session.list_tools(params=params)
                    tools += listed.tools
                    cursor = listed.next_cursor
                    if not cursor:
                        break
                self.session, self.tools = session, tools
                # the SDK checks structured results with jsonschema, whose first import takes
                # seconds: paid here, while starting, not by the first call
                await asyncio.get_running_loop().run_in_executor(None, importlib.import_module, "jsonschema")
                ready.set_result(None)
                await stop.wait()
        except BaseException as e:
            if not ready.done():
                ready.set_exception(e if isinstance(e, Exception) else RuntimeError(type(e).__name__))
            if not isinstance(e, (Exception, asyncio.CancelledError)):
                raise
        finally:
            self.session = None

    async def _connect(self, stack: AsyncExitStack) -> Any:
        from mcp import ClientSession

        # the SDK logs a server gone at shutdown as a warning: without a handler of the
        # user's, Python would print it into whatever cell runs then
        logging.getLogger("mcp").addHandler(_QUIET)

        config = self.config
        if config.kind == "stdio":
            from mcp import StdioServerParameters, stdio_client

            params = StdioServerParameters(
                command=config.command, args=list(config.args), env=dict(config.env) or None, cwd=config.cwd
            )
            streams = await stack.enter_async_context(stdio_client(params, errlog=self._log))  # type: ignore[arg-type]
        else:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            client = await stack.enter_async_context(create_mcp_http_client(headers=dict(config.headers)))
            client.event_hooks["response"].append(self._note_status)
            streams = await stack.enter_async_context(streamable_http_client(config.url, http_client=client))
        return await stack.enter_async_context(ClientSession(*streams))

    async def _note_status(self, response: Any) -> None:
        """Remember an HTTP error status while starting: the SDK reports only "error"."""
        if response.status_code >= 400 and self.state != "running" and not self._refused:
            await response.aread()
            words = one_line(response.text, 120)
            self._refused = f"{response.status_code} {response.reason_phrase}" + (
                f" ({words})" if words else ""
            )

    def call(self, tool: str, arguments: dict[str, Any], timeout: float) -> ToolResult:
        """Call one tool; its result, or ``ToolFailed`` saying why there is none."""
        try:
            self.ensure(timeout)
        except ServerFailed as e:
            raise ToolFailed(str(e)) from None
        session = self.session
        future = asyncio.run_coroutine_threadsafe(session.call_tool(tool, arguments), loop())
        try:
            result = wait(future, timeout)
        except KeyboardInterrupt:
            future.cancel()
            raise
        except TimeoutError:
            future.cancel()
            raise ToolFailed(
                f"MCP server {self.name!r} did not answer {tool} within {timeout:g} s (mcp_timeout), "
                "so the call was cancelled"
            ) from None
        except Exception as e:
            if session is not self.session or self._closed(e):
                self._halt(f"it stopped during a call to {tool}")
                raise ToolFailed(self._failure() + "; it is started again when next used") from None
            raise ToolFailed(f"MCP server {self.name!r}: {self._why(e)}") from None
        return result_of(result, self.config)

    def _closed(self, error: BaseException) -> bool:
        """The server is gone: its pipe closed, or its HTTP stream or connection broke."""
        leaf = next(_leaves(error), error)
        words = str(leaf).lower()
        return "connection closed" in words or "stream ended" in words or type(leaf).__name__ in _GONE

    def _halt(self, problem: str) -> None:
        """Stop the session and remember why: the state becomes ``failed``."""
        self._close()
        self.state, self.problem = "failed", problem

    def stop(self) -> None:
        """End the session (a local server's process exits); it may be started again."""
        with self._lock:
            self._close()
            if self.state == "running":
                self.state = "not started"

    def _close(self, grace: float = 8.0) -> None:
        stop, task = self._stop, self._task
        self._stop, self._task, self.session = None, None, None
        if stop is not None and _LOOP is not None and not _LOOP.is_closed():
            _LOOP.call_soon_threadsafe(stop.set)
        if task is not None:
            try:
                # the SDK closes stdin, then terminates, then kills a local server
                task.result(timeout=grace)
            except BaseException:
                task.cancel()

    # -- what went wrong, in one line ------------------------------------------------

    def _why(self, error: BaseException) -> str:
        leaf = next(_leaves(error), error)
        config = self.config
        if self._refused:
            return f"{public(config)} answered {self._refused}"
        if isinstance(leaf, FileNotFoundError) and config.kind == "stdio":
            return f"command {config.command!r} was not found"
        if isinstance(leaf, PermissionError) and config.kind == "stdio":
            return f"command {config.command!r} cannot be run (permission denied)"
        if type(leaf).__name__ in ("ConnectError", "ConnectTimeout"):
            return f"cannot connect to {public(config)} ({leaf})"
        if self._closed(leaf):
            return "it exited before it was ready" if self.state != "running" else "the connection closed"
        return f"{type(leaf).__name__}: {leaf}" if str(leaf) else type(leaf).__name__

    def _failure(self) -> str:
        """``MCP server 'x' could not start: …; its last lines: …`` — one line, no credential."""
        text = f"MCP server {self.name!r} ({self.config.shown}) "
        text += f"failed: {self.problem}" if "stopped" in self.problem else f"could not start: {self.problem}"
        said = self.last_lines()
        if said:
            text += f"; its last lines: {said}"
        return redact_foreign(one_line(text, 600), credentials(None, self.config.secrets()))

    def last_lines(self, count: int = 3) -> str:
        """The last lines the server wrote to stderr (a local server), joined by `` | ``."""
        log = self._log
        if log is None:
            return ""
        try:
            log.flush()
            log.seek(0)
            lines = [line.strip() for line in log.read()[-4000:].splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return " | ".join(lines[-count:])


def _leaves(error: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (nested) exception groups, first to last."""
    inner = getattr(error, "exceptions", None)
    if isinstance(inner, tuple):
        for item in inner:
            yield from _leaves(item)
    else:
        yield error


def public(config: ServerConfig) -> str:
    return config.shown


# -- results ------------------------------------------------------------------------------


def result_of(result: Any, config: ServerConfig) -> ToolResult:
    """A ``CallToolResult`` as nbchat's: text (and structured content) for the model,
    images for the user (described to the model), ``isError`` as an error."""
    texts: list[str] = []
    images: list[dict[str, str]] = []
    for block in result.content or ():
        kind = getattr(block, "type", "")
        if kind == "text":
            texts.append(block.text)
        elif kind == "image":
            images.append({"mime": block.mime_type, "data": block.data})
            texts.append(image_note(block.mime_type, block.data))
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            texts.append(text if isinstance(text, str) else f"[a resource, {resource.uri}: binary, not sent]")
        elif kind == "resource_link":
            texts.append(f"[a resource: {block.uri}]")
        else:
            texts.append(f"[{kind or 'unknown'} content: not sent]")
    structured = result.structured_content
    if structured is not None and not any(_same(text, structured) for text in texts):
        texts.append(json.dumps(structured, ensure_ascii=False))
    text = "\n".join(texts) if texts else "(no content)"
    if result.is_error and not text.lower().startswith("error"):
        text = f"Error: {text}"  # as a Python tool's exception reads
    return ToolResult(text, images, bool(result.is_error))


def _same(text: str, structured: Any) -> bool:
    """The text is the structured content written out (servers send both, per the spec;
    a plain value comes wrapped as ``{"result": value}``)."""
    if isinstance(structured, dict) and list(structured) == ["result"] and structured["result"] == text:
        return True
    try:
        value = json.loads(text)
    except ValueError:
        return False
    one = structured.get("result") if isinstance(structured, dict) and len(structured) == 1 else None
    return value == structured or (one is not None and value == one)


def image_note(mime: str, data: str) -> str:
    """What the model reads about an image in a result (a tool message carries text only)."""
    try:
        raw = base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4))
    except ValueError:
        raw = b""
    size = ""
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) >= 24:
        width, height = struct.unpack(">II", raw[16:24])
        size = f", {width}×{height} pixels"
    kilobytes = len(data) * 3 / 4 / 1024
    return (
        f"[an image ({mime}{size}, {kilobytes:.1f} kB): shown to the user; a tool result carries text only]"
    )


# -- naming and offering ------------------------------------------------------------------


def model_name(server: str, tool: str) -> str:
    """``SERVER__TOOL`` within OpenAI's name rules (letters, digits, _ and -, at most 64)."""
    name = _OPENAI_NAME.sub("_", f"{server}__{tool}")
    if len(name) > 64:
        import hashlib

        digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:8]
        name = f"{name[:55]}_{digest}"
    return name


def as_tool(server: Server, listed: Any, timeout: float) -> Tool:
    """One of a server's tools as the model sees it; a read-only one is not asked about."""
    annotations = listed.annotations
    read_only = bool(annotations is not None and annotations.read_only_hint)
    name = listed.name

    def call(**arguments: Any) -> ToolResult:
        return server.call(name, arguments, timeout)

    schema = dict(listed.input_schema or {"type": "object", "properties": {}})
    description = listed.description or listed.title or f"{name} (MCP server {server.name})"
    return Tool(model_name(server.name, name), call, description, schema, ask=not read_only, checked=False)


_SERVERS: dict[str, Server] = {}


def server_for(config: ServerConfig) -> Server:
    """The one ``Server`` of this configuration in this process."""
    with _LOCK:
        server = _SERVERS.get(config.fingerprint)
        if server is None:
            server = _SERVERS[config.fingerprint] = Server(config)
        return server


def sources_for(settings: Any) -> Callable[[str], Deferred | None]:
    """Names of MCP tools (``NAME`` or ``NAME.TOOL``) as ``Deferred`` tools: nothing starts
    until a request goes out (a replayed turn starts nothing)."""
    try:
        configs = servers_of(settings)
    except ValueError as e:
        raise ToolError(str(e)) from None
    timeout = float(settings.mcp_timeout)

    def find(item: str) -> Deferred | None:
        server, tool = split(item, configs)
        if server is None:
            return None
        if not installed():
            raise ToolError(f"MCP server {server!r} needs the mcp package: {EXTRA}")
        config = configs[server]
        return Deferred({"mcp": config.public, "tool": tool}, lambda: offered(config, tool, timeout))

    return find


def installed() -> bool:
    """Whether the SDK can be imported (it is not, yet: a replay never needs it)."""
    try:
        return importlib.util.find_spec("mcp") is not None
    except (ImportError, ValueError):
        return False


def offered(config: ServerConfig, tool: str, timeout: float) -> list[Tool]:
    """Start the server if needed; its tools (or the one named) for the model."""
    server = server_for(config)
    server.ensure(timeout)
    listed = [t for t in server.tools if not tool or t.name == tool]
    if tool and not listed:
        names = ", ".join(t.name for t in server.tools) or "none"
        raise ToolError(f"MCP server {config.name!r} has no tool {tool!r} (its tools: {names})")
    return [as_tool(server, t, timeout) for t in listed]


# -- the kernel's servers -----------------------------------------------------------------


_AT_EXIT: list[bool] = []


def _stop_at_exit() -> None:
    with _LOCK:
        if not _AT_EXIT:
            atexit.register(stop_all)
            _AT_EXIT.append(True)


def stop_all() -> None:
    """Stop every server of this process (``%unload_ext``, exit)."""
    with _LOCK:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
    for server in servers:
        server.stop()


def listing(settings: Any) -> list[list[str]]:
    """``%chat mcp``: each declared server, what it is, its state and its tools."""
    rows = []
    for name, config in servers_of(settings).items():
        server = _SERVERS.get(config.fingerprint)
        state = server.state if server is not None else "not started"
        if server is not None and state == "failed":
            state = f"failed: {server.problem}"
        tools = ", ".join(model_name(name, t.name) for t in server.tools) if server and server.session else ""
        rows.append([name, f"{config.kind}: {config.shown}", state, tools or "—"])
    return rows


def tools_of(settings: Any, name: str) -> list[list[str]]:
    """``%chat mcp NAME``: start the server if needed; each tool, whether it is asked
    about, and its description."""
    configs = servers_of(settings)
    if name not in configs:
        raise ToolError(f"there is no MCP server {name!r} (servers: {', '.join(configs) or 'none'})")
    if not installed():
        raise ToolError(f"MCP server {name!r} needs the mcp package: {EXTRA}")
    tools = offered(configs[name], "", float(settings.mcp_timeout))
    return [[t.name, "asks" if t.ask else "read-only", one_line(t.description, 100)] for t in tools]


__all__ = [
    "EXTRA",
    "Server",
    "ServerFailed",
    "listing",
    "model_name",
    "result_of",
    "server_for",
    "sources_for",
    "stop_all",
    "tools_of",
]
