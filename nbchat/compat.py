"""What particular models and servers accept, so requests go out in a form they take."""

from __future__ import annotations

import re
from typing import Any

# OpenAI's reasoning models: o1, o3, o4-mini, gpt-5, gpt-5-mini… (not gpt-5-chat-latest).
_REASONING = re.compile(r"^(?:.*/)?(?:o\d+|gpt-5(?:\.\d+)?(?!-chat))(?:-[\w.]+)*$")
# Sampling parameters the reasoning models reject with a 400.
REASONING_REJECTS = (
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
    "top_logprobs",
)


def is_reasoning_model(model: str) -> bool:
    return bool(_REASONING.match(model))


def adapt(body: dict[str, Any]) -> list[str]:
    """Rewrite ``body`` in place for its model; return the parameters left out."""
    if not is_reasoning_model(str(body.get("model", ""))):
        return []
    if "max_tokens" in body:
        body["max_completion_tokens"] = body.pop("max_tokens")
    dropped = [name for name in REASONING_REJECTS if name in body]
    for name in dropped:
        del body[name]
    return [name for name in dropped if name != "top_logprobs"]


def mentions_stream_options(exc: Any) -> bool:
    """Some servers reject ``stream_options`` (the usage chunk) with a 400."""
    text = f"{getattr(exc, 'param', '')} {getattr(exc, 'message', '')} {getattr(exc, 'body', '')}"
    return "stream_options" in text or "include_usage" in text
