"""``Chat.compare``: the same items asked of several models (or ``Chat``s) as one grid through
the map's machinery, the grid in the items' shape, and what compares the models' answers.
No IPython; the progress view is handed in."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import agreement
from .budget import OverBudget, check, cost_of
from .cache import NotInCache
from .connection import resolve
from .errors import NbChatError
from .host import HOST
from .items import MapError, Progress, ProgressView, Shape
from .mapping import (
    Job,
    MapFailed,
    MapInterrupted,
    MapStopped,
    Runner,
    async_client,
    check_fields,
    confirm_cost,
    drive,
    estimate_cost,
    jobs_for,
    not_cached,
    replay,
)
from .schema import Mismatch, Schema, as_record, to_schema

if TYPE_CHECKING:
    from .chat import Chat, Reply

LABEL_TYPES = ("boolean", "integer", "number")  # with enums: the fields whose values are labels


@dataclasses.dataclass
class Column:
    """One model of the grid: its column's name, the ``Chat`` whose server, settings and
    system prompt it uses, and the model asked (``None``: that Chat's own)."""

    label: str
    chat: Chat
    model: str | None = None

    @property
    def server(self) -> str:
        return resolve(self.chat.settings).url

    @property
    def where(self) -> str:
        """The server for people to read (any password in its address masked)."""
        return resolve(self.chat.settings).where

    @property
    def model_name(self) -> str:
        return self.model or str(self.chat.settings.model)


@dataclasses.dataclass(repr=False)
class CellError(MapError):
    """One failed request of the grid: the item's position, the item, the model, the error."""

    model: str = ""

    def __str__(self) -> str:
        return f"#{self.position} {self.model}: {self.error}"

    def __repr__(self) -> str:
        return f"<CellError {self}>"


@dataclasses.dataclass
class ModelSummary:
    label: str
    model: str
    total: int
    done: int  # answered, asked now or replayed
    failed: int  # asked and failed
    replayed: int
    latency: float | None  # median seconds of the requests sent now
    tokens: int
    cost: float | None
    stopped: str | None = None  # why the model stopped early (the rest were not sent)

    @property
    def not_sent(self) -> int:
        """Neither answered nor failed: not sent after an early stop, or cut by an interrupt."""
        return self.total - self.done - self.failed


@dataclasses.dataclass
class Agreement:
    """Two models over one label field (``""``: the reply's text)."""

    field: str
    a: str
    b: str
    n: int  # items both answered
    equal: float | None
    kappa: float | None


@dataclasses.dataclass
class Accuracy:
    label: str
    field: str
    correct: int
    n: int  # items with a true label that the model answered
    confusion: dict[str, dict[str, int]]

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None


@dataclasses.dataclass
class Comparison:
    """What a compare found: a summary per model, agreement between each pair on each label
    field, accuracy and confusion against the truth, and the rows where the models differ."""

    models: list[ModelSummary]
    fields: list[str]  # the label fields compared ("" is the reply's text)
    agreement: list[Agreement]
    accuracy: list[Accuracy]
    disagreements: list[int]  # positions of items where the models' labels differ
    truth: str | None = None  # the truth column's name (or "truth" when given as values)
    truths: list[Any] | None = None  # the true labels, one per item
    columns: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # model -> its columns

    def __repr__(self) -> str:
        """The models, then κ for each pair and accuracy for each model, in one line."""
        parts = [f"{len(self.models)} models ({', '.join(m.label for m in self.models)})"]
        parts += [
            f"κ {p.a}·{p.b} {p.field or 'reply'} " + ("—" if p.kappa is None else f"{p.kappa:.2f}")
            for p in self.agreement
        ]
        parts += [
            f"accuracy {a.label} " + ("—" if a.accuracy is None else f"{a.accuracy:.2f}")
            for a in self.accuracy
        ]
        return f"<Comparison of {' · '.join(parts)}>"


class CompareResults(list[dict[str, Any]]):
    """A compare of a list: one dict per item (a key per model, or per field and model), with
    ``errors`` and ``comparison``."""

    errors: list[CellError]
    keys: dict[str, list[str]]
    comparison: Comparison | None

    def __init__(self, rows: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
        super().__init__(rows)
        self.errors, self.keys, self.comparison = [], {}, None

    def __repr__(self) -> str:
        """The first rows, how many more, and how many requests failed."""
        shown = ", ".join(repr(row) for row in self[:3]) + (
            f", … {len(self) - 3} more" if len(self) > 3 else ""
        )
        failed = f" · {len(self.errors)} failed (see .errors)" if self.errors else ""
        return f"<CompareResults of {len(self)} items × {len(self.keys)} models{failed}: [{shown}]>"


def comparison_of(results: Any) -> Comparison:
    """The :class:`Comparison` of a compare's results (a list's ``.comparison``, or a
    DataFrame's ``.attrs["comparison"]``)."""
    found = getattr(results, "comparison", None)
    if found is None:
        attrs = getattr(results, "attrs", None)
        found = attrs.get("comparison") if isinstance(attrs, dict) else None
    if not isinstance(found, Comparison):
        raise NbChatError("these are not the results of a compare")
    return found


# -- what is compared ----------------------------------------------------------------------


def _is_chat(value: Any) -> bool:
    return callable(getattr(value, "prepare", None)) and hasattr(value, "settings")


def columns_of(chat: Chat, models: Any) -> list[Column]:
    """``models``: names of models on ``chat``'s server and/or ``Chat`` objects, as a list,
    or a dict of column names to either."""
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",")]
    named = models.items() if isinstance(models, Mapping) else [(None, m) for m in models or ()]
    columns: list[Column] = []
    for label, entry in named:
        if _is_chat(entry):  # a Chat (not imported: it imports this module for Chat.compare)
            column = Column(str(label or entry.settings.model), entry)
        elif isinstance(entry, str) and entry.strip():
            column = Column(str(label or entry.strip()), chat, entry.strip())
        else:
            raise NbChatError(f"compare takes model names or Chat objects, not {entry!r}")
        if any(c.label == column.label for c in columns):
            raise NbChatError(
                f"two columns would be named {column.label!r}: name them, models={{'a': …, 'b': …}}"
            )
        columns.append(column)
    if not columns:
        raise NbChatError("compare needs models, e.g. models=['gpt-4o-mini', 'gpt-4o']")
    return columns


