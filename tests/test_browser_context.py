"""notebooks/context.ipynb in a real JupyterLab, run cell by cell in headless Chromium: the
figure reaches the server as an image part and the dry-run receipt renders as a table."""

from __future__ import annotations

import nbformat
import pytest
from kernels import NOTEBOOKS
from test_browser import ARTIFACTS, lab, lab_page, run_cell, wait_for

from nbchat.content import url_info

pytestmark = pytest.mark.browser
__all__ = ["lab"]  # the fixture, imported so this module can use it


@pytest.fixture
def lab_notebook() -> nbformat.NotebookNode:
    """notebooks/context.ipynb itself, Markdown cells and all."""
    return nbformat.read(NOTEBOOKS / "context.ipynb", as_version=4)


def test_the_context_notebook_in_jupyterlab_sends_the_figure_and_renders_the_receipt(
    lab, lab_notebook, server
) -> None:
    artifacts = ARTIFACTS / "context"
    sources = [c.source for c in lab_notebook.cells]  # the page shows each cell, in this order
    with lab_page(lab, artifacts) as page:
        cells = page.locator(".jp-Notebook .jp-Cell")
        for index, cell in enumerate(lab_notebook.cells):
            if cell.cell_type == "code":
                run_cell(page, index)
        dry = sources.index(next(s for s in sources if s.startswith("%%chat --dry-run")))
        receipt = cells.nth(dry).locator(".jp-RenderedMarkdown table", has_text="histogram.png")
        receipt.wait_for(timeout=30_000)
        text = receipt.inner_text()
        assert "by_store" in text and "--image" in text and "≈85" in text
        body = cells.nth(dry).locator(".jp-RenderedMarkdown pre", has_text="data:image/png;base64,…")
        assert "px" in body.inner_text()
        page.screenshot(path=str(artifacts / "dry-run-receipt.png"), full_page=True)

        figure = sources.index("%%chat\nWhat does this histogram tell me? {fig}")
        reply = cells.nth(figure).locator(".jp-RenderedMarkdown", has_text="Echo: What does this histogram")
        reply.wait_for(timeout=30_000)
        reply.scroll_into_view_if_needed()
        assert "[image/png 600×300]" in (reply.text_content() or "")

    wait_for(
        lambda: any(isinstance(b["messages"][-1]["content"], list) for b in server.bodies), 30, "the figure"
    )
    parts = [
        p
        for b in server.bodies
        if isinstance(b["messages"][-1]["content"], list)
        for p in b["messages"][-1]["content"]
        if p["type"] == "image_url"
    ]
    assert [url_info(p["image_url"]["url"])[2] for p in parts] == [(600, 300)]
