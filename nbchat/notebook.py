"""The notebook side of context: errors recorded after each cell, earlier cells read back,
and a ``%%chat`` cell's message put together from its text, fields and attachments."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the context machinery loads with the first cell that uses it
    from .content import Content
    from .context import CellRecord, Limits, Piece


class Notebook:
    """Reads a shell's history and keeps its errors; used by the magics, holds no IPython."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.errors = ErrorLog()

    def post_run_cell(self, result: Any) -> None:
        """Remember each cell's error (a callback: the shell's exception handler stays).
        A chat cell's own failure (a usage error, a refused request) is not the error a
        user asks the model about, so it is not recorded."""
        source = str(getattr(getattr(result, "info", None), "raw_cell", "") or "").lstrip()
        if source.startswith(("%%chat", "%chat")):
            return
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        self.errors.record(getattr(result, "execution_count", None), error)

    def previous_cells(self, n: int) -> list[CellRecord]:
        """The last ``n`` executed cells before this one, oldest first; ``%%chat`` cells are
        left out (they are in the conversation already)."""
        from .context import CellRecord

        history = self.shell.history_manager
        sources: list[str] = history.input_hist_raw
        outputs: dict[int, Any] = history.output_hist
        current = int(self.shell.execution_count)
        cells: list[CellRecord] = []
        for count in range(min(current, len(sources)) - 1, 0, -1):
            source = sources[count]
            if not source.strip() or source.lstrip().startswith("%%chat"):
                continue
            cells.append(
                CellRecord(
                    count,
                    source,
                    outputs.get(count),
                    count in outputs,
                    self.errors.errors.get(count),
                )
            )
            if len(cells) == n:
                break
        return cells[::-1]

    def message(
        self,
        text: str,
        limits: Limits,
        *,
        raw: bool = False,
        cells: int | None = None,
        images: Sequence[str] = (),
        files: Sequence[str] = (),
    ) -> tuple[Content, list[Piece]]:
        """The user message of a ``%%chat`` cell and its receipt. Raises ``ContextError``
        (a missing file, a value that cannot be shown) before anything is sent."""
        from .content import Part, join
        from .context import attach_file, attach_image, notebook_context
        from .template import fill

        pieces: list[str | Part] = []
        receipt: list[Piece] = []
        if cells:
            block, lines = notebook_context(self.previous_cells(cells), limits)
            pieces += block
            receipt += lines
        if raw:
            pieces.append(text)
        else:
            filled, lines = fill(text, self.shell.user_ns, limits, self.errors.errors)
            pieces += filled
            receipt += lines
        for where in images:
            part, line = attach_image(where, limits)
            pieces.append(part)
            receipt.append(line)
        for where in files:
            part, line = attach_file(where, limits)
            pieces.append(part)
            receipt.append(line)
        return join(pieces), receipt


class ErrorLog:
    """The errors of earlier executions, as plain-text tracebacks, by execution count."""

    def __init__(self, keep: int = 200) -> None:
        self.keep = keep
        self.errors: dict[int, str] = {}

    def record(self, count: int | None, error: BaseException | None) -> None:
        if count is None or error is None:
            return
        self.errors[count] = format_error(error)
        while len(self.errors) > self.keep:
            del self.errors[min(self.errors)]


def format_error(error: BaseException) -> str:
    """The traceback as a person reads it: the user's frames, no ANSI colours, no frames
    of IPython's own machinery."""
    frames = traceback.extract_tb(error.__traceback__)
    shell_dir = _ipython_dir()
    while frames and shell_dir and frames[0].filename.startswith(shell_dir):
        frames = traceback.StackSummary.from_list(list(frames)[1:])
    lines = ["Traceback (most recent call last):\n", *frames.format()] if frames else []
    lines += traceback.format_exception_only(type(error), error)
    return "".join(lines).rstrip()


def _ipython_dir() -> str | None:
    module = sys.modules.get("IPython")
    path = getattr(module, "__file__", None)
    return os.path.dirname(path) if path else None
