"""The Batch API for a map: a JSONL of requests (one ``custom_id`` per item) uploaded with the
Files API, a batch on ``/v1/chat/completions`` with a 24 h window, and ``BatchJob``, the
handle that follows it and maps its results back to the items. No IPython."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .cache import NotInCache
from .client import Completion
from .errors import NbChatError
from .host import HOST
from .items import MapError, Shape
from .mapping import check_cost, plan
from .schema import Mismatch, Schema, to_schema
from .secret import one_line
from .transports import files as wire
from .transports.errors import line_failure, redacted
from .usage import format_cost

if TYPE_CHECKING:
    from .chat import Chat, Reply
    from .mapping import Job

ENDPOINT = "/v1/chat/completions"
DISCOUNT = 0.5  # the Batch API's price: half the standard price
TERMINAL = ("completed", "failed", "expired", "cancelled")
WHY = {
    "expired": "the batch expired (24 h window) before this item ran",
    "cancelled": "the batch was cancelled before this item ran",
}


def call(chat: Chat, what: Callable[[Any], Any]) -> Any:
    """``what(client)`` through the conversation's transport, inside the one error boundary."""
    return chat.transport.call(chat.settings, what)


def submit_map(
    chat: Chat,
    items: Any,
    template: str,
    *,
    schema: Any = None,
    concurrency: int = 8,
    strict: bool = False,
    raw: bool = False,
    confirm: Callable[[str], str] | None = None,
    previous: Any = None,
    progress: Any = None,
    label: str = "map",
    **overrides: Any,
) -> BatchJob:
    """``Chat.map(..., batch=True)``: the map's requests, sent to the Batch API. ``previous``,
    ``progress`` and ``label`` belong to a live map; a batch has none of them."""
    del previous, progress, label
    shape, jobs, spec = plan(chat, items, template, schema, concurrency, raw, overrides)
    if strict:
        raise NbChatError("strict goes with a map, not a batch: a batch's failed items show in job.results()")
    if (overrides.get("cache") or chat.settings.cache) == "only":
        raise NotInCache("cache=only sends nothing, and a batch's replies are not in the reply cache")
    return BatchJob.submit(chat, shape, jobs, spec, confirm=confirm)


def custom_id(position: int) -> str:
    return f"item-{position}"


def position_of(custom: str) -> int | None:
    head, _, number = custom.rpartition("-")
    return int(number) if head == "item" and number.isdigit() else None


