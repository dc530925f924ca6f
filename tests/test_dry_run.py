"""%%chat --dry-run shows the exact body the same cell would send; nothing is sent or
recorded. %chat request TEXT is the same dry run with TEXT as the cell."""

from __future__ import annotations

import json
from typing import Any

import pytest


def shown_body(run: Any) -> dict[str, Any]:
    """The JSON body a dry run showed (a receipt table of context pieces may follow it)."""
    text = next(o["text/plain"] for o in run.outputs if o["text/plain"].startswith("{"))
    body, _ = json.JSONDecoder().raw_decode(text)
    return body


@pytest.mark.parametrize(
    "options",
    [
        "",
        "-t 0.3 -n 2 --stop '###' --max-tokens 50",
        "--no-stream --seed 7",
        "--logprobs 2",
        "-m o3-mini -t 0.5 --max-tokens 20",  # a reasoning model: temperature left out, renamed limit
        "--no-history",
        "--new",
        "-c other --reasoning-effort low",
    ],
)
def test_the_dry_run_body_is_what_the_same_cell_then_sends(cell, server, magics, options) -> None:
    assert cell("%%chat -s\nBe brief.").ok
    assert cell("%%chat\nan earlier question").ok
    assert cell("x = 42").ok
    before = [(name, list(c.turns)) for name, c in magics.conversations.items()]
    count = len(server.requests)
    run = cell(f'%%chat --dry-run {options}\nWhat\'s {{x}} in "quotes"? {{missing}}')
    assert run.ok, run.error
    assert len(server.requests) == count
    assert [(name, list(c.turns)) for name, c in magics.conversations.items()] == before
    dry = shown_body(run)
    assert dry["messages"][-1]["content"] == 'What\'s 42 in "quotes"? {missing}'
    assert any("nothing sent" in o["text/plain"] for o in run.outputs)
    assert cell(f'%%chat {options}\nWhat\'s {{x}} in "quotes"? {{missing}}').ok
    assert server.bodies[-1] == dry


def test_chat_request_takes_its_text_as_written_and_substitutes_it_like_a_cell(cell, server) -> None:
    assert cell("x = 42").ok
    run = cell("""%chat request What's "{x}" and {x.real}, {missing}?""")
    assert run.ok, run.error
    body = shown_body(run)
    assert body["messages"][-1]["content"] == """What's "42" and 42, {missing}?"""
    same = cell("""%%chat --dry-run\nWhat's "{x}" and {x.real}, {missing}?""")
    assert shown_body(same) == body
    assert server.requests == []


def test_chat_request_names_its_conversation_before_or_after_the_text(cell, magics) -> None:
    assert cell("%%chat -c review -s\nReview code.").ok
    for line in ("%chat request -c review look at this", "%chat request look at this -c review"):
        body = shown_body(cell(line))
        assert body["messages"] == [
            {"role": "system", "content": "Review code."},
            {"role": "user", "content": "look at this"},
        ]


def test_a_dry_run_of_a_cell_that_sends_nothing_says_so(cell, server, magics) -> None:
    run = cell("%%chat --dry-run -s\nBe terse.")
    assert run.ok and "sends nothing" in run.outputs[-1]["text/plain"]
    assert magics.chat_for("default").conversation.system is None and server.requests == []
