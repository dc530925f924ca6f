"""Maps left running unattended (DESIGN §15): an early stop on a failure that would hit every
item, failing cells when items fail, template fields checked before anything is sent, and
Ctrl-C as a ``KeyboardInterrupt`` told in one line."""

from __future__ import annotations

import _thread
import threading
import time
from pathlib import Path

import pytest
from conftest import FAKE_KEY, Cell
from IPython.core.error import UsageError

from nbchat import Chat
from nbchat.errors import NbChatError
from nbchat.items import Progress
from nbchat.mapping import (
    ALIKE,
    EarlyStop,
    MapFailed,
    MapInterrupted,
    MapStopped,
    _drive,
    jobs_for,
)
from nbchat.schema import to_schema
from nbchat.testing.server import StandInServer

ITEMS = [f"review {i}" for i in range(200)]


@pytest.fixture
def chat(server: StandInServer, tmp_path: Path) -> Chat:
    return Chat(
        base_url=server.url,
        api_key=FAKE_KEY,
        cache="replay",
        cache_path=str(tmp_path / "replies.sqlite3"),
        max_retries=0,
    )


def stopped(chat: Chat, items: list[str], concurrency: int = 8) -> MapStopped:
    with pytest.raises(MapStopped) as caught:
        chat.map(items, "Label: {item}", concurrency=concurrency, progress=None)
    return caught.value


# -- 1. early stop ---------------------------------------------------------------------


def test_a_401_storm_stops_the_map_after_the_first_wave(chat: Chat, server: StandInServer) -> None:
    # a server that quotes the key back in full: the line never shows it
    server.script(status=401, error=f"Incorrect API key provided: {FAKE_KEY}", times=10**6)
    error = stopped(chat, ITEMS)
    asked = len(server.bodies)
    assert asked <= 8, f"{asked} requests: nothing past the first wave of 8 is sent"
    message = str(error)
    assert message.startswith("401 Unauthorized: Incorrect API key provided")
    assert "The key was refused" in message, "the line a single cell shows for a 401"
    assert f"stopped early: {asked} of 200 items were sent, the other {200 - asked} were not" in message
    assert "\n" not in message and FAKE_KEY[3:] not in message
    assert not any(FAKE_KEY[3:] in e.error for e in error.results.errors)
    results = error.results
    assert len(results) == 200 and results.count(None) == 200 and len(results.errors) == 200
    assert sum("not sent" in e.error for e in results.errors) == 200 - asked
    time.sleep(0.2)
    assert len(server.bodies) == asked, "nothing is sent after the map returns"


def test_a_404_for_an_unknown_model_stops_at_once(chat: Chat, server: StandInServer) -> None:
    server.script(status=404, error="The model `gpt-4o-mni` does not exist", times=10**6)
    error = stopped(chat, ITEMS, concurrency=1)
    assert len(server.bodies) == 1, "one at a time: the first 404 is the last request"
    assert str(error).startswith("404 Not Found: The model `gpt-4o-mni` does not exist. Check the model name")
    assert "1 of 200 items were sent, the other 199 were not" in str(error)


def test_a_403_stops_at_once_even_after_items_succeeded(chat: Chat, server: StandInServer) -> None:
    server.script(times=3)
    server.script(status=403, error="Project does not have access to model gpt-4o", times=10**6)
    error = stopped(chat, ITEMS, concurrency=1)
    assert len(server.bodies) == 4 and str(error).startswith("403 Forbidden: Project does not have access")
    assert "4 of 200 items were sent, the other 196 were not" in str(error)
    assert [str(r) for r in error.results[:3]] == [f"Echo: Label: review {i}" for i in range(3)]


def test_the_same_400_for_the_first_items_stops_the_map(chat: Chat, server: StandInServer) -> None:
    server.script(status=400, error="Unsupported parameter: 'max_tokens'", param="max_tokens", times=10**6)
    error = stopped(chat, ITEMS, concurrency=4)
    # the first wave of 4, and at most ALIKE - 1 more taken before the third failure settled
    assert len(server.bodies) <= 4 + ALIKE - 1
    assert str(error).startswith("400 Bad Request: Unsupported parameter: 'max_tokens'")
    assert f"stopped early: {len(server.bodies)} of 200 items were sent" in str(error)


