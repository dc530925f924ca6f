"""A stream can't poison the conversation through the other wire APIs either: the Responses
API (api=responses), legacy completions (--completion) and images (-f image) read odd but
valid replies, turn malformed ones into one readable line that records nothing, keep a reply
whose usage is malformed, store only valid text, and read error bodies of any shape."""

from __future__ import annotations

import json
import socket

import pytest
from conftest import FAKE_KEY
from rawserver import SSE_HEAD, RawServer, json_response

from nbchat.testing.images import png

PICTURE = png(8, 8, (200, 30, 30))


def turns(magics) -> list:
    conv = magics.conversations.get("default")
    return conv.turns if conv else []


def raw(magics, server: RawServer, api: str = "chat") -> None:
    magics.base_url = server.url
    magics.max_retries = 0
    magics.timeout = 5
    magics.api = api


def sse(data: object, name: str | None = None) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


def one_line_failure(run, start: str = "nbchat: ") -> str:
    out = run.io.stdout
    assert not run.ok, out
    assert out.startswith(start), out
    assert out.count("\n") == 1 and len(out) < 500, out
    assert "Traceback" not in out + run.io.stderr
    return out


# -- the Responses API ---------------------------------------------------------------

USAGE = {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}


def response_event(kind: str, **fields: object) -> bytes:
    return sse({"type": kind, **fields}, kind)


def text_delta(text: object) -> bytes:
    return response_event("response.output_text.delta", output_index=0, content_index=0, delta=text)


def summary_delta(text: object, index: object = 0) -> bytes:
    return response_event("response.reasoning_summary_text.delta", summary_index=index, delta=text)


def completed(usage: object = USAGE, **response: object) -> bytes:
    body = {"status": "completed", "model": "raw", "output": [], "usage": usage} | response
    return response_event("response.completed", response=body)


def responses_stream(*events: bytes) -> RawServer:
    created = response_event("response.created", response={"model": "raw", "status": "in_progress"})
    return RawServer(lambda conn: conn.sendall(SSE_HEAD + created + b"".join(events)))


def test_responses_a_surrogate_pair_split_across_deltas_is_stored_whole(cell, magics, tmp_path) -> None:
    events = [summary_delta("think \ud83d"), summary_delta("\ude00"), text_delta("smile \ud83d")]
    with responses_stream(*events, text_delta("\ude00 done"), completed()) as srv:
        raw(magics, srv, "responses")
        run = cell("%%chat\nhi")
        assert run.ok, run.io.stdout
    (turn,) = turns(magics)
    assert turn.reply == "smile \U0001f600 done"
    shown = json.dumps([o.data for o in run.io.outputs], ensure_ascii=False)
    shown.encode("utf-8")  # what was shown holds no lone surrogate either
    assert "think \U0001f600" in shown and "smile \U0001f600 done" in shown
    path = tmp_path / "c.json"
    assert cell(f"%chat save {path}").ok
    assert "smile \U0001f600 done" in path.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_responses_a_lone_surrogate_becomes_a_replacement_character(cell, magics) -> None:
    with responses_stream(text_delta("a\ud83d"), text_delta(" b\ude00"), completed()) as srv:
        raw(magics, srv, "responses")
        assert cell("%%chat\nhi").ok
    assert turns(magics)[-1].reply == "a\ufffd b\ufffd"


def test_responses_null_deltas_and_odd_end_states_are_read(cell, magics) -> None:
    events = [
        text_delta(None),
        response_event("response.output_text.delta"),
        text_delta("kept"),
        summary_delta(None, None),
        response_event("response.created", response="not an object"),
    ]
    end = completed(incomplete_details="a string", model=5)
    with responses_stream(*events, end) as srv:
        raw(magics, srv, "responses")
        run = cell("%%chat\nhi")
        assert run.ok, run.io.stdout
    assert turns(magics)[-1].reply == "kept"


