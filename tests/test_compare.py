"""Chat.compare and %%chat --map NAME --compare A,B: the grid of items × models through the
map's machinery, its shape, the statistics, and what the cell shows."""

from __future__ import annotations

import _thread
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Cell
from terminal import IPython

from nbchat import Chat
from nbchat.agreement import accuracy, cohen_kappa, confusion, label_of, share_equal
from nbchat.budget import OverBudget, cost_of
from nbchat.compare import CompareResults, comparison_of
from nbchat.errors import NbChatError
from nbchat.mapping import MapFailed, MapInterrupted, MapStopped
from nbchat.testing.server import StandInServer

pd = pytest.importorskip("pandas")

SPEC = {"label": {"enum": ["pos", "neg"]}}
# ten items, two models, a truth: the numbers the hand computation below works from
A = ["pos", "pos", "pos", "pos", "pos", "pos", "neg", "neg", "neg", "neg"]
B = ["pos", "pos", "pos", "pos", "neg", "neg", "neg", "neg", "neg", "pos"]
TRUTH = ["pos", "pos", "pos", "neg", "pos", "neg", "neg", "neg", "neg", "neg"]


@pytest.fixture
def chat(server: StandInServer, tmp_path: Path) -> Chat:
    return Chat(
        base_url=server.url,
        api_key="sk-test",
        system="You label things.",
        cache="off",
        cache_path=str(tmp_path / "replies.sqlite3"),
    )


def asked(server: StandInServer, model: str) -> list[str]:
    """The user messages ``model`` was asked, in arrival order."""
    return [b["messages"][-1]["content"] for b in server.bodies if b["model"] == model]


def script_labels(server: StandInServer, model: str, labels: list[str]) -> None:
    """``model`` answers item i (the text ``item i``) with ``labels[i]``."""
    for i, label in enumerate(labels):
        server.script(model=model, contains=f"item {i}", text=json.dumps({"label": label}))


def test_kappa_share_equal_accuracy_and_confusion_match_a_hand_computation() -> None:
    # A and B agree on items 0-3 (pos) and 6-8 (neg): p_o = 7/10. A says pos 6 times and neg 4;
    # B pos 5, neg 5: p_e = (6·5 + 4·5) / 10² = 0.5, so κ = (0.7 − 0.5) / (1 − 0.5) = 0.4.
    assert share_equal(A, B) == pytest.approx(0.7)
    assert cohen_kappa(A, B) == pytest.approx(0.4)
    # against the truth A is wrong on items 3 and 5 (8/10), B on 3, 4 and 9 (7/10)
    assert accuracy(TRUTH, A) == (8, 10) and accuracy(TRUTH, B) == (7, 10)
    assert confusion(TRUTH, A) == {"neg": {"neg": 4, "pos": 2}, "pos": {"neg": 0, "pos": 4}}
    # no answer (None) is left out of both sides; one constant label each: κ is undefined
    assert share_equal(["a", None, "b"], ["a", "b", None]) == 1.0
    assert cohen_kappa(["x", "x"], ["x", "x"]) is None and cohen_kappa([None], ["x"]) is None
    # perfect disagreement on a balanced pair is κ = −1
    assert cohen_kappa(["a", "b", "a", "b"], ["b", "a", "b", "a"]) == pytest.approx(-1.0)
    assert label_of(" Positive. ") == label_of("positive") and label_of(4.0) == label_of(4) == "4"
    assert label_of(True) == "true" and label_of(float("nan")) is None
    # a Series' values are NumPy scalars: the same labels as the Python values
    values = (
        list(pd.Series([True, 4, 2.5], dtype=object).astype(object))
        + list(pd.Series([True]))
        + list(pd.Series([4]))
    )
    assert [label_of(v) for v in values] == ["true", "4", "2.5", "true", "4"]


