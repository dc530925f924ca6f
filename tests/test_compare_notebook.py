"""notebooks/compare.ipynb runs in a real kernel: 80 reviews asked of three models (one a Chat
with its own system prompt), the grid, agreement and accuracy, a re-run that asks nothing."""

from __future__ import annotations

import pytest
from kernels import NOTEBOOKS, against, execute, outputs_of, text_of

from nbchat.testing.server import StandInServer

pytestmark = pytest.mark.kernel

CELL = "%%chat --map reviews --compare gpt-4o-mini,gpt-4o,cautious --schema label --truth gold --concurrency 16 -o"


def test_compare_notebook_asks_each_review_of_each_model_once_and_compares_them(
    server: StandInServer,
) -> None:
    nb = execute(NOTEBOOKS / "compare.ipynb", against(server))

    graded = [b for b in server.bodies if b.get("response_format")]
    by_model = {m: [b for b in graded if b["model"] == m] for m in ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")}
    assert {m: len(bodies) for m, bodies in by_model.items()} == {
        "gpt-4o-mini": 80,
        "gpt-4o": 80,
        "gpt-4.1-mini": 80,
    }
    assert len(graded) == 240, "the re-run asked nothing again"
    assert server.max_inflight <= 16
    systems = {m: {b["messages"][0]["content"] for b in bodies} for m, bodies in by_model.items()}
    assert systems["gpt-4o"] == {"You label product reviews: pos, neg or neu."}
    assert systems["gpt-4.1-mini"] == {"You label product reviews. When in doubt, say neu."}
    assert all("gold" not in str(b["messages"]) for b in graded), "the truth column is never sent"

    dry = "\n".join(text_of(o) for o in outputs_of(nb, CELL.replace(" -o", "")))
    assert "80 items × 3 models = 240 requests" in dry and "estimated ≈" in dry
    first, again = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(CELL)]
    shown = "\n".join(text_of(o) for o in first.outputs)
    assert "reviews × 3 models: 240/240 done" in shown
    assert "accuracy (sentiment vs gold)" in shown and "Cohen's κ" in shown
    assert "cautious: true label ↓, answer →" in shown and "| ≠ |" in shown
    assert "reviews × 3 models: 240/240 done · 240 replayed" in "\n".join(text_of(o) for o in again.outputs)

    head = text_of(outputs_of(nb, "grid.head()")[0])
    assert "gpt-4o-mini.sentiment" in head and "cautious.sentiment" in head and "R000" in head
    kappas = text_of(outputs_of(nb, "from nbchat.compare import comparison_of")[0])
    assert "('gpt-4o-mini', 'gpt-4o'," in kappas
    short = "\n".join(text_of(o) for o in outputs_of(nb, "chat = Chat("))
    assert "compare × 2 models: 8/8 done" in short
    assert "Echo: In one word" in short and "gpt-4.1-mini" in short
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
