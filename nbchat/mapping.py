"""``Chat.map``: one independent request per item, bounded concurrency that backs off on 429,
retries, progress events, and results in the items' own shape with their errors. No IPython.

Requests run on one long-lived asyncio loop in a background thread (the transport's
``AsyncOpenAI`` client, through ``nbchat.transports.chat``), while
the caller's thread waits in short ticks and paints progress: a kernel interrupt lands in
the caller's thread, which cancels the loop's tasks — the in-flight requests' connections
are closed, nothing new starts, and what completed is kept.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .budget import Observed, OverBudget, check, cost_of
from .cache import NotInCache
from .client import Completion
from .connection import resolve
from .errors import Interrupted, NbChatError
from .host import HOST
from .items import MapError, MapResults, Progress, ProgressView, Shape, errors_of
from .schema import Mismatch, Schema, to_schema
from .secret import credentials, redact, redact_foreign
from .transports import chat as chat_wire
from .transports.errors import (
    code_of,
    redacted,
    retry_after,
    status_of,
    transport_errors,
    unreachable,
    worth_retrying,
)
from .transports.errors import (
    failure as read_failure,
)
from .usage import format_cost

if TYPE_CHECKING:  # the Chat hands itself in: the engine's modules import no circle
    from .chat import Chat, Reply, Request

TICK = 0.1  # seconds between progress refreshes in the caller's thread
MAX_429 = 10  # a request answered 429 this many times fails
_FIELD = re.compile(r"(?<!\{)\{([A-Za-z_]\w*)\}(?!\})")


class MapInterrupted(Interrupted):
    """A kernel interrupt (Ctrl-C) stopped a map; ``results`` holds what completed (re-run to
    continue). A ``KeyboardInterrupt``: ``except Exception`` does not swallow it."""

    def __init__(self, message: str, results: Any) -> None:
        super().__init__(message)
        self.results = results


class MapFailed(NbChatError):
    """A map that fails its cell: every item failed, it stopped early, or (``strict``) some
    item failed. ``results`` holds what it delivered, ``.errors`` and all."""

    def __init__(self, message: str, results: Any) -> None:
        super().__init__(message)
        self.results = results


class MapStopped(MapFailed):
    """A map stopped early on a failure that would have hit every item (see ``EarlyStop``)."""


# How many items in a row, before any succeeded, failing alike (the same 4xx, or the server
# unreachable after retries) stop a group. One or two failures at the head can be the items'
# own (an over-long row, a filtered text); three alike before any success are the request's
# shape. At concurrency c the first wave sends c requests anyway, so waiting for the third
# costs at most two more requests.
ALIKE = 3
# failures that are about the key, the account or the model, never about the item
FATAL: dict[int | str, str] = {401: "the key", 403: "the key's access", 404: "the model or URL"}
FATAL["quota"] = "the account's quota"


@dataclasses.dataclass(eq=False)
class EarlyStop:
    """One group of requests (a map; one model of a compare) stopped at the first failure
    that will hit every item: after it, nothing more of the group is sent.

    At once on 401/403, 404 and a 429 saying the quota is spent; or when the first ``ALIKE``
    settled items all failed alike before any succeeded. ``kind`` of a failure: its status,
    ``"quota"``, ``"unreachable"``, or ``None`` for one that says nothing about the rest."""

    total: int
    noun: str = "items"
    sent: int = 0
    succeeded: bool = False
    streak: int = 0
    kind: int | str | None = None
    reason: str | None = None  # the one line a single request would have shown

    @property
    def stopped(self) -> bool:
        return self.reason is not None

    def success(self) -> None:
        self.succeeded, self.streak = True, 0

    def failure(self, kind: int | str | None, message: str) -> bool:
        """Count one failed item; True if the group stops here (or had stopped)."""
        if self.stopped:
            return True
        if kind in FATAL:
            self.reason = message
        elif kind is not None and not self.succeeded:
            self.streak = self.streak + 1 if kind == self.kind else 1
            self.kind = kind
            if self.streak >= ALIKE:
                self.reason = message
        else:
            self.streak, self.kind = 0, None
        return self.stopped

    def message(self) -> str:
        """The single request's line, then what was and was not sent."""
        left = self.total - self.sent
        return (
            f"{self.reason} — stopped early: {self.sent} of {self.total} {self.noun} were sent, "
            f"the other {left} were not (fix the cause and re-run: completed ones are kept)"
        )


