"""Organization costs: %chat usage --org [--days N] reads /v1/organization/costs with the
admin key from OPENAI_ADMIN_KEY (never shown; a clear error without it) and shows spend
per day and project, with an SVG bar chart in Jupyter."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from conftest import FAKE_KEY
from IPython.core.error import UsageError

from nbchat.testing.organization import PROJECTS, amounts
from nbchat.transports.organization import Cost, bar_chart

ADMIN_KEY = "sk-admin-Hq7wPz3Lx9Vt2Nc8Rb5Ky1"


@pytest.fixture
def admin(monkeypatch) -> str:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    return ADMIN_KEY


def cost_requests(server) -> list:
    return [r for r in server.requests if r.path.split("?")[0].endswith("/organization/costs")]


def test_costs_per_day_and_project_with_a_bar_chart(cell, server, admin) -> None:
    run = cell("%chat usage --org --days 3")
    assert run.ok, run.error
    (request,) = cost_requests(server)
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = int((today - dt.timedelta(days=2)).timestamp())
    assert request.body == {
        "start_time": [str(start)],
        "bucket_width": ["1d"],
        "group_by[]": ["project_id"],
        "limit": ["3"],
    }
    assert request.headers["authorization"] == f"Bearer {ADMIN_KEY}", "the admin key, not the API key"
    table = run.outputs[-1]["text/plain"]
    total = 0.0
    for k in range(3):
        day = start + k * 86400
        spent = amounts(day // 86400)
        label = dt.datetime.fromtimestamp(day, dt.timezone.utc).date().isoformat()
        for project, value in spent.items():
            if value > 0:
                assert re.search(rf"{label}\s+{project}\s+\${value:,.2f}", table), (label, project)
        total += sum(spent.values())
    assert re.search(rf"total\s+3 days\s+\${total:,.2f}", table)
    html = next(o["text/html"] for o in run.outputs if "text/html" in o)
    assert html.count("<svg") == 1 and "<title>" in html and PROJECTS[0] in html
    bars = sum(1 for k in range(3) for v in amounts((start + k * 86400) // 86400).values() if v > 0)
    assert html.count("<rect") == bars + 2, "a bar piece per project-day, a legend swatch per project"


def test_the_admin_key_is_never_shown(cell, server, admin) -> None:
    runs = [cell("%chat usage --org"), cell("%chatconfig"), cell("%config ChatMagics")]
    for run in runs:
        seen = run.text + "".join(str(o) for o in run.outputs)
        assert ADMIN_KEY not in seen and ADMIN_KEY[9:17] not in seen


def test_without_an_admin_key_a_clear_error_and_nothing_sent(cell, server, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    assert cell("%chatconfig base_url=https://api.openai.com/v1").ok  # a local server needs none
    run = cell("%chat usage --org")
    assert type(run.error) is UsageError and "OPENAI_ADMIN_KEY" in str(run.error)
    assert "never from a cell" in str(run.error)
    assert cost_requests(server) == []


def test_a_refused_key_is_explained_and_scrubbed(cell, server, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", FAKE_KEY)  # a project key, not an admin key
    run = cell("%chat usage --org")
    assert not run.ok
    assert "401 Unauthorized" in run.io.stdout and "must be an organization admin key" in run.io.stdout
    assert FAKE_KEY[-8:] not in run.io.stdout


def test_a_server_error_is_retried_then_explained(cell, server, magics, admin) -> None:
    magics.max_retries = 1
    server.script(status=503, error="overloaded", times=2)
    run = cell("%chat usage --org")
    assert not run.ok and "503 server error after 1 retries: overloaded" in run.io.stdout
    assert len(cost_requests(server)) == 2


@pytest.mark.parametrize("days", [0, 181])
def test_days_out_of_range_is_a_usage_error(cell, server, admin, days) -> None:
    run = cell(f"%chat usage --org --days {days}")
    assert type(run.error) is UsageError and "--days takes 1 to 180" in str(run.error)
    assert cost_requests(server) == []


def test_the_chart_stacks_projects_and_scales_to_the_highest_day() -> None:
    day1, day2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
    costs = [Cost(day1, "a", 1.0, "usd"), Cost(day1, "b", 1.0, "usd"), Cost(day2, "a", 1.0, "usd")]
    svg = bar_chart(costs, width=400, height=140)
    heights = [float(h) for h in re.findall(r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"', svg)]
    assert heights[:3] == [50.0, 50.0, 50.0], "day 1 is two 50-pixel pieces (the full 100), day 2 one"
    assert "$2.00" in svg and "01-01" in svg and "01-02" in svg
    # labels in the theme's text colour, legible in a dark theme too (SVG text is black by default)
    assert svg.startswith("<svg") and 'fill="currentColor">' in svg.split("\n")[0][:400]
