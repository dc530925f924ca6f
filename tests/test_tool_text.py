"""Text the model writes along with its tool calls stays on screen: above the call blocks
while they run and in the final view (Markdown, text, terminal, replay)."""

from __future__ import annotations

import pytest

from nbchat.testing.server import StandInServer

DEFINE = '''
def lookup(key: str) -> str:
    """Look a key up in the glossary."""
    return f"{key} means {key.upper()}"
'''
SAID = "Let me look that up first."


@pytest.fixture
def defined(cell, magics):
    assert cell(DEFINE).ok
    magics.tool_approval = "auto"
    return cell


def _script(server: StandInServer) -> None:
    server.script(text=SAID, tool_calls=[{"name": "lookup", "arguments": {"key": "api"}}])


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_text_with_tool_calls_stays_above_the_blocks_in_the_final_view(defined, server, stream) -> None:
    _script(server)
    flag = "" if stream else " --no-stream"
    run = defined(f"%%chat --tools lookup{flag}\nWhat is an API?")
    assert run.ok, run.error
    markdown = run.final()
    assert markdown.index(SAID) < markdown.index("<details") < markdown.index("Echo: api means API")
    plain = run.final("text/plain")
    assert plain.index(SAID) < plain.index("→ lookup(key='api')") < plain.index("Echo: api means API")


def test_text_with_tool_calls_is_never_replaced_while_streaming(defined, server) -> None:
    _script(server)
    run = defined("%%chat --tools lookup\nWhat is an API?")
    assert run.ok, run.error
    updates = [str(o["text/markdown"]) for o in run.outputs if "text/markdown" in o]
    with_calls = [u for u in updates if "<details" in u]
    assert any("running…" in u for u in with_calls)  # painted while the call ran
    for update in with_calls:
        assert SAID in update and update.index(SAID) < update.index("<details")
        assert update.count(SAID) == 1  # moved above the block, not shown twice


def test_text_with_tool_calls_in_text_format_and_in_a_replay(defined, server, magics, tmp_path) -> None:
    assert defined(f"%chatconfig cache=replay cache_path={tmp_path / 'r.sqlite3'}").ok
    _script(server)
    first = defined("%%chat --tools lookup -f text -c one\nWhat is an API?")
    assert first.ok, first.error
    again = defined("%%chat --tools lookup -f text -c two\nWhat is an API?")
    assert again.ok and again.metadata["replayed"] is True
    for run in (first, again):
        shown = run.final("text/plain")
        assert shown.index(SAID) < shown.index("→ lookup(key='api')") < shown.index("Echo: api means API")


def test_text_with_tool_calls_in_the_widget_view(defined, server) -> None:
    _script(server)
    run = defined("%%chat --tools lookup -f widget\nWhat is an API?")
    assert run.ok, run.error
    copy = [str(o.get("text/markdown", "")) for o in run.outputs if SAID in str(o.get("text/markdown", ""))]
    assert copy and copy[-1].index(SAID) < copy[-1].index("<details")