@dataclasses.dataclass
class Failure:
    """Why one request failed: the item's error, what ``EarlyStop`` compares, and the line a
    single cell would show for the same failure."""

    text: str
    kind: int | str | None = None
    message: str = ""


# -- items in, results out (duck-typed: pandas is never imported) -------------------------


def fields_of(item: Any) -> dict[str, Any]:
    """What a template can name: ``{item}``, and each key of a dict or DataFrame row."""
    if isinstance(item, Mapping):
        return {
            "item": "; ".join(f"{k}: {v}" for k, v in item.items()),
            **{str(k): v for k, v in item.items()},
        }
    return {"item": item}


def fill(template: str, item: Any) -> str:
    """The template with ``{item}`` / ``{column}`` filled; other braces are left as written.
    A template that names no field gets the item appended (``Classify:`` + the item)."""
    fields = fields_of(item)
    if not any(m.group(1) in fields for m in _FIELD.finditer(template)):
        return f"{template}\n\n{fields['item']}"
    return _FIELD.sub(lambda m: str(fields[m.group(1)]) if m.group(1) in fields else m.group(0), template)


def request_key(body: Mapping[str, Any]) -> str:
    """Which request an item was (its body), to keep completed items across runs."""
    wire = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    return hashlib.sha256(json.dumps(wire, sort_keys=True, default=str).encode()).hexdigest()[:24]


def completed(previous: Any, schema: Schema | None) -> dict[str, Any]:
    """The completed values of an earlier run's results, by request key."""
    if previous is None:
        return {}
    attrs = getattr(previous, "attrs", None)
    if isinstance(previous, MapResults):
        keys, errors, values = previous.keys, previous.errors, list(previous)
    elif isinstance(attrs, dict) and "nbchat_keys" in attrs:
        keys, errors = attrs["nbchat_keys"], attrs.get("errors") or []
        if hasattr(previous, "columns"):
            values = [schema.build(r) if schema else r for r in previous.to_dict("records")]
        else:
            values = list(previous)
    else:
        return {}
    failed = {e.position for e in errors}
    return {
        k: v
        for i, (k, v) in enumerate(zip(keys, values, strict=False))
        if i not in failed and v is not None and v == v  # NaN != NaN
    }


# -- the run -------------------------------------------------------------------------


@dataclasses.dataclass
class Job:
    position: int
    item: Any
    request: Request
    user: dict[str, Any]
    key: str
    stop: EarlyStop  # shared by the job's group: when it stops, the group's queued jobs are not sent
    attempts: int = 0
    throttled: int = 0
    sent: bool = False
    estimate: float = 0.0  # what its request in flight is expected to cost (held from the budget)
    asked_again: bool = False  # the server refused something it sent: asked once more without it


def plan(
    chat: Chat, items: Any, template: str, schema: Any, concurrency: int, raw: bool, overrides: dict[str, Any]
) -> tuple[Shape, list[Job], Schema | None]:
    """The requests of a map, one per item, checked and built (a live map and a batch send
    the same ones)."""
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise NbChatError(f"concurrency must be an integer ≥ 1 (got {concurrency!r})")
    if not isinstance(template, str) or not template.strip():
        raise NbChatError("map needs a template, e.g. 'Label the sentiment of: {item}'")
    if overrides.setdefault("api", "chat") != "chat":
        raise NbChatError("a map sends Chat Completions requests (api=chat), one per item")
    spec = to_schema(schema) if schema is not None else None
    shape = Shape.of(items)
    if not raw:
        check_fields(template, shape.items)
    return shape, jobs_for(chat, shape.items, template, spec, overrides), spec


