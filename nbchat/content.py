"""Message content: a string when it is only text, a list of OpenAI content parts otherwise."""

from __future__ import annotations

import base64
import binascii
import functools
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Any

Part = dict[str, Any]
# str for text-only messages (every server takes that); parts when images or files ride
# along; None only for an assistant message that carries tool calls instead of text.
Content = str | list[Part] | None
PART_TYPES = ("text", "image_url", "file")
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[^,]*)?,")


# -- building ---------------------------------------------------------------------------


def join(pieces: Iterable[str | Part]) -> Content:
    """Text and parts in order -> content: neighbouring text merges, and text alone
    stays a plain string."""
    parts: list[Part] = []
    for piece in pieces:
        if isinstance(piece, str):
            if parts and parts[-1].get("type") == "text":
                parts[-1] = {"type": "text", "text": parts[-1]["text"] + piece}
            else:
                parts.append({"type": "text", "text": piece})
        else:
            parts.append(piece)
    parts = [p for p in parts if p.get("type") != "text" or p["text"]]
    if all(p.get("type") == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_part(url: str, detail: str | None = None) -> Part:
    image: dict[str, Any] = {"url": url}
    if detail:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def file_part(filename: str, mime: str, data: bytes) -> Part:
    return {"type": "file", "file": {"filename": filename, "file_data": data_url(mime, data)}}


# -- reading ----------------------------------------------------------------------------


def is_valid(content: Any) -> bool:
    """Content a saved conversation may hold: a string, or a list of known parts."""
    if isinstance(content, str):
        return True
    if not isinstance(content, list):
        return False
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
            return False
        kind = part["type"]
        if kind == "text" and not isinstance(part.get("text"), str):
            return False
        if kind == "image_url" and not isinstance((part.get("image_url") or {}).get("url"), str):
            return False
        if kind == "file" and not isinstance(part.get("file"), dict):
            return False
    return True


def text_of(content: Content) -> str:
    """The content as readable text: images and files become a short placeholder."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if p.get("type") == "text" else describe(p) for p in content)


def describe(part: Mapping[str, Any]) -> str:
    """``[image/png 640×480, 12.3 kB]``, ``[file report.pdf, 80.0 kB]``, ``[image https://…]``."""
    kind = part.get("type")
    if kind == "image_url":
        url = str((part.get("image_url") or {}).get("url", ""))
        info = url_info(url)
        if info is None:
            return f"[image {url[:80]}]"
        mime, size, pixels = info
        dims = f" {pixels[0]}×{pixels[1]}" if pixels else ""
        return f"[{mime}{dims}, {human_bytes(size)}]"
    if kind == "file":
        file = part.get("file") or {}
        name = file.get("filename") or file.get("file_id") or "file"
        info = url_info(str(file.get("file_data", "")))
        return f"[file {name}, {human_bytes(info[1])}]" if info else f"[file {name}]"
    if kind == "text":
        return str(part.get("text", ""))
    return f"[{kind}]"


def human_bytes(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} kB"
    return f"{n / 1_000_000:.1f} MB"


def decode_data_url(url: str) -> tuple[str, bytes] | None:
    """``(mime type, bytes)`` of a base64 data URL; ``None`` for anything else."""
    match = _DATA_URL.match(url)
    if match is None or "base64" not in (match.group(2) or ""):
        return None
    try:
        return match.group(1) or "application/octet-stream", base64.b64decode(url[match.end() :])
    except (binascii.Error, ValueError):
        return None


@functools.lru_cache(maxsize=512)
def url_info(url: str) -> tuple[str, int, tuple[int, int] | None] | None:
    """``(mime type, bytes, pixel size or None)`` of a data URL (cached: a history sends
    the same image with every request)."""
    decoded = decode_data_url(url)
    if decoded is None:
        return None
    mime, data = decoded
    return mime, len(data), image_size(data) if mime.startswith("image/") else None


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, JPEG, GIF or WebP header (stdlib only)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        # start-of-frame markers (baseline, progressive, …) carry the size; C4/C8/CC do not
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(w), int(h)
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return int(w) & 0x3FFF, int(h) & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


# -- showing ----------------------------------------------------------------------------


def shorten(value: Any) -> Any:
    """A copy of a request body with each data URL replaced by its type, size and pixels,
    so a dry run stays readable."""
    if isinstance(value, str):
        if value.startswith("data:") and len(value) > 100:
            info = url_info(value)
            if info is not None:
                mime, size, pixels = info
                dims = f", {pixels[0]}×{pixels[1]} px" if pixels else ""
                return f"data:{mime};base64,… ({human_bytes(size)}{dims})"
        return value
    if isinstance(value, list):
        return [shorten(v) for v in value]
    if isinstance(value, dict):
        return {k: shorten(v) for k, v in value.items()}
    return value
