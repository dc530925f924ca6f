"""%chat rebuild and %chat load take nothing that breaks history: tampered tool records
(tool_calls not a list, a result with no call before it, a call never answered) are left out
or refused like other tampered records, and %chat history and %chat export never crash."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conftest import Cell

from nbchat.conversation import Conversation, Turn
from nbchat.errors import NbChatError
from nbchat.testing.server import StandInServer
from nbchat.tools import message_text

DEFINE = "def lookup(key: str) -> str:\n    return key.upper()"


def tampered_calls_not_a_list(messages: list[dict[str, Any]]) -> None:
    messages[1]["tool_calls"] = {"id": "x"}


def tampered_calls_a_number(messages: list[dict[str, Any]]) -> None:
    messages[1]["tool_calls"] = 5


def tampered_call_without_function(messages: list[dict[str, Any]]) -> None:
    messages[1]["tool_calls"] = [{"id": "c1", "type": "function", "function": "lookup"}]


def tampered_result_without_call(messages: list[dict[str, Any]]) -> None:
    messages[2]["tool_call_id"] = "someone-else"


def tampered_call_never_answered(messages: list[dict[str, Any]]) -> None:
    del messages[2]


def tampered_result_first(messages: list[dict[str, Any]]) -> None:
    messages.insert(1, messages.pop(2))


TAMPERINGS: list[Callable[[list[dict[str, Any]]], None]] = [
    tampered_calls_not_a_list,
    tampered_calls_a_number,
    tampered_call_without_function,
    tampered_result_without_call,
    tampered_call_never_answered,
    tampered_result_first,
]
PROBLEMS = {
    tampered_calls_not_a_list: "'tool_calls' is not a list of calls",
    tampered_calls_a_number: "'tool_calls' is not a list of calls",
    tampered_call_without_function: "'tool_calls' is not a list of calls",
    tampered_result_without_call: "a tool result with no call before it",
    tampered_call_never_answered: "a tool call never answered",
    tampered_result_first: "a tool result with no call before it",
}


@pytest.fixture
def tool_turn(cell: Cell, server: StandInServer, magics: Any) -> dict[str, Any]:
    """A real tool turn's output metadata (user, call, result, reply) and a plain turn after it."""
    assert cell(DEFINE).ok
    magics.tool_approval = "auto"
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": "api"}}])
    first = cell("%%chat --tools lookup\nWhat is an API?", cell_id="t1")
    assert first.ok and [m["role"] for m in first.metadata["exchange"]["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    second = cell("%%chat\nThanks", cell_id="t2")
    return {"tool": first.metadata, "plain": second.metadata}


def notebook_with(path: Path, *metas: dict[str, Any]) -> Path:
    nb = nbformat.v4.new_notebook()
    for k, meta in enumerate(metas):
        output = nbformat.v4.new_output("display_data", {"text/plain": "reply"}, metadata={"nbchat": meta})
        nb.cells.append(nbformat.v4.new_code_cell("%%chat\n…", execution_count=k + 1, outputs=[output]))
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda f: f.__name__)
def test_rebuild_leaves_out_a_tampered_tool_turn_and_history_export_and_the_next_request_work(
    cell: Cell, server: StandInServer, magics: Any, tool_turn: dict[str, Any], tmp_path: Path, tamper: Any
) -> None:
    bad = copy.deepcopy(tool_turn["tool"])
    tamper(bad["exchange"]["messages"])
    path = notebook_with(tmp_path / "nb.ipynb", bad, tool_turn["plain"])
    magics.conversations.clear()
    rebuilt = cell(f"%chat rebuild {path}")
    assert rebuilt.ok, rebuilt.error
    turns = magics.conversations["default"].turns
    assert [t.messages[0]["content"] for t in turns] == ["Thanks"], "the tampered turn is left out"
    assert cell("%chat history").ok
    assert (
        cell(f"%chat export {tmp_path / 'out.md'}").ok and cell(f"%chat export {tmp_path / 'out.jsonl'}").ok
    )
    sent = len(server.bodies)
    assert cell("%%chat\nAnd now?").ok and len(server.bodies) == sent + 1
    roles = [m["role"] for m in server.bodies[-1]["messages"]]
    assert "tool" not in roles


def test_rebuild_keeps_an_untouched_tool_turn_whole(
    cell: Cell, magics: Any, tool_turn: dict[str, Any], tmp_path: Path
) -> None:
    path = notebook_with(tmp_path / "nb.ipynb", tool_turn["tool"], tool_turn["plain"])
    magics.conversations.clear()
    assert cell(f"%chat rebuild {path}").ok
    (tool, _plain) = magics.conversations["default"].turns
    assert [m["role"] for m in tool.messages] == ["user", "assistant", "tool", "assistant"]
    assert "→ lookup(key='api')" in cell("%chat history").text


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda f: f.__name__)
def test_load_refuses_a_file_with_a_tampered_tool_turn_and_changes_nothing(
    cell: Cell, magics: Any, tool_turn: dict[str, Any], tmp_path: Path, tamper: Any
) -> None:
    saved = tmp_path / "conv.json"
    assert cell(f"%chat save {saved}").ok
    data = json.loads(saved.read_text())
    messages = data["messages"]
    turn = messages[:4]
    tamper(turn)
    data["messages"] = turn + messages[4:]
    data["turns"][0]["size"] = len(turn)
    saved.write_text(json.dumps(data))
    before = [t.messages for t in magics.conversations["default"].turns]
    run = cell(f"%chat load {saved}")
    assert not run.ok and str(run.error) == f"conversation file's turn 1: {PROBLEMS[tamper]}"
    assert [t.messages for t in magics.conversations["default"].turns] == before
    # a plain OpenAI message list with the same damage is refused too
    plain = tmp_path / "messages.json"
    plain.write_text(json.dumps(turn + messages[4:]))
    with pytest.raises(NbChatError, match=f"turn 1 has {PROBLEMS[tamper]}"):
        Conversation.load(plain)


def test_history_and_export_never_crash_on_odd_tool_records_held_in_memory(
    cell: Cell, magics: Any, tmp_path: Path
) -> None:
    odd = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "calling", "tool_calls": 5},
        {"role": "assistant", "content": "again", "tool_calls": [{"function": "lookup"}, "x", {"id": 1}]},
        {"role": "assistant", "content": "done"},
    ]
    conversation = magics.conversations.setdefault("default", Conversation("default"))
    conversation.turns.append(Turn(odd))
    assert message_text(odd[1]) == "calling" and message_text(odd[2]) == "again"
    assert cell("%chat history").ok
    assert cell(f"%chat export {tmp_path / 'odd.md'}").ok
    assert "done" in (tmp_path / "odd.md").read_text()
