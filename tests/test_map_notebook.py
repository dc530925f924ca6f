"""notebooks/map.ipynb runs in a real kernel: 200 rows labelled with a schema, then as a batch."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from run_notebook import execute, text_of  # noqa: E402

pytestmark = pytest.mark.kernel


def outputs_of(nb, source_start: str) -> list:  # type: ignore[no-untyped-def]
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    assert cells, f"no cell starts with {source_start!r}"
    return cells[0].outputs


def test_map_notebook_labels_200_rows_then_the_same_as_a_batch(server) -> None:  # type: ignore[no-untyped-def]
    nb = execute(
        ROOT / "notebooks" / "map.ipynb", {"OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "sk-local"}
    )

    mapped = [b for b in server.bodies if b.get("response_format")]
    assert len(mapped) == 200 and server.max_inflight <= 16
    assert all(b["response_format"]["json_schema"]["strict"] for b in mapped)
    assert {b["messages"][0]["content"] for b in mapped} == {"You label product reviews. Be consistent."}

    summary = "\n".join(text_of(o) for o in outputs_of(nb, "%%chat --map reviews --schema")[:1])
    assert "reviews: 200/200 done" in summary and "tokens" in summary
    head = text_of(outputs_of(nb, "labels.head(3)")[0])
    assert "sentiment" in head and "stars" in head and "topics" in head
    assert text_of(outputs_of(nb, "len(labels)")[0]).startswith("(200, ['sentiment', 'stars', 'topics'], [])")

    batch_cell = next(c for c in nb.cells if c.cell_type == "code" and "--batch" in c.source)
    shown = "\n".join(text_of(o) for o in batch_cell.outputs)
    assert "BatchJob" in shown and "batch_standin" in shown
    assert text_of(outputs_of(nb, "batch_labels = ")[0]).strip() == "True"
    files = text_of(outputs_of(nb, "%chat files")[0])
    assert "nbchat-map.jsonl" in files and "batch_output" in files
