"""The Files API on the conversation's client: list, upload, download, delete. No IPython."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .batch import _plain, call
from .errors import NbChatError

if TYPE_CHECKING:
    from .chat import Chat

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


def list_files(chat: Chat) -> list[dict[str, Any]]:
    return [_plain(f) for f in call(chat, lambda c: list(c.files.list()))]


def upload(chat: Chat, path: str, purpose: str = "user_data") -> dict[str, Any]:
    if purpose not in PURPOSES:
        raise NbChatError(f"unknown purpose {purpose!r}; purposes: {', '.join(PURPOSES)}")
    source = Path(path).expanduser()
    if not source.is_file():
        raise NbChatError(f"no such file: {path!r}")
    data = source.read_bytes()
    return _plain(call(chat, lambda c: c.files.create(file=(source.name, data), purpose=purpose)))


def download(chat: Chat, file_id: str, path: str) -> Path:
    """Write the file's content to ``path`` (atomically: a failed download leaves nothing)."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise NbChatError(f"{path!r} is a folder; give a file path")
    if not target.parent.exists():
        raise NbChatError(f"no such folder: {str(target.parent)!r}")
    content = call(chat, lambda c: c.files.content(file_id)).content
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
    return _plain(call(chat, lambda c: c.files.delete(file_id)))