@pytest.mark.parametrize(
    "bad",
    [
        text_delta(5),
        text_delta({"nested": "x"}),
        text_delta(["a", "list"]),
        summary_delta(7),
        summary_delta("x", "zero"),
        summary_delta("x", 10**9),
        summary_delta("x", -1),
    ],
    ids=["int-delta", "dict-delta", "list-delta", "int-summary", "string-index", "huge-index", "negative"],
)
def test_responses_a_malformed_event_is_one_line_and_nothing_is_recorded(cell, magics, bad) -> None:
    assert cell("%%chat\nbefore").ok  # against the stand-in server
    before = list(turns(magics))
    with responses_stream(text_delta("fine "), bad, completed()) as srv:
        raw(magics, srv, "responses")
        run = cell("%%chat\nhi")
    one_line_failure(run, "nbchat: the server sent a malformed reply")
    assert turns(magics) == before


@pytest.mark.parametrize(
    "usage",
    [
        "lots",
        {"input_tokens": "many", "output_tokens": 1},
        [1, 2],
        {"input_tokens": -3, "output_tokens": 1},
        {"input_tokens": 1, "output_tokens": 2, "output_tokens_details": "x"},
    ],
)
def test_responses_malformed_usage_keeps_the_reply_and_estimates_the_counts(cell, magics, usage) -> None:
    with responses_stream(text_delta("kept"), completed(usage)) as srv:
        raw(magics, srv, "responses")
        run = cell("%%chat\nhi")
    assert run.ok, run.io.stdout
    assert turns(magics)[-1].reply == "kept"
    if isinstance(usage, dict) and "output_tokens_details" in usage:
        assert turns(magics)[-1].usage["prompt_tokens"] == 1  # the good counts are kept
    else:
        assert turns(magics)[-1].usage is None and run.metadata["usage_estimated"] is True
    assert cell("%chat history").ok and cell("%chat usage").ok


@pytest.mark.parametrize(
    ("event", "said"),
    [
        (response_event("error", message="boom\n" * 50_000, code="server_error"), "boom boom"),
        (response_event("error", error="plain text error"), "plain text error"),
        (response_event("error", detail=[{"msg": "field required"}]), "field required"),
        (
            response_event(
                "response.failed",
                response={"status": "failed", "error": {"message": "line\n" + "x" * 1_000_000}},
            ),
            "line xxx",
        ),
        (response_event("response.failed", response={"status": "failed", "error": None}), "no details"),
    ],
    ids=["huge-multiline", "error-string", "detail-list", "failed-huge", "failed-null"],
)
def test_responses_an_error_in_the_stream_is_one_readable_line(cell, magics, event, said) -> None:
    with responses_stream(text_delta("part"), event) as srv:
        raw(magics, srv, "responses")
        run = cell("%%chat\nhi")
    out = one_line_failure(run, "nbchat: the server reported an error during the reply")
    assert said in out
    assert turns(magics) == []


def test_responses_an_error_event_never_quotes_the_key(cell, magics) -> None:
    magics.api_key = FAKE_KEY
    event = response_event("error", message=f"bad key {FAKE_KEY} and {FAKE_KEY[:12]}***")
    with responses_stream(event) as srv:
        raw(magics, srv, "responses")
        run = cell("%%chat\nhi")
    out = one_line_failure(run)
    assert FAKE_KEY[3:11] not in out and FAKE_KEY[3:] not in out and "bad key" in out


def test_responses_a_stream_that_drops_records_nothing(cell, magics) -> None:
    with responses_stream(text_delta("half a rep")) as srv:
        raw(magics, srv, "responses")
        run = cell("%%chat\nhi")
    assert "stream ended before the reply was complete" in one_line_failure(run)
    assert turns(magics) == []


@pytest.mark.parametrize(
    ("output", "reply"),
    [
        ([None, "x", {"type": "message", "content": [None, {"type": "output_text", "text": "ok"}]}], "ok"),
        ([{"type": "message", "content": "not a list"}, {"type": "reasoning", "summary": [3]}], ""),
    ],
    ids=["null-items", "odd-containers"],
)
def test_responses_a_whole_reply_with_odd_items_is_read(cell, magics, output, reply) -> None:
    body = json.dumps({"status": "completed", "model": "raw", "output": output, "usage": "x"}).encode()
    with RawServer(lambda conn: conn.sendall(json_response(200, body, "OK"))) as srv:
        raw(magics, srv, "responses")
        run = cell("%%chat --no-stream\nhi")
    assert run.ok, run.io.stdout
    assert turns(magics)[-1].reply == reply


