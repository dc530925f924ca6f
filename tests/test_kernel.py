"""A real kernel: the frontend's cellId (execute_request metadata) drives re-run replacement."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel

pytestmark = pytest.mark.kernel


@pytest.fixture
def kernel(server) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "sk-kernel"}
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def execute(kc, code: str, cell_id: str | None = None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Send an execute_request the way JupyterLab does, with the cell's id in metadata."""
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    msg = kc.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
    kc.shell_channel.send(msg)
    while True:
        reply = kc.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return reply["content"]  # type: ignore[no-any-return]


def test_a_kernel_rerun_with_the_same_cell_id_replaces_the_exchange(kernel, server) -> None:  # type: ignore[no-untyped-def]
    assert execute(kernel, "%load_ext nbchat")["status"] == "ok"
    assert execute(kernel, "%%chat\nfirst", "cell-1")["status"] == "ok"
    assert execute(kernel, "%%chat\nsecond", "cell-2")["status"] == "ok"
    assert execute(kernel, "%%chat\nsecond, edited", "cell-2")["status"] == "ok"
    assert [m["content"] for m in server.bodies[-1]["messages"]] == ["first", "Echo: first", "second, edited"]
    assert execute(kernel, "%%chat\nthird")["status"] == "ok"  # no cell id: appended
    assert [m["content"] for m in server.bodies[-1]["messages"]] == [
        "first",
        "Echo: first",
        "second, edited",
        "Echo: second, edited",
        "third",
    ]


def test_a_failed_request_fails_the_cell_in_a_kernel(kernel, server) -> None:  # type: ignore[no-untyped-def]
    assert execute(kernel, "%load_ext nbchat")["status"] == "ok"
    server.script(status=404, error="no such model")
    reply = execute(kernel, "%%chat\nhello", "c")
    assert reply["status"] == "error"
    assert reply["traceback"] == [
        "nbchat: 404 Not Found: no such model. Check the model name (%chat models) "
        f"and base_url ({server.url})."
    ]