def run_map(
    chat: Chat,
    items: Any,
    template: str,
    *,
    schema: Any = None,
    concurrency: int = 8,
    strict: bool = False,
    raw: bool = False,
    previous: Any = None,
    progress: Callable[[Progress], ProgressView | None] | str | None = "auto",
    label: str = "map",
    confirm: Callable[[str], str] | None = None,
    **overrides: Any,
) -> Any:
    """See :meth:`nbchat.Chat.map`. ``progress``: a view factory, ``None`` for no view, or
    ``"auto"`` for the one the package handed in (``nbchat.host``)."""
    shape, jobs, spec = plan(chat, items, template, schema, concurrency, raw, overrides)
    only = (overrides.get("cache") or chat.settings.cache) == "only"
    done = completed(previous, spec)
    values: list[Any] = [done.get(j.key) for j in jobs]
    _count_kept(chat, values)
    replayed = replay(chat, [j for j in jobs if values[j.position] is None], values)
    todo = [j for j in jobs if values[j.position] is None]
    if only and todo:
        raise NotInCache(not_cached(todo, len(jobs), credentials(chat.settings)))
    estimate = check_cost(chat, todo, confirm)
    state = Progress(total=len(jobs), label=label, limit=concurrency, lowest_limit=concurrency)
    state.estimate = estimate
    state.done = state.reused = len(jobs) - len(todo)
    state.tokens = sum(_tokens(r) for r in replayed)
    errors: dict[int, MapError] = {}
    factory = HOST.progress if progress == "auto" else progress
    view = factory(state) if callable(factory) else None
    interrupted = False
    try:
        if todo:
            interrupted = _drive(chat, todo, values, errors, state, concurrency, view)
    finally:
        state.ended = time.perf_counter()
        state.interrupted = interrupted
        stop = jobs[0].stop if jobs else None
        state.stopped = stop is not None and stop.stopped
        for job in todo:
            if values[job.position] is None and job.position not in errors:
                why = "interrupted before it completed" if interrupted else "not sent: the map stopped early"
                if state.over_budget and not interrupted:
                    why = "not sent: the budget would be exceeded"
                errors[job.position] = MapError(job.position, job.item, why)
        if view is not None:
            view.close(state.summary())
    results = shape.build(values, [errors[p] for p in sorted(errors)], [j.key for j in jobs], spec)
    if state.over_budget and not interrupted:
        kept = state.done - state.failed
        raise OverBudget(
            f"{state.over_budget} ({kept} of {state.total} items completed and are kept)", results
        )
    outcome(results, len(jobs), stop, interrupted, strict)
    return results


def outcome(results: Any, total: int, stop: EarlyStop | None, interrupted: bool, strict: bool) -> None:
    """Raise what the run calls for, the results attached: an interrupt; an early stop; every
    item failed; or, with ``strict``, any item failed. Otherwise the map succeeded."""
    errors = errors_of(results)
    first = f"#{errors[0].position}: {errors[0].error}" if errors else ""
    if interrupted:
        kept = total - len(errors)
        raise MapInterrupted(
            f"interrupted: {kept} of {total} completed and are kept; re-run to continue with the rest",
            results,
        )
    if stop is not None and stop.stopped:
        raise MapStopped(stop.message(), results)
    if errors and len(errors) == total:
        which = (
            f"the one item failed, {first}" if total == 1 else f"all {total} items failed; the first, {first}"
        )
        raise MapFailed(f"{which} (each error is in .errors)", results)
    if errors and strict:
        raise MapFailed(
            f"{len(errors)} of {total} items failed (strict); the first, {first} "
            "(the results are delivered; each error is in .errors)",
            results,
        )


def check_fields(template: str, items: list[Any], known: Callable[[str], bool] | None = None) -> None:
    """Every ``{field}`` of a map template is ``item``, a key of every item (a column), or
    ``known`` (a variable): a typo such as ``{prodct}`` would go verbatim to every row."""
    for name in dict.fromkeys(m.group(1) for m in _FIELD.finditer(template)):
        if name == "item" or (known is not None and known(name)):
            continue
        for position, item in enumerate(items):
            if isinstance(item, Mapping) and name in item:
                continue
            raise NbChatError(_field_problem(name, position, item, variables=known is not None))


