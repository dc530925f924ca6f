"""A JSON file the user names (a conversation to load, a notebook to rebuild from) that is
missing, unreadable, not JSON or nested too deeply is one clear line, never a traceback."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError


@pytest.mark.parametrize("verb", ["load", "rebuild"])
@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "no such"),
        (b"\xff\xfe not text", "cannot read"),
        (b"{not json", "is not valid JSON (Expecting property name enclosed in double quotes, line 1)"),
        (b"[" * 100_000 + b"]" * 100_000, "is nested too deeply to be a"),
    ],
    ids=["missing", "not-utf8", "not-json", "deep"],
)
def test_a_file_that_cannot_be_read_as_json_is_one_line(cell, magics, tmp_path, verb, content, said) -> None:
    path = tmp_path / ("c.json" if verb == "load" else "n.ipynb")
    if content is not None:
        path.write_bytes(content)
    assert cell("%%chat\nbefore").ok
    before = list(magics.conversations["default"].turns)
    run = cell(f"%chat {verb} {path}")
    assert not run.ok
    message = str(run.error)
    assert said in message and "\n" not in message, message
    assert isinstance(run.error, UsageError) or "nbchat: " in run.io.stdout
    assert "Traceback" not in run.io.stdout + run.io.stderr
    assert magics.conversations["default"].turns == before
