"""An MCP tool call against the same function as a Python tool: per call (nbchat's
``run_call``, approval off), against the raw SDK's own call, and per turn (a cell's request,
the call, the request with its result, against the stand-in).

    python benchmarks/mcp.py [--quick]

The MCP server is nbchat's example (``nbchat.testing.mcp_example``), over stdio and over
streamable HTTP on 127.0.0.1; its ``add`` is the function measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

# this file is mcp.py: run as a script, its folder (first on sys.path) would hide the SDK of
# that name
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]


from nbchat import Chat, mcp  # noqa: E402
from nbchat.testing import mcp_example  # noqa: E402
from nbchat.testing.server import StandInServer  # noqa: E402
from nbchat.tools import Approval, ToolCall, as_tool, run_call  # noqa: E402


def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


def http_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, mcp_example.__file__, "--http"], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def per_call(tools: dict[str, Any], name: str) -> Callable[[], float]:
    """One call through nbchat's ``run_call`` (approval off): its seconds."""
    approval = Approval("auto")

    def once() -> float:
        start = time.perf_counter()
        call = run_call(ToolCall("1", name, '{"a": 2, "b": 3}'), tools, approval)
        seconds = time.perf_counter() - start
        assert call.result == "5.0" and not call.error, call.result
        return seconds

    return once


def raw_sdk(server: mcp.Server) -> Callable[[], float]:
    """The SDK's own ``call_tool`` on the same session, timed on its loop (no thread hop)."""

    async def timed() -> float:
        start = time.perf_counter()
        await server.session.call_tool("add", {"a": 2, "b": 3})
        return time.perf_counter() - start

    return lambda: asyncio.run_coroutine_threadsafe(timed(), mcp.loop()).result()


def per_turn(chat: Chat, stand_in: StandInServer, name: str, tools: list[str]) -> Callable[[], float]:
    def once() -> float:
        stand_in.script(tool_calls=[{"name": name, "arguments": {"a": 2, "b": 3}}])
        start = time.perf_counter()
        reply = chat.send("add them", tools=tools)
        seconds = time.perf_counter() - start
        assert reply.text == "Echo: 5.0", reply.text
        return seconds

    return once


def interleaved(variants: list[Callable[[], float]], reps: int) -> list[float]:
    """Median seconds of each variant, measured in turns (one of each per round, after a
    warm-up round): on a shared machine, drift in load hits every variant alike."""
    for once in variants:
        once()
    times: list[list[float]] = [[] for _ in variants]
    for _ in range(reps):
        for k, once in enumerate(variants):
            times[k].append(once())
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    reps = 30 if parser.parse_args().quick else 300
    process, url = http_server()
    servers = {
        "mcpServers": {
            "local": {"command": sys.executable, "args": [mcp_example.__file__]},
            "remote": {"url": url},
        }
    }
    try:
        with StandInServer() as stand_in:
            os.environ.setdefault("OPENAI_API_KEY", "sk-bench-Zq8vR2mK7pL4")
            chat = Chat(
                base_url=stand_in.url, mcp_servers=servers, tool_approval="auto", cache="off", namespace={}
            )
            started = time.perf_counter()
            local = {t.name: t for t in mcp.offered(mcp.servers_of(chat.settings)["local"], "add", 60)}
            start_local = time.perf_counter() - started
            remote = {t.name: t for t in mcp.offered(mcp.servers_of(chat.settings)["remote"], "add", 60)}
            python = {"add": as_tool(add)}
            configs = mcp.servers_of(chat.settings)
            names = [
                "Python tool add()",
                "MCP stdio, nbchat run_call",
                "MCP stdio, raw SDK call_tool",
                "MCP HTTP, nbchat run_call",
                "MCP HTTP, raw SDK call_tool",
            ]
            seconds = interleaved(
                [
                    per_call(python, "add"),
                    per_call(local, "local__add"),
                    raw_sdk(mcp.server_for(configs["local"])),
                    per_call(remote, "remote__add"),
                    raw_sdk(mcp.server_for(configs["remote"])),
                ],
                reps,
            )
            python_call = seconds[0]
            print(f"{'one tool call (approval off)':<34} {'ms':>8} {'overhead ms':>12} {'× Python':>9}")
            for name, took in zip(names, seconds, strict=True):
                extra = (took - python_call) * 1e3
                print(f"{name:<34} {took * 1e3:>8.3f} {extra:>12.3f} {took / python_call:>9.0f}")
            print(f"nbchat over the raw SDK, stdio: {(seconds[1] - seconds[2]) * 1e3:.3f} ms per call")
            print(f"nbchat over the raw SDK, HTTP:  {(seconds[3] - seconds[4]) * 1e3:.3f} ms per call")
            plain = Chat(base_url=stand_in.url, tools=[add], tool_approval="auto", cache="off", namespace={})
            turn_python, turn_local = interleaved(
                [per_turn(plain, stand_in, "add", []), per_turn(chat, stand_in, "local__add", ["local.add"])],
                max(reps // 10, 5),
            )
            print(f"\n{'a turn with one call (2 requests)':<34} {'ms':>8} {'× Python':>9}")
            print(f"{'Python tool':<34} {turn_python * 1e3:>8.2f} {1:>9.2f}")
            print(f"{'MCP stdio tool':<34} {turn_local * 1e3:>8.2f} {turn_local / turn_python:>9.2f}")
            print(f"\nstarting the stdio server (once per kernel): {start_local:.2f} s")
    finally:
        mcp.stop_all()
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