def _field_problem(name: str, position: int, item: Any, variables: bool) -> str:
    nor = ", nor {item}, nor a variable" if variables else " nor {item}"
    if not isinstance(item, Mapping):
        return (
            f"{{{name}}} in the template: the items are plain values ({type(item).__name__}), so a field "
            f"is {{item}}{', or a variable' if variables else ''}; nothing was sent"
        )
    keys = [str(k) for k in item]
    listed = ", ".join(keys[:20]) + (f", … ({len(keys)} in all)" if len(keys) > 20 else "")
    which = "a column of the items" if position == 0 else f"a key of item #{position}"
    return f"{{{name}}} in the template is not {which} (columns: {listed}){nor}; nothing was sent"


def jobs_for(
    chat: Chat, items: list[Any], template: str, spec: Schema | None, overrides: dict[str, Any]
) -> list[Job]:
    """One request per item (built, not sent): the system prompt and the filled template.
    The jobs are one early-stop group (a compare makes one per model)."""
    stop = EarlyStop(len(items))
    jobs = []
    # what the items (and the template's fields) bring from the namespace loses every
    # credential before it is sent, cached or written to a batch file, as a cell's {var} does
    secrets = credentials(chat.settings)
    for position, item in enumerate(items):
        request, user = chat.prepare(
            redact(fill(template, item), secrets), history=False, stream=False, schema=spec, **overrides
        )
        # one request, one answer: a map runs no tool-call loop, so it offers no tools
        request.body.pop("tools", None)
        request.tools = {}
        jobs.append(Job(position, item, request, user, request_key(request.body), stop))
    return jobs


def _count_kept(chat: Chat, values: list[Any]) -> None:
    """Items kept from an earlier run's results are replays: ``%chat usage`` counts them and
    what they saved, as the map's summary does (a schema's parsed value has no usage)."""
    for value in values:
        if hasattr(value, "usage") and hasattr(value, "cost"):  # a Reply (the engine's, not imported here)
            chat.ledger.replay(value.model, value.usage, value.cost)
        elif value is not None:
            chat.ledger.replay(chat.settings.model, None, None)


def replay(chat: Chat, jobs: list[Job], values: list[Any]) -> list[Reply]:
    """Items answered before come from the reply cache: a re-run continues, it does not resample
    (``cache="refresh"`` / ``--no-cache`` asks for every item again)."""
    from .cache import restore

    replies = []
    settings = chat.settings
    for job in jobs:
        mode = job.request.cache or settings.cache
        if not chat.replayer.reads(mode):
            continue  # cache off or refresh: not even a key to compute
        stream = chat.open(job.request, job.user)
        # no cell id: within a map, an identical request always replays
        entry, _ = chat.replayer.lookup(mode, settings.cache_path, stream._key(), None)
        if entry is None:
            continue
        restore(stream.completion, entry.reply)
        try:
            reply = stream.finish(replayed=entry)
        except Mismatch:
            continue  # asked again below
        values[job.position] = reply.data if job.request.schema is not None else reply
        replies.append(reply)
    return replies


def not_cached(missing: list[Job], total: int, secrets: Iterable[str] = ()) -> str:
    """``cache=only``'s error for a map some of whose requests the cache does not hold."""
    first = " ".join(str(missing[0].user.get("content") or "").split())
    first = redact_foreign(first if len(first) <= 50 else first[:49] + "…", secrets)
    return (
        f"not in the reply cache: this cell changed since it was made ({len(missing)} of {total} "
        f"items, first #{missing[0].position}: {first!r}); cache=only sends nothing"
    )


def _tokens(reply: Reply) -> int:
    usage = reply.usage or {}
    return int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)


def check_cost(
    chat: Chat, jobs: list[Job], confirm: Callable[[str], str] | None, discount: float = 1.0
) -> float | None:
    """Estimate what the requests will cost; above ``confirm_cost`` ask (``input()``), and
    refuse where nobody can answer."""
    estimate = estimate_cost(chat, jobs, discount)
    if estimate is None:
        return None
    return confirm_cost(chat, estimate, len(jobs), jobs[0].request.body["model"], confirm)


