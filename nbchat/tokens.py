"""Offline token estimates (no downloads): a close stand-in for OpenAI's BPE counts."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .content import Content, decode_data_url, url_info

# The pre-tokenizer pattern of OpenAI's cl100k/o200k encodings, in plain `re`: a word with
# its leading space, up to 3 digits, a punctuation run, or whitespace. Each piece is
# usually one token; long or non-English words split into several.
_PIECES = re.compile(
    r"'(?i:[sdmt]|ll|ve|re)|(?:[^\r\n\w]|_)?[^\W\d_]+|\d{1,3}| ?(?:[^\s\w]|_)+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s"
)
MESSAGE_OVERHEAD = 3  # <|start|>role ... <|end|> per message
REPLY_PRIMING = 3  # every reply is primed with <|start|>assistant<|message|>


def estimate_text(text: str) -> int:
    count = 0
    for piece in _PIECES.findall(text):
        word = piece.lstrip()
        if word[:1].isalpha() or word[1:2].isalpha():
            letters = len(word)
            per_token = 8 if word.isascii() else 3
            count += 1 + (letters - 1) // per_token
        elif word and not word[0].isdigit() and len(word) > 2:
            count += (len(word) + 1) // 2  # punctuation runs merge less often
        else:
            count += 1
    return count


def _piece_tokens(piece: str) -> int:
    word = piece.lstrip()
    if word[:1].isalpha() or word[1:2].isalpha():
        return 1 + (len(word) - 1) // (8 if word.isascii() else 3)
    if word and not word[0].isdigit() and len(word) > 2:
        return (len(word) + 1) // 2
    return 1


def fit_prefix(text: str, budget: int) -> int:
    """The length of the longest prefix of ``text`` estimated at most ``budget`` tokens."""
    count = 0
    for match in _PIECES.finditer(text):
        count += _piece_tokens(match.group())
        if count > budget:
            return match.start()
    return len(text)


def estimate_messages(messages: list[dict[str, object]]) -> int:
    """Prompt tokens for a request carrying ``messages``."""
    total = REPLY_PRIMING
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += MESSAGE_OVERHEAD + estimate_text(content)
        else:  # parts (images, files) or none (a tool call)
            total += MESSAGE_OVERHEAD + estimate(content if isinstance(content, list) else None)
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                total += MESSAGE_OVERHEAD + estimate_text(
                    f"{function.get('name')}{function.get('arguments')}"
                )
    return total


# -- content parts: images and files --------------------------------------------------


def image_tokens(width: int, height: int, detail: str | None) -> int:
    """OpenAI's tile rule: 85 tokens at low detail; at high detail the image is fit into
    2048×2048, its shorter side scaled to 768, and each 512-px tile adds 170. ``auto`` lets
    the model choose, so it is counted as high (the larger bill)."""
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return 85 + 170 * tiles


def estimate(content: Content) -> int:
    """Estimated prompt tokens of a message's content, images and files included."""
    if isinstance(content, str):
        return estimate_text(content)
    total = 0
    for part in content or ():
        kind = part.get("type")
        total += estimate_text(str(part.get("text", ""))) if kind == "text" else part_tokens(part)
    return total


def part_tokens(part: Mapping[str, Any]) -> int:
    """Estimated prompt tokens of one non-text part."""
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url") or {}
        info = url_info(str(image.get("url", "")))
        pixels = info[2] if info else None
        # a URL the server fetches itself: its size is unknown, count a 1024×1024 image
        width, height = pixels or (1024, 1024)
        return image_tokens(width, height, image.get("detail"))
    if kind == "file":
        file = part.get("file") or {}
        decoded = decode_data_url(str(file.get("file_data", "")))
        if decoded is None:
            return 0
        mime, data = decoded
        if mime.startswith("text/") or mime in ("application/json", "application/csv"):
            return estimate_text(data.decode("utf-8", "replace"))
        if mime == "application/pdf":
            # OpenAI sends the model each page's text and an image of the page
            pages = max(1, len(re.findall(rb"/Type\s*/Page(?!s)", data)))
            return pages * PDF_PAGE_TOKENS
        return len(data) // 4
    return 0


PDF_PAGE_TOKENS = 1000  # a page image at high detail (765) plus a page of text
