"""What a person sees in a real JupyterLab (headless Chromium), light and dark: a tool call
waiting for approval says so and keeps its question and prints with its block above the
reply; tool blocks framed, labelled in words, naming the user's failing line; the map's
progress widget with done/total and time left and its summary's dollars as dollars; a scored
prompt shown once with the usual footer; the chat view legible in both themes."""

from __future__ import annotations

import re
import time
from typing import Any

import nbformat
import pytest
from test_browser import ARTIFACTS, dismiss_dialogs, lab, lab_page, run_cell, wait_for

pytestmark = pytest.mark.browser

__all__ = ["lab"]  # the fixture, used by name

SETUP = '''
def shout(word: str) -> str:
    """Say a word loudly."""
    print(f"shouting {word}")
    return word.upper()


def broken(n: int) -> int:
    """Always fails."""
    return int("x" * n)


items = [f"item {k}" for k in range(6)]
'''
CELLS = [
    "%load_ext nbchat",
    SETUP,
    "%%chat --tools shout\nPlease shout(word='hi')",
    "%chatconfig tool_approval=auto",
    "%%chat --tools broken\nNow try broken(n=2)",
    "%%chat --map items --concurrency 1 -o said\nSay {item}",
    "%%chat --completion --echo --logprobs 3 --max-tokens 1\nThe capital of France is Paris",
    "%%chat -f widget\nHello, chat view",
]
ASK, BROKEN, MAP, SCORED, VIEW = 2, 4, 5, 6, 7


@pytest.fixture
def lab_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in CELLS]
    return nb


def start_cell(page: Any, index: int) -> None:
    """Run a cell without waiting for it to finish (it may wait for the person)."""
    dismiss_dialogs(page)
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputArea-editor").click(timeout=15_000)
    page.keyboard.press("Control+Enter")


def use_theme(page: Any, theme: str) -> None:
    """Switch JupyterLab's theme through its command palette, as a person would."""
    if theme == "light":
        return
    page.keyboard.press("Control+Shift+C")
    box = page.locator(".lm-CommandPalette-input")
    box.wait_for(timeout=30_000)
    box.fill("Use Theme: JupyterLab Dark")
    # the filtered command is the active one: Enter runs it, where a click can be taken by
    # the palette's own overlay on a loaded machine
    page.locator(".lm-CommandPalette-item.lm-mod-active", has_text="JupyterLab Dark").wait_for(timeout=30_000)
    box.press("Enter")
    page.locator("body[data-jp-theme-light='false']").wait_for(state="attached", timeout=30_000)


