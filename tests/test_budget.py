"""budget: every request — cell, tool round, map item, batch, image — is checked before it is
sent; cost counts what the server reports (cached input at its price, reasoning as output)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import Cell

from nbchat import Chat
from nbchat.budget import OverBudget, cost_of, is_local, reply_tokens
from nbchat.magics import INSTANCES
from nbchat.testing.server import StandInServer
from nbchat.usage import cost, format_cost

# a dear price, so that a few tokens are a readable amount: $0.001 a token either way
DEAR = {"gpt-4o-mini": [1000.0, 1000.0]}
REFUSED = re.compile(
    r"not sent: it would cost about \$(\d\.\d+), and \$(\d\.\d+) of the budget \$(\d\.\d+) is spent "
    r"\(\$(\d\.\d+) left\); raise budget \(%chatconfig budget=…\) to go on"
)


def dear_chat(**options: Any) -> Chat:
    return Chat(model="gpt-4o-mini", prices=DEAR, stream=False, **options)


def test_cost_counts_cached_input_at_the_cached_price_and_reasoning_as_output() -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 800}}
    assert cost("gpt-4o-mini", usage) == pytest.approx((200 * 0.15 + 800 * 0.075 + 100 * 0.60) / 1e6)
    # OpenAI counts reasoning inside completion_tokens: not twice
    inside = {
        "prompt_tokens": 10,
        "completion_tokens": 100,
        "completion_tokens_details": {"reasoning_tokens": 80},
    }
    assert cost("o4-mini", inside) == pytest.approx((10 * 1.10 + 100 * 4.40) / 1e6)
    # a server that reports reasoning apart from (and above) the completion tokens: billed as output too
    apart = {
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "completion_tokens_details": {"reasoning_tokens": 300},
    }
    assert cost("o4-mini", apart) == pytest.approx((10 * 1.10 + 320 * 4.40) / 1e6)
    # a price from the prices setting has no cached price: cached tokens pay the input price
    assert cost("mine", usage, {"mine": [1.0, 2.0]}) == pytest.approx((1000 * 1.0 + 100 * 2.0) / 1e6)
    assert cost("gpt-4o-mini", {"prompt_tokens": "x", "completion_tokens": None}) == 0.0


def test_a_reply_and_the_ledger_count_what_the_server_reports_cached_tokens_included(
    env: None, server: StandInServer
) -> None:
    reported = {
        "prompt_tokens": 2000,
        "completion_tokens": 50,
        "total_tokens": 2050,
        "prompt_tokens_details": {"cached_tokens": 1536},
    }
    server.quirks.extra_fields = {"usage": reported}
    chat = Chat(model="gpt-4o-mini", stream=False)
    reply = chat.send("hello")
    expected = (464 * 0.15 + 1536 * 0.075 + 50 * 0.60) / 1e6
    assert reply.cost == pytest.approx(expected)
    assert chat.ledger.spent == pytest.approx(expected)


def test_a_cell_over_budget_is_refused_naming_spent_budget_and_estimate_and_nothing_is_sent(
    cell: Cell, server: StandInServer, magics: Any
) -> None:
    magics.prices = DEAR
    magics.model = "gpt-4o-mini"
    assert cell("%chatconfig budget=0.2").ok
    assert cell("%%chat\nhello").ok
    spent = INSTANCES[cell.shell].ledger.spent
    assert 0 < spent < 0.2 and len(server.bodies) == 1
    run = cell("%%chat\n" + "word " * 300)
    assert type(run.error) is OverBudget
    match = REFUSED.search(str(run.error))
    assert match, run.error
    estimate, shown_spent, budget, left = map(float, match.groups())
    assert estimate > 0.2 - spent and shown_spent == pytest.approx(spent, abs=1e-4) and budget == 0.2
    assert left == pytest.approx(0.2 - spent, abs=1e-4)
    assert str(run.error).startswith("this request not sent")
    assert len(server.bodies) == 1, "nothing was sent"
    assert len(magics.conversations["default"].turns) == 1, "history as it was"
    usage = cell("%chat usage").text
    assert re.search(rf"budget +{re.escape(format_cost(spent))} spent of \$0\.2000\n", usage), usage
    assert re.search(rf"left +{re.escape(format_cost(0.2 - spent))}", usage), usage
    assert cell("%chatconfig budget=unset").ok
    assert cell("%%chat\n" + "word " * 300).ok, "no budget, no limit"


def test_an_unpriced_model_is_refused_on_a_remote_server_naming_prices_and_free_on_a_local_one(
    env: None, server: StandInServer
) -> None:
    remote = Chat(model="my-model", base_url="https://models.example.com/v1", budget=1.0)
    with pytest.raises(OverBudget, match=r"my-model has no known price; give it one \(%chatconfig prices="):
        remote.send("hello")
    local = Chat(model="my-model", budget=0.0)  # the stand-in, on 127.0.0.1
    assert local.send("hello").text == "Echo: hello"
    assert local.ledger.spent == 0.0
    assert is_local("http://localhost:8080/v1") and is_local("http://[::1]:1/v1")
    assert not is_local("http://10.0.0.5/v1")


def test_replays_cost_nothing_and_are_never_refused(env: None, server: StandInServer, tmp_path: Path) -> None:
    path = str(tmp_path / "replies.sqlite3")
    assert dear_chat(cache="replay", cache_path=path).send("hello").cost
    broke = dear_chat(cache="replay", cache_path=path, budget=0.0)
    reply = broke.send("hello")
    assert reply.replayed and broke.ledger.spent == 0.0 and len(server.bodies) == 1
    with pytest.raises(OverBudget):
        broke.send("something new")
    assert len(server.bodies) == 1


def test_a_map_stops_before_going_over_and_keeps_what_completed(env: None, server: StandInServer) -> None:
    items = [f"item number {i}" for i in range(12)]
    one = cost_of(dear_chat().prepare(f"Label: {items[0]}", history=False, stream=False)[0].body, DEAR)
    assert one is not None
    for concurrency in (1, 4):
        server.requests.clear()
        chat = dear_chat(budget=one * 4.5)
        with pytest.raises(OverBudget) as caught:
            chat.map(items, "Label: {item}", concurrency=concurrency, progress=None)
        results = caught.value.results
        done = [r for r in results if r is not None]
        assert 1 <= len(done) == len(server.bodies) < len(items), "stopped, nothing more was sent"
        assert chat.ledger.spent <= one * 4.5, "never over, even with requests in flight"
        assert chat.ledger.held == 0.0, "nothing is held once the map is over"
        assert [str(r) for r in done] == [f"Echo: Label: {i}" for i in items[: len(done)]]
        assert {e.error for e in results.errors} == {"not sent: the budget would be exceeded"}
        message = str(caught.value)
        assert "the next item not sent: it would cost about $" in message
        assert f"({len(done)} of 12 items completed and are kept)" in message


def test_a_map_cell_over_budget_keeps_its_results_in_the_out_variable(
    cell: Cell, server: StandInServer, magics: Any
) -> None:
    magics.prices, magics.model = DEAR, "gpt-4o-mini"
    assert cell("items = ['a', 'b', 'c', 'd', 'e', 'f']").ok
    assert cell("%chatconfig budget=0.05").ok
    run = cell("%%chat --map items -o out --concurrency 1\nLabel: {item}")
    assert type(run.error) is OverBudget
    out = cell.shell.user_ns["out"]
    assert out[0] is not None and out[-1] is None and len(server.bodies) < 6


def test_a_tool_round_over_budget_is_refused_before_it_is_sent(env: None, server: StandInServer) -> None:
    ran: list[str] = []

    def lookup(key: str) -> str:
        ran.append(key)
        return "x" * 2000

    chat = dear_chat(tools=[lookup], tool_approval="auto")
    first = cost_of(chat.prepare("What is an API?")[0].body, DEAR)
    assert first is not None
    chat.settings.budget = (
        first * 2.5
    )  # the first request fits; with 2,000 more characters the second does not
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": "api"}}])
    with pytest.raises(OverBudget, match=r"^tool round 1 \(the request with the calls' results\) not sent"):
        chat.send("What is an API?")
    assert ran == ["api"] and len(server.bodies) == 1
    assert chat.conversation.turns == [], "a failed turn records nothing"


def test_a_batch_and_an_image_over_budget_send_nothing(
    cell: Cell, server: StandInServer, magics: Any
) -> None:
    magics.prices, magics.model = DEAR, "gpt-4o-mini"
    assert cell("items = ['a', 'b', 'c']").ok
    assert cell("%chatconfig budget=0.001 confirm_cost=1000").ok
    run = cell("%%chat --map items --batch\nLabel: {item}")
    assert type(run.error) is OverBudget and str(run.error).startswith("this batch of 3 requests not sent")
    image = cell("%%chat -f image\nA lighthouse at dusk")
    assert type(image.error) is OverBudget and str(image.error).startswith("this image request not sent")
    assert server.requests == [], "no upload, no batch, no image"


@pytest.mark.parametrize(
    ("prompt", "schema", "low", "high"),
    [
        ("Sentiment of: great product, would buy again", None, 1, 8),
        ("In one sentence, what is a mutex?", None, 15, 50),
        ("Explain in a paragraph what a mutex is.", None, 80, 300),
        ("Tell me about mutexes", None, 30, 120),
        (
            "Review: great product",
            {"type": "object", "properties": {"label": {"enum": ["pos", "neg"]}}},
            3,
            12,
        ),
    ],
)
def test_the_reply_guess_follows_what_is_asked_and_max_tokens_bounds_it(
    prompt: str, schema: Any, low: int, high: int
) -> None:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
    if schema:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    assert low <= reply_tokens(body) <= high
    assert reply_tokens(body | {"max_tokens": 2}) == 2


def test_a_responses_api_request_is_estimated_like_the_same_chat_request(
    env: None, server: StandInServer
) -> None:
    text = "Explain in a paragraph why the sky is blue, for a curious ten-year-old. " * 5
    chat_body = dear_chat().prepare(text)[0].body
    responses_body = dear_chat(api="responses", system="Be brief.").prepare(text)[0].body
    assert "input" in responses_body and "messages" not in responses_body
    chat_cost, responses_cost = cost_of(chat_body, DEAR), cost_of(responses_body, DEAR)
    assert chat_cost and responses_cost
    assert 0.9 < responses_cost / chat_cost < 1.2
    broke = dear_chat(api="responses", budget=chat_cost / 2)
    with pytest.raises(OverBudget):
        broke.send(text)
    assert server.requests == []
