"""Tools from cells: %%chat --tools, the tools setting, approval prompts, one turn per
exchange through re-runs, history, save/load and export, and what the user sees."""

from __future__ import annotations

import builtins
import json
from typing import Any

import pytest
from conftest import Cell, make_shell
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from nbchat.magics import INSTANCES
from nbchat.render import TOOL_FRAME

DEFINE = '''
def lookup(key: str) -> str:
    """Look a key up in the glossary.

    Args:
        key: The term to look up.
    """
    return f"{key} means {key.upper()}"
'''


def calls(*specs: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": name, "arguments": args} for name, args in specs]


@pytest.fixture
def defined(cell, magics):
    assert cell(DEFINE).ok
    magics.tool_approval = "auto"
    return cell


def test_tools_option_offers_the_functions_of_the_namespace_for_this_cell(defined, server) -> None:
    server.script(tool_calls=calls(("lookup", {"key": "api"})))
    run = defined("%%chat --tools lookup,describe\nWhat is an API?")
    assert run.ok, run.error
    first, second = server.bodies
    assert [t["function"]["name"] for t in first["tools"]] == ["lookup", "describe"]
    assert first["tools"][0]["function"]["description"] == "Look a key up in the glossary."
    assert second["messages"][-1]["content"] == "api means API"
    assert defined("%%chat\nnext").ok
    assert "tools" not in server.bodies[-1]


def test_the_tools_setting_offers_them_to_every_cell(defined, server) -> None:
    assert defined("%chatconfig tools=lookup,variables").ok
    assert defined("%%chat\none").ok
    assert defined("%%chat --tools describe\ntwo").ok
    assert [t["function"]["name"] for t in server.bodies[0]["tools"]] == ["lookup", "variables"]
    assert [t["function"]["name"] for t in server.bodies[1]["tools"]] == ["lookup", "variables", "describe"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--tools lokup", "unknown tool 'lokup': lokup is not defined"),
        ("--tools lookup,x", "unknown tool 'x': x is not a function"),
        ("--tools bad", "cannot describe parameter 'thing' of bad(): object has no JSON form"),
    ],
)
def test_an_unknown_or_undescribable_tool_is_a_usage_error_and_nothing_is_sent(
    defined, server, line: str, message: str
) -> None:
    assert defined("x = 1\ndef bad(thing: object) -> None: ...").ok
    run = defined(f"%%chat {line}\nhi")
    assert type(run.error) is UsageError
    assert str(run.error).startswith(message)
    assert server.bodies == []


def test_each_call_shows_as_a_collapsible_block_above_the_reply(defined, server) -> None:
    server.script(tool_calls=calls(("lookup", {"key": "a"}), ("lookup", {"key": "<b>"})))
    run = defined("%%chat --tools lookup\ngo")
    assert run.ok, run.error
    markdown = run.final()
    blocks = markdown.split("</details>")
    assert len(blocks) == 3
    assert blocks[0].startswith(
        f'<details class="nbchat-tool" style="{TOOL_FRAME}"><summary>🔧 tool <code>lookup(key=&#x27;a&#x27;)</code> · '
    )
    assert "<pre>a means A</pre>" in blocks[0]
    assert "<pre>&lt;b&gt; means &lt;B&gt;</pre>" in blocks[1]  # results are escaped
    assert blocks[2].strip().startswith("Echo: a means A | <b> means <B>")
    assert "3 requests" not in markdown and "2 requests (2 tool calls)" in markdown


def test_a_tool_error_is_shown_in_its_block(defined, server) -> None:
    assert defined("def fail(n: int) -> int:\n    raise ValueError(f'no {n}')").ok
    server.script(tool_calls=calls(("fail", {"n": 3})))
    run = defined("%%chat --tools fail\ngo")
    assert run.ok
    assert "error · " in run.final() and "<pre>Error: ValueError: no 3 (at fail, line 2)</pre>" in run.final()


