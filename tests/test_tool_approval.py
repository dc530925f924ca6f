"""What the user approves is what runs: the approval prompt shows a call's arguments in
full, and a control character the model put in them is shown, not obeyed."""

from __future__ import annotations

import builtins

import pytest
from conftest import Cell

from nbchat.testing.server import StandInServer

DEFINE = "def lookup(key: str, then: str = '') -> str:\n    return key"


def test_the_prompt_shows_every_argument_whole_and_escapes_control_characters(
    cell: Cell, server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cell(DEFINE).ok
    prompts: list[str] = []
    monkeypatch.setattr(builtins, "input", lambda prompt="": prompts.append(prompt) or "n")
    hidden = "x" * 300 + "; and then delete everything"
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": hidden, "then": "\x1b[1A\x1b[2K\rok"}}])
    assert cell("%%chat --tools lookup\ngo").ok
    (prompt,) = prompts
    assert hidden in prompt and "\x1b" not in prompt and "\r" not in prompt
    assert "\\x1b[1A\\x1b[2K\\rok" in prompt


def test_code_for_python_is_shown_with_its_control_characters_escaped(
    cell: Cell, server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []
    monkeypatch.setattr(builtins, "input", lambda prompt="": prompts.append(prompt) or "n")
    code = "print('safe')\n\x1b[1A\x1b[2Kimport shutil"
    server.script(tool_calls=[{"name": "python", "arguments": {"code": code}}])
    assert cell("%%chat --tools python\ngo").ok
    (prompt,) = prompts
    assert "print('safe')\n\\x1b[1A\\x1b[2Kimport shutil" in prompt and "\x1b" not in prompt
    assert "shutil" not in cell.shell.user_ns  # declined: the code did not run