def label_fields(spec: Schema) -> list[str]:
    """The schema's fields whose values are labels: an enum, a bool or a number."""
    root = spec.json
    found = []
    for name, prop in (root.get("properties") or {}).items():
        variants = [_deref(v, root) for v in prop.get("anyOf") or [prop]]
        kinds: set[Any] = set()
        for variant in variants:
            kind = variant.get("type")
            kinds.update(kind if isinstance(kind, list) else [kind])
        if any("enum" in v for v in variants) or kinds & set(LABEL_TYPES):
            found.append(name)
    return found


def _deref(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part, {}) if isinstance(target, dict) else {}
    return target if isinstance(target, dict) else {}


def split_truth(shape: Shape, truth: Any) -> tuple[list[Any], list[Any] | None, str | None]:
    """The items as the template sees them (without the truth column), the true labels, and
    the truth's name. ``truth``: a column of a DataFrame (or key of dict items), or values."""
    if truth is None:
        return shape.items, None, None
    if isinstance(truth, str):
        rows = shape.items
        if not rows or not all(isinstance(r, Mapping) for r in rows):
            raise NbChatError(
                f"truth={truth!r} names a column: the items must be a DataFrame or dicts "
                "(or pass the true labels themselves, one per item)"
            )
        if any(truth not in r for r in rows):
            columns = ", ".join(map(str, rows[0]))
            raise NbChatError(f"truth {truth!r} is not a column of the items (columns: {columns})")
        items = [{k: v for k, v in r.items() if k != truth} for r in rows]
        return items, [r[truth] for r in rows], truth
    try:
        values = list(truth)
    except TypeError:
        raise NbChatError(f"truth takes a column name or one label per item, not {truth!r}") from None
    if len(values) != len(shape.items):
        raise NbChatError(f"truth has {len(values)} labels for {len(shape.items)} items")
    return shape.items, values, "truth"


def truth_field(spec: Schema | None, name: str | None) -> str:
    """Which answer the truth is compared with: the reply's text (``""``) without a schema;
    with one, the field named like the truth column, else its only label field."""
    if spec is None:
        return ""
    if name in spec.fields:
        return str(name)
    labels = label_fields(spec)
    if len(labels) == 1 or len(spec.fields) == 1:
        return (labels or spec.fields)[0]
    raise NbChatError(
        f"which schema field does the truth label? the schema has {len(labels) or 'no'} label fields "
        f"({', '.join(labels or spec.fields)}): name the truth column like one of them, or give the "
        "schema one enum, bool or number field"
    )


