"""``%chat history`` and a ``.md`` export show a message the way it was written: a printed
table (a ``{df}``, a ``describe`` result) keeps its lines and columns, a multi-line message
its line breaks."""

from __future__ import annotations

import pandas as pd

from nbchat.markdown import keep_lines

TABLE = "   a  bb\n0  1   x\n1  2   y\n2  3  zz"


def test_history_keeps_a_substituted_tables_lines_and_columns(cell, shell) -> None:
    shell.user_ns["df"] = pd.DataFrame({"a": [1, 2, 3], "bb": ["x", "y", "zz"]})
    assert cell("%%chat\nLook at this:\n{df}\nand tell me").ok
    shown = cell("%chat history").markdown
    assert f"```\n{TABLE}\n```" in shown  # aligned, in a block of its own
    assert "Look at this:  \n" in shown  # a line of its own, not joined to the next
    assert "columns: a (int64), bb (str)  \n" in shown
    assert "**assistant**" in shown


def test_markdown_export_keeps_a_tool_results_lines(cell, shell, tmp_path) -> None:
    shell.user_ns["df"] = pd.DataFrame({"a": [1, 2, 3], "bb": ["x", "y", "zz"]})
    assert cell("%%chat --tools describe\nWhat is in describe(name='df')?").ok
    assert cell(f"%chat export {tmp_path / 'talk.md'}").ok
    text = (tmp_path / "talk.md").read_text()
    tool = text.split("**tool**\n\n", 1)[1]
    assert tool.startswith("DataFrame df: 3 rows × 2 columns  \n")
    assert f"```\n{TABLE}\n```" in tool


def test_kept_lines_leave_markdown_structure_and_code_as_written() -> None:
    text = "a list:\n- one\n  - nested\n```py\nx  =  1\n```\n| a | b |\n|---|---|"
    assert keep_lines(text) == "a list:  \n- one  \n  - nested  \n```py\nx  =  1\n```\n| a | b |  \n|---|---|"
