"""Prices, costs and the session's usage ledger."""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Mapping
from typing import Any

PRICES_TAKEN = "2025-08-07, from openai.com/api/pricing (standard tier)"
GENAI_PRICES = "genai-prices"  # the maintained table (optional extra nbchat[prices]), used when installed
# USD per million tokens: (input, output).
PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-chat-latest": (1.25, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "chatgpt-4o-latest": (5.00, 15.00),
    "o1": (15.00, 60.00),
    "o1-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    # the legacy Completions API's models
    "gpt-3.5-turbo-instruct": (1.50, 2.00),
    "davinci-002": (2.00, 2.00),
    "babbage-002": (0.40, 0.40),
}
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")
# USD per million cached input tokens (prompt caching), same source and date; a model not
# listed (or priced by the ``prices`` setting) pays its input price for them
CACHED_PRICES: dict[str, float] = {
    "gpt-5": 0.125,
    "gpt-5-mini": 0.025,
    "gpt-5-nano": 0.005,
    "gpt-5-chat-latest": 0.125,
    "gpt-4.1": 0.50,
    "gpt-4.1-mini": 0.10,
    "gpt-4.1-nano": 0.025,
    "gpt-4o": 1.25,
    "gpt-4o-mini": 0.075,
    "o1": 7.50,
    "o1-mini": 0.55,
    "o3": 0.50,
    "o3-mini": 0.55,
    "o4-mini": 0.275,
}


def price(model: str | None, overrides: Mapping[str, Any] | None = None) -> tuple[float, float] | None:
    """Input and output price for ``model`` (a dated snapshot uses its family's price): the
    ``prices`` setting first, then genai-prices' table when it is installed, then nbchat's."""
    found = _price_and_source(model, overrides)
    return found[0] if found else None


def priced_by(model: str | None, overrides: Mapping[str, Any] | None = None) -> str | None:
    """Which table prices ``model``: ``prices`` (the setting), genai-prices or built-in."""
    found = _price_and_source(model, overrides)
    return found[1] if found else None


def _price_and_source(
    model: str | None, overrides: Mapping[str, Any] | None
) -> tuple[tuple[float, float], str] | None:
    if not model:
        return None
    for table, source in ((overrides or {}, "prices"), (None, GENAI_PRICES), (PRICES, "built-in")):
        if table is None:
            rates = _genai_rates(model)
            if rates is not None:
                return rates[:2], source
            continue
        for name in (model, _DATED.sub("", model)):
            if name in table:
                value = table[name]
                if isinstance(value, Mapping):
                    return (float(value["input"]), float(value["output"])), source
                return (float(value[0]), float(value[1])), source
    return None


def genai_installed() -> bool:
    return importlib.util.find_spec("genai_prices") is not None


@functools.cache
def genai_prices() -> Any:
    """The genai-prices module, or ``None`` when it is not installed (imported when first
    used: it takes about a second, which ``%load_ext`` must not pay)."""
    if not genai_installed():
        return None
    import genai_prices as module

    return module


@functools.lru_cache(maxsize=256)
def _genai_rates(model: str) -> tuple[float, float, float] | None:
    """USD per million input, output and cached input tokens in genai-prices' table: as an
    OpenAI model, else as any provider's model of that name."""
    module = genai_prices()
    if module is None:
        return None
    million = module.Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    cached = module.Usage(input_tokens=1_000_000, cache_read_tokens=1_000_000)
    for provider in ("openai", None):
        try:
            found = module.calc_price(million, model_ref=model, provider_id=provider)
            reads = module.calc_price(cached, model_ref=model, provider_id=provider)
        except LookupError:
            continue
        return float(found.input_price), float(found.output_price), float(reads.input_price)
    return None


def price_table(overridden: int = 0) -> str:
    """Which table prices replies and how old it is, for ``%chatconfig``."""
    if genai_installed():  # named, not imported (that takes a second)
        from importlib.metadata import version

        table = f"the {GENAI_PRICES} {version('genai-prices')} table (installed; it replaces nbchat's own)"
    else:
        table = (
            f"nbchat's built-in table, taken {PRICES_TAKEN}; pip install 'nbchat[prices]' for {GENAI_PRICES}"
        )
    if overridden:
        table += f"; the prices setting gives {overridden} model{'s' if overridden != 1 else ''} (used first)"
    return table


def cost(
    model: str | None, usage: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None
) -> float | None:
    """What the server's reported ``usage`` cost: cached input tokens at the cached price,
    reasoning tokens as output."""
    rates = price(model, overrides)
    if rates is None or not usage:
        return None
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    cached = min(_detail(usage, "prompt_tokens_details", "cached_tokens"), prompt)
    reasoning = reasoning_tokens(usage) or 0
    if reasoning > completion:
        # OpenAI counts reasoning inside completion_tokens; a server that reports more
        # reasoning than completion tokens counts it apart, and it is billed as output
        completion += reasoning
    return (
        (prompt - cached) * rates[0] + cached * cached_price(model, rates, overrides) + completion * rates[1]
    ) / 1e6


def cached_price(model: str | None, rates: tuple[float, float], overrides: Mapping[str, Any] | None) -> float:
    """USD per million cached input tokens."""
    if not model or (overrides and (model in overrides or _DATED.sub("", model) in overrides)):
        return rates[0]
    genai = _genai_rates(model) if genai_prices() is not None else None
    if genai is not None:
        return genai[2]
    return CACHED_PRICES.get(model, CACHED_PRICES.get(_DATED.sub("", model), rates[0]))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _detail(usage: Mapping[str, Any], table: str, name: str) -> int:
    details = usage.get(table)
    return _count(details.get(name)) if isinstance(details, Mapping) else 0


