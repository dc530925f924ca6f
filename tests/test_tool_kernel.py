"""Tools in real kernels: approval answered through the stdin channel, refused where a
notebook runs without stdin (nbclient), and the tools notebook end to end."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from kernels import NOTEBOOKS, against, execute, text_of
from terminal import IPython

from nbchat.render import TOOL_FRAME

pytestmark = pytest.mark.kernel

DEFINE = """
%load_ext nbchat
def lookup(key: str) -> str:
    return f"{key} means {key.upper()}"
"""


def run(kc: Any, code: str, answers: list[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Execute ``code`` as a frontend would; with ``answers``, the frontend allows stdin and
    answers each input request in turn. Returns the reply and the prompts seen."""
    msg_id = kc.execute(code, allow_stdin=answers is not None)
    prompts: list[str] = []
    pending = list(answers or [])
    while True:
        if answers is not None:
            try:
                request = kc.get_stdin_msg(timeout=0.1)
            except Exception:
                request = None
            if request is not None and request["msg_type"] == "input_request":
                prompts.append(request["content"]["prompt"])
                kc.input(pending.pop(0) if pending else "")
        try:
            reply = kc.get_shell_msg(timeout=0.1)
        except Exception:
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], prompts


def test_a_kernel_with_stdin_asks_before_each_call_and_honours_the_answers(kernel, server) -> None:
    assert run(kernel, DEFINE)[0]["status"] == "ok"
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": k}} for k in ("a", "b", "c")])
    reply, prompts = run(kernel, "%%chat --tools lookup\ngo", answers=["y", "n", "a"])
    assert reply["status"] == "ok", reply
    assert prompts == [
        "Run lookup(key='a')? [y/N/a(ll)] ",
        "Run lookup(key='b')? [y/N/a(ll)] ",
        "Run lookup(key='c')? [y/N/a(ll)] ",
    ]
    results = [m["content"] for m in server.bodies[1]["messages"] if m["role"] == "tool"]
    assert results == ["a means A", "Not run: the user declined this call, so it did not run.", "c means C"]


def test_python_asks_every_time_even_after_all(kernel, server) -> None:
    assert run(kernel, DEFINE + "x = 41")[0]["status"] == "ok"
    server.script(
        tool_calls=[
            {"name": "lookup", "arguments": {"key": "a"}},
            {"name": "python", "arguments": {"code": "x + 1"}},
        ]
    )
    reply, prompts = run(kernel, "%%chat --tools lookup,python\ngo", answers=["a", "y"])
    assert reply["status"] == "ok", reply
    assert prompts == ["Run lookup(key='a')? [y/N/a(ll)] ", "Run this code with python?\nx + 1\n[y/N] "]
    assert [m["content"] for m in server.bodies[1]["messages"] if m["role"] == "tool"] == ["a means A", "42"]


def test_without_stdin_a_call_is_refused_and_the_model_is_told(kernel, server) -> None:
    assert run(kernel, DEFINE)[0]["status"] == "ok"
    assert run(kernel, "ran = []\ndef mark(n: int) -> None:\n    ran.append(n)")[0]["status"] == "ok"
    server.script(tool_calls=[{"name": "mark", "arguments": {"n": 1}}])
    reply, _ = run(kernel, "%%chat --tools mark\ngo")  # allow_stdin=False, as nbclient sends
    assert reply["status"] == "ok", reply
    (result,) = [m["content"] for m in server.bodies[1]["messages"] if m["role"] == "tool"]
    assert (
        result
        == "Not run: the user could not be asked to approve this call (no input available), so it did not run."
    )
    assert run(kernel, "assert ran == []")[0]["status"] == "ok"


