"""The reply cache file: keys, reads and writes, several processes at once, bad files."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import FAKE_KEY

from nbchat import cache
from nbchat.cache import ReplyCache, key_of

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.2}


def test_the_key_ignores_how_the_reply_travels_but_not_what_is_asked() -> None:
    url = "http://127.0.0.1:9/v1"
    streamed = BODY | {"stream": True, "stream_options": {"include_usage": True}}
    assert key_of(streamed, url) == key_of(BODY, url)
    assert key_of(BODY | {"temperature": 0.3}, url) != key_of(BODY, url)
    assert key_of(BODY, "http://127.0.0.1:10/v1") != key_of(BODY, url)
    reordered = dict(reversed(list(BODY.items())))
    assert key_of(reordered, url) == key_of(BODY, url)


def test_the_key_holds_no_credential_and_a_password_in_the_url_does_not_change_it() -> None:
    plain = key_of(BODY, "https://example.com/v1")
    with_password = key_of(BODY, f"https://user:{FAKE_KEY}@example.com/v1/")
    assert plain == with_password
    assert cache.server_url(f"https://user:{FAKE_KEY}@Example.com:8443/v1/") == "https://example.com:8443/v1"


def test_a_reply_is_stored_read_counted_and_cleared(tmp_path: Path) -> None:
    store = ReplyCache(tmp_path / "sub" / "replies.sqlite3")
    assert store.get("k") is None
    store.put("k", {"parts": {"0": ["Hello"]}}, "gpt-4o-mini", 0.002)
    entry = store.get("k")
    assert entry is not None and entry.reply == {"parts": {"0": ["Hello"]}} and entry.cost == 0.002
    store.put("k", {"parts": {"0": ["Newer"]}}, "gpt-4o-mini", 0.003)
    newer = store.get("k")
    assert newer is not None and newer.reply["parts"]["0"] == ["Newer"]
    store.replayed("k", 0.003)
    store.replayed("k", 0.003)
    stats = store.stats()
    assert (stats.entries, stats.replays) == (1, 2) and stats.saved == pytest.approx(0.006)
    assert stats.size > 0
    assert not Path(f"{store.path}-wal").exists() or Path(f"{store.path}-wal").stat().st_size == 0, (
        "stats folds the log into the file"
    )
    assert store.clear() == 1
    assert store.stats().entries == 0 and store.get("k") is None


def _writer(path: str, worker: int, count: int) -> None:
    store = ReplyCache(path)
    for i in range(count):
        store.put(f"{worker}-{i}", {"parts": {"0": [f"reply {worker} {i}"]}}, "m", 0.001)
        assert store.get(f"{worker}-{i}") is not None
        if i % 10 == 0:
            store.stats()
    store.close()


def test_several_processes_write_one_cache_at_once_and_nothing_is_lost(tmp_path: Path) -> None:
    path = str(tmp_path / "replies.sqlite3")
    workers, count = 4, 60
    context = multiprocessing.get_context("spawn")  # separate interpreters, like kernels
    processes = [context.Process(target=_writer, args=(path, w, count)) for w in range(workers)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
    assert [p.exitcode for p in processes] == [0] * workers
    store = ReplyCache(path)
    assert store.stats().entries == workers * count
    last = store.get("3-59")
    assert last is not None and last.reply == {"parts": {"0": ["reply 3 59"]}}
    journal = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"


def test_counting_while_another_kernel_reads_does_not_hold_up_writers(tmp_path: Path) -> None:
    path = tmp_path / "replies.sqlite3"
    store, other = ReplyCache(path), ReplyCache(path)
    store.put("k", {"parts": {"0": ["Hello"]}}, "m", None)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM replies").fetchone()  # a read transaction stays open
    try:
        started = time.monotonic()
        assert store.stats().entries == 1
        counting = time.monotonic() - started
        other.put("k2", {"parts": {"0": ["Hi"]}}, "m", None)
    finally:
        reader.close()
    # a checkpoint waiting out the busy timeout holds the write lock that long, and the other
    # kernels' writes, waiting as long, give up: it must take a small part of it
    assert counting < cache.BUSY_MS / 1000 / 2
    assert store.stats().entries == 2


def test_a_corrupt_file_raises_only_cache_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "replies.sqlite3"
    path.write_bytes(b"this is not a database, it is a text file" * 100)
    store = ReplyCache(path)
    with pytest.raises(cache.CacheUnavailable, match="not a database"):
        store.get("k")
    with pytest.raises(cache.CacheUnavailable):
        store.put("k", {}, None, None)
