"""A tool call's block says "waiting for approval" while the question waits, and what the
question and the tool printed stays with its block: the reply goes into an output below
them. A failing tool names the line in the user's function."""

from __future__ import annotations

from typing import Any

from nbchat.render import TOOL_FRAME

DEFINE = '''
def shout(word: str) -> str:
    """Say a word loudly."""
    print(f"shouting {word}")
    return word.upper()

def broken(n: int) -> int:
    """Always fails."""
    return int("x" * n)
'''


def calls(*specs: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": name, "arguments": args} for name, args in specs]


def test_an_asked_call_waits_for_approval_and_the_reply_comes_below_its_output(
    cell, server, monkeypatch
) -> None:
    assert cell(DEFINE).ok
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    server.script(tool_calls=calls(("shout", {"word": "hi"})))
    run = cell("%%chat --tools shout\ngo")
    assert run.ok, run.error
    painted = [str(o.get("text/markdown", "")) for o in run.outputs]
    assert any("shout(word=&#x27;hi&#x27;)</code> · waiting for approval" in p for p in painted)
    assert "shouting hi" in run.io.stdout
    last: dict[str, str] = {}  # each display's final Markdown, in the order they appeared
    for output in run.io.outputs:
        last[output.transient["display_id"]] = str(output.data.get("text/markdown", ""))
    block, reply = last.values()  # the reply is an output of its own, below what was printed
    assert block.startswith(f'<details class="nbchat-tool" style="{TOOL_FRAME}"><summary>🔧 tool <code>')
    assert "shout(word=&#x27;hi&#x27;)</code> · 0." in block and "Echo: HI" not in block
    assert reply.startswith("Echo: HI") and "completion tokens" in reply


def test_an_auto_approved_call_that_prints_nothing_keeps_one_output(cell, server) -> None:
    assert cell("def quiet(x: int) -> int:\n    '''Quiet.'''\n    return x").ok
    assert cell("%chatconfig tool_approval=auto").ok
    server.script(tool_calls=calls(("quiet", {"x": 2})))
    run = cell("%%chat --tools quiet\ngo")
    assert run.ok
    displays = {(o.transient or {}).get("display_id") for o in run.io.outputs}
    assert len(displays) == 1
    assert "running…" not in run.markdown and "quiet(x=2)</code> · " in run.markdown


def test_a_failing_tool_names_the_line_in_the_users_function(cell, server) -> None:
    assert cell(DEFINE).ok
    assert cell("%chatconfig tool_approval=auto").ok
    server.script(tool_calls=calls(("broken", {"n": 2})))
    run = cell("%%chat --tools broken\ngo")
    assert run.ok
    result = server.bodies[1]["messages"][-1]["content"]
    assert result.startswith(
        "Error: ValueError: invalid literal for int() with base 10: 'xx' (at broken, line 8)"
    )
