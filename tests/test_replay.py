"""The replay rule: a fresh kernel answers a request it has seen from the cache."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cell, make_shell
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from terminal import IPython

from nbchat.cache import ReplyCache
from nbchat.magics import INSTANCES
from nbchat.testing.server import StandInServer

Kernel = Callable[[], Cell]
QUESTION = "%%chat\nWhat is the answer?"


@pytest.fixture
def cache_file(env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The reply cache on, in this test's own file (kernels started later share it)."""
    path = tmp_path / "replies.sqlite3"
    monkeypatch.setenv("NBCHAT_CACHE", "replay")
    monkeypatch.setenv("NBCHAT_CACHE_PATH", str(path))
    return path


@pytest.fixture
def kernel(cache_file: Path) -> Iterator[Kernel]:
    """Starts a fresh kernel: new nbchat state, no answered cells, the same cache file."""
    yield lambda: Cell(make_shell())
    InteractiveShell.clear_instance()


def test_a_fresh_kernel_answers_an_identical_request_from_the_cache_and_sends_nothing(
    kernel: Kernel, server: StandInServer
) -> None:
    server.script(text="The answer is 42.")
    first = kernel()(QUESTION, cell_id="c1")
    assert first.ok and len(server.bodies) == 1
    assert first.metadata["replayed"] is False

    second = kernel()
    replayed = second(QUESTION, cell_id="c1")
    assert replayed.ok, replayed.error
    assert len(server.bodies) == 1, "nothing reached the server"
    assert replayed.markdown.startswith("The answer is 42.")
    assert re.search(r"completion tokens · replayed · asked [\d-]+ [\d:]+ · saved <?\$0\.0", replayed.text)
    shown = [str(o.get("text/plain")) for o in replayed.outputs if "waiting" not in str(o.get("text/plain"))]
    assert shown and all(t.startswith("The answer is 42.") for t in shown), "at once and in full"
    assert replayed.metadata["replayed"] is True
    assert replayed.metadata["usage"] == first.metadata["usage"]

    second("%%chat\nAnd then?", cell_id="c2")
    sent = server.bodies[-1]["messages"]
    assert sent[-2] == {"role": "assistant", "content": "The answer is 42."}, "the replay joined the history"


def test_rerunning_a_cell_this_kernel_answered_asks_again_and_the_newest_answer_wins(
    kernel: Kernel, server: StandInServer
) -> None:
    server.script(text="first sample")
    kernel()(QUESTION, cell_id="c1")
    again = kernel()
    assert "first sample" in again(QUESTION, cell_id="c1").markdown
    server.script(text="second sample")
    rerun = again(QUESTION, cell_id="c1")
    assert len(server.bodies) == 2 and "second sample" in rerun.markdown
    assert rerun.metadata["replayed"] is False
    later = kernel()(QUESTION, cell_id="c1")
    assert len(server.bodies) == 2 and later.markdown.startswith("second sample")


def test_without_cell_ids_identical_requests_replay_in_the_same_kernel(
    kernel: Kernel, server: StandInServer
) -> None:
    cell = kernel()
    cell("%%chat --no-history\nSame question")
    second = cell("%%chat --no-history\nSame question")
    assert len(server.bodies) == 1 and second.metadata["replayed"] is True


def test_no_cache_and_retry_ask_again_and_store_their_answer(kernel: Kernel, server: StandInServer) -> None:
    kernel()(QUESTION)
    server.script(text="asked again")
    forced = kernel()("%%chat --no-cache\nWhat is the answer?")
    assert len(server.bodies) == 2 and forced.markdown.startswith("asked again")
    third = kernel()
    assert third(QUESTION).markdown.startswith("asked again")
    server.script(text="retried")
    retried = third("%chat retry")
    assert len(server.bodies) == 3 and retried.markdown.startswith("retried")
    assert kernel()(QUESTION).markdown.startswith("retried")
    assert len(server.bodies) == 3


def test_refresh_always_asks_and_stores(kernel: Kernel, server: StandInServer, cache_file: Path) -> None:
    for text in ("one", "two"):
        server.script(text=text)
        cell = kernel()
        cell("%chatconfig cache=refresh")
        assert cell(QUESTION).markdown.startswith(text)
    assert len(server.bodies) == 2
    assert kernel()(QUESTION).markdown.startswith("two") and len(server.bodies) == 2


def test_off_neither_reads_nor_writes(kernel: Kernel, server: StandInServer, cache_file: Path) -> None:
    kernel()(QUESTION)
    assert ReplyCache(cache_file).stats().entries == 1
    ReplyCache(cache_file).clear()
    cell = kernel()
    cell("%chatconfig cache=off")
    cell(QUESTION)
    assert ReplyCache(cache_file).stats().entries == 0
    kernel()(QUESTION)
    cell = kernel()
    cell("%chatconfig cache=off")
    cell(QUESTION)
    assert len(server.bodies) == 4, "the entry stored by the third kernel is not read with off"


