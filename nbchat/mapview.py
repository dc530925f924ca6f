"""What the user sees of structured replies, maps and batches: tables, the progress bar, the
summary, a batch's status. Every ``display()`` of those lives here."""

from __future__ import annotations

import html
import json
import sys
import time
from typing import Any

from IPython.display import display

from . import render
from .schema import as_record


def cell_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def show_data(data: Any, terminal: bool) -> None:
    """A structured reply as a two-column table: field, value."""
    record = as_record(data)
    render.table(["field", "value"], [[k, cell_text(v)] for k, v in record.items()], terminal)


def bar_text(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / total) if total else width
    return "█" * filled + "░" * (width - filled)


class ProgressView:
    """done/total, rate, tokens and cost of a running map, refreshed in place.

    An ipywidgets bar where a person is watching a notebook (the frontend allows stdin:
    JupyterLab, Notebook, VS Code); a text line under nbclient (its saved output stays
    readable) and in a terminal (rewritten with a carriage return).
    """

    def __init__(self, total: int, label: str, terminal: bool, widget: bool) -> None:
        self.total, self.label, self.terminal = total, label, terminal
        self.started = time.perf_counter()
        self.handle: Any = None
        self.bar: Any = None
        if terminal:
            return
        if widget:
            import ipywidgets as w

            self.bar = w.IntProgress(value=0, min=0, max=max(total, 1), description=label[:20])
            self.info = w.HTML()
            self.box = w.HBox([self.bar, self.info])
            self.handle = display(self.box, display_id=True)
        else:
            self.handle = display({"text/plain": self.line(0, 0, 0, None, 0)}, raw=True, display_id=True)

    def line(self, done: int, failed: int, tokens: int, cost: str | None, inflight: int) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = done / elapsed
        parts = [f"{self.label} {bar_text(done, self.total)} {done}/{self.total}", f"{rate:.1f}/s"]
        if failed:
            parts.append(f"{failed} failed")
        parts.append(f"{tokens} tokens")
        if cost:
            parts.append(cost)
        if inflight:
            parts.append(f"{inflight} in flight")
        return " · ".join(parts)

    def update(self, done: int, failed: int, tokens: int, cost: str | None, inflight: int) -> None:
        text = self.line(done, failed, tokens, cost, inflight)
        if self.terminal:
            sys.stdout.write("\r" + text)
            sys.stdout.flush()
        elif self.bar is not None:
            self.bar.value = done
            self.info.value = html.escape(text.split(" · ", 1)[1] if " · " in text else text)
        else:
            self.handle.update({"text/plain": text}, raw=True)

    def close(self, summary: str) -> None:
        """Replace the bar with the summary line."""
        if self.terminal:
            sys.stdout.write("\r" + summary + "\n")
            sys.stdout.flush()
        elif self.bar is not None:
            self.box.close()
            self.handle.update({"text/plain": summary, "text/markdown": summary}, raw=True)
        else:
            self.handle.update({"text/plain": summary}, raw=True)


def note(text: str, terminal: bool) -> None:
    render.note(text, terminal)


def show_job(job: Any, terminal: bool) -> None:
    """A batch job's handle, with its status."""
    if terminal:
        print(job.status_line())
    else:
        display(job)


__all__ = ["ProgressView", "bar_text", "note", "show_data", "show_job"]