def test_each_model_is_asked_each_item_once_and_the_rows_keep_the_items_order(
    chat: Chat, server: StandInServer
) -> None:
    chat.send("an earlier exchange")
    server.requests.clear()
    items = [f"review {i}" for i in range(12)]
    out = chat.compare(
        items, "Label: {item}", models=["gpt-4o-mini", "gpt-4o", "nbchat-stand-in"], progress=None
    )
    assert isinstance(out, CompareResults) and out.errors == []
    for model in ("gpt-4o-mini", "gpt-4o", "nbchat-stand-in"):
        assert sorted(asked(server, model)) == sorted(f"Label: {i}" for i in items), model
    assert len(server.bodies) == 36
    assert [row["gpt-4o"] for row in out] == [f"Echo: Label: review {i}" for i in range(12)]
    assert list(out[0]) == ["gpt-4o-mini", "gpt-4o", "nbchat-stand-in"]
    assert all([m["role"] for m in b["messages"]] == ["system", "user"] for b in server.bodies)
    assert len(chat.conversation.turns) == 1, "nothing joins the conversation"
    summary = {m.label: m for m in comparison_of(out).models}
    assert summary["gpt-4o"].done == 12 and summary["gpt-4o"].failed == 0 and summary["gpt-4o"].tokens > 0
    assert summary["gpt-4o"].latency is not None and summary["gpt-4o"].cost is not None


def test_a_dataframe_gives_a_dataframe_with_its_index_and_a_column_per_field_and_model(
    chat: Chat, server: StandInServer
) -> None:
    df = pd.DataFrame(
        {"text": [f"item {i}" for i in range(10)], "gold": TRUTH}, index=[f"r{i}" for i in range(10)]
    )
    script_labels(server, "gpt-4o-mini", A)
    script_labels(server, "gpt-4o", B)
    out = chat.compare(
        df, "Sentiment of {text}", models=["gpt-4o-mini", "gpt-4o"], schema=SPEC, truth="gold", progress=None
    )
    assert isinstance(out, pd.DataFrame) and list(out.index) == list(df.index)
    assert list(out.columns) == ["gpt-4o-mini.label", "gpt-4o.label"]
    assert list(out["gpt-4o-mini.label"]) == A and list(out["gpt-4o.label"]) == B
    assert all("gold" not in json.dumps(b["messages"]) for b in server.bodies), "the truth is not sent"
    found = comparison_of(out)
    assert repr(found) == (
        "<Comparison of 2 models (gpt-4o-mini, gpt-4o) · κ gpt-4o-mini·gpt-4o label 0.40 · "
        "accuracy gpt-4o-mini 0.80 · accuracy gpt-4o 0.70>"
    )
    (pair,) = found.agreement
    assert (pair.field, pair.n, pair.equal, pair.kappa) == (
        "label",
        10,
        pytest.approx(0.7),
        pytest.approx(0.4),
    )
    by_model = {a.label: a for a in found.accuracy}
    assert (by_model["gpt-4o-mini"].correct, by_model["gpt-4o-mini"].n) == (8, 10)
    assert (by_model["gpt-4o"].correct, by_model["gpt-4o"].n) == (7, 10)
    assert by_model["gpt-4o"].confusion == {"neg": {"neg": 4, "pos": 2}, "pos": {"neg": 1, "pos": 3}}
    assert found.disagreements == [4, 5, 9]


def test_at_most_concurrency_requests_reach_one_server_across_all_models(
    chat: Chat, server: StandInServer
) -> None:
    server.script(delay=0.05, times=60)
    out = chat.compare(list(range(20)), "n={item}", models=["a", "b", "c"], concurrency=4, progress=None)
    assert out.errors == [] and len(server.bodies) == 60
    assert server.max_inflight == 4, "three models share the server's bound"


def test_the_bound_is_per_server_a_chat_on_another_server_has_its_own(
    chat: Chat, server: StandInServer
) -> None:
    with StandInServer() as elsewhere:
        there = Chat(base_url=elsewhere.url, api_key="sk-other", model="gpt-4o", cache="off")
        server.script(delay=0.1, times=80)
        elsewhere.script(delay=0.1, times=40)
        out = chat.compare(
            list(range(20)),
            "n={item}",
            models={"a": "gpt-4o-mini", "b": "gpt-4o", "there": there},
            concurrency=3,
            progress=None,
        )
        assert out.errors == [] and len(server.bodies) == 40 and len(elsewhere.bodies) == 20
        assert server.max_inflight == 3 and elsewhere.max_inflight == 3, "each server its own bound"
        assert all(b["messages"][-1]["content"].startswith("n=") for b in elsewhere.bodies)