def test_responses_a_whole_reply_with_a_number_for_text_is_one_line(cell, magics) -> None:
    output = [{"type": "message", "content": [{"type": "output_text", "text": 42}]}]
    body = json.dumps({"status": "completed", "output": output}).encode()
    with RawServer(lambda conn: conn.sendall(json_response(200, body, "OK"))) as srv:
        raw(magics, srv, "responses")
        run = cell("%%chat --no-stream\nhi")
    one_line_failure(run, "nbchat: the server sent a malformed reply")
    assert turns(magics) == []


# -- legacy completions ----------------------------------------------------------------


def chunk(choices: object, **extra: object) -> bytes:
    return sse({"id": "c", "object": "text_completion", "model": "raw", "choices": choices} | extra)


def piece(text: object, index: object = 0, finish: object = None, **extra: object) -> dict:
    return {"index": index, "text": text, "finish_reason": finish, "logprobs": None} | extra


def completions_stream(*chunks: bytes, done: bool = True) -> RawServer:
    tail = b"data: [DONE]\n\n" if done else b""
    return RawServer(lambda conn: conn.sendall(SSE_HEAD + b"".join(chunks) + tail))


def test_completions_a_surrogate_pair_split_across_chunks_arrives_whole(cell, magics, shell) -> None:
    chunks = [
        chunk([piece("smile \ud83d")]),
        chunk([piece("\ude00 x\ud83d")]),
        chunk([piece("", finish="stop")]),
    ]
    with completions_stream(*chunks) as srv:
        raw(magics, srv)
        run = cell("%%chat --completion -o out\nhi")
        assert run.ok, run.io.stdout
    assert str(shell.user_ns["out"]) == "smile \U0001f600 x\ufffd"
    str(shell.user_ns["out"]).encode("utf-8")


def test_completions_odd_but_readable_chunks_are_read(cell, magics, shell) -> None:
    chunks = [
        chunk(None),
        chunk([None, piece(None), {"text": "no index"}]),
        chunk([piece(" more", logprobs={"tokens": 5, "top_logprobs": "x"})]),
        chunk([piece("", finish=7)]),
        chunk([], usage="lots", model={"not": "a name"}),
    ]
    with completions_stream(*chunks) as srv:
        raw(magics, srv)
        run = cell("%%chat --completion -o out\nhi")
        assert run.ok, run.io.stdout
    assert str(shell.user_ns["out"]) == "no index more"
    assert run.metadata["usage_estimated"] is True


@pytest.mark.parametrize(
    "bad",
    [
        chunk([piece(5)]),
        chunk([piece({"nested": "x"})]),
        chunk([piece("x", index="zero")]),
        chunk([piece("x", index=10**9)]),
        chunk([piece("x", index=True)]),
        chunk(["a string choice"]),
        chunk("not a list"),
    ],
    ids=[
        "int-text",
        "dict-text",
        "string-index",
        "huge-index",
        "bool-index",
        "string-choice",
        "string-choices",
    ],
)
def test_completions_a_malformed_chunk_is_one_line(cell, magics, shell, bad) -> None:
    with completions_stream(chunk([piece("fine ")]), bad, chunk([piece("", finish="stop")])) as srv:
        raw(magics, srv)
        run = cell("%%chat --completion -o out\nhi")
    one_line_failure(run, "nbchat: the server sent a malformed reply")
    assert "out" not in shell.user_ns


def test_completions_a_stream_that_drops_while_a_second_choice_is_unfinished_fails(
    cell, magics, shell
) -> None:
    chunks = [chunk([piece("one", 0), piece("two", 1)]), chunk([piece("", 0, "stop")])]
    with completions_stream(*chunks, done=False) as srv:
        raw(magics, srv)
        run = cell("%%chat --completion -n 2 -o out\nhi")
    assert "before choice 2 was complete" in one_line_failure(run)
    assert "out" not in shell.user_ns


