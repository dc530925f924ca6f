"""In a real JupyterLab: the kernel learns its notebook's path from JPY_SESSION_NAME, and after a
restart `%chat rebuild` restores the conversation from the saved notebook."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

# the JupyterLab fixture and helpers of the widget browser test
from test_browser import ARTIFACTS, TOKEN, lab, lab_notebook, lab_page, run_cell, wait_for  # noqa: F401

from nbchat.testing.server import StandInServer

pytestmark = pytest.mark.browser


@pytest.fixture
def lab_cells() -> list[str]:
    return [
        "%load_ext nbchat",
        "import os\nprint(os.environ.get('JPY_SESSION_NAME'))",
        "%%chat\nRemember the number 7.",
        "%chat rebuild",
        "%%chat\nWhich number?",
    ]


def restart_kernel(url: str) -> None:
    """What Kernel > Restart does, through the server's REST API (no dialog to click)."""
    with urllib.request.urlopen(f"{url}/api/sessions?token={TOKEN}") as response:
        kernel = json.load(response)[0]["kernel"]["id"]
    request = urllib.request.Request(f"{url}/api/kernels/{kernel}/restart?token={TOKEN}", method="POST")
    urllib.request.urlopen(request).close()


def test_a_restarted_kernel_in_jupyterlab_rebuilds_its_conversation_from_its_own_notebook(
    lab: str,  # noqa: F811 — the fixture imported from test_browser
    server: StandInServer,
    tmp_path: Path,
) -> None:
    notebook = tmp_path / "lab.ipynb"
    with lab_page(lab, ARTIFACTS / "rebuild") as page:
        cells = page.locator(".jp-Notebook .jp-Cell")
        run_cell(page, 0)
        run_cell(page, 1)
        shown = cells.nth(1).locator(".jp-OutputArea-output")
        shown.wait_for(timeout=30_000)
        # jupyter_server names the notebook, absolute, in the kernel's environment
        assert shown.inner_text().strip() == str(notebook)
        run_cell(page, 2)
        cells.nth(2).locator(".jp-RenderedMarkdown", has_text="Echo: Remember the number 7.").wait_for(
            timeout=30_000
        )
        page.keyboard.press("Control+s")
        wait_for(lambda: '"exchange"' in notebook.read_text(), 30, "the notebook to be saved")

        restart_kernel(lab)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
        run_cell(page, 0)
        run_cell(page, 3)
        note = cells.nth(3).locator(".jp-RenderedMarkdown", has_text="Rebuilt from")
        note.wait_for(timeout=30_000)
        assert "lab.ipynb" in note.inner_text() and "default (1 turn)" in note.inner_text()
        before = len(server.bodies)
        run_cell(page, 4)
        wait_for(lambda: len(server.bodies) > before, 30, "the next request")
    sent = [m["content"] for m in server.bodies[-1]["messages"]]
    assert sent == ["Remember the number 7.", "Echo: Remember the number 7.", "Which number?"]