def test_a_model_refused_on_every_request_stops_early_while_the_others_go_on(
    chat: Chat, server: StandInServer
) -> None:
    server.script(model="gone", status=404, error="The model `gone` does not exist", times=100)
    items = [f"x{i}" for i in range(20)]
    with pytest.raises(MapStopped) as caught:
        chat.compare(items, "{item}", models=["gpt-4o", "gone"], concurrency=2, progress=None)
    out = caught.value.results
    assert [row["gpt-4o"] for row in out] == [f"Echo: {i}" for i in items], "the other model went on"
    assert len(asked(server, "gone")) <= 2, "at most the first wave was sent"
    assert [row["gone"] for row in out] == [None] * 20
    assert {e.model for e in out.errors} == {"gone"} and "does not exist" in out.errors[0].error
    assert str(out.errors[0]).startswith("#0 gone: 404") and repr(out.errors[0]).startswith(
        "<CellError #0 gone: 404"
    )
    assert repr(out).startswith("<CompareResults of 20 items × 2 models · 20 failed (see .errors): [{")
    gone = next(m for m in comparison_of(out).models if m.label == "gone")
    assert gone.stopped and "does not exist" in gone.stopped and gone.not_sent >= 18
    message = str(caught.value)
    assert (
        message.startswith("gone: ") and "stopped early" in message and "the other models went on" in message
    )


def test_a_failed_request_fails_the_cell_only_with_strict(chat: Chat, server: StandInServer) -> None:
    server.script(model="gpt-4o", contains="y", status=400, error="bad item", times=1)
    out = chat.compare(["x", "y", "z"], "{item}", models=["gpt-4o-mini", "gpt-4o"], progress=None)
    assert [str(e) for e in out.errors] == ["#1 gpt-4o: 400 Bad Request: bad item"]
    server.script(model="gpt-4o", contains="y", status=400, error="bad item", times=1)
    with pytest.raises(MapFailed, match="1 of 6 requests failed"):
        chat.compare(["x", "y", "z"], "{item}", models=["gpt-4o-mini", "gpt-4o"], strict=True, progress=None)


def test_a_second_run_replays_every_cell_from_the_reply_cache(chat: Chat, server: StandInServer) -> None:
    chat.settings.cache = "replay"
    first = chat.compare(
        ["a", "b", "c"], "{item}", models=["gpt-4o-mini", "gpt-4o"], schema=SPEC, progress=None
    )
    before = len(server.bodies)
    assert before == 6
    second = chat.compare(
        ["a", "b", "c"], "{item}", models=["gpt-4o-mini", "gpt-4o"], schema=SPEC, progress=None
    )
    assert len(server.bodies) == before, "nothing asked again"
    assert list(second) == list(first)
    assert [m.replayed for m in comparison_of(second).models] == [3, 3]


def interrupt_once_slow_waits(server: StandInServer, items: int) -> None:
    """Ctrl-C (in this thread) once every ``fast`` request is answered and every ``slow`` one
    waits in the stand-in (for 30 s)."""

    def answered(model: str) -> int:
        return sum(1 for r in server.requests if r.status == 200 and (r.body or {}).get("model") == model)

    def interrupt() -> None:
        while answered("fast") < items or len(asked(server, "slow")) < items:
            time.sleep(0.01)
        time.sleep(0.5)  # the answers reach the grid
        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()


def empty_cells(grid: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(model, f"i{i}") for i, row in enumerate(grid) for model, value in row.items() if value is None}


