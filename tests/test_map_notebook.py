"""notebooks/map.ipynb runs in a real kernel: 200 rows labelled with a schema, then as a batch."""

from __future__ import annotations

import pytest
from kernels import NOTEBOOKS, against, execute, outputs_of, text_of

from nbchat.testing.server import StandInServer

pytestmark = pytest.mark.kernel


def test_map_notebook_labels_200_rows_then_the_same_as_a_batch(server: StandInServer) -> None:
    nb = execute(NOTEBOOKS / "map.ipynb", against(server))

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
