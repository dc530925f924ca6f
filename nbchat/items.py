"""What a map (and a compare) is made of, as plain data: the items' shape, a failed item,
the results with their errors, and the progress facts a view paints. No IPython, no
network: the engine fills these in, the views read them."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from .errors import NbChatError
from .schema import Schema, as_record
from .usage import format_cost


@dataclasses.dataclass
class MapError:
    """One failed item: its position, the item, and what went wrong."""

    position: int
    item: Any
    error: str

    def __str__(self) -> str:
        return f"#{self.position}: {self.error}"

    def __repr__(self) -> str:
        return f"<MapError {self}>"


class MapResults(list[Any]):
    """A map's results in the items' order (``None`` where an item failed), with ``errors``."""

    errors: list[MapError]
    keys: list[str]

    def __init__(self, values: Iterable[Any] = (), errors: list[MapError] | None = None) -> None:
        super().__init__(values)
        self.errors = errors or []
        self.keys = []

    def __repr__(self) -> str:
        """The first results (each a short ``Reply``), how many more, and how many failed."""
        shown = ", ".join(repr(v) for v in self[:10]) + (
            f", … {len(self) - 10} more" if len(self) > 10 else ""
        )
        failed = f" · {len(self.errors)} failed (see .errors)" if self.errors else ""
        return f"<MapResults of {len(self)}{failed}: [{shown}]>"


def bar_text(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / total) if total else width
    return "█" * filled + "░" * (width - filled)


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:02.0f} min"


@dataclasses.dataclass
class Progress:
    """What a progress view paints; updated by the runner, read by the caller's thread."""

    total: int
    label: str = "map"
    done: int = 0
    failed: int = 0
    reused: int = 0
    tokens: int = 0
    cost: float | None = None
    estimate: float | None = None  # what the requests were expected to cost, before they ran
    inflight: int = 0
    limit: int = 0
    lowest_limit: int = 0
    started: float = dataclasses.field(default_factory=time.perf_counter)
    ended: float | None = None
    interrupted: bool = False
    stopped: bool = False  # stopped early: the rest were not sent
    unsent: int = 0
    over_budget: str | None = None  # why the rest was not sent: the budget would be exceeded

    @property
    def elapsed(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    @property
    def cost_text(self) -> str | None:
        """Cost so far, against the estimate made before starting."""
        if self.estimate is None:
            return format_cost(self.cost) if self.cost is not None else None
        return f"{format_cost(self.cost or 0.0)} of ≈{format_cost(self.estimate)}"

    def line(self) -> str:
        """The facts every view of a running map shows: done/total, failed, rate, time left,
        tokens, cost (against the estimate) and requests in flight."""
        ran = self.done - self.reused
        rate = ran / max(self.elapsed, 1e-9)
        parts = [f"{self.label} {bar_text(self.done, self.total)} {self.done}/{self.total}"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        parts.append(f"{rate:.1f}/s")
        left = self.total - self.done - self.unsent
        if left > 0 and ran > 0:
            parts.append(f"≈{duration(left / rate)} left")
        parts.append(f"{self.tokens} tokens")
        if self.cost_text:
            parts.append(self.cost_text)
        if self.inflight:
            parts.append(f"{self.inflight} in flight")
        return " · ".join(parts)

    def summary(self) -> str:
        ran = self.done - self.reused
        parts = [f"{self.label}: {self.done - self.failed}/{self.total} done"]
        if self.failed:
            parts.append(f"{self.failed} failed (see .errors)")
        if self.reused:
            parts.append(f"{self.reused} replayed (not asked again)")
        if self.interrupted:
            parts.append(f"interrupted — {self.total - self.done} not run; re-run to continue")
        elif self.stopped:
            parts.append(f"stopped early — {self.total - self.done} not sent")
        parts.append(f"{self.tokens} tokens")
        if self.cost is not None:
            estimated = f" (estimated ≈{format_cost(self.estimate)})" if self.estimate is not None else ""
            parts.append(format_cost(self.cost) + estimated)
        parts.append(f"{self.elapsed:.2f} s")
        if ran and self.elapsed > 0:
            parts.append(f"{ran / self.elapsed:.1f} requests/s")
        if self.lowest_limit and self.lowest_limit < self.limit:
            parts.append(f"slowed to {self.lowest_limit} at once on 429")
        return " · ".join(parts)


class ProgressView(Protocol):
    """What a map paints its progress on: handed in by the caller (the magics, or the
    package's default for the Python API, see ``nbchat.host``); the engine imports no view."""

    def update(self, state: Progress) -> None: ...

    def close(self, summary: str) -> None: ...


# -- items in, results out (duck-typed: pandas is never imported) -------------------------


@dataclasses.dataclass
class Shape:
    kind: str  # "list", "series" or "frame"
    items: list[Any]
    original: Any = None

    @classmethod
    def of(cls, items: Any) -> Shape:
        if hasattr(items, "itertuples") and hasattr(items, "columns"):
            columns = [str(c) for c in items.columns]
            rows = [dict(zip(columns, row, strict=True)) for row in items.itertuples(index=False, name=None)]
            return cls("frame", rows, items)
        if hasattr(items, "to_frame") and hasattr(items, "index"):
            return cls("series", list(items), items)
        if isinstance(items, (str, bytes)) or isinstance(items, Mapping):
            raise NbChatError("map takes a list (or a Series or DataFrame) of items, not one string or dict")
        try:
            return cls("list", list(items))
        except TypeError:
            raise NbChatError(
                f"map takes a list (or a Series or DataFrame) of items, not {type(items).__name__}"
            ) from None

    def build(self, values: list[Any], errors: list[MapError], keys: list[str], schema: Schema | None) -> Any:
        """Results in the items' shape: a list, a Series, or (with a schema) a DataFrame."""
        if self.kind == "list":
            results = MapResults(values, errors)
            results.keys = keys
            return results
        index = self.original.index
        if schema is not None:
            frame_cls = type(self.original) if self.kind == "frame" else type(self.original.to_frame())
            fields = schema.fields
            rows = [
                {f: as_record(v).get(f) for f in fields} if v is not None else dict.fromkeys(fields)
                for v in values
            ]
            out = frame_cls(rows, index=index, columns=fields)
        else:
            series_cls = type(index.to_series())
            texts = [str(v) if v is not None else None for v in values]
            out = series_cls(texts, index=index, dtype=object)
        out.attrs["errors"] = errors
        out.attrs["nbchat_keys"] = keys
        return out


def errors_of(results: Any) -> list[MapError]:
    """A map's errors, from a list's ``.errors`` or a Series' or DataFrame's ``.attrs``."""
    if isinstance(results, MapResults):
        return results.errors
    attrs = getattr(results, "attrs", None)
    return list(attrs.get("errors") or []) if isinstance(attrs, dict) else []