def test_usage_counts_requests_made_and_money_saved_separately(kernel: Kernel, server: StandInServer) -> None:
    kernel()(QUESTION)
    cell = kernel()
    cell(QUESTION)
    cell("%%chat\nA new question")
    usage = cell("%chat usage").text
    rows = {line.split("  ")[0]: line for line in usage.splitlines()}
    assert rows["total"].split()[1] == "1", usage  # one request made
    assert "gpt-4o-mini (replayed)" in rows and "none: 1 replayed" in rows["gpt-4o-mini (replayed)"]
    assert "saved by replays" in rows and "$" in rows["saved by replays"]
    assert INSTANCES[cell.shell].ledger.saved > 0


@pytest.mark.parametrize("stream", ["", "--no-stream "])
def test_choices_logprobs_out_and_code_replay_faithfully(
    kernel: Kernel, server: StandInServer, stream: str
) -> None:
    server.script(text="Try this:\n```python\nprint(42)\n```\n")
    line = f"%%chat {stream}-n 2 --logprobs 2 -o answer -f code\nWrite code"
    first_cell = kernel()
    first = first_cell(line)
    replay_cell = kernel()
    replayed = replay_cell(line)
    assert len(server.bodies) == 1
    strip = lambda text: text.split("<sub>")[0]  # noqa: E731 — the footer differs (timing vs replayed)
    # with log-probs the footer is an output of its own, after the shading: compare the replies
    reply = lambda run: [strip(o["text/markdown"]) for o in run.outputs if "text/markdown" in o][-2]  # noqa: E731
    assert reply(replayed) == reply(first) and "**Choice 2**" in reply(replayed)
    # (the waiting indicator's ticks depend on the machine's load: the views are compared)
    html = [o["text/html"] for o in first.outputs if "text/html" in o]
    assert html == [o["text/html"] for o in replayed.outputs if "text/html" in o] and html, (
        "the log-prob view"
    )
    a, b = first_cell.shell.user_ns["answer"], replay_cell.shell.user_ns["answer"]
    assert (a.text, a.choices, a.logprobs, a.finish_reason) == (
        b.text,
        b.choices,
        b.logprobs,
        b.finish_reason,
    )
    assert first_cell.shell.rl_next_input == "print(42)"
    # queued when the reply was made (the notebook holds that cell): a replay does not add another
    assert getattr(replay_cell.shell, "rl_next_input", None) is None


def test_a_corrupt_cache_file_never_fails_a_cell_it_says_so_once_and_asks_the_model(
    kernel: Kernel, server: StandInServer, cache_file: Path
) -> None:
    cache_file.write_bytes(b"not sqlite at all " * 200)
    cell = kernel()
    first = cell("%%chat\nOne")
    assert first.ok and len(server.bodies) == 1
    assert (
        f"reply cache {cache_file} cannot be used (file is not a database): asked the model" in first.markdown
    )
    second = cell("%%chat\nTwo")
    assert second.ok and len(server.bodies) == 2 and "cannot be used" not in second.markdown
    # %chat cache says how to get out of it, and nbchat does not delete a file it cannot read
    # (%chat cache clear sets it aside: tests/test_cache_only.py)
    run = cell("%chat cache")
    assert type(run.error) is UsageError
    assert str(run.error) == (
        f"reply cache {cache_file} cannot be used (file is not a database); cells still work without "
        "it. %chat cache clear sets it aside (renamed, not deleted), or %chatconfig "
        "cache_path=ANOTHER_FILE (or cache=off)"
    )
    assert cache_file.read_bytes() == b"not sqlite at all " * 200


