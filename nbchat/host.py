"""What the engine is handed by whoever runs it: the view that paints a map's progress, the
line that follows a waiting batch, and the ``Chat`` a batch attaches with when given none.

The engine imports no view and never looks for IPython: the package's front door
(``nbchat/__init__.py``) fills these in once, with the views of ``nbchat.watch``; a caller
may pass its own instead (``chat.map(..., progress=factory)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: a core module never imports the engine or a view
    from .items import Progress, ProgressView


def _no_chat(options: dict[str, Any]) -> Any:
    raise RuntimeError("nbchat.host.HOST.chat was never set (the package's __init__ sets it)")


def _unset(*_: Any, **__: Any) -> Any:
    raise RuntimeError("nbchat.host.HOST's runners were never set (the package's __init__ sets them)")


class Host:
    """The defaults the engine is handed: each is ``None`` where nothing is watching."""

    def __init__(self) -> None:
        # a map's progress: state -> a view that is updated and closed, or None for none
        self.progress: Callable[[Progress], ProgressView | None] | None = None
        # a waiting batch's status: the first line -> show(text, last), or None for none
        self.status: Callable[[str], Callable[[str, bool], None] | None] | None = None
        # BatchJob.attach without chat=: the settings it runs with (the session's, in IPython)
        # (a Chat, named rather than imported: chat.py imports this module for its runners)
        self.chat: Callable[[dict[str, Any]], Any] = _no_chat
        # Chat.map, Chat.map(batch=True) and Chat.compare run here: the engine's runners import
        # the Chat (for its types), so the Chat is handed them rather than importing them
        self.map: Callable[..., Any] = _unset
        self.submit_map: Callable[..., Any] = _unset
        self.compare: Callable[..., Any] = _unset


HOST = Host()