@pytest.mark.parametrize(
    ("error", "said"),
    [
        ({"error": "plain text error"}, "plain text error"),
        ({"error": {"message": "many\n" * 100_000}}, "many many"),
        ({"error": {"detail": {"message": "deep words"}}}, "deep words"),
    ],
    ids=["error-string", "huge-multiline", "nested"],
)
def test_completions_an_error_event_in_any_shape_is_one_line(cell, magics, error, said) -> None:
    with completions_stream(chunk([piece("part")]), sse(error), done=False) as srv:
        raw(magics, srv)
        run = cell("%%chat --completion\nhi")
    assert said in one_line_failure(run, "nbchat: the server reported an error during the reply")


def test_completions_a_whole_reply_with_malformed_usage_and_logprobs_is_kept(cell, magics, shell) -> None:
    choice = piece(" text", finish="stop", logprobs={"tokens": [1, "a"], "token_logprobs": "x"})
    body = json.dumps({"model": "raw", "choices": [choice], "usage": {"prompt_tokens": "x"}}).encode()
    with RawServer(lambda conn: conn.sendall(json_response(200, body, "OK"))) as srv:
        raw(magics, srv)
        run = cell("%%chat --completion --no-stream -o out\nhi")
    assert run.ok, run.io.stdout
    assert str(shell.user_ns["out"]) == " text" and run.metadata["usage_estimated"] is True


# -- images --------------------------------------------------------------------------


def image_event(kind: str, **fields: object) -> bytes:
    return sse({"type": kind, **fields}, kind)


def test_images_malformed_usage_keeps_the_image(cell, magics, shell) -> None:
    import base64

    done = image_event(
        "image_generation.completed", b64_json=base64.b64encode(PICTURE).decode(), usage={"input_tokens": "x"}
    )
    with RawServer(lambda conn: conn.sendall(SSE_HEAD + done)) as srv:
        raw(magics, srv)
        run = cell("%%chat -f image -o pic\nA red square")
        assert run.ok, run.io.stdout
    assert shell.user_ns["pic"].png == PICTURE
    assert cell("%chat usage").ok


@pytest.mark.parametrize(
    ("event", "said"),
    [
        (image_event("error", error={"message": "no\n" * 100_000}), "no no"),
        (image_event("error", error="plain words"), "plain words"),
        (image_event("error", detail="fastapi words"), "fastapi words"),
    ],
    ids=["huge-multiline", "error-string", "detail"],
)
def test_images_an_error_event_in_any_shape_is_one_line(cell, magics, event, said) -> None:
    with RawServer(lambda conn: conn.sendall(SSE_HEAD + event)) as srv:
        raw(magics, srv)
        run = cell("%%chat -f image\nA red square")
    assert said in one_line_failure(run, "nbchat: the server reported an error")


@pytest.mark.parametrize(
    "data",
    [["a string"], [{"url": "http://x/" + "y" * 10_000}], [{"b64_json": 5}]],
    ids=["string-item", "huge-url", "number"],
)
def test_images_a_malformed_whole_reply_is_one_line(cell, magics, shell, data) -> None:
    body = json.dumps({"data": data, "usage": [1]}).encode()
    with RawServer(lambda conn: conn.sendall(json_response(200, body, "OK"))) as srv:
        raw(magics, srv)
        run = cell("%%chat -f image --no-stream -o pic\nA red square")
    one_line_failure(run, "nbchat: the server sent")
    assert "pic" not in shell.user_ns


# -- error bodies in other servers' shapes, for every API ------------------------------

BODIES = [
    (b'{"error": "plain text error"}', "plain text error"),
    (b'{"detail": [{"loc": ["body"], "msg": "field required"}]}', "field required"),
    (b'{"error": {"message": {"inner": {"message": "deep words"}}}}', "deep words"),
    (b"<html><body><h1>Bad Gateway</h1></body></html>", "Bad Gateway"),
    (json.dumps({"error": {"message": "first\nsecond\r\n" + "x" * 1_000_000}}).encode(), "first second xx"),
]
CELLS = {
    "responses": "%%chat\nhi",
    "completions": "%%chat --completion\nhi",
    "images": "%%chat -f image\nA red square",
}


