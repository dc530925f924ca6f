"""Chat.map and %%chat --map: order, templates, shapes, concurrency, 429s, failures, re-runs,
interrupts, progress and the cost check."""

from __future__ import annotations

import _thread
import re
import threading
import time
from pathlib import Path

import pytest
from conftest import Cell
from IPython.core.interactiveshell import InteractiveShell

from nbchat import Chat
from nbchat.errors import NbChatError
from nbchat.items import MapResults, Progress
from nbchat.mapping import MapFailed, MapInterrupted, fill
from nbchat.testing.server import StandInServer

pd = pytest.importorskip("pandas")


@pytest.fixture
def chat(server: StandInServer, tmp_path: Path) -> Chat:
    return Chat(
        base_url=server.url,
        api_key="sk-test",
        system="You label things.",
        cache="replay",
        cache_path=str(tmp_path / "replies.sqlite3"),
    )


def user_texts(server: StandInServer) -> list[str]:
    return [b["messages"][-1]["content"] for b in server.bodies]


def test_map_keeps_the_items_order_and_sends_the_system_prompt_without_history(
    chat: Chat, server: StandInServer
) -> None:
    chat.send("an earlier exchange")
    items = [f"review {i}" for i in range(20)]
    results = chat.map(items, "Label: {item}", concurrency=5, progress=None)
    assert isinstance(results, MapResults) and results.errors == []
    assert [str(r) for r in results] == [f"Echo: Label: review {i}" for i in range(20)]
    bodies = server.bodies[1:]
    assert len(bodies) == 20
    assert all([m["role"] for m in b["messages"]] == ["system", "user"] for b in bodies)
    assert all(b["messages"][0]["content"] == "You label things." for b in bodies)
    assert len(chat.conversation.turns) == 1, "the map records nothing in the history"


def test_templates_fill_item_and_columns_and_leave_other_braces() -> None:
    assert fill('Rate {item} as JSON {"a": 1}', "x") == 'Rate x as JSON {"a": 1}'
    assert fill("{name} is {age} ({item})", {"name": "Ann", "age": 3}) == "Ann is 3 (name: Ann; age: 3)"
    assert fill("{nope} stays", {"name": "Ann"}) == "{nope} stays\n\nname: Ann"
    assert fill("Classify:", "spam") == "Classify:\n\nspam"


def test_a_series_gives_a_series_with_the_same_index(chat: Chat) -> None:
    s = pd.Series(["good", "bad", "meh"], index=["a", "b", "c"], name="text")
    out = chat.map(s, "Sentiment of {item}", progress=None)
    assert isinstance(out, pd.Series) and list(out.index) == ["a", "b", "c"]
    assert list(out) == ["Echo: Sentiment of good", "Echo: Sentiment of bad", "Echo: Sentiment of meh"]
    assert out.attrs["errors"] == []


def test_a_dataframe_with_a_schema_gives_one_column_per_field(chat: Chat, server: StandInServer) -> None:
    df = pd.DataFrame({"title": ["Up", "Heat"], "year": [2009, 1995]}, index=[10, 20])
    out = chat.map(df, "{title} ({year})", schema="label, score float", progress=None)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["label", "score"]
    assert list(out.index) == [10, 20]
    assert list(out["label"]) == ["label: Up (2009)", "label: Heat (1995)"]
    assert list(out["score"]) == [0.9, 1.1]
    assert all(b["response_format"]["json_schema"]["strict"] for b in server.bodies)


def test_a_list_with_a_schema_gives_parsed_values(chat: Chat) -> None:
    out = chat.map(["ab", "abcd"], "{item}", schema={"n": int}, progress=None)
    assert list(out) == [{"n": 2}, {"n": 4}]


def test_at_most_concurrency_requests_are_in_flight(chat: Chat, server: StandInServer) -> None:
    server.script(delay=0.05, times=40)
    results = chat.map(list(range(40)), "n={item}", concurrency=4, progress=None)
    assert results.errors == []
    assert server.max_inflight == 4, "the stand-in saw exactly the bound, never more"


def test_a_429_slows_down_honours_retry_after_and_recovers(chat: Chat, server: StandInServer) -> None:
    chat.map(["warm"] * 4, "{item}", concurrency=4, progress=None)  # connections open: arrivals are prompt
    server.requests.clear()
    server.script(times=2)
    server.script(status=429, retry_after="1", error="slow down", times=1)
    states: list[Progress] = []
    started = time.perf_counter()
    results = chat.map(list(range(24)), "n={item}", concurrency=4, progress=lambda s: Spy(s, states))
    elapsed = time.perf_counter() - started
    assert results.errors == [] and len(results) == 24
    assert elapsed >= 1.0, "everyone waited out Retry-After"
    throttled = next(r for r in server.requests if r.status == 429)
    # the other workers' requests already on their way when the 429 came back (at most
    # concurrency - 1), and the one each of them may send before the client has read the 429,
    # can land at once or late on a loaded machine; beyond those, none until Retry-After has
    # passed (without it, all 22 left would land within a few milliseconds)
    after = sorted(r.at - throttled.at for r in server.requests if r.at > throttled.at)
    assert len([t for t in after if t < 0.95]) <= 2 * (4 - 1) and after[-1] >= 0.95
    final = states[-1]
    assert final.lowest_limit == 2 and final.limit == 4, "halved on 429, back to 4 after successes"


