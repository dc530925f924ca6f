"""The stand-in's ``GET /v1/organization/costs``: made-up daily costs of two projects, for an
admin key (``sk-admin-…``) only, in OpenAI's page-of-buckets shape."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from .wire import Handler

DAY = 86400
PROJECTS = ("proj_standin_alpha", "proj_standin_beta")


def amounts(day: int) -> dict[str, float]:
    """What each project "spent" on the ``day``-th day since the epoch (deterministic)."""
    return {PROJECTS[0]: round(0.5 + (day % 5) * 0.25, 2), PROJECTS[1]: round((day % 3) * 0.1, 2)}


NO_KEY = "nbchat-no-key"  # what nbchat sends a local server when no key is set


def costs(handler: Handler, raw: bytes) -> None:
    query = parse_qs(urlsplit(handler.path).query)
    handler._record(query)
    auth = handler.headers.get("Authorization") or ""
    # an admin key, or the placeholder a client sends a local server when it has no key (a
    # local server needs none); a project key is refused, as OpenAI refuses it
    if not auth.startswith(("Bearer sk-admin-", f"Bearer {NO_KEY}")):
        error = {
            "message": "Invalid authorization: an admin key is required",
            "type": "invalid_request_error",
        }
        return handler._json(401, {"error": error})
    script = handler.stand_in.next_script()
    if script.status != 200:
        return handler._error(script)
    try:
        start = int(query["start_time"][0])
        limit = int(query.get("limit", ["7"])[0])
    except (KeyError, ValueError):
        error = {"message": "start_time (integer) is required", "type": "invalid_request_error"}
        return handler._json(400, {"error": error, "param": "start_time"})
    by_project = "project_id" in query.get("group_by[]", []) + query.get("group_by", [])
    first = start - start % DAY
    buckets: list[dict[str, Any]] = []
    for k in range(limit):
        begin = first + k * DAY
        spent = amounts(begin // DAY)
        if by_project:
            results = [_result(v, p) for p, v in spent.items() if v > 0]
        else:
            results = [_result(round(sum(spent.values()), 2), None)]
        buckets.append({"object": "bucket", "start_time": begin, "end_time": begin + DAY, "results": results})
    handler._json(200, {"object": "page", "data": buckets, "has_more": False, "next_page": None})


def _result(value: float, project: str | None) -> dict[str, Any]:
    return {
        "object": "organization.costs.result",
        "amount": {"value": value, "currency": "usd"},
        "line_item": None,
        "project_id": project,
    }