class BatchJob:
    """A map running on the Batch API::

    job = chat.map(df, "Label: {text}", schema="label", batch=True)
    job.refresh(); job.status          # validating, in_progress, completed, …
    labels = job.wait().results()      # the same shape as chat.map's results
    job = BatchJob.attach("batch_abc123", items=df, schema="label")  # after a restart
    """

    def __init__(
        self,
        chat: Chat,
        batch_id: str,
        *,
        shape: Shape | None = None,
        schema: Schema | None = None,
        keys: list[str] | None = None,
        estimate: float | None = None,
    ) -> None:
        self.chat, self.id = chat, batch_id
        self.shape, self.schema, self.keys, self.estimate = shape, schema, keys or [], estimate
        self.data: dict[str, Any] = {}
        self.cost: float | None = None  # what the results cost, at the batch price

    def __repr__(self) -> str:
        return f"<BatchJob {self.id} {self.status}>"

    # -- creating and finding -------------------------------------------------------------

    @classmethod
    def submit(
        cls,
        chat: Chat,
        shape: Shape,
        jobs: list[Job],
        schema: Schema | None,
        confirm: Callable[[str], str] | None = None,
    ) -> BatchJob:
        """Upload the requests as JSONL and create the batch; returns at once."""
        if not jobs:
            raise NbChatError("nothing to send: the map has no items")
        estimate = check_cost(chat, jobs, confirm, discount=DISCOUNT)
        if chat.settings.budget is not None:  # the whole batch is one request to the budget
            from .budget import check
            from .connection import resolve

            model = str(jobs[0].request.body["model"])
            what = f"this batch of {len(jobs)} requests"
            check(chat.settings, chat.ledger.spent, estimate, what, model, resolve(chat.settings).url)
        lines = []
        for job in jobs:
            body = {k: v for k, v in job.request.body.items() if k not in ("stream", "stream_options")}
            lines.append(
                json.dumps(
                    {"custom_id": custom_id(job.position), "method": "POST", "url": ENDPOINT, "body": body}
                )
            )
        data = ("\n".join(lines) + "\n").encode()
        name, mime = "nbchat-map.jsonl", "application/jsonl"
        uploaded = call(chat, lambda c: wire.upload(c, name, data, "batch", mime))
        metadata = {"made_by": "nbchat map", "items": str(len(jobs))}
        created = call(chat, lambda c: wire.create_batch(c, uploaded["id"], ENDPOINT, "24h", metadata))
        handle = cls(
            chat, created["id"], shape=shape, schema=schema, keys=[j.key for j in jobs], estimate=estimate
        )
        handle.data = created
        return handle

    @classmethod
    def attach(
        cls, batch_id: str, *, chat: Chat | None = None, items: Any = None, schema: Any = None, **options: Any
    ) -> BatchJob:
        """Follow a batch created earlier (e.g. before a kernel restart). ``items`` gives the
        results the items' shape; ``schema`` parses them; ``options`` (settings) go on top
        of the session's: in a notebook where nbchat is loaded, its ``%chatconfig`` server
        and key, as ``%%chat`` would use."""
        if chat is None:
            chat = HOST.chat(options)
        shape = Shape.of(items) if items is not None else None
        job = cls(chat, batch_id, shape=shape, schema=to_schema(schema) if schema is not None else None)
        return job.refresh()

    # -- following ------------------------------------------------------------------------

    @property
    def status(self) -> str:
        return str(self.data.get("status") or "unknown")

    @property
    def counts(self) -> dict[str, int]:
        counts = self.data.get("request_counts") or {}
        return {k: int(counts.get(k) or 0) for k in ("total", "completed", "failed")}

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def refresh(self) -> BatchJob:
        self.data = call(self.chat, lambda c: wire.batch(c, self.id))
        return self

    def wait(self, poll: float = 10.0, timeout: float | None = None) -> BatchJob:
        """Poll until the batch is completed, failed, expired or cancelled (an interrupt just
        stops waiting: the batch goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.refresh()
        show = HOST.status(self.status_line()) if HOST.status is not None and not self.done else None
        while not self.done:
            if deadline is not None and time.monotonic() >= deadline:
                raise NbChatError(f"batch {self.id} is still {self.status} after {timeout:g} s")
            time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
            self.refresh()
            if show is not None:
                show(self.status_line(), self.done)
        return self

    def cancel(self) -> BatchJob:
        self.data = call(self.chat, lambda c: wire.cancel_batch(c, self.id))
        return self

    def results(self) -> Any:
        """The results in the items' shape (a list after ``attach`` without ``items``), failed
        items ``None`` with their errors; a batch that failed or is not done is an error."""
        if not self.data:
            self.refresh()
        if self.status == "failed":
            raise NbChatError(f"batch {self.id} failed: {self.failure()}")
        if not self.done:
            raise NbChatError(
                f"batch {self.id} is {self.status} ({self.counts['completed']}/{self.counts['total']} done); "
                "job.wait() waits for it"
            )
        lines = self._lines("output_file_id") + self._lines("error_file_id")
        total = len(self.shape.items) if self.shape is not None else max(self.counts["total"], len(lines))
        values: list[Any] = [None] * total
        errors: dict[int, MapError] = {}
        spent = 0.0
        for line in lines:
            position = position_of(str(line.get("custom_id")))
            if position is None or position >= total:
                continue
            try:
                reply = self._reply(line)
            except NbChatError as e:
                why = redacted(str(e), self.chat.settings)
                errors[position] = MapError(position, self._item(position), why)
                continue
            spent += reply.cost or 0.0
            values[position] = reply.data if self.schema is not None else reply
        for position in range(total):
            if values[position] is None and position not in errors:
                why = WHY.get(self.status, "the batch returned no result for this item")
                errors[position] = MapError(position, self._item(position), why)
        self.cost = spent if any(v is not None for v in values) else None
        shape = self.shape or Shape("list", [None] * total)
        keys = self.keys or [""] * total
        return shape.build(values, [errors[p] for p in sorted(errors)], keys, self.schema)

    def failure(self) -> str:
        problems = (self.data.get("errors") or {}).get("data") or []
        said = "; ".join(
            f"line {p['line']}: {p.get('message')}" if p.get("line") else str(p.get("message"))
            for p in problems[:3]
        )
        return redacted(one_line(said), self.chat.settings) if said else "the server gave no reason"

    def _lines(self, which: str) -> list[dict[str, Any]]:
        file_id = self.data.get(which)
        if not file_id:
            return []
        content = call(self.chat, lambda c: wire.content(c, file_id))
        out = []
        for text in content.decode("utf-8", "replace").splitlines():
            if text.strip():
                try:
                    line = json.loads(text)
                except json.JSONDecodeError:
                    continue
                if isinstance(line, dict):
                    out.append(line)
        return out

    def _item(self, position: int) -> Any:
        return self.shape.items[position] if self.shape is not None else None

    def _reply(self, line: dict[str, Any]) -> Reply:
        """One output line as a Reply (batch price), its data parsed with the schema."""
        response = line.get("response")
        response = response if isinstance(response, dict) else {}
        data = response.get("body")
        status = response.get("status_code")
        if line.get("error") or status != 200:
            # read as the same failure of a live request is: one boundary
            raise line_failure(status, data if data is not None else line.get("error"), self.chat.settings)
        completion = Completion()
        completion.take_whole(data)
        reply = self.chat.whole_reply(completion)
        if reply.cost is not None:
            # finish() counted the standard price
            self.chat.ledger.refund(reply.model, reply.cost * (1 - DISCOUNT))
            reply.cost *= DISCOUNT
        if self.schema is not None:
            limits = {"max_tokens": self.chat.settings.max_tokens}  # as the batch's lines were sent
            try:
                reply.data = self.schema.parse_reply(reply.text, reply.finish_reason, limits)
            except Mismatch as e:
                raise NbChatError(str(e)) from None
        return reply

    # -- how it looks ---------------------------------------------------------------------

    def status_line(self) -> str:
        counts = self.counts
        parts = [f"batch {self.id}", self.status, f"{counts['completed']}/{counts['total']} done"]
        if counts["failed"]:
            parts.append(f"{counts['failed']} failed")
        if self.cost is not None:
            parts.append(f"{format_cost(self.cost)} at the batch price (half the standard price)")
        elif self.estimate is not None:
            parts.append(f"about {format_cost(self.estimate)} at the batch price (half the standard price)")
        if self.status == "failed":
            parts.append(self.failure())
        elif self.status in WHY:
            parts.append(f"{self.status}: results() returns what completed")
        elif not self.done:
            parts.append("job.refresh() to check, job.wait() to wait")
        return " · ".join(parts)

    def _repr_markdown_(self) -> str:
        return f"**BatchJob** · {self.status_line().split(' · ', 1)[1]}  \n`{self.id}`"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.status_line())
