"""Holding and scrubbing the API key so it never reaches output, files or errors."""

from __future__ import annotations

import re
from typing import Any

from traitlets import HasTraits, TraitType

# OpenAI echoes a partly masked key in 401 bodies ("sk-abc***wxyz"): drop any sk- token.
_KEY_LIKE = re.compile(r"\b(?:sk|sess|key)-[\w*\-]{3,}")


class Secret:
    """A string that hides itself from ``str``, ``repr``, pickling and JSON."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret: set>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("an API key is not picklable")


class SecretTrait(TraitType[Secret | None, object]):
    """A trait whose value is a :class:`Secret`, so ``%config ChatMagics`` shows no key."""

    default_value = None
    allow_none = True
    info_text = "an API key (kept hidden)"

    def validate(self, obj: object, value: object) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value.strip()) if value.strip() else None
        self.error(obj if isinstance(obj, HasTraits) else None, value)


def scrub(text: str, *secrets: str | None) -> str:
    """Remove key-shaped tokens, every secret, and every 4+ character piece of one."""
    text = _KEY_LIKE.sub("[redacted key]", text)
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "[redacted]")
        if len(secret) >= 4:
            pieces = {secret[i : i + 4] for i in range(len(secret) - 3)}
            pattern = "|".join(re.escape(p) for p in sorted(pieces, key=len, reverse=True))
            text = re.sub(pattern, "[redacted]", text)
    return text