def test_a_spent_quota_stops_at_once_where_a_plain_429_waits(chat: Chat, server: StandInServer) -> None:
    server.script(status=429, error="You exceeded your current quota", code="insufficient_quota", times=10**6)
    error = stopped(chat, ITEMS, concurrency=2)
    assert len(server.bodies) <= 2 and "You exceeded your current quota" in str(error)


def test_an_unreachable_server_stops_after_the_first_items(tmp_path: Path) -> None:
    with StandInServer() as gone:
        url = gone.url
    chat = Chat(base_url=url, api_key=FAKE_KEY, cache="off", max_retries=0)
    with pytest.raises(MapStopped, match=r"cannot reach .* stopped early: [3-5] of 200 items were sent"):
        chat.map(ITEMS, "{item}", concurrency=2, progress=None)


def test_two_failures_at_the_head_are_the_items_own_and_the_map_goes_on(
    chat: Chat, server: StandInServer
) -> None:
    server.script(status=400, error="this item is too long", times=ALIKE - 1)
    results = chat.map(ITEMS[:20], "{item}", concurrency=1, progress=None)
    assert len(server.bodies) == 20 and [e.position for e in results.errors] == [0, 1]


def test_after_a_success_the_same_400s_are_items_of_their_own(chat: Chat, server: StandInServer) -> None:
    server.script(times=1)
    server.script(status=400, error="content filtered", times=5)
    results = chat.map(ITEMS[:10], "{item}", concurrency=1, progress=None)
    assert len(server.bodies) == 10 and len(results.errors) == 5


def test_different_failures_in_a_row_do_not_stop_but_fail_the_map(chat: Chat, server: StandInServer) -> None:
    for _ in range(3):
        server.script(status=400, error="bad")
        server.script(status=422, error="unprocessable")
    with pytest.raises(MapFailed, match=r"all 6 items failed; the first, #0: 400 Bad Request: bad") as caught:
        chat.map(ITEMS[:6], "{item}", concurrency=1, progress=None)
    assert type(caught.value) is MapFailed and len(server.bodies) == 6


def test_one_group_stops_while_another_in_the_same_run_goes_on(chat: Chat, server: StandInServer) -> None:
    """What a compare does with one model per group: the stopped group's jobs are not sent."""
    # (a refused json_schema no longer fails a group: the map learns it and asks with json_object)
    server.script(status=400, error="gpt-4o is not served here", model="gpt-4o", times=100)
    failing = jobs_for(chat, ITEMS[:50], "{item}", to_schema("label"), {"api": "chat", "model": "gpt-4o"})
    working = jobs_for(chat, ITEMS[:50], "{item}", None, {"api": "chat"})
    for job in working:
        job.position += 50
    values: list[object] = [None] * 100
    errors: dict[int, object] = {}
    state = Progress(total=100)
    assert not _drive(chat, failing + working, values, errors, state, 2, None)  # type: ignore[arg-type]
    assert failing[0].stop.stopped and not working[0].stop.stopped
    assert "gpt-4o is not served here" in str(failing[0].stop.reason)
    assert failing[0].stop.sent <= 2 + ALIKE - 1 and state.unsent == 50 - failing[0].stop.sent
    assert all(v is not None for v in values[50:]), "the other group ran every item"
    schema_requests = [b for b in server.bodies if "response_format" in b]
    assert len(schema_requests) == failing[0].stop.sent


def test_the_early_stop_object_judges_failures_by_kind() -> None:
    stop = EarlyStop(10)
    assert not stop.failure(400, "a") and not stop.failure(422, "b") and not stop.failure(400, "c")
    assert not stop.failure(None, "timed out") and not stop.failure(400, "d")
    assert not stop.failure(400, "e") and stop.failure(400, "f"), "three 400s in a row"
    assert stop.reason == "f"
    after_success = EarlyStop(10)
    after_success.success()
    assert not any(after_success.failure(400, "x") for _ in range(10))
    assert after_success.failure(401, "key"), "a refused key stops whenever it comes"