# -- the plan: every request of the grid, built and not sent -------------------------------


@dataclasses.dataclass
class Plan:
    shape: Shape
    columns: list[Column]
    jobs: dict[str, list[Job]]  # by column label, in the items' order
    spec: Schema | None
    truths: list[Any] | None
    truth: str | None
    fields: list[str]  # the label fields to compare

    @property
    def requests(self) -> int:
        return sum(len(j) for j in self.jobs.values())

    def estimates(self, todo: dict[str, list[Job]] | None = None) -> dict[str, float | None]:
        """Each model's estimated cost (of ``todo``'s requests, or all), ``None`` without a price."""
        chosen = todo if todo is not None else self.jobs
        return {c.label: estimate_cost(c.chat, chosen[c.label]) for c in self.columns}


def plan(
    chat: Chat,
    items: Any,
    template: str,
    models: Any,
    *,
    schema: Any = None,
    truth: Any = None,
    raw: bool = False,
    **overrides: Any,
) -> Plan:
    """Every request of the grid (item × model), built and checked, nothing sent. Each
    model's requests are one early-stop group: a model refused on every item stops alone."""
    if not isinstance(template, str) or not template.strip():
        raise NbChatError("compare needs a template, e.g. 'Label the sentiment of: {item}'")
    if "model" in overrides:
        raise NbChatError("compare takes its models from models=[…] (leave out model=)")
    if overrides.setdefault("api", "chat") != "chat":
        raise NbChatError("a compare sends Chat Completions requests (api=chat), one per item and model")
    columns = columns_of(chat, models)
    spec = to_schema(schema) if schema is not None else None
    shape = Shape.of(items)
    prompts, truths, truth_name = split_truth(shape, truth)
    if not raw:
        check_fields(template, prompts)
    fields = label_fields(spec) if spec is not None else []
    if truths is not None:
        field = truth_field(spec, truth_name)
        fields = [field, *(f for f in fields if f != field)]
    jobs = {}
    for column in columns:
        extra = {"model": column.model} if column.model else {}
        jobs[column.label] = jobs_for(column.chat, prompts, template, spec, overrides | extra)
    return Plan(shape, columns, jobs, spec, truths, truth_name, fields)


# -- the run ----------------------------------------------------------------------------------


class Purse:
    """The budget across the grid: the calling chat's ``budget`` covers every model, ``Chat``
    columns included. Spent is what that chat's ledger holds, plus what the other columns'
    ledgers took since the grid started, plus the estimates each ledger holds for the
    requests in flight."""

    def __init__(self, chat: Chat, shares: list[Share]) -> None:
        self.settings, self.base = chat.settings, chat.ledger
        others = {
            id(s.column.chat.ledger): s.column.chat.ledger
            for s in shares
            if s.column.chat.ledger is not chat.ledger
        }
        self.started = [(ledger, ledger.spent) for ledger in others.values()]

    def spent(self) -> float:
        others = sum(ledger.spent - start + ledger.held for ledger, start in self.started)
        return float(self.base.spent + self.base.held + others)

    def admit(self, runner: GridRunner, job: Job) -> str | None:
        """As :meth:`Runner.admit`, against the grid's budget."""
        if self.settings.budget is None:
            return None
        body = job.request.body
        estimate = cost_of(body, runner.chat.settings.prices, runner.observed.average)
        try:
            check(self.settings, self.spent(), estimate, "the next request", str(body["model"]), runner.url)
        except OverBudget as e:
            return str(e)
        job.estimate = estimate or 0.0
        runner.chat.ledger.held += job.estimate  # released by the runner when the job settles
        return None


class GridRunner(Runner):
    """A model's share of the grid: the map's runner (its own adaptive limit, retries, 429
    pauses and early stop) behind a gate shared by every model on the same server, so that
    server never sees more than ``concurrency`` requests at once. Keeps each reply's latency."""

    gate: asyncio.Semaphore
    latencies: list[float]
    gated = 0  # holding a place at the gate: in flight, or about to be

    async def acquire(self) -> None:
        # the gate after the runner's own slot: a job is checked against its model's early
        # stop after both, so a model that stopped sends nothing that was waiting here
        await super().acquire()
        await self.gate.acquire()
        self.gated += 1

    async def settle(self, job: Job, outcome: tuple[str, Any]) -> None:
        self.gated -= 1
        self.gate.release()
        await super().settle(job, outcome)

    purse: Purse

    def admit(self, job: Job) -> str | None:
        return self.purse.admit(self, job)

    def succeed(self, job: Job, reply: Reply) -> None:
        self.latencies.append(reply.latency)
        super().succeed(job, reply)


