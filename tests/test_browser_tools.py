"""A tool call in a real JupyterLab (headless Chromium): the call shows as a collapsed block
above the reply, and opening it shows the result."""

from __future__ import annotations

import pytest
from test_browser import ARTIFACTS, dismiss_dialogs, lab, lab_notebook, lab_page, run_cell

pytestmark = pytest.mark.browser

__all__ = ["lab", "lab_notebook"]  # the fixtures, used by name


@pytest.fixture
def lab_cells() -> list[str]:
    return [
        "%load_ext nbchat",
        "rows = [1, 2, 3]",
        "%%chat --tools describe\nWhat is in describe(name='rows')?",
    ]


def test_a_tool_call_is_a_collapsible_block_above_the_reply_in_jupyterlab(lab, server) -> None:
    artifacts = ARTIFACTS / "tools"
    with lab_page(lab, artifacts) as page:
        for index in range(3):
            run_cell(page, index)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
        reply = cell.locator(".jp-RenderedMarkdown", has_text="Echo: [1, 2, 3]")
        reply.wait_for(timeout=30_000)
        block = reply.locator("details.nbchat-tool")
        assert block.count() == 1
        assert "describe(name='rows')" in block.locator("summary").inner_text()
        result = block.locator("pre")
        assert not result.is_visible()  # collapsed until opened
        page.screenshot(path=str(artifacts / "1-collapsed.png"), full_page=True)
        dismiss_dialogs(page)
        block.locator("summary").click(timeout=30_000)
        result.wait_for(state="visible", timeout=30_000)
        assert result.inner_text() == "[1, 2, 3]"
        # the block sits above the reply's text
        assert reply.inner_text().index("describe(name='rows')") < reply.inner_text().index("Echo: [1, 2, 3]")
        page.screenshot(path=str(artifacts / "2-open.png"), full_page=True)
    assert server.bodies[1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": server.bodies[1]["messages"][-2]["tool_calls"][0]["id"],
        "content": "[1, 2, 3]",
    }
