"""The notebook side of context: errors recorded after each cell, earlier cells read back,
and a ``%%chat`` cell's message put together from its text, fields and attachments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .content import Content, Part, join
from .context import CellRecord, ErrorLog, Limits, Piece, attach_file, attach_image, notebook_context
from .template import fill


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
        pieces: list[str | Part] = []
        receipt: list[Piece] = []
        if cells:
            block, lines = notebook_context(self.previous_cells(cells), limits)
            pieces += block
            receipt += lines
        if raw:
            pieces.append(text)
        else:
            filled, lines = fill(text, self.shell.user_ns, limits, self.errors)
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