@pytest.mark.parametrize(("body", "said"), BODIES, ids=["error-string", "detail", "nested", "html", "1mb"])
@pytest.mark.parametrize("api", list(CELLS))
def test_an_error_body_in_another_servers_shape_is_one_line_for_every_api(
    cell, magics, api, body, said
) -> None:
    def handler(conn: socket.socket) -> None:
        conn.sendall(json_response(418, body))

    with RawServer(handler) as srv:
        raw(magics, srv, "responses" if api == "responses" else "chat")
        run = cell(CELLS[api])
    out = one_line_failure(run, "nbchat: 418")
    assert said in out


# -- a map's whole replies ----------------------------------------------------------


def test_a_maps_whole_replies_keep_a_malformed_usage_and_refuse_a_malformed_reply(tmp_path) -> None:
    from nbchat import Chat

    def handler(conn: socket.socket) -> None:
        request = srv.requests[-1].decode()
        content: object = 5 if "bad" in request else "fine"
        reply = {
            "model": {"x": 1},
            "choices": [{"index": 0, "message": {"content": content}}],
            "usage": "lots",
        }
        conn.sendall(json_response(200, json.dumps(reply).encode(), "OK"))

    with RawServer(handler) as srv:
        chat = Chat(base_url=srv.url, api_key="sk-test", max_retries=0, cache="off")
        results = chat.map(["good", "bad"], "{item}", concurrency=1, progress=None)
    assert str(results[0]) == "fine" and results[0].estimated is True
    assert results[1] is None
    (error,) = results.errors
    assert "malformed reply" in str(error.error) and "\n" not in str(error.error)


# -- organization costs --------------------------------------------------------------

ADMIN_KEY = "sk-admin-" + "Vb6Tm3Qz8Kw2Lp9Xr5Jn4"  # split: a fake key, not a committed secret


@pytest.mark.parametrize(
    "bucket",
    [
        {"start_time": "yesterday", "results": []},
        {"start_time": 1_700_000_000, "results": "many"},
        {"start_time": 1_700_000_000, "results": ["a string result"]},
        {"start_time": 1_700_000_000, "results": [{"amount": {"value": "12 dollars"}}]},
        {"start_time": 1_700_000_000, "results": [{"amount": "lots"}]},
    ],
    ids=["start", "results", "result", "value", "amount"],
)
def test_org_costs_in_another_shape_are_one_line(cell, magics, monkeypatch, bucket) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    page = json.dumps({"object": "page", "data": [bucket], "has_more": False}).encode()
    with RawServer(lambda conn: conn.sendall(json_response(200, page, "OK"))) as srv:
        raw(magics, srv)
        run = cell("%chat usage --org --days 2")
    one_line_failure(run, "nbchat: the server sent a malformed reply")


def test_org_costs_odd_but_readable_rows_are_read(cell, magics, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    results = [None, {"project_id": 5, "amount": {"value": 1.5, "currency": None}}, {"amount": None}]
    page = json.dumps({"data": [{"start_time": 1_700_000_000, "results": results}, "x"]}).encode()
    with RawServer(lambda conn: conn.sendall(json_response(200, page, "OK"))) as srv:
        raw(magics, srv)
        run = cell("%chat usage --org --days 2")
    assert run.ok, run.io.stdout
    assert "(no project)" in run.io.stdout + json.dumps([o.data for o in run.io.outputs])


def test_org_costs_a_refusal_with_a_huge_message_is_one_line_without_the_admin_key(
    cell, magics, monkeypatch
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    message = f"key {ADMIN_KEY} refused\n" + "y" * 1_000_000
    body = json.dumps({"error": {"message": message}}).encode()
    with RawServer(lambda conn: conn.sendall(json_response(401, body, "Unauthorized"))) as srv:
        raw(magics, srv)
        run = cell("%chat usage --org --days 2")
    out = one_line_failure(run, "nbchat: 401 Unauthorized: key")
    assert ADMIN_KEY[9:17] not in out and "admin key" in out
