"""Reasoning models: reasoning_effort and verbosity are settings sent only when set, shown
on the panel, and the footer counts the reasoning tokens the server reports."""

from __future__ import annotations

import ipywidgets as W
import pytest

from nbchat.widgets import Panel


def test_reasoning_settings_are_not_sent_until_set(cell, server) -> None:
    assert cell("%%chat -m o4-mini\nhi").ok
    assert not {"reasoning_effort", "verbosity"} & set(server.bodies[-1])


def test_reasoning_settings_are_sent_when_set_in_config_or_per_cell(cell, server, magics) -> None:
    assert cell("%chatconfig reasoning_effort=high verbosity=low").ok
    assert cell("%%chat -m gpt-5\nhi").ok
    assert (server.bodies[-1]["reasoning_effort"], server.bodies[-1]["verbosity"]) == ("high", "low")
    assert cell("%%chat -m gpt-5 --reasoning-effort minimal --verbosity high\nhi").ok
    assert (server.bodies[-1]["reasoning_effort"], server.bodies[-1]["verbosity"]) == ("minimal", "high")
    assert magics.reasoning_effort == "high", "a per-cell option is not persisted"
    assert cell("%chatconfig reasoning_effort=unset").ok
    assert cell("%%chat -m gpt-5\nhi").ok
    assert "reasoning_effort" not in server.bodies[-1]


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("%chatconfig reasoning_effort=extreme", "reasoning_effort must be one of none, minimal, low"),
        ("%chatconfig verbosity=loud", "verbosity must be one of low, medium, high"),
    ],
)
def test_invalid_reasoning_values_are_refused_by_name(cell, server, magics, line, named) -> None:
    run = cell(line)
    assert not run.ok and named in str(run.error)
    assert magics.reasoning_effort is None and magics.verbosity is None
    assert server.bodies == []


def test_an_invalid_per_cell_effort_is_a_usage_error_and_nothing_is_sent(cell, server) -> None:
    from IPython.core.error import UsageError

    run = cell("%%chat --reasoning-effort extreme\nhi")
    assert type(run.error) is UsageError and "extreme" in str(run.error)
    assert server.bodies == []


def test_the_footer_shows_reasoning_tokens_when_reported(cell, server) -> None:
    run = cell("%%chat -m o4-mini --reasoning-effort medium\nhi")
    assert run.ok
    usage = run.metadata["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning > 0
    assert f"{usage['completion_tokens']} completion tokens ({reasoning} reasoning)" in run.markdown


def test_a_reported_zero_is_not_shown_for_models_that_do_not_reason(cell, server) -> None:
    run = cell("%%chat\nhi")
    assert run.metadata["usage"]["completion_tokens_details"] == {"reasoning_tokens": 0}
    assert "reasoning" not in run.markdown


def test_the_panel_has_reasoning_dropdowns_linked_to_the_settings(magics, server, cell) -> None:
    panel = Panel(magics, [])
    effort = panel.controls["reasoning_effort"]
    assert isinstance(effort.widget, W.Dropdown) and ("xhigh", "xhigh") in effort.widget.options
    assert effort.widget.label == "API default" and "unset" in effort.status.value
    effort.widget.value = "low"
    assert magics.reasoning_effort == "low"
    assert cell("%chatconfig verbosity=high").ok
    assert panel.controls["verbosity"].widget.value == "high"
