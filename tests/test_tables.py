"""Every table nbchat shows keeps one row per line, whatever its cells hold."""

from __future__ import annotations

from conftest import Cell, Run


def rows_of(run: Run) -> tuple[list[str], list[str]]:
    markdown = run.markdown.splitlines()
    plain = [str(d["text/plain"]) for d in run.outputs if "text/markdown" in d][-1].splitlines()
    return markdown, plain


def test_map_results_with_paragraphs_and_pipes_stay_one_row_per_item(cell: Cell) -> None:
    cell('items = ["a | b\\n\\nsecond paragraph", "plain", "costs $3\\nand $4"]')
    run = cell("%%chat --map items\nLabel {item}")
    assert run.ok, run.error
    markdown, plain = rows_of(run)
    assert len(markdown) == 2 + 3 and all(r.startswith("| ") and r.endswith(" |") for r in markdown)
    # each row has exactly its two cells: the pipe in the reply is escaped, not a new column
    assert all(r.replace("\\|", "").count("|") == 3 for r in markdown)
    assert "a \\| b<br><br>second paragraph" in markdown[2]
    assert "<span>\\$</span>3<br>and <span>\\$</span>4" in markdown[4]
    assert len(plain) == 2 + 3 and "a | b ↵  ↵ second paragraph" in plain[2]


def test_a_structured_reply_with_a_multi_line_value_is_one_row_per_field(cell: Cell) -> None:
    run = cell("%%chat --schema 'summary, score float'\nfirst line\n\nlast | line")
    assert run.ok, run.error
    markdown, plain = rows_of(run)
    assert len(markdown) == 2 + 2 and all(r.replace("\\|", "").count("|") == 3 for r in markdown)
    assert "first line<br><br>last \\| line" in markdown[2]
    assert len(plain) == 2 + 2 and plain[2].startswith("summary") and "last | line" in plain[2]
