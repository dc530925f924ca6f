"""Ctrl-C at each question nbchat asks in a terminal — the cost confirmation, the hidden key,
a tool call's approval — is one line, never a traceback, and nothing is sent or changed."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import pytest
from terminal import IPython, Terminal

from nbchat.testing.server import StandInServer


@pytest.fixture
def terminal(ipython: IPython) -> Iterator[Terminal]:
    term = ipython.start()
    term.read_until(r"In \[1\]: ")
    yield term
    term.close()


def ctrl_c_at(terminal: Terminal, cell: str, question: str) -> str:
    """Type ``cell``, wait for ``question``, press Ctrl-C; what the terminal showed after."""
    start = len(terminal.output)
    ending = "\r\r\r" if "\n" in cell else "\r"
    terminal.type(cell.replace("\n", "\r") + ending)
    terminal.read_until(question, since=start)
    asked = len(terminal.output)
    for _ in range(10):
        # a signal that lands before readline waits for a key is lost until one is pressed
        # (a person presses Ctrl-C well after the question shows): press it again
        terminal.process.send_signal(signal.SIGINT)
        try:
            terminal.read_until(r"In \[\d+\]: ", seconds=3, since=asked)
            break
        except AssertionError:
            continue
    return terminal.output[asked:]


def test_ctrl_c_at_each_prompt_is_one_line(terminal: Terminal, server: StandInServer) -> None:
    terminal.run("items = ['a', 'b']", r"In \[\d+\]: ")
    terminal.run("%chatconfig confirm_cost=0", r"In \[\d+\]: ")
    after = ctrl_c_at(terminal, "%%chat --map items\n{item}", re.escape("Run them? [y/N] "))
    assert "nbchat: not run: Ctrl-C at the cost confirmation; nothing was sent" in after
    assert "Traceback" not in after and server.bodies == []

    after = ctrl_c_at(terminal, "%chatconfig --key", re.escape("API key (hidden): "))
    assert "nbchat: no key entered (Ctrl-C); nothing changed" in after and "Traceback" not in after

    terminal.run("def lookup(key: str) -> str:\n    return key\n", r"In \[\d+\]: ")
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": "k"}}])
    after = ctrl_c_at(terminal, "%%chat --tools lookup\nlook k up", re.escape("[y/N/a(ll)] "))
    assert re.search(r"nbchat: interrupted[^\n]*\n", after) and "Traceback" not in after
    assert len(server.bodies) == 1, "the declined call's result was never sent back"
    history = terminal.run("%chat history", r"In \[\d+\]: ")
    assert "look k up" not in history, "the interrupted turn left history as it was"
