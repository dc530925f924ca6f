"""The widgets in a real JupyterLab, driven in headless Chromium: move the temperature slider, run a
%%chat cell, and check the request the server received and the reply on the page."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
TOKEN = "nbchat-browser-test"

pytestmark = pytest.mark.browser


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (.ci/run installs it)"
    try:
        import jupyterlab  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as e:
        return f"{e.name} is not installed"
    return None


if (reason := _missing()) is not None:
    if os.environ.get("CI"):
        raise RuntimeError(f"the browser test cannot run in CI: {reason}")
    pytest.skip(reason, allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab_cells() -> list[str]:
    """The code cells of the notebook the browser opens (a test module may override this)."""
    return [
        "%load_ext nbchat",
        "%chatconfig --sliders",
        "%%chat\nWhich temperature did you get?",
        "%%chat -f widget -n 2\nPick a colour",
    ]


@pytest.fixture
def lab(server, tmp_path, lab_cells) -> Iterator[str]:
    """JupyterLab on 127.0.0.1 with token auth; its kernels reach the stand-in server."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in lab_cells]
    nbformat.write(nb, tmp_path / "lab.ipynb")
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_BASE_URL": server.url,
        "OPENAI_API_KEY": "sk-lab",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    log = open(tmp_path / "lab.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={tmp_path}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--allow-root",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(
                    "JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:]
                ) from None
            time.sleep(0.3)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def wait_for(predicate, seconds: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@contextmanager
def lab_page(lab: str, artifacts: Path) -> Iterator[Any]:
    """lab.ipynb open in headless Chromium, its kernel idle; ``last.png`` on the way out."""
    from playwright.sync_api import sync_playwright

    if artifacts.exists():
        shutil.rmtree(artifacts)
    artifacts.mkdir(parents=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{lab}/lab/tree/lab.ipynb?token={TOKEN}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            # a kernel-select dialog would keep the kernel from starting: answer it while waiting
            wait_for(lambda: not dismiss_dialogs(page) and idle.count() > 0, 90, "the kernel to be idle")
            yield page
        finally:
            page.screenshot(path=str(artifacts / "last.png"), full_page=True)
            browser.close()


def dismiss_dialogs(page: Any) -> bool:
    """Close any JupyterLab dialog that would block a click (a kernel to select, a file changed
    on disk, ...) with its default button, which keeps the notebook and its kernel. Returns
    whether there was one."""
    from playwright.sync_api import Error

    dialogs = page.locator(".jp-Dialog")
    found = False
    for _attempt in range(5):
        if dialogs.count() == 0:
            return found
        found = True
        accept = dialogs.first.locator(".jp-Dialog-button.jp-mod-accept")
        try:
            if accept.count():
                accept.first.click(timeout=5_000)
            else:
                page.keyboard.press("Escape")
            dialogs.first.wait_for(state="detached", timeout=5_000)
        except Error:
            page.keyboard.press("Escape")
    return found


def run_cell(page: Any, index: int) -> None:
    """Click into the cell and run it in place, as a user would (Ctrl+Enter), until it
    shows a new execution count. A dialog in the way is dismissed first; a cell the kernel
    has received ([*]) is waited for, however loaded the machine, and never sent twice."""
    from playwright.sync_api import Error

    cells = page.locator(".jp-Notebook .jp-Cell")
    prompt = cells.nth(index).locator(".jp-InputPrompt")
    before = prompt.inner_text()
    for _attempt in range(3):  # a keypress sent while the kernel connects can be lost
        dismiss_dialogs(page)
        try:
            cells.nth(index).locator(".jp-InputArea-editor").click(timeout=15_000)
        except Error:
            continue  # something covered the cell: dismiss it and click again
        page.keyboard.press("Control+Enter")
        started, queued = time.monotonic(), False
        while time.monotonic() - started < (180 if queued else 20):
            now = prompt.inner_text()
            if re.search(r"\[\d+\]", now) and (now != before or queued):
                return
            queued = queued or "*" in now
            if not queued and dismiss_dialogs(page):
                break  # the dialog may have taken the keypress: send it again
            time.sleep(0.2)
    raise AssertionError(f"cell {index} did not run")


def test_moving_the_temperature_slider_in_jupyterlab_changes_the_next_request(lab, server) -> None:
    with lab_page(lab, ARTIFACTS) as page:
        cells = page.locator(".jp-Notebook .jp-Cell")
        run_cell(page, 0)  # %load_ext nbchat
        run_cell(page, 1)  # %chatconfig --sliders
        slider = page.locator(".widget-slider", has=page.locator("label", has_text="temperature"))
        slider.wait_for(timeout=60_000)
        readout = slider.locator(".widget-readout")
        assert readout.inner_text() == "1.00"  # unset: the API default is shown
        page.screenshot(path=str(ARTIFACTS / "1-panel.png"), full_page=True)

        track = slider.locator(".noUi-target")
        box = track.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] * 0.35, box["y"] + box["height"] / 2)
        wait_for(lambda: readout.inner_text() != "1.00", 30, "the slider to move")
        moved = float(readout.inner_text())
        assert 0.5 <= moved <= 0.9
        page.screenshot(path=str(ARTIFACTS / "2-slider-moved.png"), full_page=True)

        before = len(server.bodies)
        run_cell(page, 2)  # %%chat
        wait_for(lambda: len(server.bodies) > before, 60, "the chat request")
        assert server.bodies[-1]["temperature"] == pytest.approx(moved)
        reply = cells.nth(2).locator(".jp-RenderedMarkdown", has_text="Echo: Which temperature did you get?")
        reply.wait_for(timeout=30_000)
        assert "completion tokens" in reply.inner_text()
        page.screenshot(path=str(ARTIFACTS / "3-reply.png"), full_page=True)

        run_cell(page, 3)  # %%chat -f widget -n 2: the chat view, choices as tabs
        view = cells.nth(3).locator(".nbchat-view")
        view.locator(".lm-TabBar-tab", has_text="Choice 2").click()
        view.locator("button", has_text="Keep this one").locator("visible=true").click()
        view.locator("button", has_text="Kept ✓").wait_for(timeout=30_000)  # the kernel ran the callback
        assert "Echo: Pick a colour (choice 2)" in view.inner_text()
        page.screenshot(path=str(ARTIFACTS / "4-chat-view.png"), full_page=True)
    assert sorted(p.name for p in ARTIFACTS.iterdir()) == [
        "1-panel.png",
        "2-slider-moved.png",
        "3-reply.png",
        "4-chat-view.png",
        "last.png",
    ]
