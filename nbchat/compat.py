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


# OpenAI's chat models that do not reason: they refuse reasoning_effort.
_PLAIN = re.compile(r"^(?:.*/)?(?:gpt-4|gpt-3\.5|chatgpt-|gpt-5(?:\.\d+)?-chat)")


def is_reasoning_model(model: str) -> bool:
    return bool(_REASONING.match(model))


def does_not_reason(model: str) -> bool:
    """One of OpenAI's chat models known not to reason (it refuses reasoning_effort)."""
    return bool(_PLAIN.match(model)) and not is_reasoning_model(model)


def adapt(body: dict[str, Any], reasons: bool | None = None) -> list[str]:
    """Rewrite ``body`` in place for its model; return the parameters left out (the footer
    names them). ``reasons``: the server said the model reasons (it asked for
    ``max_completion_tokens``); otherwise the model's name says."""
    model = str(body.get("model", ""))
    if not (reasons or is_reasoning_model(model)):
        if does_not_reason(model) and body.pop("reasoning_effort", None) is not None:
            return ["reasoning_effort"]
        return []
    if "max_tokens" in body:
        body["max_completion_tokens"] = body.pop("max_tokens")
    dropped = [name for name in REASONING_REJECTS if name in body]
    for name in dropped:
        del body[name]
    return [name for name in dropped if name != "top_logprobs"]