def estimate_cost(chat: Chat, jobs: list[Job], discount: float = 1.0) -> float | None:
    """What ``jobs`` (all to one model) should cost, in USD; ``None`` without a price."""
    if not jobs:
        return None
    # the same guess as the budget's (nbchat.budget): the reply's length from what is asked
    costs = [cost_of(j.request.body, chat.settings.prices) for j in jobs]
    return None if None in costs else discount * sum(c or 0.0 for c in costs)


def confirm_cost(
    chat: Chat, estimate: float, count: int, to: str, confirm: Callable[[str], str] | None
) -> float:
    """Above ``confirm_cost``, ask whether to send ``count`` requests ``to`` (a model, or
    several) with ``input()``; refuse where nobody can answer."""
    threshold = float(getattr(chat.settings, "confirm_cost", 1.0))
    if estimate <= threshold:
        return estimate
    question = (
        f"{count} requests to {to} will cost about {format_cost(estimate)} "
        f"(above confirm_cost {format_cost(threshold)}). Run them? [y/N] "
    )
    try:
        answer = (confirm or builtins.input)(question)
    except KeyboardInterrupt:
        raise Interrupted("not run: Ctrl-C at the cost confirmation; nothing was sent") from None
    except Exception:  # no stdin: nbclient, a script, a captured test
        raise NbChatError(
            f"{count} requests would cost about {format_cost(estimate)}, above confirm_cost "
            f"({format_cost(threshold)}), and there is no stdin to confirm; raise the limit "
            f"(%chatconfig confirm_cost={estimate * 1.5:.2f}) to run it"
        ) from None
    if answer.strip().lower() not in ("y", "yes"):
        raise NbChatError("not run: the estimated cost was not confirmed")
    return estimate


def _drive(
    chat: Chat,
    jobs: list[Job],
    values: list[Any],
    errors: dict[int, MapError],
    state: Progress,
    concurrency: int,
    view: ProgressView | None,
) -> bool:
    """Run ``jobs`` on the background loop; paint progress; True if interrupted."""
    runner = Runner(chat, async_client(chat), values, errors, state, concurrency)
    return drive(lambda finished: runner.run(jobs, finished), state, view)


def drive(
    start: Callable[[threading.Event], Coroutine[Any, Any, None]], state: Progress, view: ProgressView | None
) -> bool:
    """Run ``start(finished)`` on the background loop while this thread paints ``state`` each
    tick; True if interrupted (the loop's tasks are cancelled, and set ``finished`` when done)."""
    finished = threading.Event()
    future = asyncio.run_coroutine_threadsafe(start(finished), loop())
    try:
        while True:
            try:
                future.result(timeout=TICK)
                break
            except concurrent.futures.TimeoutError:
                if view is not None:
                    view.update(state)
    except KeyboardInterrupt:
        future.cancel()
        finished.wait(5.0)  # the cancelled tasks close their connections
        return True
    return False


