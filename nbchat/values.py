"""Trait types for settings whose values must be checked when set: a value that would
break the next request (a blank model, a header that is not a string, a base_url that
is not a URL, a malformed prices table) is refused with a message naming its setting —
never quoting a credential it may hold."""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit

from traitlets import Dict, TraitError, Unicode

from .secret import is_credential_header, public_url

# RFC 9110 token characters: what a header name may be made of
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SettingError(TraitError):
    """A refused value; the message is complete, names the setting and quotes no secret."""


class FromEnvironment(str):
    """A value read from an environment variable: taken as found when it becomes the
    default (the transport checks a URL before it is used), not refused on every read."""

    __slots__ = ()


class MaskedURL(str):
    """A URL whose ``repr`` (what ``%config`` and ``%chatconfig`` list) hides its password."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(public_url(str(self)))


class Headers(dict[str, str]):
    """Headers whose ``repr`` hides the value of every credential header."""

    def __repr__(self) -> str:
        shown = {k: ("<secret: set>" if is_credential_header(k) else v) for k, v in self.items()}
        return repr(shown)


def _name(trait: Any) -> str:
    return str(trait.name or "this setting")


class ModelName(Unicode):  # type: ignore[type-arg]
    """A model id: a non-blank string."""

    info_text = "a model name (not blank)"

    def validate(self, obj: Any, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip() or _CONTROL.search(value):
            shown = repr(value) if isinstance(value, str) else type(value).__name__
            raise SettingError(f"{_name(self)} must be a model name, not {shown}")
        return value.strip()


class NonEmptyText(Unicode):  # type: ignore[type-arg]
    """A string that says something: an empty stop sequence would be sent and refused
    (or, on some servers, end every reply before its first token)."""

    def validate(self, obj: Any, value: Any) -> Any:
        value = super().validate(obj, value)
        if value == "":
            self.error(obj, value)
        return value


class URL(Unicode):  # type: ignore[type-arg]
    """An http(s) URL with a host; it is held as a :class:`MaskedURL`."""

    info_text = "an http(s) URL, e.g. http://localhost:11434/v1"

    def validate(self, obj: Any, value: Any) -> Any:
        if value is None and self.allow_none:
            return None
        if not isinstance(value, str):
            raise SettingError(f"{_name(self)} must be {self.info_text}, not {type(value).__name__}")
        url = value.strip()
        problem = None if isinstance(value, FromEnvironment) else url_problem(url)
        if problem:
            raise SettingError(f"{_name(self)} must be {self.info_text}: {problem} in {public_url(url)!r}")
        return MaskedURL(url)


def url_problem(url: str) -> str | None:
    if not url or re.search(r"\s", url) or _CONTROL.search(url):
        return "spaces or control characters" if url else "it is empty"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as e:
        return str(e).replace(url, "").strip() or "not a URL"
    if parts.scheme not in ("http", "https"):
        return "the scheme is not http or https"
    if not parts.hostname:
        return "there is no host"
    return None


class HeadersTrait(Dict):
    """HTTP headers: names that are header tokens, values that are one-line strings."""

    info_text = 'a dict of header names to string values, e.g. {"X-Team": "data"}'

    def validate(self, obj: Any, value: Any) -> Any:
        if not isinstance(value, dict):
            raise SettingError(f"{_name(self)} must be {self.info_text}, not {type(value).__name__}")
        for key, item in value.items():
            if not isinstance(key, str) or not _TOKEN.match(key):
                shown = repr(key) if isinstance(key, str) else type(key).__name__
                raise SettingError(f"{_name(self)}: {shown} is not a valid header name")
            if not isinstance(item, str):
                raise SettingError(
                    f"{_name(self)}: the value of header {key!r} must be a string, not {type(item).__name__}"
                )
            if _CONTROL.search(item.replace("\t", " ")):
                raise SettingError(
                    f"{_name(self)}: the value of header {key!r} has a line break or control character"
                )
        return Headers(value)


class PricesTrait(Dict):
    """Per-model prices: ``[input, output]`` USD per million tokens, non-negative."""

    info_text = 'a dict like {"my-model": [input_usd, output_usd]} (per million tokens, ≥ 0)'

    def validate(self, obj: Any, value: Any) -> Any:
        if not isinstance(value, dict):
            raise SettingError(f"{_name(self)} must be {self.info_text}, not {type(value).__name__}")
        out: dict[str, Any] = {}
        for model, pair in value.items():
            if not isinstance(model, str) or not model.strip():
                raise SettingError(f"{_name(self)}: {model!r} is not a model name")
            if isinstance(pair, dict) and set(pair) == {"input", "output"}:
                pair = [pair["input"], pair["output"]]
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(map(_price, pair))):
                raise SettingError(
                    f"{_name(self)}: the price of {model!r} must be [input, output], two numbers ≥ 0 "
                    f"(USD per million tokens), not {pair!r}"
                )
            out[model] = [float(pair[0]), float(pair[1])]
        return out


def _price(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0


def bad_variable_name(name: str, hidden: Any = ()) -> str | None:
    """Why ``name`` must not receive a reply (``-o NAME``), or ``None`` if it may: not a
    keyword, not a name the shell keeps for itself (``In``, ``Out``, ``get_ipython``,
    ``_``, ``_i3``, ``_oh``, ``_5``, dunders) — overwriting those breaks the shell."""
    import keyword

    if not name.isidentifier():
        return "is not a variable name"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "is a Python keyword"
    if (
        name in hidden
        or name in ("In", "Out", "get_ipython", "exit", "quit", "_", "__", "___")
        or (name.startswith("__") and name.endswith("__"))
        or re.match(r"^_(?:i|o|\d)", name)
    ):
        return "is a name IPython keeps for itself"
    return None


__all__ = [
    "URL",
    "FromEnvironment",
    "Headers",
    "HeadersTrait",
    "MaskedURL",
    "ModelName",
    "PricesTrait",
    "SettingError",
    "bad_variable_name",
    "url_problem",
]
