"""A person's decision about a tool call is never replayed: a turn in which a call was
declined, refused (no one to ask) or interrupted is not cached, so a fresh kernel asks again."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cell, make_shell
from IPython.core.error import StdinNotImplementedError
from IPython.core.interactiveshell import InteractiveShell

from nbchat.cache import ReplyCache
from nbchat.testing.server import StandInServer

DEFINE = "def lookup(key: str) -> str:\n    return key.upper()"
CELL = "%%chat --tools lookup\nWhat is an API?"
NOT_KEPT = (
    "not kept in the reply cache: a tool call was declined or could not be asked, so a replay asks again"
)


@pytest.fixture
def kernel(env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Cell]]:
    """A fresh kernel each call, with lookup defined; all share one reply cache."""
    monkeypatch.setenv("NBCHAT_CACHE", "replay")
    monkeypatch.setenv("NBCHAT_CACHE_PATH", str(tmp_path / "replies.sqlite3"))

    def fresh() -> Cell:
        cell = Cell(make_shell())
        assert cell(DEFINE).ok
        return cell

    yield fresh
    InteractiveShell.clear_instance()


def answering(monkeypatch: pytest.MonkeyPatch, *answers: Any) -> list[str]:
    """input() answers in turn (an exception is raised); returns the prompts it was shown."""
    prompts: list[str] = []
    pending = list(answers)

    def ask(prompt: str = "") -> str:
        prompts.append(prompt)
        answer = pending.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return str(answer)

    monkeypatch.setattr(builtins, "input", ask)
    return prompts


def script(server: StandInServer) -> None:
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": "api"}}])


@pytest.mark.parametrize(
    "refusal",
    ["n", StdinNotImplementedError("no stdin"), EOFError()],
    ids=["declined", "no-stdin", "eof"],
)
def test_a_turn_with_a_declined_or_unaskable_call_is_not_cached_and_a_replay_asks_again(
    kernel: Callable[[], Cell], server: StandInServer, monkeypatch: pytest.MonkeyPatch, refusal: Any
) -> None:
    prompts = answering(monkeypatch, refusal, "y")
    script(server)
    first = kernel()(CELL)
    assert first.ok, first.error
    assert NOT_KEPT in first.markdown
    assert len(server.bodies) == 2 and len(prompts) == 1
    script(server)
    again = kernel()(CELL)
    assert again.ok and again.metadata["replayed"] is False
    assert len(prompts) == 2, "asked the person again"
    assert len(server.bodies) == 4
    assert "API" in str(server.bodies[-1]["messages"][-1]["content"]), "this time the call ran"


def test_an_approved_turn_is_cached_and_replays_without_asking(
    kernel: Callable[[], Cell], server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = answering(monkeypatch, "y")
    script(server)
    assert kernel()(CELL).ok and len(prompts) == 1
    replay = kernel()(CELL)
    assert replay.ok and replay.metadata["replayed"] is True
    assert len(prompts) == 1 and len(server.bodies) == 2


@pytest.mark.parametrize("where", ["at the prompt", "in the tool"])
def test_an_interrupted_tool_turn_is_not_cached(
    kernel: Callable[[], Cell],
    server: StandInServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    where: str,
) -> None:
    cell = kernel()
    if where == "at the prompt":
        answering(monkeypatch, KeyboardInterrupt())
    else:
        assert cell("def lookup(key: str) -> str:\n    raise KeyboardInterrupt").ok
        cell.shell.run_line_magic("chatconfig", "tool_approval=auto")
    script(server)
    run = cell(CELL)
    assert not run.ok and "interrupted" in str(run.error)
    assert ReplyCache(tmp_path / "replies.sqlite3").stats().entries == 0
    answering(monkeypatch, "y")
    script(server)
    again = kernel()(CELL)
    assert again.ok and again.metadata["replayed"] is False and len(server.bodies) == 3


def test_a_call_marked_interrupted_keeps_its_turn_out_of_the_cache(
    env: None, server: StandInServer, tmp_path: Path
) -> None:
    """A tool runner that gives an interrupted call an error result and goes on (an MCP call
    cut off by Ctrl-C) marks it ``interrupted``: that turn is not cached either."""
    from nbchat import Chat

    def lookup(key: str) -> str:
        return key

    chat = Chat(tools=[lookup], tool_approval="auto", cache="replay", cache_path=str(tmp_path / "c.sqlite3"))
    script(server)
    replying = chat.stream("What is an API?")
    for event in replying.events():
        if getattr(event, "done", False):
            event.call.interrupted = True
    assert replying.reply is not None
    assert (
        "not kept in the reply cache: a tool call was interrupted, so a replay asks again"
        in replying.reply.notes
    )
    assert ReplyCache(tmp_path / "c.sqlite3").stats().entries == 0
