"""Where someone is watching: the views the package hands the engine for the Python API —
a map's progress and a waiting batch's status in IPython (a notebook or the terminal), and
a map's progress line on stderr in a plain script. Cheap to import: IPython and the views
load only when shown."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .textview import TextProgress

if TYPE_CHECKING:
    from .items import Progress, ProgressView


def _shell() -> Any:
    """The running IPython shell, without importing IPython where it is not running."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def progress(state: Progress) -> ProgressView | None:
    """A progress view where IPython is running (the Python API in a notebook or terminal),
    else a plain script's line on stderr (live on a terminal; through a pipe, the summary)."""
    shell = _shell()
    if shell is None:
        return TextProgress.on(sys.stderr)
    from .mapview import ProgressView

    return ProgressView.for_shell(shell, state.total, state.label)


def status(first: str) -> Callable[[str, bool], None] | None:
    """A line that follows a waiting batch's status where IPython is running, else none."""
    shell = _shell()
    if shell is None:
        return None
    from .mapview import StatusLine

    return StatusLine.for_shell(shell, first).show
