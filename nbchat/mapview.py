"""What the user sees of structured replies, maps and batches: tables, the progress bar, the
summary, a batch's status. Every ``display()`` of those lives here."""

from __future__ import annotations

import html
import json
import re
import sys
from typing import Any

from IPython.display import display

from . import render
from .items import bar_text
from .markdown import escape_dollars
from .schema import as_record
from .textview import TextProgress


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


def markdown_line(text: str) -> str:
    """A progress or summary line as Markdown: its ``$`` shown as dollars, not math, and a
    label's ``_`` or ``*`` as written."""
    return escape_dollars(re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text))


class ProgressView:
    """done/total, failed, rate, time left, tokens and cost of a running map, in place.

    An ipywidgets bar where a person is watching a notebook (the frontend allows stdin:
    JupyterLab, Notebook, VS Code); a text and Markdown line under nbclient and papermill
    (the saved output stays readable); on stderr in terminal IPython (``TextProgress``).
    """

    def __init__(self, total: int, label: str, terminal: bool, widget: bool) -> None:
        self.total, self.label, self.terminal = total, label, terminal
        self.handle: Any = None
        self.bar: Any = None
        self.text: TextProgress | None = None
        if terminal:
            self.text = TextProgress.on(sys.stderr)
            return
        if widget:
            import ipywidgets as w

            self.bar = w.IntProgress(value=0, min=0, max=max(total, 1), description=label[:20])
            self.info = w.HTML()
            self.box = w.HBox([self.bar, self.info])
            self.handle = display(self.box, display_id=True)
        else:
            first = f"{label} {bar_text(0, total)} 0/{total}"
            self.handle = display(self.bundle(first), raw=True, display_id=True)

    @classmethod
    def for_shell(cls, shell: Any, total: int, label: str) -> ProgressView:
        terminal = any(c.__name__ == "TerminalInteractiveShell" for c in type(shell).__mro__)
        kernel = getattr(shell, "kernel", None)
        # nbclient runs cells with allow_stdin off and nobody watches; a person's frontend allows it
        return cls(total, label, terminal, widget=bool(getattr(kernel, "_allow_stdin", False)))

    @staticmethod
    def bundle(text: str) -> dict[str, str]:
        return {"text/plain": text, "text/markdown": markdown_line(text)}

    def update(self, state: Any) -> None:
        if self.text is not None:
            return self.text.update(state)
        text = state.line()
        if self.bar is not None:
            self.bar.value = state.done
            # the widget draws the bar itself: beside it every fact of the line, done/total first.
            # The HTML widget typesets $…$ as math: tex2jax_ignore, not Markdown's escape (whose
            # backslash HTML would show)
            facts = html.escape(f"{state.done}/{state.total} · {text.split(' · ', 1)[1]}")
            self.info.value = f'<span class="tex2jax_ignore">{facts}</span>'
        else:
            self.handle.update(self.bundle(text), raw=True)

    def close(self, summary: str) -> None:
        """Replace the bar with the summary line."""
        if self.text is not None:
            return self.text.close(summary)
        if self.bar is not None:
            self.box.close()
        # "$0.01 (estimated ≈$0.02)" is money, not math
        self.handle.update(self.bundle(summary), raw=True)


class StatusLine:
    """One line rewritten in place: a batch's status while ``job.wait()`` polls."""

    def __init__(self, first: str, terminal: bool) -> None:
        self.terminal = terminal
        self.handle: Any = None
        if terminal:
            sys.stdout.write(first)
            sys.stdout.flush()
        else:
            self.handle = display({"text/plain": first}, raw=True, display_id=True)

    @classmethod
    def for_shell(cls, shell: Any, first: str) -> StatusLine:
        terminal = any(c.__name__ == "TerminalInteractiveShell" for c in type(shell).__mro__)
        return cls(first, terminal)

    def show(self, text: str, last: bool = False) -> None:
        if self.terminal:
            sys.stdout.write("\r" + text + ("\n" if last else ""))
            sys.stdout.flush()
        else:
            self.handle.update({"text/plain": text}, raw=True)


def show_errors(errors: list[Any], terminal: bool, limit: int = 5) -> None:
    """The first few failed items of a map, under its summary."""
    if not errors:
        return
    rows = [[e.position, cell_text(e.item)[:60], e.error[:160]] for e in errors[:limit]]
    if len(errors) > limit:
        rows.append(["…", f"{len(errors) - limit} more", "see .errors"])
    render.table(["#", "item", "error"], rows, terminal)


def show_results(results: Any, terminal: bool, limit: int = 20) -> None:
    """A map's results when no ``-o`` keeps them: pandas shows itself; a list, its first rows."""
    if hasattr(results, "_repr_html_") and not terminal:
        display(results)
        return
    if hasattr(results, "to_string"):
        print(results.to_string(max_rows=limit))
        return
    rows = [
        [i, "—" if v is None else cell_text(v if isinstance(v, (dict, list)) else str(v))[:200]]
        for i, v in enumerate(results[:limit])
    ]
    if len(results) > limit:
        rows.append(["…", f"{len(results) - limit} more (keep them all with -o NAME)"])
    render.table(["#", "result"], rows, terminal)


def note(text: str, terminal: bool) -> None:
    render.note(text, terminal)


def show_job(job: Any, terminal: bool) -> None:
    """A batch job's handle, with its status."""
    if terminal:
        print(job.status_line())
    else:
        display(job)


__all__ = [
    "ProgressView",
    "StatusLine",
    "bar_text",
    "note",
    "show_data",
    "show_errors",
    "show_job",
    "show_results",
]
