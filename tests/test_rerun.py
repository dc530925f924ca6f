"""Re-running a cell: with a cell id, a re-run replaces that cell's exchange."""

from __future__ import annotations


def said(body) -> list[str]:
    return [m["content"] for m in body["messages"]]


def test_rerunning_the_last_cell_replaces_its_exchange(cell, server, magics) -> None:
    assert cell("%%chat\nfirst", cell_id="a").ok
    assert cell("%%chat\nsecond", cell_id="b").ok
    assert cell("%%chat\nsecond, edited", cell_id="b").ok
    assert said(server.bodies[-1]) == ["first", "Echo: first", "second, edited"]
    assert [m["content"] for m in magics.conversations["default"].messages()] == [
        "first",
        "Echo: first",
        "second, edited",
        "Echo: second, edited",
    ]


def test_rerunning_a_middle_cell_sends_the_history_before_it_and_keeps_later_exchanges(
    cell, server, magics
) -> None:
    for cid, text in (("a", "one"), ("b", "two"), ("c", "three")):
        assert cell(f"%%chat\n{text}", cell_id=cid).ok
    assert cell("%%chat\ntwo again", cell_id="b").ok
    assert said(server.bodies[-1]) == ["one", "Echo: one", "two again"]
    assert [m["content"] for m in magics.conversations["default"].messages()] == [
        "one",
        "Echo: one",
        "two again",
        "Echo: two again",
        "three",
        "Echo: three",
    ]


def test_without_a_cell_id_exchanges_are_appended(cell, server) -> None:
    assert cell("%%chat\nsame").ok
    assert cell("%%chat\nsame").ok
    assert said(server.bodies[-1]) == ["same", "Echo: same", "same"]


def test_rerun_append_setting_appends_even_with_a_cell_id(cell, server) -> None:
    assert cell("%chatconfig rerun=append").ok
    assert cell("%%chat\nsame", cell_id="a").ok
    assert cell("%%chat\nsame", cell_id="a").ok
    assert said(server.bodies[-1]) == ["same", "Echo: same", "same"]


def test_rerun_after_undo_or_reset_appends(cell, server) -> None:
    assert cell("%%chat\none", cell_id="a").ok
    assert cell("%%chat\ntwo", cell_id="b").ok
    assert cell("%chat undo").ok
    assert cell("%%chat\ntwo again", cell_id="b").ok
    assert said(server.bodies[-1]) == ["one", "Echo: one", "two again"]
    assert cell("%chat reset").ok
    assert cell("%%chat\none again", cell_id="a").ok
    assert said(server.bodies[-1]) == ["one again"]


def test_rerun_only_touches_its_own_conversation(cell, server, magics) -> None:
    assert cell("%%chat -c x\nin x", cell_id="a").ok
    assert cell("%%chat -c y\nin y", cell_id="b").ok
    assert cell("%%chat -c x\nin x, again", cell_id="a").ok
    assert said(server.bodies[-1]) == ["in x, again"]
    assert [m["content"] for m in magics.conversations["y"].messages()] == ["in y", "Echo: in y"]
    assert len(magics.conversations["x"].turns) == 1


def test_a_cell_that_failed_first_time_is_appended_when_rerun(cell, server, magics) -> None:
    assert cell("%%chat\none", cell_id="a").ok
    server.script(status=400, error="bad")
    assert not cell("%%chat\ntwo", cell_id="b").ok
    assert cell("%%chat\ntwo", cell_id="b").ok
    assert said(server.bodies[-1]) == ["one", "Echo: one", "two"]
    assert len(magics.conversations["default"].turns) == 2


def test_a_primed_example_reply_is_replaced_too(cell, server, magics) -> None:
    assert cell("%%chat --role assistant\nExample A", cell_id="p").ok
    assert cell("%%chat --role assistant\nExample B", cell_id="p").ok
    assert [m["content"] for m in magics.conversations["default"].messages()] == ["Example B"]
