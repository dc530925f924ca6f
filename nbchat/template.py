"""Safe ``{name}`` substitution: only fields that resolve are replaced, and values become
text or content parts (a DataFrame is described, a figure becomes an image)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .content import Part, text_of
from .context import Limits, Piece, render

# {name}, {name.attr}, {In[3]}, {Out[5]}, {Err}, {Err[4]}; doubled braces ({{x}}) stay.
_FIELD = re.compile(r"(?<!\{)\{((?:In|Out|Err)\[\d+\]|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\}(?!\})")
_MISSING = object()


def fill(
    text: str,
    namespace: Mapping[str, Any],
    limits: Limits | None = None,
    errors: Mapping[int, str] | None = None,
) -> tuple[list[str | Part], list[Piece]]:
    """The message as text and parts in order, and a receipt line for each value put in.
    Code, JSON and f-strings stay exactly as written."""
    limits = limits or Limits()
    pieces: list[str | Part] = []
    receipt: list[Piece] = []
    pos = 0
    for match in _FIELD.finditer(text):
        field = match.group(1)
        value = _lookup(field, namespace, errors)
        if value is _MISSING:
            continue
        pieces.append(text[pos : match.start()])
        pos = match.end()
        if isinstance(value, _Error):
            rendered = render(value.text, limits, field)
            kind = f"error of [{value.count}]" if value.count is not None else "error"
        else:
            rendered = render(value, limits, field)
            kind = rendered.kind
        pieces.append(rendered.piece)
        receipt.append(Piece(field, kind, "{" + field + "}", rendered.tokens, rendered.note))
    pieces.append(text[pos:])
    return pieces, receipt


def substitute(text: str, namespace: Mapping[str, Any]) -> str:
    """``fill`` as plain text (images shown as placeholders)."""
    pieces, _ = fill(text, namespace)
    return "".join(p if isinstance(p, str) else text_of([p]) for p in pieces)


class _Error:
    def __init__(self, text: str, count: int | None = None) -> None:
        self.text, self.count = text, count


def _lookup(field: str, namespace: Mapping[str, Any], errors: Mapping[int, str] | None) -> Any:
    try:
        if field.startswith(("In[", "Out[", "Err[")):
            name, index = field[:-1].split("[")
            if name == "Err" and "Err" not in namespace:
                return _error(errors, int(index))
            return namespace[name][int(index)]
        first, *attrs = field.split(".")
        if first == "Err" and not attrs and "Err" not in namespace:
            return _error(errors, None)
        value = namespace[first]
        for attr in attrs:
            value = getattr(value, attr)
        return value
    except Exception:  # anything that does not resolve stays as written
        return _MISSING


def _error(errors: Mapping[int, str] | None, count: int | None) -> _Error:
    """``{Err}``: the last error; ``{Err[n]}``: the error of execution n (``errors``: each
    execution's traceback text, by execution count)."""
    if errors is None:
        return _Error("(no errors are recorded here)")
    if count is None:
        if not errors:
            return _Error("(no cell has raised an error in this session)")
        last = max(errors)
        return _Error(errors[last], last)
    if count not in errors:
        return _Error(f"(execution {count} raised no error)")
    return _Error(errors[count], count)