def contrast(page: Any, selector: str) -> float:
    """WCAG contrast of an element's text against what is behind it (its own background
    blended over the nearest opaque ancestor's)."""
    js = """(el) => {
      const rgba = (s) => { const m = s.match(/[\\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; };
      const lum = ([r, g, b]) => { const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
      let under = null; let node = el.parentElement;
      while (node) { const c = rgba(getComputedStyle(node).backgroundColor); if (c[3] > 0.99) { under = c; break; } node = node.parentElement; }
      under = under || [255, 255, 255, 1];
      const own = rgba(getComputedStyle(el).backgroundColor);
      const bg = [0, 1, 2].map((i) => own[i] * own[3] + under[i] * (1 - own[3]));
      const fg = rgba(getComputedStyle(el).color);
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      return (a + 0.05) / (b + 0.05);
    }"""
    return float(page.locator(selector).last.evaluate(js))  # the question, not the folded history


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_what_a_person_sees_in_jupyterlab(lab, server, theme: str) -> None:
    shots = ARTIFACTS / f"sees-{theme}"
    facts: dict[str, Any] = {}
    with lab_page(lab, shots) as page:
        use_theme(page, theme)
        cells = page.locator(".jp-Notebook .jp-Cell")
        run_cell(page, 0)
        run_cell(page, 1)

        # a call that asks: the block says so while the question waits
        start_cell(page, ASK)
        ask = cells.nth(ASK)
        answer = ask.locator(".jp-Stdin-input")
        answer.wait_for(timeout=60_000)
        summary = ask.locator("details.nbchat-tool summary")
        wait_for(lambda: "waiting for approval" in summary.inner_text(), 30, "the waiting block")
        facts["waiting"] = summary.inner_text()
        page.screenshot(path=str(shots / "1-waiting-for-approval.png"), full_page=True)
        answer.fill("y")
        answer.press("Enter")
        reply = ask.locator(".jp-RenderedMarkdown", has_text="Echo: HI")
        reply.wait_for(timeout=60_000)
        printed = ask.locator(".jp-OutputArea-output", has_text="shouting hi").first
        block_y = summary.bounding_box()["y"]
        facts["order"] = (block_y, printed.bounding_box()["y"], reply.bounding_box()["y"])
        facts["tool label"] = summary.inner_text()
        page.screenshot(path=str(shots / "2-approved-reply-below.png"), full_page=True)

        # a failing tool: a framed block that names the user's line, apart from the reply
        run_cell(page, 3)
        run_cell(page, BROKEN)
        broken = cells.nth(BROKEN)
        broken.locator(".jp-RenderedMarkdown", has_text="Echo:").last.wait_for(timeout=60_000)
        block = broken.locator("details.nbchat-tool")
        dismiss_dialogs(page)
        block.locator("summary").click(timeout=30_000)
        block.locator("pre").wait_for(state="visible", timeout=30_000)
        facts["error"] = block.locator("pre").inner_text()
        facts["frame"] = block.evaluate(
            "(el) => [parseFloat(getComputedStyle(el).borderTopWidth), parseFloat(getComputedStyle(el).marginBottom)]"
        )
        page.screenshot(path=str(shots / "3-tool-error-framed.png"), full_page=True)

        # the map: a widget with done/total and time left, then a summary with dollars
        server.script(delay=0.8, times=6)
        start_cell(page, MAP)
        info = cells.nth(MAP).locator(".widget-html-content")
        wait_for(
            lambda: re.search(r"^[1-5]/6 · ", info.first.inner_text() or "") is not None, 90, "the progress"
        )
        facts["progress"] = info.first.inner_text()
        facts["progress math"] = cells.nth(MAP).locator("mjx-container").count()
        page.screenshot(path=str(shots / "4-map-progress.png"), full_page=True)
        done = cells.nth(MAP).locator(".jp-RenderedMarkdown", has_text="6/6 done")
        done.wait_for(timeout=90_000)
        facts["summary"] = done.inner_text()
        facts["summary math"] = cells.nth(MAP).locator("mjx-container").count()
        page.screenshot(path=str(shots / "5-map-summary.png"), full_page=True)

        # a scored prompt: its text once, shaded, and the usual small footer
        run_cell(page, SCORED)
        scored = cells.nth(SCORED).locator(".jp-Cell-outputArea")
        scored.locator(".nbchat-logprobs").wait_for(timeout=60_000)
        scored.locator(".jp-RenderedMarkdown sub").wait_for(timeout=30_000)
        facts["scored"] = scored.inner_text()
        page.screenshot(path=str(shots / "6-scored-prompt.png"), full_page=True)

        # the chat view: the user's message legible in this theme
        run_cell(page, VIEW)
        cells.nth(VIEW).locator(".nbchat-view .nbchat-user").last.wait_for(timeout=60_000)
        time.sleep(1)
        facts["user contrast"] = contrast(page, ".nbchat-view .nbchat-user")
        cells.nth(VIEW).screenshot(path=str(shots / "7-chat-view.png"))

    assert "waiting for approval" in facts["waiting"]
    assert "running" not in facts["waiting"]
    block_y, printed_y, reply_y = facts["order"]
    assert block_y < printed_y < reply_y, facts["order"]  # block, what ran, then the reply
    assert "tool" in facts["tool label"].replace("🔧", "")  # in words, whatever the fonts
    assert "(at broken, line " in facts["error"] and "nbchat" not in facts["error"]
    assert facts["frame"][0] >= 1 and facts["frame"][1] >= 8, facts["frame"]
    assert " left" in facts["progress"] and "/s" in facts["progress"], facts["progress"]
    assert "\\" not in facts["progress"] and facts["progress math"] == 0, facts["progress"]
    assert "$" in facts["summary"] and facts["summary math"] == 0, facts["summary"]
    assert facts["scored"].count("The capital of France is Paris") == 1, facts["scored"]
    assert "completion tokens" in facts["scored"]
    assert facts["user contrast"] >= 4.5, facts["user contrast"]
