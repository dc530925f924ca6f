"""The Files API for a conversation: list, upload, download, delete (the wire in
``nbchat.transports.files``). No IPython."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import NbChatError
from .transports import files as wire

if TYPE_CHECKING:
    from .chat import Chat

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


def list_files(chat: Chat) -> list[dict[str, Any]]:
    return chat.transport.call(chat.settings, wire.list_files)


def upload(chat: Chat, path: str, purpose: str = "user_data") -> dict[str, Any]:
    if purpose not in PURPOSES:
        raise NbChatError(f"unknown purpose {purpose!r}; purposes: {', '.join(PURPOSES)}")
    source = Path(path).expanduser()
    if not source.is_file():
        raise NbChatError(f"no such file: {path!r}")
    data = source.read_bytes()
    return chat.transport.call(chat.settings, lambda c: wire.upload(c, source.name, data, purpose))


def download(chat: Chat, file_id: str, path: str) -> Path:
    """Write the file's content to ``path`` (atomically: a failed download leaves nothing)."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise NbChatError(f"{path!r} is a folder; give a file path")
    if not target.parent.exists():
        raise NbChatError(f"no such folder: {str(target.parent)!r}")
    content = chat.transport.call(chat.settings, lambda c: wire.content(c, file_id))
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def delete(chat: Chat, file_id: str) -> dict[str, Any]:
    return chat.transport.call(chat.settings, lambda c: wire.delete(c, file_id))
