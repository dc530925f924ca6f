"""Rebuilt history: a fresh kernel restores every conversation from a saved notebook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKE_KEY, Cell, Run, make_shell
from IPython.core.interactiveshell import InteractiveShell

from nbchat.magics import INSTANCES
from nbchat.testing.server import StandInServer


class Notebook:
    """Runs cells like a frontend that sends cell ids, and saves what a notebook would keep:
    each cell's last run, its execution count and the final state of its outputs."""

    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        self.cells: dict[str, dict[str, Any]] = {}

    def run(self, cell_id: str, source: str) -> Run:
        run = self.cell(source, cell_id=cell_id)
        assert run.ok, run.error
        outputs = [
            {"output_type": "display_data", "data": o.data, "metadata": o.metadata}
            for o in run.io.outputs
            if o.metadata  # updates without metadata are the waiting indicator and stream steps
        ]
        count = self.cell.shell.execution_count - 1
        self.cells[cell_id] = {
            "cell_type": "code",
            "id": cell_id,
            "source": source,
            "metadata": {},
            "execution_count": count,
            "outputs": outputs,
        }
        return run

    def save(self, path: Path) -> Path:
        nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": list(self.cells.values())}
        path.write_text(json.dumps(nb), encoding="utf-8")
        return path


def state(shell: InteractiveShell) -> dict[str, Any]:
    magics = INSTANCES[shell]
    return {
        name: {
            "messages": c.messages(),
            "cells": [t.cell_id for t in c.turns],
            "choices": [t.choices for t in c.turns],
        }
        for name, c in magics.conversations.items()
    }


@pytest.fixture
def kernels(env: None) -> Iterator[None]:
    yield
    InteractiveShell.clear_instance()


def test_rebuild_restores_every_conversation_exactly_as_the_kernel_that_wrote_the_notebook_had_it(
    kernels: None, server: StandInServer, tmp_path: Path
) -> None:
    original = Notebook(Cell(make_shell()))
    original.run("c1", "%%chat -s\nYou are terse.")
    original.run("c2", "%%chat\nFirst question")
    original.run("c3", "%%chat -c side\nSide question")
    original.run("c4", "%%chat --role assistant\nAn example answer")
    original.run("c5", "%%chat -n 2\nTwo choices please")
    original.run("c6", "%chat pick 2")
    server.script(text="a second sample")
    original.run("c2", "%%chat\nFirst question")  # re-run: replaces its exchange in place
    original.run("c7", "%%chat\nThird")
    original.run("c8", "%chat undo")
    original.run("c9", "%%chat\nFourth")
    original.run("c10", "%chat reset -c side")
    original.run("c11", "%%chat -c side\nSide again")
    expected = state(original.cell.shell)
    assert [m["content"] for m in expected["default"]["messages"]][:3] == [
        "You are terse.",
        "First question",
        "a second sample",
    ]
    saved = original.save(tmp_path / "analysis.ipynb")
    assert FAKE_KEY[3:9] not in saved.read_text()

    fresh = Cell(make_shell())
    run = fresh(f"%chat rebuild {saved}")
    assert run.ok, run.error
    assert "*default* (4 turns), *side* (1 turn)." in run.markdown
    assert state(fresh.shell) == expected
    requests = len(server.bodies)
    fresh("%%chat\nAnd now?", cell_id="c12")
    assert server.bodies[requests]["messages"][:-1] == expected["default"]["messages"]


def test_rebuild_finds_the_kernels_own_notebook_from_the_server_or_vs_code(
    kernels: None, server: StandInServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Notebook(Cell(make_shell()))
    original.run("a", "%%chat\nRemember me")
    saved = original.save(tmp_path / "mine.ipynb")

    monkeypatch.setenv("JPY_SESSION_NAME", str(saved))  # what jupyter_server sets for a kernel
    fresh = Cell(make_shell())
    assert fresh("%chat rebuild").ok
    assert state(fresh.shell)["default"]["messages"][0]["content"] == "Remember me"

    monkeypatch.delenv("JPY_SESSION_NAME")
    vscode = Cell(make_shell())
    vscode.shell.user_ns["__vsc_ipynb_file__"] = str(saved)
    assert "Rebuilt from" in vscode("%chat rebuild").markdown

    lost = Cell(make_shell())
    failed = lost("%chat rebuild")
    assert not failed.ok and "cannot tell which notebook this kernel runs" in str(failed.error)
    missing = lost(f"%chat rebuild {tmp_path / 'gone.ipynb'}")
    assert not missing.ok and "no such notebook" in str(missing.error)


def test_the_first_request_of_a_fresh_kernel_says_once_that_rebuild_can_restore_the_notebooks_replies(
    kernels: None, server: StandInServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Notebook(Cell(make_shell()))
    first = original.run("a", "%%chat\nHello")
    assert "rebuild" not in first.text
    saved = original.save(tmp_path / "mine.ipynb")
    monkeypatch.setenv("JPY_SESSION_NAME", str(saved))
    fresh = Cell(make_shell())
    hinted = fresh("%%chat\nAgain", cell_id="b")
    assert "`%chat rebuild` restores those conversations" in hinted.text
    assert "rebuild" not in fresh("%%chat\nOnce more", cell_id="c").text

    from nbchat import rebuild

    # Restart & Run All: the first chat cell runs again, nothing above it to restore
    run_all = Cell(make_shell())
    assert "rebuild" not in run_all("%%chat\nHello", cell_id="a").text
    no_ids = Cell(make_shell())  # nbclient sends no cell id: the cell is found by its text
    assert "rebuild" not in no_ids("%%chat\nHello").text
    # a cell below earlier replies, run first in a fresh kernel: the hint helps there
    below = Notebook(Cell(make_shell()))
    below.run("a", "%%chat\nHello")
    below.run("z", "%%chat\nAnd then")
    below.save(saved)
    later = Cell(make_shell())
    assert "`%chat rebuild` restores" in later("%%chat\nAnd then", cell_id="z").text

    monkeypatch.setattr(rebuild, "HINT_MAX_BYTES", saved.stat().st_size - 1)
    big = Cell(make_shell())
    assert "rebuild" not in big("%%chat\nAgain", cell_id="b").text, "a huge notebook is not parsed for a hint"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("messages.0.content", 5),
        ("messages.1.content", {"text": "x"}),
        ("messages.0.role", "wizard"),
        ("messages", []),
        ("position", -1),
        ("usage", "lots"),
        ("model", ["gpt"]),
    ],
)
def test_a_tampered_exchange_record_is_left_out_and_nothing_rebuilt_can_break_a_later_cell(
    kernels: None, server: StandInServer, tmp_path: Path, field: str, value: Any
) -> None:
    original = Notebook(Cell(make_shell()))
    original.run("c1", "%%chat\nFirst question")
    original.run("c2", "%%chat\nSecond question")
    record = original.cells["c2"]["outputs"][-1]["metadata"]["nbchat"]["exchange"]
    *path, last = field.split(".")
    for key in path:
        record = record[int(key)] if key.isdigit() else record[key]
    record[int(last) if last.isdigit() else last] = value
    saved = original.save(tmp_path / "tampered.ipynb")

    fresh = Cell(make_shell())
    assert fresh(f"%chat rebuild {saved}").ok
    turns = INSTANCES[fresh.shell].conversations["default"].turns
    assert [t.messages[0]["content"] for t in turns] == ["First question"]
    for later in (
        "%chat history",
        "%%chat\nNext",
        f"%chat save {tmp_path / 'c.json'}",
        f"%chat load {tmp_path / 'c.json'}",
    ):
        run = fresh(later)
        assert run.ok, (later, run.error)