@dataclasses.dataclass
class Share:
    """One model's part of a run: its values, errors, progress and runner."""

    column: Column
    values: list[Any]
    errors: dict[int, MapError]
    state: Progress
    runner: GridRunner | None = None
    todo: list[Job] = dataclasses.field(default_factory=list)


def run_compare(
    chat: Chat,
    items: Any,
    template: str,
    *,
    models: Any,
    schema: Any = None,
    truth: Any = None,
    concurrency: int = 8,
    strict: bool = False,
    raw: bool = False,
    previous: Any = None,
    progress: Any = "auto",
    label: str = "compare",
    confirm: Callable[[str], str] | None = None,
    **overrides: Any,
) -> Any:
    """See :meth:`nbchat.Chat.compare`."""
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise NbChatError(f"concurrency must be an integer ≥ 1 (got {concurrency!r})")
    grid = plan(chat, items, template, models, schema=schema, truth=truth, raw=raw, **overrides)
    done = completed(previous, grid)
    shares = [_share(grid, column, done.get(column.label, {}), concurrency) for column in grid.columns]
    only = [
        j
        for s in shares
        if (overrides.get("cache") or s.column.chat.settings.cache) == "only"
        for j in s.todo
    ]
    if only:
        raise NotInCache(not_cached(only, grid.requests))
    priced = [e for e in grid.estimates({s.column.label: s.todo for s in shares}).values() if e is not None]
    todo = sum(len(s.todo) for s in shares)
    if priced:
        confirm_cost(chat, sum(priced), todo, f"{len(shares)} models", confirm)
    total = Progress(
        grid.requests, f"{label} × {len(shares)} models", limit=concurrency, lowest_limit=concurrency
    )
    total.estimate = sum(priced) if priced else None
    factory = HOST.progress if progress == "auto" else progress
    view = factory(total) if callable(factory) else None
    interrupted = False
    try:
        if todo:
            interrupted = drive(_starter(chat, shares, concurrency), total, _Summing(total, shares, view))
    finally:
        _add_up(total, shares)
        total.ended = time.perf_counter()
        total.interrupted = interrupted
        _not_run(shares, interrupted)
        if view is not None:
            view.close(total.summary())
    results = build(grid, shares)
    outcome(results, shares, interrupted, strict)
    return results


def _not_run(shares: list[Share], interrupted: bool) -> None:
    """Each request that neither answered nor failed gets its error: cut by the interrupt, or
    not sent after its model stopped early."""
    for share in shares:
        for job in share.todo:
            if share.values[job.position] is None and job.position not in share.errors:
                why = (
                    "interrupted before it completed" if interrupted else "not sent: the model stopped early"
                )
                if share.state.over_budget and not interrupted:
                    why = "not sent: the budget would be exceeded"
                share.errors[job.position] = MapError(job.position, job.item, why)


def outcome(results: Any, shares: list[Share], interrupted: bool, strict: bool) -> None:
    """Raise what the run calls for, the results attached: an interrupt; a model that stopped
    early (the others went on); every request failed; or, with ``strict``, any failed."""
    errors = results.errors if isinstance(results, CompareResults) else results.attrs["errors"]
    total = sum(len(s.values) for s in shares)
    if interrupted:
        raise MapInterrupted(
            f"interrupted: {total - len(errors)} of {total} requests completed and are kept; "
            "re-run to continue with the rest",
            results,
        )
    over = next((s.state.over_budget for s in shares if s.state.over_budget), None)
    if over:
        raise OverBudget(
            f"{over} ({total - len(errors)} of {total} requests completed and are kept)", results
        )
    stopped = [s for s in shares if s.todo and s.todo[0].stop.stopped]
    if stopped:
        lines = [f"{s.column.label}: {s.todo[0].stop.message()}" for s in stopped]
        others = "; the other models went on" if len(stopped) < len(shares) else ""
        raise MapStopped("\n".join(lines) + others, results)
    first = f"{errors[0]}" if errors else ""
    if errors and len(errors) == total:
        raise MapFailed(
            f"all {total} requests failed; the first, {first} (each error is in .errors)", results
        )
    if errors and strict:
        raise MapFailed(
            f"{len(errors)} of {total} requests failed (strict); the first, {first} "
            "(the results are delivered; each error is in .errors)",
            results,
        )


