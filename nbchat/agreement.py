"""How far raters agree: share equal, Cohen's κ, accuracy and confusion counts over labels.
Small pure functions over lists of hashable labels (``None``: no answer). No IPython, no I/O."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

Label = str | None


def label_of(value: Any) -> Label:
    """A value as a label to count and compare: ``"Positive."`` and ``"positive"`` are the
    same label, ``4`` and ``4.0`` too; ``None`` and NaN are no answer."""
    if callable(getattr(value, "item", None)) and getattr(value, "shape", None) == ():
        value = value.item()  # a NumPy scalar (a Series' value) as the Python value it holds
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, str):
        return value.strip().rstrip(".!").strip().casefold()
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def paired(a: Sequence[Label], b: Sequence[Label]) -> list[tuple[str, str]]:
    """The positions where both gave a label."""
    return [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]


def share_equal(a: Sequence[Label], b: Sequence[Label]) -> float | None:
    """Of the items both answered, the share with the same label (``None``: none in common)."""
    pairs = paired(a, b)
    return sum(x == y for x, y in pairs) / len(pairs) if pairs else None


def cohen_kappa(a: Sequence[Label], b: Sequence[Label]) -> float | None:
    """Cohen's κ over the items both answered: (p_o − p_e) / (1 − p_e), where p_e is the
    agreement expected by chance from each rater's own label frequencies. ``None`` when it is
    undefined (no item in common, or both always gave one and the same label: p_e = 1)."""
    pairs = paired(a, b)
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(x == y for x, y in pairs) / n
    left, right = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    expected = sum(left[k] * right[k] for k in left) / (n * n)
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1.0 - expected)


def accuracy(truth: Sequence[Label], predicted: Sequence[Label]) -> tuple[int, int]:
    """(correct, counted): items with a true label and an answer, and how many match."""
    pairs = paired(truth, predicted)
    return sum(t == p for t, p in pairs), len(pairs)


def confusion(truth: Sequence[Label], predicted: Sequence[Label]) -> dict[str, dict[str, int]]:
    """Counts by true label, then by predicted label (both sorted), over items with both."""
    counts = Counter(paired(truth, predicted))
    rows = sorted({t for t, _ in counts})
    columns = sorted({p for _, p in counts} | set(rows))
    return {t: {p: counts[(t, p)] for p in columns} for t in rows}


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