def test_the_tools_notebook_answers_about_a_dataframe_with_describe_and_a_user_function(
    server, shell, tmp_path: Path
) -> None:
    nb = execute(NOTEBOOKS / "tools.ipynb", against(server))
    chats = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%chat --tools")]
    asked, approved = (text_of(c.outputs[0]) for c in chats)
    for markdown in (asked, approved):
        blocks = markdown.split("</details>")
        assert len(blocks) == 3, markdown
        assert blocks[0].startswith(
            f'<details class="nbchat-tool" style="{TOOL_FRAME}"><summary>🔧 tool <code>describe(name=&#x27;sales&#x27;)</code>'
        )
        assert (
            "DataFrame sales: 200 rows × 2 columns&#10;columns: region (str), amount (float64)" in blocks[0]
        )
        assert "2 requests (2 tool calls)" in blocks[2]
    assert "to_eur(amount=319.0, currency=&#x27;USD&#x27;)</code> · not run</summary>" in asked
    assert "<pre>293.48</pre>" in approved
    # the model got both results, and in the second turn the earlier one as history
    final = server.bodies[-1]["messages"]
    first_turn = ["user", "assistant", "tool", "tool", "assistant"]
    assert [m["role"] for m in final] == [*first_turn, "user", "assistant", "tool", "tool"]
    assert final[-1]["content"] == "293.48"
    history = text_of(next(c for c in nb.cells if c.source.startswith("%chat history")).outputs[0])
    assert "→ describe(name='sales')\n→ to_eur(amount=319.0, currency='USD')" in history
    meta = chats[1].outputs[0]["metadata"]["nbchat"]
    assert [(c["name"], c["error"], c["refused"]) for c in meta["tool_calls"]] == [
        ("describe", False, False),
        ("to_eur", False, False),
    ]
    # a saved notebook rebuilds the tool turns, tool messages and all
    import nbformat

    from nbchat.magics import INSTANCES

    nbformat.write(nb, tmp_path / "tools.ipynb")
    shell.run_cell(f"%chat rebuild {tmp_path / 'tools.ipynb'}")
    rebuilt = INSTANCES[shell].conversations["default"].messages()
    assert rebuilt == [*final, {"role": "assistant", "content": f"Echo: {final[-2]['content']} | 293.48"}]


def test_a_terminal_prints_each_call_as_plain_lines_and_asks_on_stdin(ipython: IPython) -> None:
    startup = ipython.profile / "startup"
    startup.mkdir(parents=True)
    (startup / "00-tools.py").write_text(
        "rows = [1, 2, 3]\ndef lookup(key: str) -> str:\n    return key.upper()\nget_ipython().run_line_magic('load_ext', 'nbchat')\n"
    )
    out = ipython.run(
        "%%chat --tools describe,lookup\nWhat are describe(name='rows') and lookup(key='ab')?",
        ext=False,
        input="y\n",
    )
    assert "Run lookup(key='ab')? [y/N/a(ll)] " in out
    assert re.search(r"→ describe\(name='rows'\) · \d\.\d\d s\n    \[1, 2, 3\]\n", out), out
    assert re.search(r"→ lookup\(key='ab'\) · \d\.\d\d s\n    AB\n", out), out
    assert "Echo: [1, 2, 3] | AB" in out and "2 requests (2 tool calls)" in out
    assert "<details" not in out and "<sub>" not in out


def test_an_interrupt_during_the_second_request_records_nothing_of_the_tool_turn(
    kernel_manager, server
) -> None:
    import time

    km, kc = kernel_manager
    assert run(kc, DEFINE + "%chatconfig keep_partial=true tool_approval=auto")[0]["status"] == "ok"
    assert run(kc, "%%chat\nbefore")[0]["status"] == "ok"
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": "a"}}])
    server.script(chunks=[f"word{i} " for i in range(200)], chunk_delay=0.05)
    msg_id = kc.execute("%%chat --tools lookup\ngo")
    deadline = time.monotonic() + 20
    while len(server.bodies) < 3 and time.monotonic() < deadline:  # the second request is streaming
        time.sleep(0.05)
    time.sleep(0.3)
    km.interrupt_kernel()
    while True:
        reply = kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    assert reply["content"]["status"] == "error"
    assert (
        "a tool turn is recorded whole or not at all, so nothing was recorded"
        in reply["content"]["traceback"][0]
    )
    assert run(kc, "%%chat\nafter")[0]["status"] == "ok"
    assert [m["content"] for m in server.bodies[-1]["messages"]] == ["before", "Echo: before", "after"]