def reasoning_tokens(usage: Mapping[str, Any]) -> int | None:
    """The reasoning tokens a server reported (part of the completion tokens), if any."""
    details = usage.get("completion_tokens_details") or usage.get("output_tokens_details")
    value = details.get("reasoning_tokens") if isinstance(details, Mapping) else None
    return int(value) if isinstance(value, int) else None


# Images. GPT image models bill tokens, USD per million: (text input, image input, output).
IMAGE_TOKEN_PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-image-1": (5.00, 10.00, 40.00),
    "gpt-image-1-mini": (2.00, 2.50, 8.00),
}
# DALL·E bills each image, USD by (quality, size).
IMAGE_PRICES: dict[str, dict[tuple[str, str], float]] = {
    "dall-e-3": {
        ("standard", "1024x1024"): 0.040,
        ("standard", "1792x1024"): 0.080,
        ("standard", "1024x1792"): 0.080,
        ("hd", "1024x1024"): 0.080,
        ("hd", "1792x1024"): 0.120,
        ("hd", "1024x1792"): 0.120,
    },
    "dall-e-2": {
        ("standard", "256x256"): 0.016,
        ("standard", "512x512"): 0.018,
        ("standard", "1024x1024"): 0.020,
    },
}


def image_cost(
    model: str,
    usage: Mapping[str, Any] | None,
    images: int,
    size: str | None,
    quality: str | None,
    overrides: Mapping[str, Any] | None = None,
) -> float | None:
    """What an image request cost: by its tokens (GPT image models, or a model in the
    ``prices`` setting), or by the image (DALL·E); ``None`` where the price is unknown."""
    family = _DATED.sub("", model)
    if usage and (overrides or {}).get(model) is not None:
        rates = price(model, overrides)
        assert rates is not None
        tokens = {"prompt_tokens": usage.get("input_tokens"), "completion_tokens": usage.get("output_tokens")}
        return cost(model, tokens, overrides)
    if family in IMAGE_TOKEN_PRICES and usage:
        text_in, image_in, out = IMAGE_TOKEN_PRICES[family]
        details = usage.get("input_tokens_details") or {}
        pictures = int(details.get("image_tokens") or 0)
        words = int(details.get("text_tokens") or 0) if details else int(usage.get("input_tokens") or 0)
        return (words * text_in + pictures * image_in + int(usage.get("output_tokens") or 0) * out) / 1e6
    table = IMAGE_PRICES.get(family)
    if table is None:
        return None
    each = table.get((quality or "standard", size or "1024x1024"))
    return None if each is None else each * images


def format_cost(value: float) -> str:
    if 0 < value < 0.000005:
        return "<$0.00001"
    return f"${value:.5f}" if value < 0.01 else f"${value:.4f}"


class Ledger:
    """Tokens per model for this session (the kernel's lifetime)."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, int]] = {}
        # replies answered from the cache: no request made, their cost saved
        self.replays: dict[str, dict[str, int]] = {}
        self.saved = 0.0
        self.images: dict[str, dict[str, int]] = {}  # image requests, per image model
        self.image_costs: dict[str, float] = {}
        self.image_costs_unknown: set[str] = set()
        self.spent = 0.0  # USD of every request made (replays cost nothing): what budget checks
        self.held = 0.0  # the estimates of a map's requests in flight, counted against budget too
        self.costs: dict[str, float] = {}  # per model, as each request was priced when it was made
        self.unpriced: set[str] = set()

    def add(self, model: str | None, usage: Mapping[str, Any] | None, spent: float | None = None) -> None:
        """One request made: its tokens and what it cost (``None``: no known price)."""
        self.spent += spent or 0.0
        if not usage:
            return
        if spent is None:
            self.unpriced.add(model or "?")
        self.costs[model or "?"] = self.costs.get(model or "?", 0.0) + (spent or 0.0)
        row = self.models.setdefault(
            model or "?", {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0}
        )
        row["requests"] += 1
        row["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
        row["completion_tokens"] += int(usage.get("completion_tokens") or 0)

    def refund(self, model: str | None, amount: float) -> None:
        """Take back part of a request's cost (a batch's discount, counted after the fact)."""
        self.spent -= amount
        if (model or "?") in self.costs:
            self.costs[model or "?"] -= amount

    def add_images(
        self, model: str, usage: Mapping[str, Any] | None, images: int, spent: float | None
    ) -> None:
        row = self.images.setdefault(
            model, {"requests": 0, "images": 0, "input_tokens": 0, "output_tokens": 0}
        )
        row["requests"] += 1
        row["images"] += images
        row["input_tokens"] += int((usage or {}).get("input_tokens") or 0)
        row["output_tokens"] += int((usage or {}).get("output_tokens") or 0)
        self.image_costs[model] = self.image_costs.get(model, 0.0) + (spent or 0.0)
        self.spent += spent or 0.0
        if spent is None:
            self.image_costs_unknown.add(model)

    def replay(self, model: str | None, usage: Mapping[str, Any] | None, saved: float | None) -> None:
        row = self.replays.setdefault(
            model or "?", {"replies": 0, "prompt_tokens": 0, "completion_tokens": 0}
        )
        row["replies"] += 1
        row["prompt_tokens"] += int((usage or {}).get("prompt_tokens") or 0)
        row["completion_tokens"] += int((usage or {}).get("completion_tokens") or 0)
        self.saved += saved or 0.0