def test_ask_prompts_before_each_call_and_a_no_tells_the_model(cell, server, monkeypatch) -> None:
    assert cell(DEFINE).ok
    prompts: list[str] = []
    answers = iter(["n", "y"])
    monkeypatch.setattr(builtins, "input", lambda prompt="": prompts.append(prompt) or next(answers))
    server.script(tool_calls=calls(("lookup", {"key": "x"}), ("lookup", {"key": "y"})))
    assert cell("%%chat --tools lookup\ngo").ok
    assert prompts == ["Run lookup(key='x')? [y/N/a(ll)] ", "Run lookup(key='y')? [y/N/a(ll)] "]
    results = [m["content"] for m in server.bodies[1]["messages"] if m["role"] == "tool"]
    assert results == ["Not run: the user declined this call, so it did not run.", "y means Y"]


def test_a_rerun_replaces_the_whole_tool_turn(defined, server, magics) -> None:
    server.script(tool_calls=calls(("lookup", {"key": "a"})))
    assert defined("%%chat --tools lookup\nfirst", cell_id="c1").ok
    assert defined("%%chat\nsecond", cell_id="c2").ok
    server.script(tool_calls=calls(("lookup", {"key": "b"})))
    assert defined("%%chat --tools lookup\nfirst again", cell_id="c1").ok
    turns = magics.conversations["default"].turns
    assert [t.cell_id for t in turns] == ["c1", "c2"]
    assert [m["role"] for m in turns[0].messages] == ["user", "assistant", "tool", "assistant"]
    assert turns[0].messages[2]["content"] == "b means B"
    # the re-run sent the history as it stood before the cell: nothing of the old turn
    assert server.bodies[-2]["messages"][0] == {"role": "user", "content": "first again"}


def test_an_error_in_the_second_request_records_nothing(defined, server, magics) -> None:
    assert defined("%%chat\nbefore").ok
    before = [list(t.messages) for t in magics.conversations["default"].turns]
    server.script(tool_calls=calls(("lookup", {"key": "a"})))
    server.script(status=500, error="boom", times=3)
    run = defined("%%chat --tools lookup\ngo")
    assert not run.ok and "500" in str(run.error)
    assert [t.messages for t in magics.conversations["default"].turns] == before


def test_an_interrupt_during_a_tool_records_nothing(defined, server, magics) -> None:
    assert defined("def slow(n: int) -> int:\n    raise KeyboardInterrupt").ok
    assert defined("%chatconfig keep_partial=true").ok
    server.script(tool_calls=calls(("slow", {"n": 1})), text="Let me check")
    run = defined("%%chat --tools slow\ngo")
    assert not run.ok
    assert magics.conversations["default"].turns == []
    assert len(server.bodies) == 1


def test_history_save_load_and_export_keep_the_tool_messages(defined, server, tmp_path) -> None:
    server.script(tool_calls=calls(("lookup", {"key": "a"})))
    assert defined("%%chat --tools lookup\ngo").ok
    history = defined("%chat history")
    assert "→ lookup(key='a')" in history.text and "a means A" in history.text
    assert defined(f"%chat save {tmp_path / 'c.json'}").ok
    assert defined(f"%chat load {tmp_path / 'c.json'} -c copy").ok
    assert defined(f"%chat export {tmp_path / 'c.jsonl'}").ok
    assert defined(f"%chat export {tmp_path / 'c.md'}").ok
    saved = json.loads((tmp_path / "c.json").read_text())["messages"]
    exported = json.loads((tmp_path / "c.jsonl").read_text())["messages"]
    assert (
        [m["role"] for m in saved]
        == [m["role"] for m in exported]
        == ["user", "assistant", "tool", "assistant"]
    )
    assert saved[2]["tool_call_id"] == saved[1]["tool_calls"][0]["id"]
    assert "**assistant**\n\n→ lookup(key='a')\n\n**tool**\n\na means A" in (tmp_path / "c.md").read_text()
    assert defined("%%chat -c copy\nthen?").ok
    assert server.bodies[-1]["messages"][:-1] == saved  # the loaded turn is sent as it was


