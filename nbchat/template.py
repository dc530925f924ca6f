"""Safe ``{name}`` substitution: only fields that resolve in the namespace are replaced."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# {name}, {name.attr}, {In[3]}, {Out[5]}; doubled braces ({{x}}) are left alone.
_FIELD = re.compile(r"(?<!\{)\{(In\[\d+\]|Out\[\d+\]|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\}(?!\})")
_MISSING = object()


def substitute(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace resolvable fields; code, JSON and f-strings stay exactly as written."""

    def replace(match: re.Match[str]) -> str:
        value = _lookup(match.group(1), namespace)
        return match.group(0) if value is _MISSING else str(value)

    return _FIELD.sub(replace, text)


def _lookup(field: str, namespace: Mapping[str, Any]) -> Any:
    try:
        if field.startswith(("In[", "Out[")):
            name, index = field[:-1].split("[")
            return namespace[name][int(index)]
        first, *attrs = field.split(".")
        value = namespace[first]
        for attr in attrs:
            value = getattr(value, attr)
        return value
    except Exception:  # anything that does not resolve stays as written
        return _MISSING
