"""A map's progress as plain text on a stream, for a terminal or a log: no IPython, so a plain
script shows its progress without importing it."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .items import Progress


ERASE = "\x1b[K"  # erase to the end of the line: a shorter line leaves nothing of the longer one


class TextProgress:
    """A map's progress as text on a stream (stderr): on a terminal, one line rewritten in
    place and erased to its end, then the summary; elsewhere (a pipe, a file, a CI log) the
    summary alone, so a log holds one line per map and no control characters."""

    def __init__(self, stream: TextIO, live: bool) -> None:
        self.stream, self.live = stream, live
        self.shown = ""

    @classmethod
    def on(cls, stream: TextIO) -> TextProgress:
        isatty = getattr(stream, "isatty", None)
        try:
            live = bool(isatty()) if isatty is not None else False
        except (ValueError, OSError):  # a closed or odd stream: no live line
            live = False
        return cls(stream, live)

    def update(self, state: Progress) -> None:
        if not self.live:
            return
        text = state.line()
        if text != self.shown:
            self.shown = text
            self.stream.write(f"\r{text}{ERASE}")
            self.stream.flush()

    def close(self, summary: str) -> None:
        self.stream.write(f"\r{summary}{ERASE}\n" if self.live else f"{summary}\n")
        self.stream.flush()