class Spy:
    def __init__(self, state: Progress, states: list[Progress]) -> None:
        self.state, self.states = state, states

    def update(self, state: Progress) -> None:
        pass

    def close(self, summary: str) -> None:
        self.states.append(self.state)


def test_a_failed_item_does_not_stop_the_rest(chat: Chat, server: StandInServer) -> None:
    server.script(status=400, error="bad item", times=1)
    results = chat.map([f"x{i}" for i in range(6)], "{item}", concurrency=1, progress=None)
    assert results[0] is None and all(r is not None for r in results[1:])
    assert len(results.errors) == 1
    error = results.errors[0]
    assert (error.position, error.item) == (0, "x0") and "400 Bad Request: bad item" in error.error


def test_a_series_lists_errors_in_attrs(chat: Chat, server: StandInServer) -> None:
    server.script(status=400, error="nope", times=1)
    out = chat.map(pd.Series(["a", "b"]), "{item}", concurrency=1, progress=None)
    assert out.iloc[0] is None and out.iloc[1] == "Echo: b"
    assert [e.position for e in out.attrs["errors"]] == [0]


def test_server_errors_are_retried_then_the_item_fails(chat: Chat, server: StandInServer) -> None:
    chat.settings.max_retries = 1
    server.script(status=503, error="down", times=1)
    ok = chat.map(["a"], "{item}", progress=None)
    assert ok.errors == [] and len(server.bodies) == 2
    server.script(status=503, error="down", times=2)
    with pytest.raises(MapFailed, match="the one item failed") as caught:
        chat.map(["b"], "{item}", progress=None)
    bad = caught.value.results
    assert bad == [None] and "503 server error after 1 retries: down" in bad.errors[0].error


def test_a_rerun_asks_only_for_failed_and_missing_items(chat: Chat, server: StandInServer) -> None:
    items = [f"i{i}" for i in range(5)]
    server.script(status=400, error="flaky", times=1)
    first = chat.map(items, "{item}", concurrency=1, progress=None)
    assert len(first.errors) == 1
    before = len(server.bodies)
    second = chat.map(items, "{item}", concurrency=1, progress=None)
    assert second.errors == [] and [str(r) for r in second] == [f"Echo: i{i}" for i in range(5)]
    assert user_texts(server)[before:] == ["i0"], "only the failed item was asked again"
    assert second[1].replayed


def test_a_rerun_without_the_cache_continues_from_the_previous_results(
    chat: Chat, server: StandInServer
) -> None:
    chat.settings.cache = "off"
    server.script(status=400, error="flaky", times=1)
    first = chat.map(["a", "b", "c"], "{item}", concurrency=1, progress=None)
    before = len(server.bodies)
    second = chat.map(["a", "b", "c"], "{item}", concurrency=1, previous=first, progress=None)
    assert user_texts(server)[before:] == ["a"] and second.errors == []


def test_refresh_asks_for_every_item_again(chat: Chat, server: StandInServer) -> None:
    chat.map(["a", "b"], "{item}", progress=None)
    chat.map(["a", "b"], "{item}", cache="refresh", progress=None)
    assert sorted(user_texts(server)) == ["a", "a", "b", "b"]


def test_an_interrupt_stops_new_requests_cancels_in_flight_and_keeps_completed(
    chat: Chat, server: StandInServer
) -> None:
    server.script(times=2)
    server.script(delay=30.0, times=50)

    def interrupt_when_two_are_in_flight() -> None:
        while len(server.bodies) < 4:  # two answered, two waiting for their 30 s delay
            time.sleep(0.01)
        time.sleep(0.1)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_when_two_are_in_flight, daemon=True).start()
    started = time.perf_counter()
    with pytest.raises(MapInterrupted) as caught:
        chat.map([f"i{i}" for i in range(10)], "{item}", concurrency=2, progress=None)
    # awaiting them would take 30 s; the bound leaves a loaded machine room
    assert time.perf_counter() - started < 10.0, "in-flight requests were cancelled, not awaited"
    results = caught.value.results
    # which two got the fast answers depends on arrival order; each kept one is its own item's
    kept = [k for k, r in enumerate(results) if r is not None]
    assert len(kept) == 2 and all(str(results[k]) == f"Echo: i{k}" for k in kept)
    assert len(results.errors) == 8 and "interrupted" in results.errors[0].error
    asked = len(server.bodies)
    time.sleep(0.3)
    assert len(server.bodies) == asked == 4, "two completed, two cancelled in flight, none started after"


