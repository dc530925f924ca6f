"""``-f code`` puts the reply's code into the next cell once: a re-run of the cell, or its
replay after Restart & Run All, does not queue the same code again, so Run All twice leaves
the notebook as it was (before, each run inserted a cell and then ran it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from nbchat.testing.server import StandInServer

ASK = "%%chat -f code\nWrite code:\n```python\nprint(8)\n```"


class Frontend(NotebookClient):
    """nbclient, plus what JupyterLab does with a ``set_next_input`` payload: a new cell
    below the one that ran, which Run All then runs too."""

    def __init__(self, nb: Any, **kwargs: Any) -> None:
        super().__init__(nb, kernel_name="python3", timeout=120, on_cell_executed=self.insert, **kwargs)

    def insert(self, cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        for payload in execute_reply["content"].get("payload", []):
            if payload.get("source") == "set_next_input" and not payload.get("replace"):
                self.nb.cells.insert(cell_index + 1, nbformat.v4.new_code_cell(payload["text"]))


@pytest.mark.kernel
def test_run_all_twice_leaves_the_cell_count_unchanged(server: StandInServer, tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in ["%load_ext nbchat", ASK, "print('the end')"]]
    )
    env = {
        **os.environ,
        "OPENAI_BASE_URL": server.url,
        "OPENAI_API_KEY": "sk-local",
        "NBCHAT_CACHE": "replay",
        "NBCHAT_CACHE_PATH": str(tmp_path / "replies.sqlite3"),
    }
    counts = []
    for _run in range(2):  # Restart & Run All, twice: a new kernel each time
        Frontend(nb).execute(env=env)
        counts.append(len(nb.cells))
    assert counts == [4, 4]
    assert nb.cells[2].source == "print(8)"  # the code, once, right below the cell that asked
    assert [c.source for c in nb.cells].count("print(8)") == 1
    assert len(server.bodies) == 1  # the second run replayed


def test_a_rerun_of_the_same_cell_does_not_queue_its_code_again(shell, cell, server) -> None:
    assert cell(ASK, cell_id="ask").ok
    assert shell.rl_next_input == "print(8)"
    shell.rl_next_input = None  # the frontend took it
    assert cell(ASK, cell_id="ask").ok  # asked again (the cache is off): the same code
    assert shell.rl_next_input is None
    assert len(server.bodies) == 2
    # other code, or the same code asked by another cell, is queued
    assert cell(ASK.replace("print(8)", "print(9)"), cell_id="ask").ok
    assert shell.rl_next_input == "print(9)"
    shell.rl_next_input = None
    assert cell(ASK, cell_id="another").ok
    assert shell.rl_next_input == "print(8)"
