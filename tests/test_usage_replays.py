"""``%chat usage`` counts every item a map did not ask again, kept from its earlier results
or answered from the reply cache, and what they saved."""

from __future__ import annotations


def usage_rows(cell) -> dict[str, str]:
    text = cell("%chat usage").text
    return {line.split("  ")[0]: line for line in text.splitlines()}


def test_a_rerun_maps_kept_and_replayed_items_count_in_usage(cell, shell, server) -> None:
    shell.user_ns["items"] = ["a", "b", "c"]
    assert cell("%%chat --map items -o r\nSay {item}").ok
    assert len(server.bodies) == 3
    assert cell("%%chat --map items -o r\nSay {item}").ok  # continues from r: nothing asked
    assert len(server.bodies) == 3
    rows = usage_rows(cell)
    assert rows["total"].split()[1] == "3", rows
    assert "none: 3 replayed" in rows["gpt-4o-mini (replayed)"]
    assert "$" in rows["saved by replays"]

    assert cell("%chatconfig cache=replay").ok
    assert cell("%%chat --map items\nAgain {item}").ok  # asked, and stored
    assert cell("%%chat --map items\nAgain {item}").ok  # from the reply cache
    assert len(server.bodies) == 6
    rows = usage_rows(cell)
    assert rows["total"].split()[1] == "6", rows
    assert "none: 6 replayed" in rows["gpt-4o-mini (replayed)"]
