"""A chat notebook in CI: papermill runs it once against the stand-in to fill a reply cache,
then again with no key, no server and ``NBCHAT_CACHE=only`` — the same outputs — and a cell
edited since makes the run fail loudly instead of asking a model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from kernels import text_of
from nbformat import NotebookNode

from nbchat.testing.server import StandInServer

pytestmark = pytest.mark.kernel

CELLS = [
    "%load_ext nbchat",
    "items = ['pen', 'ink', 'paper']",
    "%%chat\nName one use of a pen.",
    "%%chat --map items -o labels\nLabel: {item}",
    "print([str(label) for label in labels])",
]


def notebook(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def run(source: Path, out: Path) -> NotebookNode:
    executed: NotebookNode = papermill.execute_notebook(
        str(source), str(out), kernel_name="python3", progress_bar=False, execution_timeout=120
    )
    return executed


def shown(nb: NotebookNode) -> list[list[str]]:
    """What each cell shows, less what says where it came from: a reply's footer and the map's
    summary line (a replay's say "replayed", as they should)."""
    return [
        [
            re.split(r"\n\n(?:<sub>|— )", text_of(o))[0]
            for o in c.outputs
            if not text_of(o).startswith("items: ")
        ]
        for c in nb.cells
    ]


def summary(nb: NotebookNode) -> str:
    return "".join(text_of(o) for o in nb.cells[3].outputs if text_of(o).startswith("items: "))


def test_papermill_replays_a_chat_notebook_from_the_cache_without_key_or_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = notebook(tmp_path / "chat.ipynb", CELLS)
    monkeypatch.setenv("NBCHAT_CACHE_PATH", str(tmp_path / "replies.sqlite3"))
    monkeypatch.setenv("NBCHAT_CACHE", "replay")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-papermill")
    with StandInServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        made = run(source, tmp_path / "made.ipynb")
        assert len(server.bodies) == 4, "one %%chat cell and three map items were asked"
    assert shown(made)[4] == ["['Echo: Label: pen', 'Echo: Label: ink', 'Echo: Label: paper']\n"]
    assert shown(made)[2] == ["Echo: Name one use of a pen."]

    # CI: no key, the server gone (its URL is still the one the cache was filled from)
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("NBCHAT_CACHE", "only")
    replayed = run(source, tmp_path / "replayed.ipynb")
    assert shown(replayed) == shown(made)
    assert summary(made).startswith("items: 3/3 done") and "replayed" not in summary(made)
    assert summary(replayed).startswith("items: 3/3 done · 3 replayed")

    for at, edited in (
        (2, "%%chat\nName two uses of a pen."),
        (3, "%%chat --map items -o labels\nTag: {item}"),
    ):
        cells = [edited if i == at else c for i, c in enumerate(CELLS)]
        stale = notebook(tmp_path / f"edited{at}.ipynb", cells)
        with pytest.raises(papermill.PapermillExecutionError) as caught:
            run(stale, tmp_path / f"failed{at}.ipynb")
        error: Any = caught.value
        assert error.cell_index == at and "not in the reply cache" in error.evalue
        assert "this cell changed since it was made" in error.evalue


def test_papermill_stops_at_a_map_whose_every_item_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cells = [
        "%load_ext nbchat",
        "items = ['a', 'b']",
        "%%chat --map items --concurrency 1 -o out\n{item}",
        "after = 1",
    ]
    source = notebook(tmp_path / "failing.ipynb", cells)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-papermill")
    with StandInServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        server.script(status=400, error="bad item")
        server.script(status=422, error="worse item")
        with pytest.raises(papermill.PapermillExecutionError) as caught:
            run(source, tmp_path / "failed.ipynb")
    error: Any = caught.value
    assert error.cell_index == 2 and error.ename == "MapFailed"
    assert error.evalue.startswith("all 2 items failed; the first, #0: 400 Bad Request: bad item")
    executed = nbformat.read(tmp_path / "failed.ipynb", as_version=4)
    last = next(c for c in executed.cells if c.source == "after = 1")
    assert last.outputs == [] and last.execution_count is None, "the run stopped at the map"
