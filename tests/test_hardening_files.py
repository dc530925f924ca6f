"""Files are safe to load and to save: any malformation is refused in one clear line and
nothing changes; nothing that loads can crash a later %chat history; a save that fails
for any reason leaves the old file intact and no temporary file; saves are fsynced."""

from __future__ import annotations

import json
import os

import pytest
from IPython.core.error import UsageError

from nbchat.conversation import Conversation, write_atomically
from nbchat.errors import NbChatError


def saved(turns: list[dict], messages: list[dict] | None = None) -> str:
    messages = messages or [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    return json.dumps(
        {"format": "nbchat.conversation", "version": 1, "name": "x", "messages": messages, "turns": turns}
    )


GOOD_TURN = {"size": 2, "cell_id": None, "model": "m", "usage": None, "choices": [], "finish_reason": "stop"}

BAD_FILES = {
    "deep-list": "[" * 200_000 + "]" * 200_000,
    "deep-dict": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "deep-in-message": saved(
        [GOOD_TURN], [{"role": "user", "content": "q"}, {"role": "assistant", "content": [[[[[]]]]] * 3}]
    ),
    "choices-int": saved([GOOD_TURN | {"choices": 5}]),
    "choices-of-ints": saved([GOOD_TURN | {"choices": [1, 2]}]),
    "usage-text": saved([GOOD_TURN | {"usage": "lots"}]),
    "usage-float": saved([GOOD_TURN | {"usage": {"completion_tokens": 1.5}}]),
    "usage-bool": saved([GOOD_TURN | {"usage": {"completion_tokens": True}}]),
    "model-int": saved([GOOD_TURN | {"model": 5}]),
    "cell-id-list": saved([GOOD_TURN | {"cell_id": ["x"]}]),
    "finish-dict": saved([GOOD_TURN | {"finish_reason": {}}]),
    "size-bool": saved([GOOD_TURN | {"size": True}, GOOD_TURN | {"size": True}]),
    "size-float": saved([GOOD_TURN | {"size": 2.0}]),
    "turn-list": saved([[2]]),
    "name-int": json.dumps(
        {"format": "nbchat.conversation", "version": 1, "name": 7, "messages": [], "turns": []}
    ),
    "lone-surrogate": saved(
        [GOOD_TURN], [{"role": "user", "content": "\ud83d"}, {"role": "assistant", "content": "a"}]
    ),
    "content-int": saved(
        [GOOD_TURN], [{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}]
    ),
    "not-utf8": b"\xff\xfe\x00garbage",
    "empty": "",
    "nan-usage": saved([GOOD_TURN]).replace('"usage": null', '"usage": {"completion_tokens": NaN}'),
}


@pytest.mark.parametrize("content", list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_a_malformed_file_is_refused_in_one_line_and_nothing_changes(cell, magics, tmp_path, content) -> None:
    assert cell("%%chat\nkeep me").ok
    before = magics.conversations["default"].messages()
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    run = cell(f"%chat load {path}")
    assert type(run.error) is UsageError, run.error
    assert "\n" not in str(run.error) and len(str(run.error)) < 300
    assert magics.conversations["default"].messages() == before
    assert cell("%chat history").ok and cell("%%chat\nstill fine").ok


def test_whatever_loads_also_shows_in_history_picks_and_saves_again(cell, magics, tmp_path) -> None:
    path = tmp_path / "ok.json"
    turn = GOOD_TURN | {"usage": {"prompt_tokens": 3, "completion_tokens": 2}, "choices": ["a", "b"]}
    path.write_text(saved([turn]))
    assert cell(f"%chat load {path}").ok
    assert cell("%chat history").ok and cell("%chat list").ok and cell("%chat pick 2").ok
    assert cell(f"%chat save {tmp_path / 'again.json'}").ok
    assert Conversation.load(tmp_path / "again.json").turns[0].reply == "b"


def test_a_save_that_fails_for_any_reason_leaves_the_old_file_and_no_temporary_file(
    tmp_path, monkeypatch
) -> None:
    target = tmp_path / "c.json"
    target.write_text("old")

    def explode(*args: object) -> None:
        raise RuntimeError("disk on fire")

    for name, error in (("fsync", RuntimeError), ("replace", KeyboardInterrupt)):
        with monkeypatch.context() as m:
            m.setattr(os, name, explode if error is RuntimeError else _raise(KeyboardInterrupt))
            with pytest.raises(error):
                write_atomically(target, "new")
        assert target.read_text() == "old"
        assert [p.name for p in tmp_path.iterdir()] == ["c.json"]
    with pytest.raises(NbChatError, match="was not changed"):
        write_atomically(target, "broken \ud83d text")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["c.json"]
    with pytest.raises(NbChatError, match="cannot write"):
        write_atomically(tmp_path / "missing" / "c.json", "x")


def _raise(error: type[BaseException]):
    def go(*args: object) -> None:
        raise error

    return go


def test_a_save_is_flushed_and_fsynced_before_the_rename(tmp_path, monkeypatch) -> None:
    order: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (order.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append("replace"), real_replace(a, b))[1])
    write_atomically(tmp_path / "c.json", "data")
    assert order[:2] == ["fsync", "replace"]
    assert (tmp_path / "c.json").read_text() == "data"
