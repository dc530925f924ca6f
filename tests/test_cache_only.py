"""Strict replay (cache=only), damaged entries, a corrupt file set aside, a deleted file
created again: the reply cache in CI and papermill, where a failure must be loud and a
replay must never fail a cell."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Cell, make_shell
from IPython.core.interactiveshell import InteractiveShell

from nbchat import Chat
from nbchat.cache import NotInCache, ReplyCache
from nbchat.magics import INSTANCES
from nbchat.testing.server import StandInServer

Kernel = Callable[[], Cell]
QUESTION = "%%chat\nWhat is the answer?"
MISS = "not in the reply cache: this cell changed since it was made"


@pytest.fixture
def cache_file(env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "replies.sqlite3"
    monkeypatch.setenv("NBCHAT_CACHE", "replay")
    monkeypatch.setenv("NBCHAT_CACHE_PATH", str(path))
    return path


@pytest.fixture
def kernel(cache_file: Path) -> Iterator[Kernel]:
    """A fresh kernel each call: new nbchat state, the same cache file."""
    yield lambda: Cell(make_shell())
    InteractiveShell.clear_instance()


def strict(cell: Cell) -> Cell:
    assert cell("%chatconfig cache=only").ok
    return cell


def test_nbchat_cache_only_in_the_environment_makes_strict_replay_the_default(
    cache_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBCHAT_CACHE", "only")
    assert Chat().settings.cache == "only"
    assert INSTANCES[make_shell()].cache == "only"
    InteractiveShell.clear_instance()


def test_under_only_a_stored_cell_replays_and_a_rerun_in_the_same_kernel_replays_too(
    kernel: Kernel, server: StandInServer
) -> None:
    server.script(text="The answer is 42.")
    assert kernel()(QUESTION, cell_id="c1").ok
    assert len(server.bodies) == 1
    cell = strict(kernel())
    for _ in range(3):  # under replay the second run would ask for a new sample
        run = cell(QUESTION, cell_id="c1")
        assert run.ok, run.error
        assert run.markdown.startswith("The answer is 42.") and run.metadata["replayed"] is True
    assert len(server.bodies) == 1, "nothing was sent"
    # --no-cache and %chat retry would ask again: under only they replay as well
    assert cell("%%chat --no-cache\nWhat is the answer?", cell_id="c1").ok
    retried = cell("%chat retry")
    assert retried.ok, retried.error
    assert len(server.bodies) == 1


def test_under_only_a_changed_cell_is_a_one_line_error_naming_it_and_nothing_is_sent(
    kernel: Kernel, server: StandInServer
) -> None:
    assert kernel()(QUESTION, cell_id="c1").ok
    cell = strict(kernel())
    assert cell(QUESTION, cell_id="c1").ok
    run = cell("%%chat\nWhat is the answer, really?", cell_id="c2")
    assert type(run.error) is NotInCache
    assert str(run.error) == (
        f"{MISS} ('What is the answer, really?'); cache=only sends nothing. "
        "Run it once with cache=replay to store its reply"
    )
    assert run.error._render_traceback_() == [f"nbchat: {run.error}"], "one line, no traceback"
    assert len(server.bodies) == 1
    magics = INSTANCES[cell.shell]
    assert [t.cell_id for t in magics.conversations["default"].turns] == ["c1"], "history as it was"


def test_under_only_the_python_api_and_a_per_call_override_are_strict_too(
    cache_file: Path, server: StandInServer
) -> None:
    chat = Chat(cache="only")
    with pytest.raises(NotInCache, match=MISS):
        chat.send("never asked")
    with pytest.raises(NotInCache):
        Chat().send("never asked either", cache="only")
    assert server.bodies == []


def test_under_only_a_map_replays_what_it_stored_and_a_new_item_fails_before_anything_is_sent(
    kernel: Kernel, server: StandInServer
) -> None:
    first = kernel()
    assert first("items = ['apple', 'kiwi']").ok
    assert first("%%chat --map items -o out\nColour of {item}?").ok
    assert len(server.bodies) == 2
    cell = strict(kernel())
    assert cell("items = ['apple', 'kiwi']").ok
    run = cell("%%chat --map items -o out\nColour of {item}?")
    assert run.ok, run.error
    assert [str(r) for r in cell.shell.user_ns["out"]] == ["Echo: Colour of apple?", "Echo: Colour of kiwi?"]
    assert cell("items = ['apple', 'kiwi', 'plum']").ok
    run = cell("%%chat --map items -o out2\nColour of {item}?")
    assert type(run.error) is NotInCache
    assert str(run.error) == (f"{MISS} (1 of 3 items, first #2: 'Colour of plum?'); cache=only sends nothing")
    assert len(server.bodies) == 2 and "out2" not in cell.shell.user_ns
    batch = cell("%%chat --map items --batch\nColour of {item}?")
    assert type(batch.error) is NotInCache and "batch" in str(batch.error)
    image = cell("%%chat -f image\nA plum")
    assert type(image.error) is NotInCache and "image" in str(image.error)
    assert [r.path for r in server.requests if "chat" not in r.path] == [], "no upload, no image"


def test_under_only_a_tool_turn_replays_without_running_the_tool(
    kernel: Kernel, server: StandInServer
) -> None:
    runs: list[str] = []
    first = kernel()
    first.shell.user_ns["runs"] = runs
    assert first("def lookup(key: str) -> str:\n    runs.append(key)\n    return key.upper()").ok
    INSTANCES[first.shell].tool_approval = "auto"
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": "api"}}])
    assert first("%%chat --tools lookup\nWhat is an API?").ok
    assert runs == ["api"] and len(server.bodies) == 2
    cell = strict(kernel())
    cell.shell.user_ns["runs"] = runs
    assert cell("def lookup(key: str) -> str:\n    runs.append(key)\n    return key.upper()").ok
    run = cell("%%chat --tools lookup\nWhat is an API?")
    assert run.ok, run.error
    assert runs == ["api"] and len(server.bodies) == 2
    assert "replayed from the cache, not run again" in run.text


def _store_one(kernel: Kernel, cache_file: Path) -> str:
    assert kernel()(QUESTION).ok
    with sqlite3.connect(cache_file) as db:
        (key,) = db.execute("SELECT key FROM replies").fetchone()
    return str(key)


DAMAGED = [
    "garbage, not JSON {",
    "[1, 2, 3]",
    json.dumps({"parts": {"0": [1, 2]}, "finish": {"0": "stop"}}),
    json.dumps({"parts": "Echo", "finish": {"0": "stop"}}),
    json.dumps({"parts": {"zero": ["x"]}}),
    json.dumps({"parts": {"0": ["x"]}, "usage": {"prompt_tokens": "many"}}),
    json.dumps({"parts": {"0": ["x"]}, "finish": ["stop"]}),
    json.dumps({"parts": {"0": ["x"]}, "reasoning": "think"}),
    json.dumps({"parts": {"0": ["x"]}, "tool_turn": {"calls": [{"bogus": 1}]}}),
    json.dumps({"parts": {"0": ["x"]}, "tool_turn": {"messages": "none"}}),
    json.dumps({"parts": {"0": ["x"]}, "calls": "not the call parts"}),
    json.dumps({"parts": {"0": ["x"]}, "usage": {"prompt_tokens": {"nested": 1}}}),
    json.dumps({"parts": {"0": ["x"]}, "usage": {"prompt_tokens_details": {"cached_tokens": "x"}}}),
    json.dumps({"parts": {"0": ["x"]}, "tool_turn": {"messages": [{"role": "tool", "content": "r"}]}}),
    json.dumps({"parts": {"0": ["x"]}, "tool_turn": {"messages": [{"role": "wizard", "content": "r"}]}}),
]


@pytest.mark.parametrize("stored", DAMAGED)
def test_a_damaged_entry_is_a_miss_never_a_failed_cell(
    kernel: Kernel, server: StandInServer, cache_file: Path, stored: str
) -> None:
    key = _store_one(kernel, cache_file)
    with sqlite3.connect(cache_file) as db:
        db.execute("UPDATE replies SET reply = ? WHERE key = ?", (stored, key))
    if "calls" in stored and "tool_turn" not in stored:
        # an unknown or object-held name is not taken: this entry replays its text
        run = kernel()(QUESTION)
        assert run.ok and run.markdown.startswith("x") and len(server.bodies) == 1
        return
    run = kernel()(QUESTION)
    assert run.ok, run.error
    assert run.metadata["replayed"] is False and len(server.bodies) == 2, "asked the model"
    again = kernel()(QUESTION)
    assert again.metadata["replayed"] is True, "the new answer replaced the damaged one"
    with sqlite3.connect(cache_file) as db:
        db.execute("UPDATE replies SET reply = ? WHERE key = ?", (stored, key))
    run = strict(kernel())(QUESTION)
    assert type(run.error) is NotInCache, run.error


def test_a_damaged_row_time_or_cost_is_a_miss_or_no_cost(
    kernel: Kernel, server: StandInServer, cache_file: Path
) -> None:
    key = _store_one(kernel, cache_file)
    with sqlite3.connect(cache_file) as db:
        db.execute("UPDATE replies SET cost = 'lots' WHERE key = ?", (key,))
    assert kernel()(QUESTION).metadata["replayed"] is True
    with sqlite3.connect(cache_file) as db:
        db.execute("UPDATE replies SET asked = 'yesterday' WHERE key = ?", (key,))
    run = kernel()(QUESTION)
    assert run.ok and run.metadata["replayed"] is False and len(server.bodies) == 2


def test_a_cache_file_deleted_between_cells_is_created_again_on_the_next_write(
    kernel: Kernel, server: StandInServer, cache_file: Path
) -> None:
    cell = kernel()
    assert cell(QUESTION).ok and cache_file.exists()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{cache_file}{suffix}").unlink(missing_ok=True)
    second = cell("%%chat\nAnd then?")
    assert second.ok and "cannot be used" not in second.markdown
    assert cache_file.exists(), "created again"
    assert ReplyCache(cache_file).stats().entries == 1
    fresh = kernel()
    assert fresh(QUESTION).metadata["replayed"] is False, "the deleted reply is gone"
    assert fresh("%%chat\nAnd then?").metadata["replayed"] is True, "the new file is used"


def test_chat_cache_clear_sets_a_corrupt_file_aside_and_starts_a_new_one(
    kernel: Kernel, server: StandInServer, cache_file: Path
) -> None:
    garbage = b"not sqlite at all " * 200
    cache_file.write_bytes(garbage)
    cell = kernel()
    cleared = cell("%chat cache clear")
    assert cleared.ok, cleared.error
    (aside,) = [p for p in cache_file.parent.iterdir() if p.name.startswith("replies.sqlite3.unreadable-")]
    assert aside.read_bytes() == garbage, "never deleted"
    assert f"could not be read (file is not a database): kept as {aside}" in cleared.text
    run = cell(QUESTION)
    assert run.ok and "cannot be used" not in run.markdown
    assert ReplyCache(cache_file).stats().entries == 1
    assert "1" in cell("%chat cache").text


def test_chat_cache_clear_on_a_locked_file_renames_nothing(
    kernel: Kernel, cache_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbchat import cache

    monkeypatch.setattr(cache, "BUSY_MS", 50)
    cache._OPEN.pop(str(cache_file), None)
    created = ReplyCache(cache_file)
    created.put("k", {"parts": {"0": ["x"]}}, None, None)
    created.close()
    holder = sqlite3.connect(cache_file, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        run = kernel()("%chat cache clear")
        assert not run.ok and "database is locked" in str(run.error)
    finally:
        holder.close()
    cache._OPEN.pop(str(cache_file), None)
    assert [p.name for p in cache_file.parent.iterdir() if "unreadable" in p.name] == []


def test_the_miss_names_the_cell_without_any_credential_in_it(
    cache_file: Path, server: StandInServer
) -> None:
    from conftest import FAKE_KEY

    with pytest.raises(NotInCache) as caught:
        Chat(cache="only").send(f"use {FAKE_KEY} and sk-proj-Qw3rTy8uIoP1aSdF6gHjK2lZ please")
    said = str(caught.value)
    assert (
        said.startswith(f"{MISS} ('use [redacted key] and [redacted key]…')")
        and "cache=only sends nothing" in said
    )
    assert FAKE_KEY[3:11] not in said and "Qw3rTy8u" not in said
    with pytest.raises(NotInCache) as mapped:
        Chat(cache="only").map([FAKE_KEY], "Label: {item}", progress=None)
    assert FAKE_KEY[3:11] not in str(mapped.value) and "first #0: 'Label: " in str(mapped.value)
    assert server.bodies == []