def test_a_map_cell_stopped_early_fails_in_one_line_and_o_keeps_the_results(
    cell: Cell, server: StandInServer
) -> None:
    cell.shell.user_ns["items"] = ITEMS
    server.script(status=401, error="Incorrect API key provided", times=10**6)
    run = cell("%%chat --map items -o out\nLabel: {item}")
    assert not run.ok and isinstance(run.error, MapStopped)
    assert len(server.bodies) <= 8
    assert "nbchat: 401 Unauthorized: Incorrect API key provided" in run.text
    assert "Traceback" not in run.text and "stopped early" in run.text
    assert len(cell.shell.user_ns["out"].errors) == 200


# -- 2. failure semantics ------------------------------------------------------------


def test_every_item_failed_fails_the_cell_and_some_failed_succeeds(cell: Cell, server: StandInServer) -> None:
    cell.shell.user_ns["items"] = ["a", "b"]
    server.script(status=400, error="bad", times=1)
    server.script(status=422, error="worse", times=1)
    failed = cell("%%chat --map items --concurrency 1 -o out\n{item}")
    assert not failed.ok and type(failed.error) is MapFailed
    assert "nbchat: all 2 items failed; the first, #0: 400 Bad Request: bad" in failed.text
    assert cell.shell.user_ns["out"] == [None, None], "-o gets the results before the cell fails"
    server.script(status=400, error="bad", times=1)
    some = cell("%%chat --map items --concurrency 1 -o out\n{item}")
    assert some.ok and "items: 1/2 done · 1 failed (see .errors)" in some.text
    assert [e.position for e in cell.shell.user_ns["out"].errors] == [0]


def test_strict_fails_after_the_results_are_delivered(chat: Chat, cell: Cell, server: StandInServer) -> None:
    server.script(status=400, error="bad", times=1)
    with pytest.raises(MapFailed, match=r"1 of 3 items failed \(strict\)") as caught:
        chat.map(["a", "b", "c"], "{item}", concurrency=1, strict=True, progress=None)
    assert [str(r) for r in caught.value.results[1:]] == ["Echo: b", "Echo: c"]
    assert chat.map(["d"], "{item}", strict=True, progress=None).errors == [], "no failure, no error"
    cell.shell.user_ns["items"] = ["a", "b", "c"]
    server.script(status=400, error="bad", times=1)
    run = cell("%%chat --map items --concurrency 1 --strict -o out\n{item}")
    assert not run.ok and "(strict)" in str(run.error)
    assert str(cell.shell.user_ns["out"][2]) == "Echo: c"


def test_strict_goes_with_a_map_only(cell: Cell, server: StandInServer) -> None:
    run = cell("%%chat --strict\nhello")
    assert type(run.error) is UsageError and "--strict" in str(run.error)
    cell.shell.user_ns["items"] = ["a"]
    batch = cell("%%chat --map items --batch --strict\n{item}")
    assert not batch.ok and "strict goes with a map, not a batch" in str(batch.error)
    assert server.requests == []


def test_a_run_all_stops_at_a_map_whose_every_item_failed(cell: Cell, server: StandInServer) -> None:
    cell.shell.user_ns["items"] = ["a", "b"]
    server.script(status=500, error="down", times=10)
    result = cell.shell.run_cell("%%chat --map items\n{item}\n")
    assert result.error_in_exec is not None
    assert cell.shell.run_cell("after = 1").success and "after" in cell.shell.user_ns


# -- 3. template fields ------------------------------------------------------------------


