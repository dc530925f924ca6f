"""%chat retry sends the turn's request again as the cell made it: the same message and
attachments, the same receipt, the same per-cell tools, approval and options."""

from __future__ import annotations

import builtins

import pytest

from nbchat.testing.images import png

DEFINE = '''
def lookup(key: str) -> str:
    """Look a key up in the glossary."""
    return f"{key} means {key.upper()}"
'''


def _footer(markdown: str) -> str:
    return markdown.rsplit("<sub>", 1)[-1]


def test_a_retried_turn_carries_the_same_receipt_as_the_original(cell, server, tmp_path) -> None:
    (tmp_path / "chart.png").write_bytes(png(64, 48, b"chart"))
    assert cell("rows = [1, 2, 3]").ok
    first = cell(f"%%chat --image {tmp_path / 'chart.png'}\nWhat is in {{rows}}?")
    assert first.ok, first.error
    receipt = first.metadata["context"]
    assert len(receipt) == 2
    retried = cell("%chat retry")
    assert retried.ok, retried.error
    assert retried.metadata["context"] == receipt
    assert "chart.png" in _footer(retried.markdown) and "rows" in _footer(retried.markdown)
    assert _footer(retried.markdown).split("context:")[1] == _footer(first.markdown).split("context:")[1]
    original, again = server.bodies
    assert again["messages"][-1] == original["messages"][-1]  # the image part, as attached


def test_retry_of_a_tool_turn_runs_it_again_with_the_cells_tools(cell, server, magics) -> None:
    assert cell(DEFINE).ok
    magics.tool_approval = "auto"
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": "api"}}])
    assert cell("%%chat --tools lookup\nWhat is an API?").ok
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": "sdk"}}])
    run = cell("%chat retry")
    assert run.ok, run.error
    retried, answered = server.bodies[2:]
    assert [t["function"]["name"] for t in retried["tools"]] == ["lookup"]
    assert retried["messages"] == [{"role": "user", "content": "What is an API?"}]
    assert answered["messages"][-1]["content"] == "sdk means SDK"
    assert run.metadata["tool_calls"][0]["arguments"] == '{"key": "sdk"}'
    # the whole tool turn was replaced: one turn, holding the new call and its result
    (turn,) = magics.conversations["default"].turns
    assert [m["role"] for m in turn.messages] == ["user", "assistant", "tool", "assistant"]
    assert turn.messages[2]["content"] == "sdk means SDK"
    assert turn.messages[-1]["content"] == "Echo: sdk means SDK"


def test_retry_keeps_the_cells_tool_approval(cell, server, magics, monkeypatch) -> None:
    assert cell(DEFINE).ok
    assert magics.tool_approval == "ask"
    monkeypatch.setattr(builtins, "input", lambda prompt="": pytest.fail(f"asked: {prompt}"))
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": "x"}}])
    assert cell("%%chat --tools lookup --tool-approval auto\nx?").ok
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": "x"}}])
    run = cell("%chat retry")
    assert run.ok, run.error
    assert server.bodies[-1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": server.bodies[-1]["messages"][-2]["tool_calls"][0]["id"],
        "content": "x means X",
    }


def test_retry_keeps_the_cells_own_options_and_takes_the_current_settings(cell, server, magics) -> None:
    assert cell("%%chat -t 0.3 --max-tokens 50\nhello").ok
    assert cell("%chatconfig top_p=0.5 temperature=1.5").ok
    assert cell("%chat retry").ok
    first, again = server.bodies
    assert (first["temperature"], first["max_tokens"]) == (0.3, 50)
    # the cell's -t wins over the setting, as re-running the cell would; the new top_p applies
    assert (again["temperature"], again["max_tokens"], again["top_p"]) == (0.3, 50, 0.5)


def test_retry_of_a_schema_cell_asks_for_the_same_structure(cell, server, magics) -> None:
    run = cell("%%chat --schema 'label, score float'\nRate this.")
    assert run.ok, run.error
    assert cell("%chat retry").ok
    first, again = server.bodies
    assert again["response_format"] == first["response_format"]
    assert first["response_format"]["type"] == "json_schema"