def test_a_server_that_rejects_tools_gets_a_clear_message(defined, server) -> None:
    server.quirks.reject_tools = True  # vLLM started without a tool parser
    run = defined("%%chat --tools lookup\ngo")
    assert not run.ok
    assert str(run.error).startswith('400 Bad Request: "auto" tool choice requires --enable-auto-tool-choice')
    assert "This server or model does not take tools: run the cell without --tools" in str(run.error)
    server.quirks.reject_tools = False
    server.script(status=400, error="registry.ollama.ai/library/gemma:2b does not support tools")
    run = defined("%%chat --tools lookup\ngo")
    assert "does not support tools. This server or model does not take tools" in str(run.error)


def test_a_fresh_kernel_replays_a_tool_turn_from_the_cache_without_running_the_tools(
    env, server, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("NBCHAT_CACHE", "replay")
    monkeypatch.setenv("NBCHAT_CACHE_PATH", str(tmp_path / "replies.sqlite3"))
    counting = DEFINE + "ran = []\ndef count(n: int) -> int:\n    ran.append(n)\n    return n * 10\n"
    question = "%%chat --tools count\nUse count(n=4)"
    for kernel in range(2):  # two fresh kernels sharing the cache file
        cell = Cell(make_shell())
        assert cell(counting).ok
        assert cell("%chatconfig tool_approval=auto").ok
        run = cell(question, cell_id="q")
        assert run.ok, run.error
        assert cell.shell.user_ns["ran"] == ([4] if kernel == 0 else [])
        assert "<pre>40</pre>" in run.final() and "Echo: 40" in run.final()
        assert len(server.bodies) == 2  # the second kernel sent nothing
    assert "1 tool call replayed from the cache, not run again" in run.markdown
    assert run.metadata["replayed"] is True
    turn = INSTANCES[cell.shell].conversations["default"].turns[0]
    assert [m["role"] for m in turn.messages] == ["user", "assistant", "tool", "assistant"]
    assert cell("%%chat\nand then?").ok
    assert [m["role"] for m in server.bodies[-1]["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    InteractiveShell.clear_instance()


def test_approval_and_steps_are_per_cell_options_too(cell, server, monkeypatch) -> None:
    assert cell(DEFINE).ok
    monkeypatch.setattr(
        builtins, "input", lambda prompt="": pytest.fail("asked despite --tool-approval auto")
    )
    server.script(tool_calls=calls(("lookup", {"key": "a"})), times=2)
    run = cell("%%chat --tools lookup --tool-approval auto --max-tool-steps 1\ngo")
    assert run.ok, run.error
    assert len(server.bodies) == 2 and "stopped after 1 round of tool calls (max_tool_steps)" in run.markdown
    help_text = cell("%%chat?").text
    assert "--tools NAME[,NAME…]" in help_text and "--tool-approval {ask,auto}" in help_text


def test_the_dry_run_shows_the_tools_it_would_offer_and_sends_nothing(defined, server) -> None:
    run = defined("%%chat --dry-run --tools lookup\nhi")
    assert run.ok, run.error
    assert '"name": "lookup"' in run.text and '"description": "Look a key up in the glossary."' in run.text
    assert server.bodies == []


def test_the_widget_view_shows_each_call_above_the_reply_and_in_the_transcript(defined, server) -> None:
    from nbchat.widgets import VIEWS

    server.script(tool_calls=calls(("lookup", {"key": "a"})))
    assert defined("%%chat -f widget --tools lookup\ngo").ok
    view = list(VIEWS.values())[-1]
    from nbchat.widgets import output_text

    calls_shown, reply = view.reply.children  # the calls above the reply, rendered as Markdown
    assert calls_shown.value.startswith(
        f'<details class="nbchat-tool" style="{TOOL_FRAME}"><summary>🔧 tool <code>lookup(key=&#x27;a&#x27;)</code>'
    )
    assert "<pre>a means A</pre>" in calls_shown.value and "Echo: a means A" in output_text(reply)
    assert defined("%%chat -f widget\nnext").ok
    transcript = list(VIEWS.values())[-1].transcript.value
    assert "nbchat-assistant" in transcript and "→ lookup(key=&#x27;a&#x27;)" in transcript
    assert "nbchat-tool" in transcript and "a means A" in transcript.split("nbchat-tool")[-1]
