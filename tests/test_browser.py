"""The widgets in a real JupyterLab, driven in headless Chromium: move the temperature slider, run a
%%chat cell, and check the request the server received and the reply on the page."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
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
        import notebook  # noqa: F401
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
def lab_notebook(lab_cells: list[str]) -> nbformat.NotebookNode:
    """The notebook the browser opens, as lab.ipynb: ``lab_cells`` as code cells (a test
    module may override this to open one of notebooks/*.ipynb as it is)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in lab_cells]
    return nb


@pytest.fixture
def lab(server, tmp_path, lab_notebook) -> Iterator[str]:
    """JupyterLab on 127.0.0.1 with token auth; its kernels reach the stand-in server."""
    nbformat.write(lab_notebook, tmp_path / "lab.ipynb")
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_BASE_URL": server.url,
        "OPENAI_API_KEY": "sk-lab",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
    }
    # no "get notified about Jupyter news?" toast over the screenshots
    news = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false"}')
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
    # After a kernel restart the count starts again, so a re-run cell can show the very "[1]"
    # it showed before: blank the prompt first, and any count shown after the keypress is new
    # (JupyterLab rewrites the prompt as the cell is queued and again when it has run).
    before = "[ ]:"
    for _attempt in range(3):  # a keypress sent while the kernel connects can be lost
        dismiss_dialogs(page)
        try:
            cells.nth(index).locator(".jp-InputArea-editor").click(timeout=15_000)
        except Error:
            continue  # something covered the cell: dismiss it and click again
        if not re.search(r"\*", prompt.inner_text()):  # never blank a cell the kernel holds
            prompt.evaluate(f"node => {{ node.textContent = {before!r}; }}")
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
    shots = ARTIFACTS / "slider"
    with lab_page(lab, shots) as page:
        cells = page.locator(".jp-Notebook .jp-Cell")
        run_cell(page, 0)  # %load_ext nbchat
        run_cell(page, 1)  # %chatconfig --sliders
        row = page.locator(".nbchat-row", has=page.locator(".widget-html", has_text="temperature"))
        slider = row.locator(".widget-slider")
        slider.wait_for(timeout=60_000)
        readout = slider.locator(".widget-readout")
        assert readout.inner_text() == "1.00"  # unset: the API default is shown
        page.screenshot(path=str(shots / "1-panel.png"), full_page=True)

        track = slider.locator(".noUi-target")
        box = track.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] * 0.35, box["y"] + box["height"] / 2)
        wait_for(lambda: readout.inner_text() != "1.00", 30, "the slider to move")
        moved = float(readout.inner_text())
        assert 0.5 <= moved <= 0.9
        page.screenshot(path=str(shots / "2-slider-moved.png"), full_page=True)

        before = len(server.bodies)
        run_cell(page, 2)  # %%chat
        wait_for(lambda: len(server.bodies) > before, 60, "the chat request")
        assert server.bodies[-1]["temperature"] == pytest.approx(moved)
        reply = cells.nth(2).locator(".jp-RenderedMarkdown", has_text="Echo: Which temperature did you get?")
        reply.wait_for(timeout=30_000)
        assert "completion tokens" in reply.inner_text()
        page.screenshot(path=str(shots / "3-reply.png"), full_page=True)

        run_cell(page, 3)  # %%chat -f widget -n 2: the chat view, choices as tabs
        view = cells.nth(3).locator(".nbchat-view")
        view.locator(".lm-TabBar-tab", has_text="Choice 2").click()
        view.locator("button", has_text="Keep this one").locator("visible=true").click()
        view.locator("button", has_text="Kept ✓").wait_for(timeout=30_000)  # the kernel ran the callback
        assert "Echo: Pick a colour (choice 2)" in view.inner_text()
        page.screenshot(path=str(shots / "4-chat-view.png"), full_page=True)
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-panel.png",
        "2-slider-moved.png",
        "3-reply.png",
        "4-chat-view.png",
        "last.png",
    ]


VIEWS_CELLS = [
    "%load_ext nbchat",
    "%chatconfig --sliders",
    "%%chat\nPrices, please",
    "%%chat -n 2\nAgain, two ways",
    "%chat history",
    "%chat usage",
    "%%chat -f widget -n 2 --logprobs 1\nWhat does the widget cost?",
]
PRICES = "Option A costs $3 and option B costs $4. The area is $x^2$ and $$\\int_0^1 x\\,dx = \\frac{1}{2}$$"


def shown(page: Any, what: str, cell: int) -> str:
    """The rendered Markdown a cell's output shows (what a person reads)."""
    out = page.locator(".jp-Notebook .jp-Cell").nth(cell).locator(".jp-Cell-outputArea")
    wait_for(lambda: out.locator(".jp-RenderedMarkdown").count() > 0, 30, f"the {what}")
    return str(out.locator(".jp-RenderedMarkdown").all_inner_texts())


def math_in(page: Any, cell: int) -> int:
    """How many formulas MathJax typeset in a cell's outputs."""
    return int(page.locator(".jp-Notebook .jp-Cell").nth(cell).locator("mjx-container").count())


def fact(facts: dict[str, Any], name: str, measure: Callable[[], Any]) -> None:
    """Measure now, assert later: every screenshot is taken even where a check would fail
    (the same test, run on the code before a change, records the "before" pictures)."""
    try:
        facts[name] = measure()
    except Exception as e:
        facts[name] = e


@pytest.mark.parametrize("lab_cells", [VIEWS_CELLS])
def test_dollar_signs_and_the_widgets_as_a_person_sees_them_in_jupyterlab(lab, server, tmp_path) -> None:
    shots = ARTIFACTS / "views"
    facts: dict[str, Any] = {}
    with lab_page(lab, shots) as page:
        cells = page.locator(".jp-Notebook .jp-Cell")
        run_cell(page, 0)
        run_cell(page, 1)  # the panel
        page.locator(".nbchat-panel").wait_for(timeout=60_000)
        time.sleep(1)
        page.locator(".nbchat-panel").screenshot(path=str(shots / "panel.png"))
        rows = page.locator(".nbchat-panel .nbchat-row")
        fact(facts, "rows", lambda: rows.count())
        fact(
            facts,
            "control_x",
            lambda: {
                round(rows.nth(k).locator(":scope > *").nth(1).bounding_box()["x"])
                for k in range(rows.count())
            },
        )
        fact(facts, "track", lambda: page.locator(".nbchat-panel .noUi-target").first.bounding_box()["width"])

        def number_boxes() -> list[tuple[str, str]]:
            boxes = [
                rows.filter(has_text=name).locator("input[type=text]") for name in ("max_tokens", "seed")
            ]
            return [(b.input_value(), str(b.get_attribute("placeholder"))) for b in boxes]

        fact(facts, "number_boxes", number_boxes)
        fact(
            facts,
            "unset_shown",
            lambda: rows.filter(has_text="reasoning_effort").locator("select").input_value(),
        )

        def type_into(setting: str, text: str) -> None:
            box = rows.filter(has_text=setting).locator("input[type=text]")
            box.click()
            box.type(text)
            box.press("Enter")

        fact(facts, "seed_typed", lambda: type_into("seed", "7"))
        fact(facts, "stop_typed", lambda: type_into("stop", "###"))
        time.sleep(1)
        page.locator(".nbchat-panel").screenshot(path=str(shots / "panel-set.png"))

        server.script(text=PRICES)
        run_cell(page, 2)
        fact(facts, "reply", lambda: shown(page, "reply", 2))
        fact(facts, "reply_math", lambda: math_in(page, 2))
        fact(facts, "stop_sent", lambda: server.bodies[-1].get("stop"))
        fact(facts, "seed_sent", lambda: server.bodies[-1].get("seed"))
        fact(
            facts,
            "footer_opacity",
            lambda: (
                cells.nth(2)
                .locator(".jp-RenderedMarkdown sub")
                .last.evaluate("e => getComputedStyle(e.querySelector('span') || e).opacity")
            ),
        )

        def unset_seed() -> str:
            row = rows.filter(has_text="seed")
            row.locator("button").click()  # its own unset button
            wait_for(lambda: "unset" in row.inner_text(), 30, "the seed to be unset")
            return str(row.locator("input[type=text]").input_value())

        fact(facts, "seed_unset", unset_seed)
        server.script(text="Choose $5 or $6")
        run_cell(page, 3)
        fact(facts, "seed_sent_after_unset", lambda: server.bodies[-1].get("seed", "not sent"))
        fact(facts, "choices", lambda: shown(page, "choices", 3))
        fact(facts, "choices_math", lambda: math_in(page, 3))
        run_cell(page, 4)
        fact(facts, "history", lambda: shown(page, "history", 4))
        fact(facts, "history_math", lambda: math_in(page, 4))
        run_cell(page, 5)
        fact(
            facts,
            "usage_total",
            lambda: cells.nth(5).locator("tr", has=page.locator("td", has_text="total")).inner_text(),
        )
        time.sleep(1)  # MathJax typesets after the Markdown is in the page
        for k, name in [(2, "reply"), (3, "choices"), (4, "history"), (5, "usage")]:
            cells.nth(k).screenshot(path=str(shots / f"dollars-{name}.png"))

        server.script(text="Widget A costs $7 and B costs $8; the area is $y^2$.")
        run_cell(page, 6)
        view = cells.nth(6).locator(".nbchat-view")
        fact(
            facts, "view_reply", lambda: view.locator(".jp-RenderedMarkdown").first.inner_text(timeout=30_000)
        )
        fact(facts, "view_text", lambda: view.inner_text())
        fact(
            facts,
            "role_colours",
            lambda: [
                view.locator(f".nbchat-{role}").first.evaluate("e => getComputedStyle(e).backgroundColor")
                for role in ("user", "assistant")
            ],
        )
        tokens = view.locator(".nbchat-token")
        fact(facts, "tokens_choice_1", lambda: tokens.count())

        def choose_2() -> int:
            view.locator(".lm-TabBar-tab", has_text="Choice 2").click()
            wait_for(lambda: tokens.count() != facts["tokens_choice_1"], 10, "the log-prob view to follow")
            return int(tokens.count())

        fact(facts, "tokens_choice_2", choose_2)
        time.sleep(1)
        view.screenshot(path=str(shots / "chat-view.png"))

        def reask() -> tuple[Any, int]:
            before = len(server.bodies)
            view.locator("button", has_text="Re-ask").click()
            wait_for(lambda: len(server.bodies) > before, 30, "the re-ask request")
            view.locator(".jp-RenderedMarkdown", has_text="Re-asked").first.wait_for(timeout=30_000)
            return server.bodies[-1].get("n"), view.locator(".lm-TabBar-tab").count()

        server.script(text="Re-asked: C costs $9")
        fact(facts, "reask", reask)

    print(facts)  # shown by pytest -s, and with the failure
    # 6: currency as written, math still typeset, everywhere nbchat shows Markdown
    assert "Option A costs $3 and option B costs $4." in facts["reply"]
    assert facts["reply_math"] == 2, "$x^2$ and the $$…$$ integral"
    assert "Choose $5 or $6" in facts["choices"] and "Choose $5 or $6 (choice 2)" in facts["choices"]
    assert facts["choices_math"] == 0
    assert "Option A costs $3 and option B costs $4" in facts["history"] and facts["history_math"] == 2
    assert re.match(r"total\s+2\s+\d+\s+\d+\s+<?\$0\.\d+", facts["usage_total"]), facts["usage_total"]
    assert float(facts["footer_opacity"]) < 1, "the footer is muted"
    # 9: the panel
    assert facts["rows"] >= 10 and len(facts["control_x"]) == 1, "labels and controls in one column each"
    assert facts["track"] > 200, "a slider track wide enough to use"
    for value, placeholder in facts["number_boxes"]:  # max_tokens and seed: number boxes, empty while unset
        assert value == "" and "API default" in placeholder and "whole number" in placeholder
    assert facts["unset_shown"] == "API default", "an unset dropdown shows no value nobody chose"
    assert facts["seed_typed"] is None and facts["seed_sent"] == 7, "the seed box takes Enter"
    assert facts["seed_unset"] == "" and facts["seed_sent_after_unset"] == "not sent", "its × unsets it"
    assert facts["stop_typed"] is None and facts["stop_sent"] == ["###"], "the stop box takes Enter"
    # 9: the chat view
    assert "Widget A costs $7 and B costs $8; the area is" in facts["view_reply"]
    assert "What does the widget cost?" in facts["view_text"], "the current question is shown"
    assert len(set(facts["role_colours"])) == 2, "roles styled apart"
    assert 0 < facts["tokens_choice_1"] < facts["tokens_choice_2"], "log-probs follow the selected choice"
    assert facts["reask"] == (2, 2), "Re-ask keeps the cell's -n 2: two choices asked for and shown"
    assert sorted(p.name for p in shots.iterdir()) == [
        "chat-view.png",
        "dollars-choices.png",
        "dollars-history.png",
        "dollars-reply.png",
        "dollars-usage.png",
        "last.png",
        "panel-set.png",
        "panel.png",
    ]


REOPEN_CELLS = [
    "%load_ext nbchat",
    "%chatconfig --sliders",
    "%%chat -f widget\nSummarise the offer",
]
SUMMARY = "## Summary\n\nOption A costs **$3** and option B costs $4."


def stop_kernels(lab: str) -> None:
    """Shut every kernel down, as closing JupyterLab for the day does: the widgets die with them."""
    with urllib.request.urlopen(f"{lab}/api/sessions?token={TOKEN}") as r:
        sessions = json.load(r)
    for s in sessions:
        request = urllib.request.Request(f"{lab}/api/sessions/{s['id']}?token={TOKEN}", method="DELETE")
        urllib.request.urlopen(request).close()


def reopen(page: Any, lab: str, name: str) -> Any:
    """``name`` opened alone in a fresh workspace, its new kernel idle; its notebook panel."""
    page.goto(f"{lab}/lab/workspaces/{name.split('.')[0]}/tree/{name}?reset&token={TOKEN}")
    panel = page.locator(".jp-NotebookPanel", has=page.locator(".jp-Notebook .jp-Cell")).locator(
        "visible=true"
    )
    panel.wait_for(timeout=60_000)
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    wait_for(lambda: not dismiss_dialogs(page) and idle.count() > 0, 90, "the new kernel to be idle")
    return panel


def seen(output: Any) -> dict[str, Any]:
    """What a person sees in one cell's output area, and what is in it but hidden."""
    return {
        "text": output.inner_text(),
        "strong": output.locator("strong").locator("visible=true").all_inner_texts(),
        "headings": output.locator("h2").locator("visible=true").all_inner_texts(),
        "in_page": output.evaluate("e => e.textContent"),
    }


@pytest.mark.parametrize("lab_cells", [REOPEN_CELLS])
def test_widget_replies_reopened_without_widget_state_read_as_markdown_in_jupyterlab_and_notebook_7(
    lab, server, tmp_path
) -> None:
    shots = ARTIFACTS / "reopened"
    facts: dict[str, Any] = {}
    with lab_page(lab, shots) as page:
        cells = page.locator(".jp-Notebook .jp-Cell")
        run_cell(page, 0)
        run_cell(page, 1)
        server.script(text="A first draft")
        run_cell(page, 2)
        view = cells.nth(2).locator(".nbchat-view")
        view.locator(".jp-RenderedMarkdown", has_text="A first draft").wait_for(timeout=60_000)
        # the saved copy follows the view: a re-asked reply replaces the first one in both
        server.script(text=SUMMARY)
        view.locator("button", has_text="Re-ask").click()
        view.locator("strong", has_text="$3").wait_for(timeout=60_000)
        time.sleep(1)
        # live: the widget shows the reply; its Markdown copy is in the page but hidden
        fact(facts, "live", lambda: seen(cells.nth(2).locator(".jp-Cell-outputArea")))
        cells.nth(2).screenshot(path=str(shots / "1-live.png"))

        page.keyboard.press("Control+s")
        saved = tmp_path / "lab.ipynb"
        wait_for(lambda: "Summary" in saved.read_text(), 30, "the notebook to be saved")
        nb = nbformat.read(saved, 4)
        fact(facts, "widget_state_saved", lambda: "widgets" in nb.metadata)
        fact(facts, "saved_copy", lambda: nb.cells[2].outputs[1]["data"]["text/markdown"])
        # a colleague's copy: its content (so its hash) differs, and this server never signed it
        nb.metadata["title"] = "a colleague's copy"
        nbformat.write(nb, tmp_path / "untrusted.ipynb")
        stop_kernels(lab)

        # 1. the same file, which JupyterLab signed when it saved it: a trusted notebook
        panel = reopen(page, lab, "lab.ipynb")
        outputs = panel.locator(".jp-Cell").nth(2).locator(".jp-Cell-outputArea")
        # the widget renderer has given up on the model (this is the case being tested) ...
        wait_for(lambda: "model not found" in outputs.evaluate("e => e.textContent"), 60, "the widget error")
        time.sleep(1)
        fact(facts, "trusted", lambda: seen(outputs))
        fact(
            facts,
            "trusted_panel",
            lambda: panel.locator(".jp-Cell").nth(1).locator(".jp-Cell-outputArea").inner_text(),
        )
        panel.screenshot(path=str(shots / "2-reopened-trusted.png"))

        # 2. a copy written elsewhere (unsigned): JupyterLab uses only safe renderers for it
        panel = reopen(page, lab, "untrusted.ipynb")
        outputs = panel.locator(".jp-Cell").nth(2).locator(".jp-Cell-outputArea")
        outputs.locator("h2").wait_for(timeout=30_000)
        time.sleep(1)
        fact(facts, "untrusted", lambda: seen(outputs))
        fact(facts, "untrusted_mark", lambda: outputs.locator(".jp-mod-trusted").count())
        panel.screenshot(path=str(shots / "3-reopened-untrusted.png"))
        # 3. the signed file again, in Notebook 7 (the same output area, another shell)
        stop_kernels(lab)
        page.goto(f"{lab}/notebooks/lab.ipynb?token={TOKEN}")
        outputs = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-Cell-outputArea")
        outputs.locator("h2").wait_for(timeout=60_000)
        wait_for(lambda: "model not found" in outputs.evaluate("e => e.textContent"), 60, "the widget error")
        time.sleep(1)
        fact(facts, "notebook7", lambda: seen(outputs))
        page.screenshot(path=str(shots / "4-reopened-notebook7.png"))
    # viewers without a widget renderer (nbconvert, GitHub) show the copy too
    converted = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", "--stdout", str(tmp_path / "untrusted.ipynb")],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    fact(facts, "nbconvert", lambda: converted.split("Summarise the offer")[-1])

    print(facts)
    live = facts["live"]
    assert live["strong"] == ["$3"] and live["headings"] == ["Summary"], "rendered once, by the widget"
    assert live["text"].count("Option A costs") == 1 and live["in_page"].count("Option A costs") == 2
    assert facts["widget_state_saved"] is False, "JupyterLab's default: no widget state in the file"
    assert "Summary" in facts["saved_copy"] and "first draft" not in facts["saved_copy"]
    for case in ("trusted", "untrusted", "notebook7"):
        shown = facts[case]
        assert shown["strong"] == ["$3"] and shown["headings"] == ["Summary"], case
        assert "Option A costs $3 and option B costs $4." in shown["text"], case
        assert "model not found" not in shown["text"] and "Loading widget" not in shown["text"], case
        assert "VBox" not in shown["in_page"], case
    for case in ("trusted", "notebook7"):
        assert "model not found" in facts[case]["in_page"], "the renderer's error is there, hidden"
    assert facts["untrusted_mark"] == 0, "the copy was opened as an untrusted notebook"
    assert "nbchat's settings panel" in facts["trusted_panel"]
    assert "model not found" not in facts["trusted_panel"]
    assert "<strong><span>$</span>3</strong>" in facts["nbconvert"] and "VBox(" not in facts["nbconvert"]
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-live.png",
        "2-reopened-trusted.png",
        "3-reopened-untrusted.png",
        "4-reopened-notebook7.png",
        "last.png",
    ]