def test_an_interrupt_keeps_what_completed_and_a_rerun_asks_only_the_rest(
    chat: Chat, server: StandInServer
) -> None:
    server.script(model="slow", delay=30.0, times=5)
    interrupt_once_slow_waits(server, 5)
    items = [f"i{i}" for i in range(5)]
    started = time.perf_counter()
    with pytest.raises(MapInterrupted) as caught:
        chat.compare(items, "{item}", models=["fast", "slow"], concurrency=10, progress=None)
    assert time.perf_counter() - started < 10.0, "in-flight requests were cancelled, not awaited"
    kept = caught.value.results
    empty = empty_cells(kept)
    assert {("slow", i) for i in items} <= empty and len(empty) < 10, "the slow ones were cut, the rest kept"
    assert all(row["fast"] in (None, f"Echo: {i}") for row, i in zip(kept, items, strict=True))
    assert len(kept.errors) == len(empty) and all("interrupted" in e.error for e in kept.errors)
    server.scripts.clear()
    before = len(server.bodies)
    again = chat.compare(items, "{item}", models=["fast", "slow"], previous=kept, progress=None)
    new = server.bodies[before:]
    assert sorted((b["model"], b["messages"][-1]["content"]) for b in new) == sorted(empty), "only the rest"
    assert again.errors == [] and [row["slow"] for row in again] == [f"Echo: {i}" for i in items]


def test_the_budget_holds_across_the_grid_chat_columns_included(server: StandInServer) -> None:
    dear = {"gpt-4o-mini": [1000.0, 1000.0], "gpt-4o": [1000.0, 1000.0]}  # $0.001 a token
    chat = Chat(base_url=server.url, api_key="sk-test", model="gpt-4o-mini", prices=dear, cache="off")
    other = Chat(base_url=server.url, api_key="sk-test", model="gpt-4o", prices=dear, system="Be terse.")
    items = [f"item number {i}" for i in range(8)]
    one = cost_of(chat.prepare(f"Label: {items[0]}", history=False, stream=False)[0].body, dear)
    assert one is not None
    chat.settings.budget = one * 5.5
    with pytest.raises(OverBudget) as caught:
        chat.compare(
            items,
            "Label: {item}",
            models={"mini": "gpt-4o-mini", "other": other},
            concurrency=2,
            progress=None,
        )
    out = caught.value.results
    answered = [v for row in out for v in row.values() if v is not None]
    assert 1 <= len(answered) == len(server.bodies) < 16, "stopped, nothing more was sent"
    assert {b["model"] for b in server.bodies} == {"gpt-4o-mini", "gpt-4o"}
    assert chat.ledger.spent + other.ledger.spent <= one * 5.5, "never over, the Chat column's cost included"
    assert {e.error for e in out.errors} == {"not sent: the budget would be exceeded"}
    assert f"({len(answered)} of 16 requests completed and are kept)" in str(caught.value)


def test_compare_refuses_what_it_cannot_do_before_sending(chat: Chat, server: StandInServer) -> None:
    with pytest.raises(NbChatError, match="model names or Chat objects"):
        chat.compare(["a"], "{item}", models=["gpt-4o", 3], progress=None)
    with pytest.raises(NbChatError, match="named 'gpt-4o'"):
        chat.compare(["a"], "{item}", models=["gpt-4o", "gpt-4o"], progress=None)
    with pytest.raises(NbChatError, match="leave out model="):
        chat.compare(["a"], "{item}", models=["gpt-4o"], model="x", progress=None)
    with pytest.raises(NbChatError, match="is not a column"):
        chat.compare([{"t": "a"}], "{t}", models=["gpt-4o"], truth="gold", progress=None)
    with pytest.raises(NbChatError, match="2 labels for 1 items"):
        chat.compare(["a"], "{item}", models=["gpt-4o"], truth=["x", "y"], progress=None)
    with pytest.raises(NbChatError, match="not a column of the items"):
        chat.compare([{"t": "a"}], "{text}", models=["gpt-4o"], progress=None)
    with pytest.raises(NbChatError, match="which schema field"):
        chat.compare(["a"], "{item}", models=["gpt-4o"], schema="a bool, b bool", truth=["x"], progress=None)
    assert server.bodies == []


# -- the cell -----------------------------------------------------------------------------------


