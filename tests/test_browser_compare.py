"""notebooks/compare.ipynb in a real JupyterLab, run cell by cell in headless Chromium: the grid's
summary, agreement, confusion and side-by-side tables render, disagreements marked."""

from __future__ import annotations

import nbformat
import pytest
from kernels import NOTEBOOKS
from test_browser import ARTIFACTS, lab, lab_page, run_cell

from nbchat.testing.server import StandInServer

pytestmark = pytest.mark.browser
__all__ = ["lab"]  # the fixture, imported so this module can use it


@pytest.fixture
def lab_notebook() -> nbformat.NotebookNode:
    """notebooks/compare.ipynb itself, Markdown cells and all."""
    return nbformat.read(NOTEBOOKS / "compare.ipynb", as_version=4)


def test_the_compare_notebook_in_jupyterlab_renders_the_summary_and_rows_side_by_side(
    lab: str, lab_notebook: nbformat.NotebookNode, server: StandInServer
) -> None:
    artifacts = ARTIFACTS / "compare"
    sources = [c.source for c in lab_notebook.cells]
    with lab_page(lab, artifacts) as page:
        cells = page.locator(".jp-Notebook .jp-Cell")
        for index, cell in enumerate(lab_notebook.cells):
            if cell.cell_type == "code":
                run_cell(page, index)
        grid = sources.index(next(s for s in sources if s.startswith("%%chat --map") and "-o grid" in s))
        output = cells.nth(grid)
        summary = output.locator(".jp-RenderedMarkdown table", has_text="median latency")
        summary.wait_for(timeout=60_000)
        assert "accuracy (sentiment vs gold)" in summary.inner_text()
        assert "reviews × 3 models: 240/240 done" in output.inner_text()
        assert "(estimated ≈$" in output.inner_text(), "the summary's dollars are money, not math"
        kappa = output.locator(".jp-RenderedMarkdown table", has_text="Cohen's κ").inner_text()
        assert "gpt-4o-mini · cautious" in kappa
        rows = output.locator(".jp-RenderedMarkdown table", has_text="cautious.sentiment").inner_text()
        assert "R000" in rows and "≠" in rows and "✗" in rows
        assert output.locator(".jp-RenderedMarkdown table").count() == 6  # summary, κ, 3 confusions, rows
        page.set_viewport_size({"width": 1400, "height": 2200})  # the whole cell in one picture
        output.scroll_into_view_if_needed()
        output.screenshot(path=str(artifacts / "compare-cell.png"))
    asked = [b for b in server.bodies if b.get("response_format")]
    assert len(asked) == 240, "the second run of the cell asked nothing"
