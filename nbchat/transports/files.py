"""The Files and Batch APIs on the wire: upload, list, read and delete files; create, follow
and cancel batches. The only code that calls the SDK for them; each answer comes back as a
plain dict (a file's content as bytes). Failures are read by :mod:`nbchat.transports.errors`."""

from __future__ import annotations

from typing import Any


def list_files(client: Any) -> list[dict[str, Any]]:
    return [plain(f) for f in client.files.list()]


def upload(client: Any, name: str, data: bytes, purpose: str, mime: str | None = None) -> dict[str, Any]:
    file = (name, data, mime) if mime else (name, data)
    return plain(client.files.create(file=file, purpose=purpose))


def content(client: Any, file_id: str) -> bytes:
    return bytes(client.files.content(file_id).content)


def delete(client: Any, file_id: str) -> dict[str, Any]:
    return plain(client.files.delete(file_id))


def create_batch(
    client: Any, input_file_id: str, endpoint: str, window: str, metadata: dict[str, str]
) -> dict[str, Any]:
    return plain(
        client.batches.create(
            input_file_id=input_file_id, endpoint=endpoint, completion_window=window, metadata=metadata
        )
    )


def batch(client: Any, batch_id: str) -> dict[str, Any]:
    return plain(client.batches.retrieve(batch_id))


def cancel_batch(client: Any, batch_id: str) -> dict[str, Any]:
    return plain(client.batches.cancel(batch_id))


def plain(obj: Any) -> dict[str, Any]:
    """The SDK's model as a plain dict."""
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    return dict(dump()) if callable(dump) else dict(vars(obj))
