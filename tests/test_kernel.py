"""A real kernel: the frontend's cellId (execute_request metadata) drives re-run replacement."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import sent
from kernels import reply_to, send

pytestmark = pytest.mark.kernel


def execute(kc, code: str, cell_id: str | None = None) -> dict[str, Any]:
    return reply_to(kc, send(kc, code, cell_id))


def shown_markdown(kc, msg_id: str, until: Any, seconds: float = 20) -> list[str]:
    """The Markdown the frontend received for ``msg_id`` until ``until(texts)`` holds."""
    texts: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until(texts):
        try:
            msg = kc.get_iopub_msg(timeout=0.5)
        except Exception:
            continue
        if msg["parent_header"].get("msg_id") == msg_id and "data" in msg["content"]:
            texts.append(msg["content"]["data"].get("text/markdown", ""))
    return texts


def test_a_kernel_rerun_with_the_same_cell_id_replaces_the_exchange(kernel, server) -> None:
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


def test_a_failed_request_fails_the_cell_in_a_kernel(kernel, server) -> None:
    assert execute(kernel, "%load_ext nbchat")["status"] == "ok"
    server.script(status=404, error="no such model")
    reply = execute(kernel, "%%chat\nhello", "c")
    assert reply["status"] == "error"
    assert reply["traceback"] == [
        "nbchat: 404 Not Found: no such model. Check the model name (%chat models) "
        f"and base_url ({server.url})."
    ]


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("keep_partial", [False, True])
def test_an_interrupt_mid_stream_shows_what_arrived_closes_the_stream_and_keeps_the_kernel(
    kernel_manager, server, keep_partial, api
) -> None:
    km, kc = kernel_manager
    setup = f"%load_ext nbchat\n%chatconfig keep_partial={keep_partial} api={api}"
    assert execute(kc, setup)["status"] == "ok"
    server.script(chunks=[f"word{i} " for i in range(200)], chunk_delay=0.05)
    msg_id = send(kc, "%%chat\ntell me a long story", "story")
    partial = shown_markdown(kc, msg_id, lambda texts: any("word3 " in t for t in texts))
    assert partial, "the reply should be streaming before the interrupt"
    km.interrupt_kernel()
    reply = reply_to(kc, msg_id)
    assert reply["status"] == "error"
    assert reply["traceback"][0].startswith("nbchat: interrupted: the partial reply is shown above")
    final = shown_markdown(kc, msg_id, lambda texts: any("(interrupted)" in t for t in texts), seconds=5)
    assert any(t.startswith("word0 word1 word2 word3 ") and "*(interrupted)*" in t for t in final), final[-3:]
    deadline = time.monotonic() + 15  # a loaded machine may schedule the server thread late
    while server.open_streams and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.open_streams == 0, "the stream's connection was closed"
    assert execute(kc, "%%chat\nstill working?")["status"] == "ok"
    body = sent(server)[-1]
    sent_ = body.get("messages") or body["input"]
    if keep_partial:  # the partial reply was kept as the assistant's turn
        assert [m["role"] for m in sent_] == ["user", "assistant", "user"]
        assert sent_[1]["content"].startswith("word0 word1 word2 word3 ")
        assert "word199" not in sent_[1]["content"]
    else:
        assert sent_ == [{"role": "user", "content": "still working?"}]
