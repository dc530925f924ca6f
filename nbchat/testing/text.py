"""The stand-in's own reading of messages: its token rule (one token per word or space run,
images by OpenAI's published tile rule), the text and parts of a message, and image sizes.
Written apart from nbchat's estimates on purpose: a test compares the two, never nbchat
with itself."""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from typing import Any

TOKENS = re.compile(r"\s*\S+|\s+")
PART_TYPES = ("text", "image_url", "file")
PDF_PAGE = 1000  # what OpenAI bills a PDF page: its text and an image of it
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[^,]*)?,")


def count_tokens(text: str) -> int:
    return len(TOKENS.findall(text))


def is_parts(value: Any) -> bool:
    """A message's content as a list of text, image and file parts."""
    return isinstance(value, list) and all(isinstance(p, dict) and p.get("type") in PART_TYPES for p in value)


def data_of(url: str) -> tuple[str, bytes] | None:
    """``(mime type, bytes)`` of a base64 data URL; ``None`` for anything else."""
    match = _DATA_URL.match(url)
    if match is None or "base64" not in (match.group(2) or ""):
        return None
    try:
        return match.group(1) or "application/octet-stream", base64.b64decode(url[match.end() :])
    except (binascii.Error, ValueError):
        return None


def pixels(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG (the formats a test sends)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data[:2] == b"\xff\xd8":
        pos = 2
        while pos + 9 < len(data) and data[pos] == 0xFF:
            marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2 : pos + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return int(w), int(h)
            pos += 2 + length
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


def image_tokens(width: int, height: int, detail: Any) -> int:
    """OpenAI's published rule: 85 at low detail; else fit 2048×2048, shorter side to 768,
    85 plus 170 per 512-px tile."""
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        w, h = w * 2048 / max(w, h), h * 2048 / max(w, h)
    if min(w, h) > 768:
        w, h = w * 768 / min(w, h), h * 768 / min(w, h)
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def part_tokens(part: dict[str, Any]) -> int:
    """Prompt tokens of one part, as the stand-in bills it."""
    if part["type"] == "text":
        return count_tokens(str(part.get("text", "")))
    if part["type"] == "image_url":
        image = part.get("image_url") or {}
        found = data_of(str(image.get("url", "")))
        size = pixels(found[1]) if found else None
        return image_tokens(*(size or (1024, 1024)), image.get("detail"))
    found = data_of(str((part.get("file") or {}).get("file_data", "")))
    if found is None:
        return 0
    mime, data = found
    if mime.startswith("text/") or mime in ("application/json", "application/csv"):
        return count_tokens(data.decode("utf-8", "replace"))
    if mime == "application/pdf":
        return max(1, len(re.findall(rb"/Type\s*/Page(?!s)", data))) * PDF_PAGE
    return len(data) // 4


def content_tokens(value: Any) -> int:
    """Prompt tokens of a message's content."""
    if isinstance(value, str):
        return count_tokens(value)
    return sum(part_tokens(p) for p in value) if is_parts(value) else 0


def seen(part: dict[str, Any]) -> str:
    """A part as the echo names it: its text, ``[image/png 640×480]``, ``[file notes.txt]``."""
    if part["type"] == "text":
        return str(part.get("text", ""))
    if part["type"] == "file":
        file = part.get("file") or {}
        return f"[file {file.get('filename') or file.get('file_id') or '?'}]"
    url = str((part.get("image_url") or {}).get("url", ""))
    found = data_of(url)
    if found is None:
        return f"[image {url}]"
    size = pixels(found[1]) if found[0].startswith("image/") else None
    return f"[{found[0]} {size[0]}×{size[1]}]" if size else f"[{found[0]}]"


def text_of(value: Any) -> str:
    """A message's content as one text, each image or file named."""
    if isinstance(value, str):
        return value
    return "".join(seen(p) for p in value) if is_parts(value) else ""