def test_a_chat_variable_brings_its_server_model_and_system_prompt(cell: Cell, server: StandInServer) -> None:
    assert cell("%%chat -s\nYou label reviews.").ok
    setup = cell(
        "from nbchat import Chat\n"
        f"terse = Chat(base_url={server.url!r}, model='gpt-4o', system='Be terse.')\n"
        "items = ['good', 'bad']"
    )
    assert setup.ok, setup.error
    run = cell("%%chat --map items --compare gpt-4o-mini,terse -o out\nLabel: {item}")
    assert run.ok, run.error
    systems = {b["model"]: {b["messages"][0]["content"]} for b in server.bodies}
    assert systems == {"gpt-4o-mini": {"You label reviews."}, "gpt-4o": {"Be terse."}}
    out = cell.shell.user_ns["out"]
    assert list(out[0]) == ["gpt-4o-mini", "terse"] and out[1]["terse"] == "Echo: Label: bad"
    assert cell.shell.user_ns["terse"].conversation.turns == [], (
        "nothing joins the Chat's conversation either"
    )
    assert "items × 2 models: 4/4 done" in run.text
    assert "median latency" in run.text and "terse" in run.text


def test_the_cell_shows_the_summary_agreement_confusion_and_rows_with_disagreements_marked(
    cell: Cell, server: StandInServer
) -> None:
    cell.shell.user_ns["df"] = pd.DataFrame({"text": [f"item {i}" for i in range(10)], "gold": TRUTH})
    cell.shell.user_ns["spec"] = SPEC
    script_labels(server, "gpt-4o-mini", A)
    script_labels(server, "gpt-4o", B)
    run = cell("%%chat --map df --compare gpt-4o-mini,gpt-4o --schema spec --truth gold\nSentiment of {text}")
    assert run.ok, run.error
    shown = [o["text/plain"] for o in run.outputs if "text/markdown" in o]
    summary = next(t for t in shown if "median latency" in t)
    assert "accuracy (label vs gold)" in summary and "0.80 (8/10)" in summary and "0.70 (7/10)" in summary
    assert any("Cohen's κ" in t and "0.70" in t and "0.40" in t for t in shown)
    assert any("gpt-4o: true label ↓" in t for t in shown)
    rows = next(t for t in shown if "gpt-4o-mini.label" in t and "gold" in t).splitlines()
    marked = [line.split()[0] for line in rows[2:] if line.rstrip().endswith("≠")]
    assert marked == ["4", "5", "9"]
    # item 3 is neg, both said pos; item 4 is pos, B said neg; item 5 is neg, A said pos
    assert rows[2 + 3].count("pos ✗") == 2 and "neg ✗" in rows[2 + 4] and "pos ✗" in rows[2 + 5]
    markdown = next(
        o["text/markdown"] for o in run.outputs if "gpt-4o-mini.label" in o.get("text/markdown", "")
    )
    assert "| ≠ |" in markdown


def test_a_second_run_of_the_cell_asks_nothing(cell: Cell, server: StandInServer) -> None:
    cell.shell.user_ns["items"] = ["a", "b", "c"]
    assert cell("%%chat --map items --compare gpt-4o-mini,gpt-4o -o out\n{item}").ok
    assert len(server.bodies) == 6
    again = cell("%%chat --map items --compare gpt-4o-mini,gpt-4o -o out\n{item}")
    assert again.ok and len(server.bodies) == 6, "every cell replayed from -o's results"
    assert "3/3 (3 replayed)" in again.text
    assert cell("%%chat --map items --compare gpt-4o-mini,gpt-4o -o out --no-cache\n{item}").ok
    assert len(server.bodies) == 12


def test_an_interrupted_cell_keeps_the_grid_in_o_and_its_rerun_asks_only_the_rest(
    cell: Cell, server: StandInServer
) -> None:
    cell.shell.user_ns["items"] = [f"i{i}" for i in range(4)]
    server.script(model="slow", delay=30.0, times=4)
    interrupt_once_slow_waits(server, 4)
    line = "%%chat --map items --compare fast,slow --concurrency 8 -o out\n{item}"
    run = cell(line)
    assert isinstance(run.error, KeyboardInterrupt) and "requests completed and are kept" in str(run.error)
    empty = empty_cells(cell.shell.user_ns["out"])
    assert {("slow", f"i{i}") for i in range(4)} <= empty and len(empty) < 8
    server.scripts.clear()
    before = len(server.bodies)
    again = cell(line)
    assert again.ok, again.error
    asked_again = sorted((b["model"], b["messages"][-1]["content"]) for b in server.bodies[before:])
    assert asked_again == sorted(empty), "only the empty cells were asked"
    assert [row["slow"] for row in cell.shell.user_ns["out"]] == [f"Echo: i{i}" for i in range(4)]


