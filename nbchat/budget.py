"""What a request will cost, guessed before it is sent, and the kernel's ``budget`` checked
against it. One estimate serves the map's confirmation, the budget and the compares. No IPython.

A reply's length is the part a request does not say. ``max_tokens`` bounds it, but a bound is
not a guess: a label is a few tokens however high the bound. So the guess comes from what is
asked — with a schema, a small reply of the schema's shape; without one, the words of the
prompt ("one word", "a sentence", "a paragraph"); then, once replies arrive, their own
average (``Observed``). Measured against the stand-in in benchmarks/estimate.py.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .errors import NbChatError
from .tokens import estimate_messages, estimate_text
from .usage import format_cost, image_cost, price

# replies by what the prompt asks for (tokens); the first pattern that matches wins
SHORT, SENTENCE, PARAGRAPH, DEFAULT = 3, 30, 160, 50
_ASKS = [
    (
        re.compile(
            r"\b(one|single|a) (word|label|number|digit|letter)\b|\blabel\b|\bclassify\b|\bcategor|"
            r"\byes or no\b|\btrue or false\b|\bsentiment\b|\bonly the\b|\bjust the\b|\brate\b|\bscore\b",
            re.I,
        ),
        SHORT,
    ),
    (
        re.compile(r"\b(one|a single|a short|one short|in a) sentence\b|\bbriefly\b|\bone line\b", re.I),
        SENTENCE,
    ),
    (re.compile(r"\bparagraph|\bexplain|\bdescribe|\bsummar|\bessay|\bwrite\b|\bdetail", re.I), PARAGRAPH),
]


class OverBudget(NbChatError):
    """A request that would go over ``budget`` (or cannot be priced); nothing was sent.
    A map stopped by it keeps what completed in ``results``."""

    def __init__(self, message: str, results: Any = None) -> None:
        super().__init__(message)
        self.results = results


def reply_tokens(body: Mapping[str, Any]) -> int:
    """The tokens the reply to ``body`` is likely to have (each of its ``n`` choices)."""
    form = body.get("response_format")
    schema = (form.get("json_schema") or {}).get("schema") if isinstance(form, Mapping) else None
    if isinstance(schema, Mapping):
        guess = estimate_text(json.dumps(_sample(schema, schema, 0)))
    else:
        asked = _asked(body)
        guess = next((tokens for pattern, tokens in _ASKS if pattern.search(asked)), DEFAULT)
    bound = body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens")
    if isinstance(bound, int) and not isinstance(bound, bool):
        guess = min(guess, bound)
    return guess


def prompt_tokens(body: Mapping[str, Any]) -> int:
    """The prompt tokens of ``body``: its messages (or prompt) and any tools it offers."""
    messages = body.get("messages")
    items = body.get("input")
    if isinstance(messages, list):
        tokens = estimate_messages(messages)
    elif isinstance(items, list):  # the Responses API: input items, and instructions apart
        texts = [_text_of(i.get("content")) if isinstance(i, dict) else "" for i in items]
        tokens = estimate_messages([{"role": "user", "content": t} for t in texts])
        tokens += estimate_text(str(body.get("instructions") or ""))
    else:
        tokens = estimate_text(str(body.get("prompt") or items or ""))
    if body.get("tools"):
        tokens += estimate_text(json.dumps(body["tools"]))
    return tokens


def cost_of(
    body: Mapping[str, Any], prices: Mapping[str, Any] | None, reply: float | None = None
) -> float | None:
    """What sending ``body`` will cost (USD), or ``None`` for a model with no known price.
    ``reply``: the reply tokens to assume instead of :func:`reply_tokens` (say, an observed
    average)."""
    rates = price(str(body.get("model") or ""), prices)
    if rates is None:
        return None
    choices = int(body.get("n") or 1)
    out = reply if reply is not None else reply_tokens(body)
    return (prompt_tokens(body) * rates[0] + choices * out * rates[1]) / 1e6


# output tokens of one GPT image by quality, for a square picture (OpenAI's image pricing
# page); an oblong one takes about half as many again
IMAGE_TOKENS = {"low": 272, "medium": 1056, "high": 4160}


def image_estimate(body: Mapping[str, Any], prices: Mapping[str, Any] | None) -> float | None:
    """What an image request will cost (USD), or ``None`` for a model with no known price."""
    images = int(body.get("n") or 1)
    quality, size = body.get("quality"), body.get("size")
    tokens = IMAGE_TOKENS.get(str(quality), IMAGE_TOKENS["high"])  # auto: assume the dearest
    if isinstance(size, str) and size not in ("auto", "1024x1024"):
        tokens = tokens * 3 // 2
    prompt = estimate_text(str(body.get("prompt") or ""))
    usage = {"input_tokens": prompt, "output_tokens": tokens * images, "input_tokens_details": {}}
    return image_cost(str(body.get("model")), usage, images, size, quality, prices)


class Observed:
    """Reply lengths seen so far in one map (or compare): once a few items have answered,
    their average is a better guess for the rest than anything read from the prompt."""

    def __init__(self) -> None:
        self.replies = 0
        self.tokens = 0

    def add(self, usage: Mapping[str, Any] | None, choices: int = 1) -> None:
        if usage and isinstance(usage.get("completion_tokens"), int):
            self.replies += max(choices, 1)
            self.tokens += int(usage["completion_tokens"])

    @property
    def average(self) -> float | None:
        return self.tokens / self.replies if self.replies else None


def is_local(url: str) -> bool:
    """A server on this machine (loopback): what it answers costs nothing."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(settings: Any, spent: float, estimate: float | None, what: str, model: str, url: str) -> None:
    """Refuse (:class:`OverBudget`) a request that would take ``spent`` past ``budget``.

    ``estimate`` is what the request will cost (``None``: the model has no known price, which
    cannot be budgeted — unless the server is on this machine, which is free)."""
    budget = getattr(settings, "budget", None)
    if budget is None:
        return
    if estimate is None:
        if is_local(url):
            return
        raise OverBudget(
            f"{what} not sent: budget is {format_cost(budget)} but {model} has no known price; "
            f'give it one (%chatconfig prices={{"{model}": [INPUT, OUTPUT]}}, USD per million tokens) '
            "or unset budget"
        )
    if spent + estimate > budget:
        left = max(budget - spent, 0.0)
        raise OverBudget(
            f"{what} not sent: it would cost about {format_cost(estimate)}, and {format_cost(spent)} of the "
            f"budget {format_cost(budget)} is spent ({format_cost(left)} left); raise budget "
            "(%chatconfig budget=…) to go on"
        )


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or its parts' text (images not counted)."""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def _asked(body: Mapping[str, Any]) -> str:
    """The words that say what kind of reply is wanted: the system prompt and the last message."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return str(body.get("prompt") or body.get("input") or "")
    texts = []
    for message in [m for m in messages if isinstance(m, dict) and m.get("role") == "system"] + messages[-1:]:
        texts.append(_text_of(message.get("content") if isinstance(message, dict) else None))
    return "\n".join(texts)


def _sample(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
    """A small value of ``schema``'s shape, to count a structured reply's tokens."""
    if depth > 8:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        return _sample(node, root, depth + 1)
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return max(schema["enum"], key=lambda v: len(str(v)))
    variants = schema.get("anyOf")
    if isinstance(variants, list) and variants:
        return _sample(next((v for v in variants if v.get("type") != "null"), variants[0]), root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: _sample(v, root, depth + 1) for k, v in props.items() if isinstance(v, Mapping)}
    if kind == "array":
        item = schema.get("items")
        return [_sample(item if isinstance(item, Mapping) else {}, root, depth + 1)] * 2
    return {"integer": 42, "number": 0.75, "boolean": True, "null": None}.get(str(kind), "a few words here")
