"""The one exception family nbchat raises for its own failures."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .learned import Refusal


class NbChatError(Exception):
    """A failure nbchat explains in one short message (no traceback in IPython).

    IPython calls ``_render_traceback_`` instead of formatting the stack, so the user
    sees the cause and what to do, while the cell still fails and "Run All" stops.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"nbchat: {self}"]


class RequestFailed(NbChatError):
    """The server or the network failed a request; the history is unchanged."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        said: str | None = None,
        refusal: Refusal | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.said = said  # the server's own words, when it reported an error
        self.refusal = refusal  # what the server refused of the request, recognised by its words


class StreamInterrupted(NbChatError):
    """A streamed reply was cut off by a kernel interrupt."""


class BadSetting(NbChatError, ValueError):
    """A setting's value (or name) is not valid, from ``Chat(...)``, ``send(...)`` or ``apply``."""


class EmptyMessage(NbChatError, ValueError):
    """There is nothing to send: the message is empty."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, said in one line. Still a ``KeyboardInterrupt``: ``except Exception`` lets it
    through, so a script, Run All or papermill stops; IPython shows the line, no traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"nbchat: {self}"]
