"""What terminal IPython prints: tables aligned whatever the script (CJK takes two columns),
and ``--logprobs K`` with its K alternatives, labelled as a reply's tokens."""

from __future__ import annotations

from IPython.utils.capture import capture_output
from terminal import IPython

from nbchat import render


def test_a_table_with_wide_characters_lines_up_in_a_terminal() -> None:
    with capture_output() as io:
        render.table(
            ["name", "note"], [["東京都", "capital"], ["Zürich", "lake"], ["café", "x"]], terminal=True
        )
    lines = io.stdout.splitlines()
    # the second column starts at the same screen column on every line
    starts = [
        render.columns(line[: line.index(word)])
        for line, word in zip(lines[2:], ["capital", "lake", "x"], strict=True)
    ]
    assert len(set(starts)) == 1, io.stdout
    assert render.columns("東京都") == 6 and render.columns("cafe\u0301") == 4


def test_logprobs_in_a_terminal_show_the_alternatives_and_call_them_a_replys_tokens(ipython: IPython) -> None:
    out = ipython.run("%%chat --logprobs 2\nHello there")
    assert "token probabilities:" in out and "completion:" not in out
    assert "' Hello'   (also: ' HELLO' " in out