def test_a_locked_cache_file_never_fails_a_cell(
    kernel: Kernel, server: StandInServer, cache_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from nbchat import cache

    monkeypatch.setattr(cache, "BUSY_MS", 50)
    cache._OPEN.pop(str(cache_file), None)
    created = ReplyCache(cache_file)
    created.stats()
    created.close()
    holder = sqlite3.connect(cache_file, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        cell = kernel()
        first = cell("%%chat\nOne")
        assert first.ok and "database is locked" in first.markdown and len(server.bodies) == 1
        second = cell("%%chat\nTwo")
        assert second.ok and "cannot be used" not in second.markdown
    finally:
        holder.close()
    cache._OPEN.pop(str(cache_file), None)


def test_chat_cache_shows_entries_size_and_savings_and_clear_empties_it(
    kernel: Kernel, server: StandInServer, cache_file: Path
) -> None:
    first = kernel()
    first(QUESTION)
    first("%%chat\nSecond question")
    cell = kernel()
    cell(QUESTION)
    shown = cell("%chat cache").text
    rows = {line.split()[0]: line.split(None, 1)[1] for line in shown.splitlines()[2:]}
    assert rows["file"] == str(cache_file) and rows["entries"] == "2" and rows["replays"] == "1"
    assert rows["size"].endswith("kB") and float(rows["size"].split()[0]) > 0
    assert rows["saved"].startswith(("$0.0", "<$0.0"))
    assert "2 replies removed" in cell("%chat cache clear").text
    assert ReplyCache(cache_file).stats().entries == 0
    kernel()(QUESTION)
    assert len(server.bodies) == 3, "after clear the question is asked again"
    wrong = cell("%chat cache purge")
    assert not wrong.ok and "%chat cache clear empties it" in str(wrong.error)


def test_the_widget_view_replays_choices_logprobs_and_footer(kernel: Kernel, server: StandInServer) -> None:
    from nbchat.widgets import shown_view

    def view(cell: Cell) -> Any:
        run = cell("%%chat -f widget -n 2 --logprobs 2\nname a colour")
        assert run.ok, run.error
        return shown_view(run.outputs)

    first, replayed = view(kernel()), view(kernel())
    assert len(server.bodies) == 1
    assert replayed.tabs.titles == first.tabs.titles == ("Choice 1", "Choice 2")
    from nbchat.widgets import output_text

    pages = [[output_text(page.children[0]) for page in v.tabs.children] for v in (first, replayed)]
    assert pages[0] == pages[1] and "Echo: name a colour (choice 2)" in pages[1][1]
    assert replayed.logprobs.value == first.logprobs.value and "nbchat-token" in replayed.logprobs.value
    assert "replayed · asked" in replayed.usage.value


def test_the_python_api_follows_the_same_cache_settings(server: StandInServer, tmp_path: Path) -> None:
    from nbchat import Chat

    options = {"base_url": server.url, "api_key": "sk-local", "cache_path": str(tmp_path / "api.sqlite3")}
    first = Chat(cache="replay", **options).send("Hello")
    again = Chat(cache="replay", **options).send("Hello")
    assert len(server.bodies) == 1 and again.replayed and not first.replayed
    assert (again.text, again.usage) == (first.text, first.usage)
    assert not Chat(cache="off", **options).send("Hello").replayed
    assert len(server.bodies) == 2


def test_a_replay_is_one_replayed_event_then_the_replys_events_through_the_one_consumer(
    server: StandInServer, tmp_path: Path
) -> None:
    from nbchat import Chat

    options = {"base_url": server.url, "api_key": "sk-local", "cache_path": str(tmp_path / "api.sqlite3")}
    live = list(Chat(cache="replay", n=2, **options).stream("Hello").events())
    replayed = list(Chat(cache="replay", n=2, **options).stream("Hello").events())
    assert [e.kind for e in live] == ["text"] * len(live) and len(live) > 2
    assert replayed[0].kind == "replayed" and replayed[0].asked > 0
    texts = {(e.choice, e.text) for e in replayed[1:]}
    assert texts == {(0, "Echo: Hello"), (1, "Echo: Hello (choice 2)")}, "each choice whole, at once"


def test_a_reasoning_summary_and_its_thinking_block_replay(kernel: Kernel, server: StandInServer) -> None:
    def ask(cell: Cell) -> str:
        assert cell("%chatconfig api=responses").ok
        run = cell("%%chat -m o4-mini\nWhy is the sky blue?")
        assert run.ok, run.error
        return run.markdown

    first, replayed = ask(kernel()), ask(kernel())
    assert [r.path for r in server.requests] == ["/v1/responses"], "the replay sent nothing"
    assert replayed.startswith("<details><summary>Thinking</summary>")
    assert replayed.split("<sub>")[0] == first.split("<sub>")[0]
    assert "> **Reading the message**" in replayed and "replayed · asked" in replayed


def test_terminal_ipython_replays_the_thinking_text_and_reply(
    ipython: IPython, server: StandInServer, tmp_path: Path
) -> None:
    code = (
        "get_ipython().run_line_magic('chatconfig', 'api=responses')\n"
        "get_ipython().run_cell_magic('chat', '-m o4-mini', 'hi')"
    )
    cache = {"NBCHAT_CACHE": "replay", "NBCHAT_CACHE_PATH": str(tmp_path / "replies.sqlite3")}
    outs = [ipython.run(code, **cache) for _ in "ab"]
    assert len(server.requests) == 1
    first, replayed = outs
    assert "replayed · asked" in replayed and "replayed" not in first
    assert replayed.index("Thinking: **Reading the message**") < replayed.index("\n\nEcho: hi")
    assert replayed.split("\n— ")[0] == first.split("\n— ")[0]
