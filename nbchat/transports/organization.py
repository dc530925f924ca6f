"""The organization's costs (``/v1/organization/costs``) read with an admin key, as rows per
day and project, and a small SVG bar chart of them (no plotting library)."""

from __future__ import annotations

import datetime as dt
import html
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import NbChatError, RequestFailed
from ..secret import one_line
from .errors import boundary
from .shape import is_count, kind, malformed

ADMIN_ENV = "OPENAI_ADMIN_KEY"
PATH = "/organization/costs"
MAX_DAYS = 180  # the endpoint returns at most 180 daily buckets
NO_KEY = (
    f"%chat usage --org needs an organization admin key: set {ADMIN_ENV} in the environment Jupyter "
    "starts from (create one at platform.openai.com → Settings → Organization → Admin keys). "
    "It is read from there only, never from a cell."
)


@dataclass
class Cost:
    """What one project spent on one day."""

    day: dt.date
    project: str
    amount: float
    currency: str


def admin_key(settings: Any = None) -> str:
    """The admin key from the environment; a local OpenAI-compatible server (the stand-in)
    needs none, as for chat requests, so a notebook runs clean offline without one."""
    key = os.environ.get(ADMIN_ENV, "").strip()
    if not key and settings is not None:
        from ..connection import COMPATIBLE, resolve
        from ..connection import NO_KEY as PLACEHOLDER

        if resolve(settings).kind == COMPATIBLE:
            return PLACEHOLDER
    if not key:
        raise NbChatError(NO_KEY)
    return key


def fetch(settings: Any, days: int) -> list[Cost]:
    """The last ``days`` days of costs per project (oldest first). Raises ``NbChatError``
    without an admin key and ``RequestFailed`` (the key scrubbed) when the server refuses."""
    if not 1 <= days <= MAX_DAYS:
        raise NbChatError(f"--days takes 1 to {MAX_DAYS} (got {days})")
    key = admin_key(settings)
    import openai

    from ..connection import OPENAI_URL

    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = int((today - dt.timedelta(days=days - 1)).timestamp())
    options: dict[str, Any] = {"max_retries": settings.max_retries}
    if settings.timeout is not None:
        options["timeout"] = settings.timeout
    # a client of its own: the admin key never rides along with chat requests
    client = openai.OpenAI(
        api_key=key, admin_api_key=key, base_url=settings.base_url or OPENAI_URL, **options
    )
    query: dict[str, Any] = {
        "start_time": start,
        "bucket_width": "1d",
        "group_by": ["project_id"],
        "limit": days,
    }
    costs: list[Cost] = []
    refused = (
        f"The admin key in {ADMIN_ENV} was refused: it must be an organization admin key "
        "(sk-admin-…) of an organization owner."
    )
    try:
        with boundary(settings, extra=[key], advice={401: refused, 403: refused}):
            for _ in range(20):  # pages; one is the rule with limit = days
                page = client.get(PATH, cast_to=object, options={"params": query})
                if not isinstance(page, Mapping) or not isinstance(page.get("data"), list):
                    raise RequestFailed("the server's reply is not a page of organization costs")
                costs.extend(_rows(page["data"]))
                if not page.get("has_more") or not page.get("next_page"):
                    break
                query = {**query, "page": page["next_page"]}
    finally:
        client.close()
    return sorted(costs, key=lambda c: (c.day, c.project))


def _rows(buckets: list[Any]) -> list[Cost]:
    """The rows of a page's buckets; a bucket, result or amount in another shape is a
    malformed reply (one line), not a traceback."""
    rows = []
    for bucket in buckets:
        if not isinstance(bucket, Mapping):
            continue
        start = bucket.get("start_time") or 0
        if not is_count(start) or start > 10**11:
            raise malformed(f"a bucket's start_time is {kind(start)}")
        day = dt.datetime.fromtimestamp(start, dt.timezone.utc).date()
        results = bucket.get("results") or []
        if not isinstance(results, list):
            raise malformed(f"a bucket's results are {kind(results)}, not a list")
        for result in results:
            if result is None:
                continue
            amount = result.get("amount") if isinstance(result, Mapping) else None
            value = amount.get("value") if isinstance(amount, Mapping) else None
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if (
                not isinstance(result, Mapping)
                or not isinstance(amount, Mapping | None)
                or not (number or value is None)
            ):
                raise malformed(f"a cost is {kind(result)}")
            amount = amount or {}
            project, currency = result.get("project_id"), amount.get("currency")
            rows.append(
                Cost(
                    day,
                    one_line(project, 100) if isinstance(project, str) and project else "(no project)",
                    float(value or 0.0),
                    one_line(currency, 10) if isinstance(currency, str) and currency else "usd",
                )
            )
    return rows


def table_rows(costs: list[Cost]) -> list[list[str]]:
    """Day, project, cost; then each day's total where a day has several projects, and
    the total of the period."""
    out: list[list[str]] = []
    days = sorted({c.day for c in costs})
    for day in days:
        of_day = [c for c in costs if c.day == day]
        out.extend([str(day), c.project, _money(c.amount, c.currency)] for c in of_day)
        if len(of_day) > 1:
            out.append([str(day), "(day total)", _money(sum(c.amount for c in of_day), of_day[0].currency)])
    currency = costs[0].currency if costs else "usd"
    out.append(["total", f"{len(days)} days", _money(sum(c.amount for c in costs), currency)])
    return out


def _money(value: float, currency: str) -> str:
    return f"${value:,.2f}" if currency.lower() == "usd" else f"{value:,.2f} {currency.upper()}"


PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")


def bar_chart(costs: list[Cost], width: int = 560, height: int = 180) -> str:
    """Spend per day as stacked bars, one colour per project, with a legend (SVG)."""
    days = sorted({c.day for c in costs})
    projects = sorted({c.project for c in costs})
    if not days:
        return ""
    totals = {d: sum(c.amount for c in costs if c.day == d) for d in days}
    top = max(totals.values()) or 1.0
    left, bottom, plot_h = 48, 24, height - 40
    step = (width - left - 8) / len(days)
    bar = max(2.0, step * 0.7)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="nbchat-costs" width="{width}" '
        # the theme's text colour for the labels (black text vanished in a dark theme)
        f'height="{height + 18 * ((len(projects) + 3) // 4)}" font-family="sans-serif" font-size="10" '
        'fill="currentColor">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 8}" y2="{height - bottom}" stroke="#888"/>',
        f'<text x="{left - 4}" y="{height - bottom - plot_h + 4}" text-anchor="end">${top:,.2f}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">$0</text>',
    ]
    for k, day in enumerate(days):
        x, y = left + k * step + (step - bar) / 2, float(height - bottom)
        for project in projects:
            amount = sum(c.amount for c in costs if c.day == day and c.project == project)
            if amount <= 0:
                continue
            h = amount / top * plot_h
            y -= h
            color = PALETTE[projects.index(project) % len(PALETTE)]
            tip = html.escape(f"{day} · {project}: ${amount:,.2f}")
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{tip}</title></rect>"
            )
        if len(days) <= 14 or k % max(1, len(days) // 10) == 0:
            label = day.strftime("%m-%d")
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 12}" text-anchor="middle">{label}</text>'
            )
    for k, project in enumerate(projects):
        lx, ly = left + (k % 4) * 130, height + 4 + 18 * (k // 4)
        color = PALETTE[k % len(PALETTE)]
        parts.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly + 9}">{html.escape(project[:22])}</text>')
    parts.append("</svg>")
    return "".join(parts)