def test_a_misspelt_column_is_named_with_the_columns_and_nothing_is_sent(
    chat: Chat, server: StandInServer
) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"product": ["pen", "ink"], "price": [1, 2]})
    with pytest.raises(NbChatError) as caught:
        chat.map(df, "Describe {prodct} at {price}", progress=None)
    assert str(caught.value) == (
        "{prodct} in the template is not a column of the items (columns: product, price) nor {item}; "
        "nothing was sent"
    )
    wide = [{f"c{i}": i for i in range(30)}]
    with pytest.raises(NbChatError, match=r"\(columns: c0, c1, .*, c19, … \(30 in all\)\) nor \{item\}"):
        chat.map(wide, "{c30}", progress=None)
    records = [{"a": 1}, {"a": 2}, {"b": 3}]
    with pytest.raises(NbChatError, match=r"\{a\} in the template is not a key of item #2 \(columns: b\)"):
        chat.map(records, "{a}", progress=None)
    with pytest.raises(NbChatError, match=r"the items are plain values \(str\), so a field is \{item\}"):
        chat.map(["x"], "Say {name}", progress=None)
    assert server.requests == []
    ok = chat.map(["x"], 'Rate {item} as JSON {"score": 1} or {{literal}}', progress=None)
    assert str(ok[0]) == 'Echo: Rate x as JSON {"score": 1} or {{literal}}'
    raw = chat.map(["x"], "Say {name} to {item}", raw=True, progress=None)
    assert str(raw[0]) == "Echo: Say {name} to x"


def test_a_map_cell_takes_columns_item_and_variables_and_names_anything_else(
    cell: Cell, server: StandInServer
) -> None:
    pd = pytest.importorskip("pandas")
    cell.shell.user_ns["df"] = pd.DataFrame({"product": ["pen"], "price": [1]})
    cell.shell.user_ns["tone"] = "polite {not_a_field}"
    run = cell("%%chat --map df\nDescribe {prodct} in a {tone} way")
    assert type(run.error) is UsageError
    assert "{prodct} in the template is not a column of the items (columns: product, price)" in str(run.error)
    assert "nor a variable" in str(run.error) and server.bodies == []
    good = cell("%%chat --map df -o out\nDescribe {product} ({item}) in a {tone} way")
    assert good.ok, good.error
    assert server.bodies[0]["messages"][-1]["content"] == (
        "Describe pen (product: pen; price: 1) in a polite {not_a_field} way"
    )
    raw = cell("%%chat --map df --raw -o out\nDescribe {product} as {whatever}")
    assert raw.ok and server.bodies[-1]["messages"][-1]["content"] == "Describe pen as {whatever}"


# -- 5. Ctrl-C ---------------------------------------------------------------------------


def test_an_interrupted_map_is_a_keyboard_interrupt_that_except_exception_lets_through(
    chat: Chat, server: StandInServer
) -> None:
    server.script(times=1)
    server.script(delay=30.0, times=50)

    def interrupt_once_one_is_done() -> None:
        while len(server.bodies) < 2:
            time.sleep(0.01)
        time.sleep(0.1)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_once_one_is_done, daemon=True).start()
    with pytest.raises(KeyboardInterrupt) as caught:
        try:
            chat.map(["a", "b", "c"], "{item}", concurrency=1, progress=None)
        except Exception:  # what a script's broad handler does: it must not swallow Ctrl-C
            pytest.fail("except Exception caught the interrupt")
    error = caught.value
    assert isinstance(error, MapInterrupted) and not isinstance(error, Exception)
    assert str(error.results[0]) == "Echo: a" and error.results[1:] == [None, None]
    assert error._render_traceback_() == [
        "nbchat: interrupted: 1 of 3 completed and are kept; re-run to continue with the rest"
    ]


def test_ctrl_c_at_the_cost_confirmation_is_one_line_and_sends_nothing(
    chat: Chat, server: StandInServer
) -> None:
    chat.settings.confirm_cost = 0.0

    def ctrl_c(question: str) -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as caught:
        chat.map(["a"], "{item}", progress=None, confirm=ctrl_c)
    assert caught.value._render_traceback_() == [  # type: ignore[attr-defined]
        "nbchat: not run: Ctrl-C at the cost confirmation; nothing was sent"
    ]
    assert server.bodies == []
