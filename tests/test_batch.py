"""The Batch API for a map (JSONL via the Files API, BatchJob) and the %chat files verbs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Cell

from nbchat import BatchJob, Chat
from nbchat.errors import NbChatError
from nbchat.testing.batches import store_of
from nbchat.testing.server import StandInServer

pd = pytest.importorskip("pandas")


@pytest.fixture
def chat(server: StandInServer, tmp_path: Path) -> Chat:
    return Chat(
        base_url=server.url, api_key="sk-test", system="Label.", cache_path=str(tmp_path / "c.sqlite3")
    )


def uploads(server: StandInServer) -> list[Any]:
    return [r.body for r in server.requests if r.method == "POST" and r.path.endswith("/files")]


def test_a_batch_map_uploads_jsonl_with_custom_ids_and_creates_a_24h_batch(
    chat: Chat, server: StandInServer
) -> None:
    job = chat.map(["a", "b", "c"], "Label {item}", batch=True)
    assert isinstance(job, BatchJob) and job.id.startswith("batch_")
    [upload] = uploads(server)
    assert (upload["filename"], upload["purpose"]) == ("nbchat-map.jsonl", "batch") and upload["bytes"] > 0
    store = store_of(server)
    file_id = next(iter(store.files))
    lines = [json.loads(x) for x in store.contents[file_id].decode().splitlines()]
    assert [x["custom_id"] for x in lines] == ["item-0", "item-1", "item-2"]
    assert {x["url"] for x in lines} == {"/v1/chat/completions"} and {x["method"] for x in lines} == {"POST"}
    assert lines[1]["body"]["messages"] == [
        {"role": "system", "content": "Label."},
        {"role": "user", "content": "Label b"},
    ]
    assert "stream" not in lines[0]["body"]
    created = next(r.body for r in server.requests if r.path.endswith("/batches"))
    assert created["completion_window"] == "24h" and created["endpoint"] == "/v1/chat/completions"
    assert created["input_file_id"] == file_id
    assert server.bodies == [], "nothing went to /chat/completions directly"


def test_results_come_back_in_order_by_custom_id_in_the_items_shape(
    chat: Chat, server: StandInServer
) -> None:
    df = pd.DataFrame({"text": ["up", "down", "flat"]}, index=[7, 8, 9])
    job = chat.map(df, "Trend: {text}", schema="label, score float", batch=True)
    out = job.wait(poll=0.05).results()
    assert job.status == "completed"
    assert list(out.index) == [7, 8, 9] and list(out.columns) == ["label", "score"]
    assert list(out["label"]) == ["label: Trend: up", "label: Trend: down", "label: Trend: flat"]
    assert out.attrs["errors"] == []


def test_a_batch_after_a_delay_is_in_progress_then_completes(chat: Chat, server: StandInServer) -> None:
    store_of(server).script.delay = 0.4
    job = chat.map(["x", "y"], "{item}", batch=True)
    assert job.refresh().status == "in_progress"
    with pytest.raises(NbChatError, match=r"in_progress .*job\.wait"):
        job.results()
    line = job.status_line()
    assert "in_progress" in line and "at the batch price (half the standard price)" in line
    out = job.wait(poll=0.1, timeout=5).results()
    assert [str(r) for r in out] == ["Echo: x", "Echo: y"]


def test_failed_items_are_listed_and_the_rest_kept(chat: Chat, server: StandInServer) -> None:
    server.script(times=1)
    server.script(status=500, error="line failed", times=1)
    out = chat.map(["a", "b", "c"], "{item}", batch=True).wait(poll=0.05).results()
    assert str(out[0]) == "Echo: a" and out[1] is None and str(out[2]) == "Echo: c"
    assert [(e.position, e.item) for e in out.errors] == [
        (1, "b")
    ] and "500 server error: line failed" in out.errors[0].error


def test_an_expired_batch_returns_what_completed_and_explains_the_rest(
    chat: Chat, server: StandInServer
) -> None:
    store_of(server).script.outcome, store_of(server).script.expire_after = "expired", 2
    job = chat.map(["a", "b", "c", "d"], "{item}", batch=True).wait(poll=0.05)
    assert job.status == "expired" and "results() returns what completed" in job.status_line()
    out = job.results()
    assert [str(r) if r else None for r in out] == ["Echo: a", "Echo: b", None, None]
    assert all("expired" in e.error for e in out.errors)


def test_a_failed_batch_is_explained(chat: Chat, server: StandInServer) -> None:
    store_of(server).script.outcome = "failed"
    job = chat.map(["a"], "{item}", batch=True)
    assert job.status == "failed" and "scripted: the batch failed" in job.status_line()
    with pytest.raises(NbChatError, match="failed: scripted: the batch failed"):
        job.results()


def test_cancel_stops_the_batch_and_results_explain_it(chat: Chat, server: StandInServer) -> None:
    store_of(server).script.delay = 30
    job = chat.map(["a", "b"], "{item}", batch=True)
    assert job.cancel().status == "cancelled"
    out = job.results()
    assert out == [None, None] and "cancelled" in out.errors[0].error


def test_attach_after_a_restart_finds_the_batch_and_maps_results(chat: Chat, server: StandInServer) -> None:
    job = chat.map(pd.Series(["p", "q"], index=["r1", "r2"]), "{item}", batch=True)
    again = BatchJob.attach(
        job.id, base_url=server.url, api_key="sk-test", items=pd.Series(["p", "q"], index=["r1", "r2"])
    )
    out = again.wait(poll=0.05).results()
    assert list(out.index) == ["r1", "r2"] and list(out) == ["Echo: p", "Echo: q"]
    bare = BatchJob.attach(job.id, base_url=server.url, api_key="sk-test").results()
    assert [str(r) for r in bare] == ["Echo: p", "Echo: q"]


def test_the_batch_cell_shows_the_job_and_o_receives_it(cell: Cell, server: StandInServer) -> None:
    cell.shell.user_ns["items"] = ["one", "two"]
    run = cell("%%chat --map items --batch -o job\nSay {item}")
    assert run.ok, run.error
    job = cell.shell.user_ns["job"]
    assert isinstance(job, BatchJob) and job.id in run.text + run.markdown
    assert [str(r) for r in job.wait(poll=0.05).results()] == ["Echo: Say one", "Echo: Say two"]


def test_files_verbs_list_upload_download_delete(cell: Cell, server: StandInServer, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(b"hello files\n")
    run = cell(f"%chat files upload {source} --purpose assistants")
    assert run.ok, run.error
    store = store_of(server)
    file_id, meta = next(iter(store.files.items()))
    assert meta["purpose"] == "assistants" and meta["filename"] == "notes.txt" and file_id in run.text
    listed = cell("%chat files")
    assert file_id in listed.text and "notes.txt" in listed.text
    target = tmp_path / "back.txt"
    assert cell(f"%chat files download {file_id} {target}").ok
    assert target.read_bytes() == b"hello files\n"
    assert cell(f"%chat files delete {file_id}").ok
    assert store.files == {}


def test_files_verbs_report_mistakes_as_usage_errors(
    cell: Cell, server: StandInServer, tmp_path: Path
) -> None:
    from IPython.core.error import UsageError

    missing = cell(f"%chat files upload {tmp_path / 'nope.pdf'}")
    assert type(missing.error) is UsageError and "no such file" in str(missing.error)
    bad = cell("%chat files frobnicate")
    assert type(bad.error) is UsageError and "upload" in str(bad.error)
    gone = cell(f"%chat files download file-missing {tmp_path / 'x'}")
    assert not gone.ok and "No such File object" in str(gone.error)


def test_the_batch_price_is_half_the_standard_price_and_shown(chat: Chat, server: StandInServer) -> None:
    from nbchat.usage import cost

    job = chat.map(["a long review", "short"], "{item}", batch=True)
    assert "about <$0.00001 at the batch price" in job.status_line()
    out = job.wait(poll=0.05).results()
    for reply in out:
        standard = cost("gpt-4o-mini", reply.usage)
        assert standard is not None and reply.cost == pytest.approx(standard / 2)
    assert job.cost == pytest.approx(sum(r.cost for r in out)) and job.cost > 0
    assert chat.ledger.spent == pytest.approx(job.cost), "the budget counts the batch price"
    assert job.status_line().count("$") == 1 and "about" not in job.status_line()


def test_wait_in_a_notebook_shows_the_status_as_it_changes(cell: Cell, server: StandInServer) -> None:
    store_of(server).script.delay = 0.3
    cell.shell.user_ns["items"] = ["a"]
    assert cell("%%chat --map items --batch -o job\n{item}").ok
    run = cell("job.wait(poll=0.05)")
    assert run.ok, run.error
    lines = [o.get("text/plain", "") for o in run.outputs]
    assert any(" · in_progress · 0/1 done" in t for t in lines)
    assert any(" · completed · 1/1 done" in t for t in lines)