def _share(grid: Plan, column: Column, done: dict[str, Any], concurrency: int) -> Share:
    """A model's values so far (from earlier results, then the reply cache) and what is left."""
    jobs = grid.jobs[column.label]
    values: list[Any] = [done.get(j.key) for j in jobs]
    replayed = replay(column.chat, [j for j in jobs if values[j.position] is None], values)
    state = Progress(total=len(jobs), label=column.label, limit=concurrency, lowest_limit=concurrency)
    state.done = state.reused = sum(v is not None for v in values)
    state.tokens = sum(_tokens(r) for r in replayed)
    share = Share(column, values, {}, state)
    share.todo = [j for j in jobs if values[j.position] is None]
    return share


def _tokens(reply: Reply) -> int:
    usage = reply.usage or {}
    return int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)


def _starter(chat: Chat, shares: list[Share], concurrency: int) -> Callable[[threading.Event], Any]:
    """The coroutine that runs every model's runner at once on the map's loop."""
    purse = Purse(chat, shares)
    for share in shares:
        client = async_client(share.column.chat)
        share.runner = GridRunner(
            share.column.chat, client, share.values, share.errors, share.state, concurrency
        )
        share.runner.latencies, share.runner.purse = [], purse

    async def run_all(finished: threading.Event) -> None:
        gates: dict[str, asyncio.Semaphore] = {}
        tasks = []
        for share in shares:
            assert share.runner is not None
            share.runner.gate = gates.setdefault(share.column.server, asyncio.Semaphore(concurrency))
            if share.todo:
                tasks.append(asyncio.ensure_future(share.runner.run(share.todo, threading.Event())))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            finished.set()

    return run_all


class _Summing:
    """Paints the whole grid's progress: the models' own progress added up at each tick."""

    def __init__(self, total: Progress, shares: list[Share], view: ProgressView | None) -> None:
        self.total, self.shares, self.view = total, shares, view

    def update(self, _state: Progress) -> None:
        _add_up(self.total, self.shares)
        if self.view is not None:
            self.view.update(self.total)

    def close(self, summary: str) -> None:
        if self.view is not None:
            self.view.close(summary)


def _add_up(total: Progress, shares: list[Share]) -> None:
    states = [s.state for s in shares]
    total.done = sum(s.done for s in states)
    total.failed = sum(s.failed for s in states)
    total.reused = sum(s.reused for s in states)
    total.tokens = sum(s.tokens for s in states)
    total.inflight = sum(s.runner.gated for s in shares if s.runner is not None)
    costs = [s.cost for s in states if s.cost is not None]
    total.cost = sum(costs) if costs else None
    total.lowest_limit = min(s.lowest_limit for s in states)


# -- results ------------------------------------------------------------------------------------


def column_names(grid: Plan, column: Column) -> list[str]:
    """A model's columns: its label, or ``label.field`` for each field of the schema."""
    if grid.spec is None:
        return [column.label]
    return [f"{column.label}.{f}" for f in grid.spec.fields]


def _cells(grid: Plan, column: Column, value: Any) -> dict[str, Any]:
    names = column_names(grid, column)
    if grid.spec is None:
        return {names[0]: None if value is None else str(value)}
    record = as_record(value) if value is not None else {}
    return {name: record.get(f) for name, f in zip(names, grid.spec.fields, strict=True)}


