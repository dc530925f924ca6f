"""What the user sees of a compare: the summary per model, agreement, accuracy and confusion,
the first rows side by side with disagreements marked, and a dry run's grid and cost."""

from __future__ import annotations

from typing import Any

from . import render
from .agreement import label_of
from .compare import Comparison, Plan, comparison_of
from .items import Shape
from .mapping import fields_of
from .mapview import cell_text, show_errors
from .usage import format_cost

ROWS = 10  # rows shown side by side
CLIP = 60  # characters of an item or an answer in those rows
DIFFER = "≠"
WRONG = " ✗"


def show(results: Any, items: Any, terminal: bool, kept: str | None = None, rows: int = ROWS) -> None:
    """The summary, agreement, accuracy and the first rows of a compare's results (``items``:
    what was compared, to show beside the answers)."""
    found = comparison_of(results)
    summary(found, terminal)
    if found.agreement:
        agreement(found, terminal)
    for accuracy in found.accuracy:
        confusion(accuracy, terminal)
    side_by_side(results, Shape.of(items).items, found, terminal, rows)
    errors = getattr(results, "errors", None)
    if errors is None:
        errors = results.attrs.get("errors") or []
    show_errors(errors, terminal)
    if kept is None and len(results) > rows:
        render.note(f"{len(results) - rows} more rows: keep them all with -o NAME", terminal)


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def summary(found: Comparison, terminal: bool) -> None:
    accuracy = {a.label: a for a in found.accuracy}
    headers = ["model", "done", "failed", "not sent", "median latency", "tokens", "cost"]
    if accuracy:
        headers.append(f"accuracy ({found.fields[0] or 'reply'} vs {found.truth})")
    rows = []
    for m in found.models:
        done = f"{m.done}/{m.total}" + (f" ({m.replayed} replayed)" if m.replayed else "")
        row = [m.label, done, m.failed, m.not_sent, _seconds(m.latency), m.tokens]
        row.append(format_cost(m.cost) if m.cost is not None else "—")
        if accuracy:
            a = accuracy[m.label]
            row.append(f"{_share(a.accuracy)} ({a.correct}/{a.n})")
        rows.append(row)
    render.table(headers, rows, terminal)


def agreement(found: Comparison, terminal: bool) -> None:
    rows = [
        [p.field or "reply", f"{p.a} · {p.b}", p.n, _share(p.equal), _share(p.kappa)] for p in found.agreement
    ]
    render.table(["label", "models", "both answered", "share equal", "Cohen's κ"], rows, terminal)


def confusion(accuracy: Any, terminal: bool) -> None:
    """One model's confusion table: true labels down, its answers across."""
    table = accuracy.confusion
    if not table:
        return
    answers = list(next(iter(table.values())))
    render.note(f"{accuracy.label}: true label ↓, answer →", terminal)
    render.table(
        ["", *answers], [[truth, *(row[a] for a in answers)] for truth, row in table.items()], terminal
    )


def side_by_side(results: Any, items: list[Any], found: Comparison, terminal: bool, limit: int) -> None:
    """The first rows: the item, the truth, each model's answers (✗: not the truth); ≠ marks
    the rows where the models' labels differ."""
    if hasattr(results, "to_dict"):
        head = results.head(limit)
        index, records = list(head.index), head.to_dict("records")
    else:
        index, records = list(range(min(limit, len(results)))), list(results[:limit])
    label_fields = [f for f in found.fields if f]
    shown = [
        name
        for model, names in found.columns.items()
        for name in (names if not label_fields else [f"{model}.{f}" for f in label_fields])
    ]
    truths = found.truths or []
    judged = {f"{m}.{found.fields[0]}" if found.fields[0] else m for m in found.columns} if truths else set()
    headers = ["", "item", *([found.truth or "truth"] if truths else []), *shown, DIFFER]
    differ = set(found.disagreements)
    rows = []
    for position, (name, record) in enumerate(zip(index, records, strict=True)):
        item = items[position]
        if isinstance(item, dict) and found.truth in item:
            item = {k: v for k, v in item.items() if k != found.truth}
        shown_item = next(iter(item.values())) if isinstance(item, dict) and len(item) == 1 else item
        row = [name, _clip(str(fields_of(shown_item)["item"]))]
        if truths:
            row.append(_clip(cell_text(truths[position])))
        for column in shown:
            value = record.get(column)
            answered = value is not None and value == value  # NaN: no answer
            text = _clip(cell_text(value)) if answered else "—"
            if column in judged and answered and label_of(value) != label_of(truths[position]):
                text += WRONG
            row.append(text)
        row.append(DIFFER if position in differ else "")
        rows.append(row)
    render.table(headers, rows, terminal)


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= CLIP else text[: CLIP - 1] + "…"


def show_plan(grid: Plan, concurrency: int, terminal: bool) -> None:
    """``--dry-run`` of a compare: the grid's size and each model's estimated cost; nothing sent."""
    estimates = grid.estimates()
    items = len(grid.shape.items)
    priced = [e for e in estimates.values() if e is not None]
    total = f" · estimated ≈{format_cost(sum(priced))}" if priced else ""
    render.note(
        f"Dry run: {items} items × {len(grid.columns)} models = {grid.requests} requests, at most "
        f"{concurrency} at once per server{total}. Nothing is sent.",
        terminal,
    )
    rows = []
    for column in grid.columns:
        jobs = grid.jobs[column.label]
        system = (
            next((m["content"] for m in jobs[0].request.messages if m["role"] == "system"), "")
            if jobs
            else ""
        )
        estimate = estimates[column.label]
        rows.append(
            [
                column.label,
                column.model_name,
                column.where,
                len(jobs),
                format_cost(estimate) if estimate is not None else "no price",
                _clip(str(system)) or "—",
            ]
        )
    render.table(["column", "model", "server", "requests", "estimated cost", "system prompt"], rows, terminal)
