"""The reply cache: a SQLite file of replies, keyed by the request as sent. No IPython.

Several kernels share one file: WAL journaling lets readers go on while one writes, a
busy timeout waits out short locks, and every write is one short transaction. A cache
that cannot be used (corrupt, locked, unwritable) never fails a request: it reports the
problem once and the model is asked.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .errors import NbChatError

if TYPE_CHECKING:  # sqlite3 is imported on first use: %load_ext stays fast
    import sqlite3

# not part of what a request asks, only of how the answer travels
TRANSPORT_ONLY = ("stream", "stream_options")
BUSY_MS = 5000  # how long a write waits for another kernel's transaction
CHECKPOINT_MS = 100  # how long folding the log waits for other kernels' readers
SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    asked REAL NOT NULL,
    model TEXT,
    reply TEXT NOT NULL,
    cost REAL,
    replays INTEGER NOT NULL DEFAULT 0,
    saved REAL NOT NULL DEFAULT 0
)
"""


def server_url(url: str) -> str:
    """The server's URL without any user name or password in it (those are credentials)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme.lower(), host.lower(), parts.path.rstrip("/"), parts.query, ""))


def key_of(body: Mapping[str, Any], url: str) -> str:
    """The cache key: a hash of the request body as sent (without how it travels) and the
    server's URL. The API key is never part of it, so a cache works with any key."""
    asked = {k: v for k, v in body.items() if k not in TRANSPORT_ONLY}
    # ASCII escapes keep json on its fast C path (about 1 ms for a 1,000-message history)
    text = json.dumps({"url": server_url(url), "body": asked}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass
class Entry:
    """A stored reply: what the server returned (``reply``), when and at what cost."""

    reply: dict[str, Any]
    asked: float
    cost: float | None = None


@dataclass
class Stats:
    entries: int
    size: int  # bytes on disk, with the WAL file
    replays: int
    saved: float


class CacheUnavailable(Exception):
    """The cache file cannot be used; the message says why in a few words. ``corrupt``: the
    file is not a reply cache at all (garbage, another database), as opposed to one that is
    locked or cannot be written — only a corrupt file is set aside by ``%chat cache clear``."""

    def __init__(self, message: str, corrupt: bool = False) -> None:
        super().__init__(message)
        self.corrupt = corrupt


class NotInCache(NbChatError):
    """``cache=only``: the request is not in the reply cache, so it was not sent."""


class ReplyCache:
    """One cache file. Methods raise :class:`CacheUnavailable`, nothing else."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._inode: int | None = None  # of the file the connection opened
        self._lock = threading.Lock()  # one connection, shared by threads (Chat.map)

    def __repr__(self) -> str:
        return f"<ReplyCache {str(self.path)!r}>"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            if self._inode == _inode(self.path):
                return self._conn
            # the file was deleted (or replaced) while open: writing on would fill a file no
            # one can see again, so the next write creates it anew
            self.close()
        # a forked child must not use its parent's connection
        import sqlite3

        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=BUSY_MS / 1000, check_same_thread=False, isolation_level=None
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL keeps it consistent; faster commits
            conn.execute(SCHEMA)
        except BaseException:
            conn.close()
            raise
        self._conn, self._pid, self._inode = conn, os.getpid(), _inode(self.path)
        return conn

    def _run(self, work: Any) -> Any:
        import sqlite3

        deadline = time.monotonic() + BUSY_MS / 1000
        pause = 0.01
        with self._lock:
            while True:
                try:
                    return work(self._connection())
                except sqlite3.OperationalError as e:
                    # SQLite answers "locked" at once, without its busy wait, where waiting
                    # could deadlock (two kernels switching a new file to WAL, or upgrading a
                    # read to a write together): one of them goes on, so trying again succeeds
                    if _busy(e) and time.monotonic() < deadline:
                        time.sleep(pause)
                        pause = min(pause * 2, 0.2)
                        continue
                    self.close()
                    raise CacheUnavailable(_why(e), _corrupt(e)) from None
                except (sqlite3.Error, OSError) as e:
                    self.close()
                    raise CacheUnavailable(_why(e), _corrupt(e)) from None

    def get(self, key: str) -> Entry | None:
        def read(conn: sqlite3.Connection) -> Entry | None:
            row = conn.execute("SELECT reply, asked, cost FROM replies WHERE key = ?", (key,)).fetchone()
            # a damaged row (garbage, JSON of the wrong shape) is a miss: the next answer
            # replaces it
            return None if row is None else _entry(*row)

        result: Entry | None = self._run(read)
        return result

    def put(self, key: str, reply: Mapping[str, Any], model: str | None, cost: float | None) -> None:
        """Store (or replace: the newest answer wins) the reply to request ``key``."""
        text = json.dumps(reply, ensure_ascii=False, separators=(",", ":"))
        self._run(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO replies (key, asked, model, reply, cost) VALUES (?, ?, ?, ?, ?)",
                (key, time.time(), model, text, cost),
            )
        )

    def replayed(self, key: str, saved: float | None) -> None:
        """Count one replay of ``key`` and the money it saved."""
        self._run(
            lambda conn: conn.execute(
                "UPDATE replies SET replays = replays + 1, saved = saved + ? WHERE key = ?",
                (saved or 0.0, key),
            )
        )

    def stats(self) -> Stats:
        def read(conn: sqlite3.Connection) -> Stats:
            # fold the write-ahead log into the file, so the file alone can be committed
            _checkpoint(conn)
            entries, replays, saved = conn.execute(
                "SELECT count(*), coalesce(sum(replays), 0), coalesce(sum(saved), 0) FROM replies"
            ).fetchone()
            return Stats(int(entries), self.size(), int(replays), float(saved))

        result: Stats = self._run(read)
        return result

    def size(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(f"{self.path}{suffix}")
            except OSError:
                pass
        return total

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""

        def wipe(conn: sqlite3.Connection) -> int:
            count = int(conn.execute("SELECT count(*) FROM replies").fetchone()[0])
            conn.execute("DELETE FROM replies")
            _checkpoint(conn)
            return count

        import sqlite3

        cleared: int = self._run(wipe)
        with self._lock:
            try:
                self._connection().execute("VACUUM")
            except sqlite3.Error:
                pass  # another kernel is reading: the space is reused later anyway
        return cleared

    def set_aside(self) -> Path:
        """Rename a file that is no reply cache (never delete it: ``cache_path`` may name
        someone's other file) so that a new cache starts at ``path``; returns the new name."""
        with self._lock:
            self.close()
            aside = self.path.with_name(f"{self.path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
            n = 1
            while aside.exists():
                n += 1
                aside = aside.with_name(f"{aside.name.split('~')[0]}~{n}")
            try:
                self.path.rename(aside)
                for suffix in ("-wal", "-shm"):  # a log belongs with its file
                    log = Path(f"{self.path}{suffix}")
                    if log.exists():
                        log.rename(f"{aside}{suffix}")
            except OSError as e:
                raise CacheUnavailable(_why(e)) from None
            return aside

    def close(self) -> None:
        """Close the connection; the WAL is folded into the file (so it can be committed)."""
        import sqlite3

        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            try:
                conn.close()
            except sqlite3.Error:
                pass


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Fold the log into the file if no other kernel is reading it now (best effort).

    A truncating checkpoint holds the write lock while it waits for readers: with the full
    busy timeout it would keep other kernels' writes waiting as long as their own timeout,
    and they would give up. A short wait keeps their writes going; the log is folded on a
    later call or when the last connection closes."""
    conn.execute(f"PRAGMA busy_timeout = {CHECKPOINT_MS}")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


# what a stored reply's fields must be, to be replayed (anything else is a damaged entry)
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "parts": dict,
    "finish": dict,
    "logprobs": dict,
    "usage": (dict, type(None)),
    "model": (str, type(None)),
    "done": bool,
    "tool_turn": (dict, type(None)),
    "reasoning": list,
    "output": (list, type(None)),
    "latency": (int, float),
    "pending_reasoning": dict,
}


def _entry(text: Any, asked: Any, cost: Any) -> Entry | None:
    """A row as an :class:`Entry`, or ``None`` when any part of it is not what
    :func:`snapshot` writes (a replay must never fail the cell that asked for it)."""
    try:
        reply = json.loads(text)
        when = float(asked)
    except (TypeError, ValueError):
        return None
    if not isinstance(reply, dict) or not well_formed(reply):
        return None
    if not isinstance(cost, (int, float)) or isinstance(cost, bool):
        cost = None
    return Entry(reply, when, cost)


def well_formed(record: Mapping[str, Any]) -> bool:
    """Whether a stored reply has the types :func:`restore` and a replay rely on."""
    for name, kinds in _FIELD_TYPES.items():
        if name in record and not isinstance(record[name], kinds):
            return False
    parts = record.get("parts", {"0": []})
    if not parts or not all(_index(k) and isinstance(v, list) for k, v in parts.items()):
        return False
    if not all(isinstance(t, str) for v in parts.values() for t in v):
        return False
    if not all(_index(k) and (v is None or isinstance(v, str)) for k, v in record.get("finish", {}).items()):
        return False
    logprobs = record.get("logprobs", {})
    if not all(_index(k) and isinstance(v, list) for k, v in logprobs.items()):
        return False
    if not all(isinstance(t, str) for t in record.get("reasoning", [])):
        return False
    if not _usage_well_formed(record.get("usage")):
        return False
    return _tool_turn_well_formed(record.get("tool_turn"))


def _usage_well_formed(usage: Any) -> bool:
    """Counts, and tables of counts under ``*_details``."""
    if usage is None:
        return True
    if not isinstance(usage, dict):
        return False
    for key, value in usage.items():
        counts = value.values() if key.endswith("_details") and isinstance(value, dict) else [value]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in counts):
            return False
    return True


def _tool_turn_well_formed(turn: Any) -> bool:
    """A tool turn's messages join the history as they are: each must be a message a
    conversation may hold, every call answered (else every later request would fail)."""
    from .conversation import tool_problem, valid_message

    if turn is None:
        return True
    messages, calls = turn.get("messages", []), turn.get("calls", [])
    if not isinstance(messages, list) or not all(valid_message(m) for m in messages):
        return False
    if tool_problem(messages) is not None:
        return False
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        return False
    texts = ("id", "name", "arguments")
    return all(isinstance(c.get(k), str) for c in calls for k in texts) and _usage_well_formed(
        turn.get("usage")
    )


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))


def _index(key: Any) -> bool:
    return isinstance(key, str) and key.isdigit()


def _corrupt(error: BaseException) -> bool:
    """The file is not a reply cache (as opposed to locked, busy or unwritable)."""
    import sqlite3

    if isinstance(error, sqlite3.OperationalError):
        # a database of another shape: a table or column of ours is missing
        return str(error).startswith(("no such table", "no such column", "table replies has no"))
    return isinstance(error, sqlite3.DatabaseError)


def _busy(error: BaseException) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


def _why(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    return text


_OPEN: dict[str, ReplyCache] = {}
_OPEN_LOCK = threading.Lock()


def open_cache(path: str | os.PathLike[str]) -> ReplyCache:
    """The process's one :class:`ReplyCache` for ``path`` (a connection is opened lazily)."""
    name = os.path.abspath(os.path.expanduser(path))
    with _OPEN_LOCK:
        cache = _OPEN.get(name)
        if cache is None:
            cache = _OPEN[name] = ReplyCache(name)
        return cache


@atexit.register
def _close_all() -> None:
    for cache in list(_OPEN.values()):
        cache.close()


# what a Completion holds that is timing, not content: a replay has its own
_TIMING = ("started", "first_token", "ended")
_BY_CHOICE = ("parts", "finish", "logprobs")  # dicts keyed by choice index


def snapshot(completion: Any) -> dict[str, Any]:
    """Everything a completed reply holds, as JSON-ready data (choice indexes as strings).

    Attributes other transports add to a completion (tool calls, reasoning, …) are kept
    too, as long as they are plain data, so they replay without changes here."""
    record: dict[str, Any] = {"latency": completion.latency}
    for name, value in vars(completion).items():
        if name in _TIMING or name.startswith("_"):
            continue
        if name in _BY_CHOICE:
            value = {str(k): v for k, v in value.items()}
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        record[name] = value
    return record


def restore(completion: Any, record: Mapping[str, Any]) -> None:
    """Fill a fresh completion from :func:`snapshot`'s data (checked by :func:`well_formed`);
    a name the completion does not have, or holds as an object, is not taken."""
    current = vars(completion)
    for name, value in record.items():
        if name == "latency" or name not in current or not _plain(current[name]):
            continue
        if name in _BY_CHOICE and isinstance(value, dict):
            value = {int(k): v for k, v in value.items()}
        setattr(completion, name, value)
    completion.first_token = completion.ended = time.perf_counter()


class Replayer:
    """One kernel's (or one ``Chat``'s) use of the cache: the replay rule, the cells it
    has answered, and whether it has already said that the cache is unusable."""

    def __init__(self) -> None:
        self.answered: set[str] = set()
        self.reported = False

    @staticmethod
    def reads(mode: str) -> bool:
        """Whether a request under cache ``mode`` may be answered from the cache."""
        return mode in ("replay", "only")

    def lookup(self, mode: str, path: str, key: str, cell_id: str | None) -> tuple[Entry | None, str | None]:
        """The stored reply to replay, or ``None`` to ask the model; and a note for the user.

        A cell this kernel already answered asks again: re-running still gives a new sample —
        except under ``only``, which replays every time (and never asks)."""
        if not self.reads(mode) or (mode == "replay" and cell_id is not None and cell_id in self.answered):
            return None, None
        try:
            return open_cache(path).get(key), None
        except CacheUnavailable as e:
            if mode == "only":  # the request fails: say why every time
                return None, f"reply cache {path} cannot be used ({e})"
            return None, self.problem(path, e)

    def store(
        self, mode: str, path: str, key: str, reply: Mapping[str, Any], model: str | None, cost: float | None
    ) -> str | None:
        if mode in ("off", "only"):
            return None
        try:
            open_cache(path).put(key, reply, model, cost)
        except CacheUnavailable as e:
            return self.problem(path, e)
        return None

    def replayed(self, path: str, key: str, saved: float | None) -> None:
        try:
            open_cache(path).replayed(key, saved)
        except CacheUnavailable:
            pass  # only the savings count is lost

    def problem(self, path: str, error: CacheUnavailable) -> str | None:
        """The note for an unusable cache: the first time only."""
        if self.reported:
            return None
        self.reported = True
        return f"reply cache {path} cannot be used ({error}): asked the model"