class Runner:
    """The asyncio side: workers take jobs while the (adaptive) limit allows."""

    def __init__(
        self,
        chat: Chat,
        client: Any,
        values: list[Any],
        errors: dict[int, MapError],
        state: Progress,
        concurrency: int,
    ) -> None:
        self.chat, self.client = chat, client
        self.values, self.errors, self.state = values, errors, state
        self.most = concurrency
        self.limit = concurrency
        self.inflight = 0
        self.resume_at = 0.0
        self.streak = 0  # successes since the limit last changed
        self.retries = chat.settings.max_retries
        self.observed = Observed()  # reply lengths so far: the budget's guess for the rest

    async def run(self, jobs: list[Job], finished: threading.Event) -> None:
        self.cond = asyncio.Condition()
        self.queue = list(reversed(jobs))
        self.pending = len(jobs)  # not yet settled: queued, waiting out a retry, or in flight
        workers = [asyncio.ensure_future(self.worker()) for _ in range(min(self.most, len(jobs)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            for job in jobs:  # cancelled in flight (an interrupt): its estimate is no longer held
                self.chat.ledger.held -= job.estimate
                job.estimate = 0.0
            finished.set()

    async def worker(self) -> None:
        while True:
            async with self.cond:
                # a worker stays while others may still put a throttled job back
                while not self.queue and self.pending:
                    await self.cond.wait()
                if not self.pending:
                    return
                job = self.queue.pop()
            await self.acquire()
            try:
                refusal = None
                if job.stop.stopped or self.state.over_budget:  # stopped while it waited for a slot
                    result: tuple[str, Any] = ("unsent", None)
                elif (refusal := self.admit(job)) is not None:
                    result = ("budget", refusal)
                else:
                    if not job.sent:
                        job.sent = True
                        job.stop.sent += 1
                    result = await self.attempt(job)
            finally:
                self.inflight -= 1
                self.state.inflight = self.inflight
            await self.settle(job, result)

    async def acquire(self) -> None:
        """Wait for a free slot under the current limit and past any Retry-After pause."""
        async with self.cond:
            while True:
                wait = self.resume_at - time.monotonic()
                if wait > 0:
                    try:
                        await asyncio.wait_for(self.cond.wait(), wait)
                    except asyncio.TimeoutError:
                        pass
                    continue
                if self.inflight < self.limit:
                    self.inflight += 1
                    self.state.inflight = self.inflight
                    return
                await self.cond.wait()

    async def attempt(self, job: Job) -> tuple[str, Any]:
        """One request: ("ok", reply), ("retry", exc), ("throttled", exc) or ("failed", exc or
        Failure). The SDK's and the network's failures are read when the item settles."""
        completion = Completion()
        self.chat.as_learned(job.request)  # what the server refused since it was prepared
        try:
            data = await chat_wire.whole(self.client, job.request.body)
        except transport_errors() as exc:
            if (again := self.refused(job, exc)) is not None:
                return again
            # a spent quota is not a matter of pace: no wait helps, every item would get it
            if status_of(exc) == 429 and code_of(exc) != "insufficient_quota":
                return "throttled", exc
            return ("retry" if worth_retrying(exc) else "failed"), exc
        finally:
            completion.ended = time.perf_counter()
        try:
            return "ok", self.reply(job, data, completion)
        except (Mismatch, NbChatError) as exc:
            return "failed", Failure(redacted(str(exc), self.chat.settings))

    def refused(self, job: Job, exc: BaseException) -> tuple[str, Any] | None:
        """A refusal of something the item sent (a parameter, json_schema): learned for every
        item after it, and this item asked once more without it; ``None`` for other failures."""
        refusal = read_failure(exc, self.chat.settings, body=job.request.body).refusal
        if refusal is None or job.asked_again or not self.chat.learn(job.request, refusal):
            return None
        job.asked_again = True
        return "again", None

    def admit(self, job: Job) -> str | None:
        """``None`` if ``job`` fits in what is left of ``budget`` (its estimate is then held
        until it settles), else why not. Requests in flight count as spent: the map stops
        before going over, not after."""
        settings = self.chat.settings
        if settings.budget is None:
            return None
        body = job.request.body
        estimate = cost_of(body, settings.prices, self.observed.average)
        # in flight counts as spent: the ledger holds every runner's estimates (a compare's too)
        spent = self.chat.ledger.spent + self.chat.ledger.held
        try:
            check(settings, spent, estimate, "the next item", str(body["model"]), self.url)
        except OverBudget as e:
            return str(e)
        job.estimate = estimate or 0.0
        self.chat.ledger.held += job.estimate
        return None

    @functools.cached_property
    def url(self) -> str:
        return resolve(self.chat.settings).url

    def failure(self, job: Job, exc: BaseException, retries: int) -> Failure:
        """The item's error: the line a single cell shows for the same failure (the one error
        boundary, credentials removed), and what an early stop compares."""
        text = str(read_failure(exc, self.chat.settings, body=job.request.body, retries=retries))
        status = status_of(exc)
        kind: int | str | None = None
        if status == 429:
            kind = "quota" if code_of(exc) == "insufficient_quota" else None
        elif status is not None:
            kind = status if status < 500 and status not in (408, 409) else None
        elif unreachable(exc):
            kind = "unreachable"
        return Failure(text, kind, text)

    def reply(self, job: Job, data: Any, completion: Completion) -> Reply:
        completion.take_whole(data)
        stream = self.chat.open(job.request, job.user)
        stream.completion = completion
        return stream.finish()  # history=False: nothing is recorded; the ledger counts it

    async def settle(self, job: Job, outcome: tuple[str, Any]) -> None:
        kind, detail = outcome
        self.chat.ledger.held -= job.estimate
        job.estimate = 0.0
        retry = kind == "retry" and job.attempts < self.retries
        if retry:
            job.attempts += 1
            wait = retry_after(detail)
            pause = wait if wait is not None else 0.5 * 2 ** (job.attempts - 1) * random.uniform(0.8, 1.2)
            await asyncio.sleep(min(pause, 8.0))  # outside the lock: the others go on
        async with self.cond:
            if kind == "budget":  # nothing more is sent, of any group
                self.state.over_budget = detail
                self.unsent([job, *self.queue])
                self.queue = []
            elif kind == "unsent":
                self.unsent([job])
            elif kind == "again":  # asked once more at once, as every later item now is
                self.queue.append(job)
            elif kind == "throttled":
                self.throttle(job, detail)
            elif retry and job.stop.stopped:  # stopped while it waited to try again
                self.fail(job, self.failure(job, detail, job.attempts))
            elif retry:
                self.queue.append(job)
            elif kind == "ok":
                self.succeed(job, detail)
            else:
                self.fail(
                    job, detail if isinstance(detail, Failure) else self.failure(job, detail, job.attempts)
                )
            self.cond.notify_all()

    def throttle(self, job: Job, exc: BaseException) -> None:
        """429: halve the requests at once, everyone waits out Retry-After, the job goes back."""
        job.throttled += 1
        self.limit = max(1, self.limit // 2)
        self.state.limit = self.limit
        self.state.lowest_limit = min(self.state.lowest_limit, self.limit)
        self.streak = 0
        wait = retry_after(exc)
        pause = wait if wait is not None else min(0.5 * 2**job.throttled, 8.0)
        self.resume_at = max(self.resume_at, time.monotonic() + pause)
        if job.stop.stopped:
            failure = self.failure(job, exc, job.throttled)
            self.fail(
                job,
                dataclasses.replace(failure, text=f"{failure.text} Not tried again: the map stopped early."),
            )
        elif job.throttled < MAX_429:
            self.queue.append(job)
        else:
            self.fail(job, self.failure(job, exc, job.throttled))

    def succeed(self, job: Job, reply: Reply) -> None:
        self.values[job.position] = reply.data if job.request.schema is not None else reply
        job.stop.success()
        self.pending -= 1
        self.state.done += 1
        self.state.tokens += _tokens(reply)
        self.observed.add(reply.usage, len(reply.choices))
        if reply.cost is not None:
            self.state.cost = (self.state.cost or 0.0) + reply.cost
        # additive increase: one more at once after a full window of successes
        self.streak += 1
        if self.limit < self.most and self.streak >= self.limit:
            self.limit += 1
            self.state.limit = self.limit
            self.streak = 0

    def fail(self, job: Job, failure: Failure) -> None:
        self.errors[job.position] = MapError(job.position, job.item, failure.text)
        self.pending -= 1
        self.state.done += 1
        self.state.failed += 1
        if not job.stop.stopped and job.stop.failure(failure.kind, failure.message or failure.text):
            self.state.stopped = True
            self.unsent([j for j in self.queue if j.stop is job.stop])
            self.queue = [j for j in self.queue if j.stop is not job.stop]

    def unsent(self, jobs: list[Job]) -> None:
        """Jobs of a stopped group, never sent: settled without a request."""
        self.pending -= len(jobs)
        self.state.unsent += len(jobs)


# -- the loop and the async client -------------------------------------------------------

_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def loop() -> asyncio.AbstractEventLoop:
    """One event loop for every map of this process, in a daemon thread: the kernel's own
    loop is busy running the cell, and a loop per map would throw away its connections."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP.is_closed():
            new = asyncio.new_event_loop()
            threading.Thread(target=new.run_forever, name="nbchat-map", daemon=True).start()
            _LOOP = new
        return _LOOP


def async_client(chat: Chat) -> Any:
    """The ``AsyncOpenAI`` twin of ``chat``'s client, which its transport keeps."""
    return chat.transport.async_client(chat.settings)