def test_the_cost_estimate_asks_above_confirm_cost_and_refuses_without_stdin(
    chat: Chat, server: StandInServer
) -> None:
    chat.settings.confirm_cost = 0.0
    with pytest.raises(NbChatError, match="no stdin to confirm"):
        chat.map(["a", "b"], "{item}", progress=None)
    assert server.bodies == []
    asked: list[str] = []

    def refuse(question: str) -> str:
        asked.append(question)
        return "n"

    with pytest.raises(NbChatError, match="not confirmed"):
        chat.map(["a"], "{item}", progress=None, confirm=refuse)
    assert re.search(r"will cost about <?\$0\.0000\d", asked[0]) and server.bodies == []
    out = chat.map(["a"], "{item}", progress=None, confirm=lambda q: "y")
    assert str(out[0]) == "Echo: a"


def test_map_cell_fills_the_template_from_a_dataframe_and_o_gets_results(
    cell: Cell, server: StandInServer
) -> None:
    cell.shell.user_ns["df"] = pd.DataFrame({"text": ["fine", "awful"]})
    cell.shell.user_ns["text"] = "NOT THIS"
    run = cell("%%chat --map df --schema 'label' -o labels\nSentiment of {text}")
    assert run.ok, run.error
    labels = cell.shell.user_ns["labels"]
    assert list(labels["label"]) == ["label: Sentiment of fine", "label: Sentiment of awful"]
    assert "df: 2/2 done" in run.text


def test_map_cell_rerun_keeps_completed_items(cell: Cell, server: StandInServer) -> None:
    cell.shell.user_ns["items"] = ["a", "b", "c"]
    server.script(status=400, error="flaky", times=1)
    first = cell("%%chat --map items --concurrency 1 -o out\n{item}")
    assert first.ok and "1 failed" in first.text and "flaky" in first.text
    before = len(server.bodies)
    second = cell("%%chat --map items --concurrency 1 -o out\n{item}")
    assert second.ok and "3/3 done" in second.text
    assert len(server.bodies) - before == 1


def test_map_cell_shows_a_text_progress_line_in_a_plain_kernel(cell: Cell, server: StandInServer) -> None:
    cell.shell.user_ns["items"] = list(range(3))
    run = cell("%%chat --map items\n{item}")
    assert run.ok
    assert "items: 3/3 done" in run.text and "tokens" in run.text
    # the estimate made before starting (200 completion tokens a reply when max_tokens is unset)
    # stays next to what it cost
    assert "(estimated ≈$" in run.text


def test_map_cell_names_a_missing_variable(cell: Cell, server: StandInServer) -> None:
    from IPython.core.error import UsageError

    run = cell("%%chat --map nothing_here\n{item}")
    assert type(run.error) is UsageError and "nothing_here" in str(run.error)
    assert server.bodies == []


def test_a_watched_notebook_gets_a_widget_bar_replaced_by_the_summary(shell: InteractiveShell) -> None:
    from IPython.utils.capture import capture_output

    from nbchat.items import Progress
    from nbchat.mapview import ProgressView

    state = Progress(total=4, label="rows")
    with capture_output() as io:
        view = ProgressView(4, "rows", terminal=False, widget=True)
        state.done, state.tokens = 2, 40
        view.update(state)
        assert view.bar.value == 2 and "40 tokens" in view.info.value
        view.close(state.summary())
    first = io.outputs[0].data
    assert "application/vnd.jupyter.widget-view+json" in first
    assert io.outputs[-1].data["text/plain"].startswith("rows: 2/4 done")


def test_a_map_cell_above_confirm_cost_is_refused_without_stdin(cell: Cell, server: StandInServer) -> None:
    cell.shell.user_ns["items"] = ["a", "b"]
    assert cell("%chatconfig confirm_cost=0").ok
    run = cell("%%chat --map items\n{item}")
    assert not run.ok and "above confirm_cost ($0.00000)" in str(run.error)
    assert "there is no stdin to confirm" in str(run.error) and server.bodies == []


def test_no_cache_asks_for_every_item_again_despite_earlier_results(
    cell: Cell, server: StandInServer
) -> None:
    cell.shell.user_ns["items"] = ["a", "b"]
    assert cell("%%chat --map items -o out\n{item}").ok
    assert cell("%%chat --map items -o out --no-cache\n{item}").ok
    assert len(server.bodies) == 4


def test_a_map_sends_chat_completions_without_tools_whatever_the_settings(server: StandInServer) -> None:
    def lookup(key: str) -> str:
        """Look a key up."""
        return key

    chat = Chat(base_url=server.url, api_key="sk-test", api="responses", tools=[lookup])
    assert "tools" in chat.prepare("x", api="chat")[0].body, "a single send would offer the tool"
    out = chat.map(["a", "b"], "{item}", progress=None)
    assert [str(r) for r in out] == ["Echo: a", "Echo: b"]
    assert len(server.bodies) == 2 and all("tools" not in b and "messages" in b for b in server.bodies)
    with pytest.raises(NbChatError, match="api=chat"):
        chat.map(["a"], "{item}", api="responses", progress=None)