def test_a_dry_run_shows_the_grid_and_its_cost_and_sends_nothing(cell: Cell, server: StandInServer) -> None:
    cell.shell.user_ns["items"] = list(range(7))
    run = cell("%%chat --map items --compare gpt-4o-mini,gpt-4o,unpriced --dry-run\n{item}")
    assert run.ok, run.error
    assert "7 items × 3 models = 21 requests" in run.text and "estimated ≈$" in run.text
    assert "no price" in run.text and server.bodies == []


def test_a_cell_whose_model_stopped_early_shows_and_keeps_the_rest_then_fails_in_one_line(
    cell: Cell, server: StandInServer
) -> None:
    cell.shell.user_ns["items"] = ["a", "b", "c", "d"]
    server.script(model="typo", status=404, error="The model `typo` does not exist", times=100)
    run = cell("%%chat --map items --compare gpt-4o,typo --concurrency 1 -o out\n{item}")
    assert not run.ok and type(run.error).__name__ == "MapStopped"
    assert "typo: " in str(run.error) and "stopped early: 1 of 4 items were sent" in str(run.error)
    assert [row["gpt-4o"] for row in cell.shell.user_ns["out"]] == [
        "Echo: a",
        "Echo: b",
        "Echo: c",
        "Echo: d",
    ]
    assert "median latency" in run.text and len(asked(server, "typo")) == 1


def test_the_terminal_shows_the_summary_and_rows_as_plain_tables(
    ipython: IPython, server: StandInServer
) -> None:
    ipython.profile.mkdir()
    (ipython.profile / "ipython_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["nbchat"]\n'
        "c.InteractiveShellApp.exec_lines = [\"items = ['a', 'b', 'c']\"]\n"
    )
    out = ipython.run("%%chat --map items --compare gpt-4o-mini,gpt-4o -o out\nn={item}", ext=False)
    # (the progress line and its summary go to stderr: tests/test_progress.py)
    assert "median latency" in out and "gpt-4o-mini  gpt-4o" in out
    assert "text/plain" not in out and "| --- |" not in out and len(server.bodies) == 6


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("--compare a,b", "--compare needs --map NAME"),
        ("--map items --compare a,,b", "name each model once"),
        ("--map items --compare a,a", "names a model twice"),
        ("--map items --compare a,b --model c", "leave out --model"),
        ("--map items --compare a,b --batch", "--compare does not take --batch"),
        ("--map items --truth gold", "--map does not take --truth"),
        ("--map items --compare a,b --truth gold", "truth='gold' names a column"),
    ],
)
def test_compare_cell_mistakes_are_one_line_and_send_nothing(
    cell: Cell, server: StandInServer, line: str, words: str
) -> None:
    cell.shell.user_ns["items"] = ["x"]
    run = cell(f"%%chat {line}\n{{item}}")
    assert not run.ok and words in str(run.error)
    assert server.bodies == []


def test_the_widget_bar_closes_with_a_summary_whose_dollars_are_money(shell: Any) -> None:
    from IPython.utils.capture import capture_output

    from nbchat.mapview import ProgressView

    with capture_output() as io:
        view = ProgressView(4, "rows × 2 models", terminal=False, widget=True)
        view.close("rows × 2 models: 4/4 done · $0.00012 (estimated ≈$0.00030)")
    shown = io.outputs[-1].data
    assert shown["text/plain"] == "rows × 2 models: 4/4 done · $0.00012 (estimated ≈$0.00030)"
    assert (
        "$0.00012 (" not in shown["text/markdown"] and shown["text/markdown"].count("<span>\\$</span>") == 2
    )
