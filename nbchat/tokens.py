"""Offline token estimates (no downloads): a close stand-in for OpenAI's BPE counts."""

from __future__ import annotations

import re

# Words, numbers and punctuation runs roughly as o200k/cl100k split them; long words
# cost about one token per 4 characters, as in OpenAI's own rule of thumb.
_PIECES = re.compile(r"[A-Za-z]+|\d{1,3}|[^\sA-Za-z\d]|\s+")
MESSAGE_OVERHEAD = 3  # <|start|>role ... <|end|> per message
REPLY_PRIMING = 3  # every reply is primed with <|start|>assistant<|message|>


def estimate_text(text: str) -> int:
    count = 0
    for piece in _PIECES.findall(text):
        if piece[0].isspace():
            # a single space is folded into the next word; longer runs cost a token
            count += 0 if len(piece) == 1 or piece == "\n" else 1
        elif piece[0].isalpha():
            count += (len(piece) + 5) // 6 if piece.isascii() else len(piece)
        else:
            count += 1
    return count


def estimate_messages(messages: list[dict[str, object]]) -> int:
    """Prompt tokens for a request carrying ``messages``."""
    total = REPLY_PRIMING
    for message in messages:
        total += MESSAGE_OVERHEAD + estimate_text(str(message.get("content") or ""))
    return total
