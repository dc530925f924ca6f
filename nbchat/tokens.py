"""Offline token estimates (no downloads): a close stand-in for OpenAI's BPE counts."""

from __future__ import annotations

import re

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
            from .content import estimate

            total += MESSAGE_OVERHEAD + estimate(content if isinstance(content, list) else None)
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                total += MESSAGE_OVERHEAD + estimate_text(
                    f"{function.get('name')}{function.get('arguments')}"
                )
    return total