def build(grid: Plan, shares: list[Share]) -> Any:
    """The grid in the items' shape, with its errors, keys (to continue) and comparison."""
    rows = []
    for position in range(len(grid.shape.items)):
        row: dict[str, Any] = {}
        for share in shares:
            row.update(_cells(grid, share.column, share.values[position]))
        rows.append(row)
    errors = [
        CellError(e.position, e.item, e.error, model=share.column.label)
        for share in shares
        for e in sorted(share.errors.values(), key=lambda e: e.position)
    ]
    errors.sort(key=lambda e: e.position)
    keys = {share.column.label: [j.key for j in grid.jobs[share.column.label]] for share in shares}
    comparison = compare_values(grid, shares)
    if grid.shape.kind == "list":
        out = CompareResults(rows)
        out.errors, out.keys, out.comparison = errors, keys, comparison
        return out
    original = grid.shape.original
    frame_cls = type(original) if grid.shape.kind == "frame" else type(original.to_frame())
    names = [n for share in shares for n in column_names(grid, share.column)]
    frame = frame_cls(rows, index=original.index, columns=names)
    frame.attrs["errors"] = errors
    frame.attrs["nbchat_keys"] = keys
    frame.attrs["comparison"] = comparison
    return frame


def labels(grid: Plan, values: list[Any], field: str) -> list[agreement.Label]:
    """One model's answers as labels for ``field`` (``""``: the reply's text)."""
    if not field:
        return [agreement.label_of(None if v is None else str(v)) for v in values]
    return [agreement.label_of(as_record(v).get(field)) if v is not None else None for v in values]


def compare_values(grid: Plan, shares: list[Share]) -> Comparison:
    """The summary per model, agreement per pair and field, accuracy against the truth."""
    summaries = [
        ModelSummary(
            s.column.label,
            s.column.model_name,
            len(s.values),
            sum(v is not None for v in s.values),
            s.state.failed,
            s.state.reused,
            agreement.median(s.runner.latencies) if s.runner is not None else None,
            s.state.tokens,
            s.state.cost,
            s.todo[0].stop.reason if s.todo and s.todo[0].stop.stopped else None,
        )
        for s in shares
    ]
    by_field = {f: {s.column.label: labels(grid, s.values, f) for s in shares} for f in grid.fields}
    pairs = [
        Agreement(
            field,
            a,
            b,
            len(agreement.paired(answers[a], answers[b])),
            agreement.share_equal(answers[a], answers[b]),
            agreement.cohen_kappa(answers[a], answers[b]),
        )
        for field, answers in by_field.items()
        for a, b in itertools.combinations(answers, 2)
    ]
    accuracy = []
    if grid.truths is not None:
        field = grid.fields[0]
        truths = [agreement.label_of(t) for t in grid.truths]
        for model, answers in by_field[field].items():
            correct, n = agreement.accuracy(truths, answers)
            accuracy.append(Accuracy(model, field, correct, n, agreement.confusion(truths, answers)))
    differ = [
        position
        for position in range(len(grid.shape.items))
        if any(len({a[position] for a in answers.values()} - {None}) > 1 for answers in by_field.values())
    ]
    names = {s.column.label: column_names(grid, s.column) for s in shares}
    return Comparison(summaries, grid.fields, pairs, accuracy, differ, grid.truth, grid.truths, names)


def completed(previous: Any, grid: Plan) -> dict[str, dict[str, Any]]:
    """An earlier compare's completed answers, by model and request key (to continue it)."""
    if previous is None:
        return {}
    attrs = getattr(previous, "attrs", None)
    if isinstance(previous, CompareResults):
        keys, errors, rows = previous.keys, previous.errors, list(previous)
    elif isinstance(attrs, dict) and isinstance(attrs.get("nbchat_keys"), dict):
        keys, errors = attrs["nbchat_keys"], attrs.get("errors") or []
        rows = previous.to_dict("records") if hasattr(previous, "to_dict") else []
    else:
        return {}
    failed = {(getattr(e, "model", ""), e.position) for e in errors}
    out: dict[str, dict[str, Any]] = {}
    for column in grid.columns:
        found = out.setdefault(column.label, {})
        for position, key in enumerate(keys.get(column.label) or []):
            if (column.label, position) in failed or position >= len(rows):
                continue
            value = _value_of(grid, column, rows[position])
            if value is not None:
                found[key] = value
    return out


def _value_of(grid: Plan, column: Column, row: Mapping[str, Any]) -> Any:
    """A model's answer in one row of earlier results (``None``: none)."""
    names = column_names(grid, column)
    cells = [row.get(n) for n in names]
    if all(c is None or (isinstance(c, float) and math.isnan(c)) for c in cells):
        return None
    if grid.spec is None:
        return cells[0]
    try:
        return grid.spec.build(dict(zip(grid.spec.fields, cells, strict=True)))
    except Mismatch:
        return None
