"""A stream can't poison the conversation: broken text is never stored, malformed events
and foreign error bodies become one readable line, and an unfinished reply records nothing."""

from __future__ import annotations

import json
import socket
import time

import pytest
from IPython.core.error import UsageError
from rawserver import SSE_HEAD, RawServer, delta, event, json_response


def turns(magics) -> list:
    conv = magics.conversations.get("default")
    return conv.turns if conv else []


def raw(magics, server: RawServer) -> None:
    magics.base_url = server.url
    magics.max_retries = 0
    magics.timeout = 5


@pytest.mark.parametrize(
    ("chunks", "stored"),
    [
        (["smile ", "\ud83d", "\ude00", " done"], "smile \U0001f600 done"),  # one character, whole
        (["a", "\ud83d", " b", "\ude00"], "a\ufffd b\ufffd"),  # halves that never meet: U+FFFD
    ],
    ids=["pair-split-across-events", "lone-surrogates"],
)
def test_surrogates_in_a_stream_are_stored_as_valid_text_and_the_next_request_and_save_work(
    cell, server, magics, tmp_path, chunks, stored
) -> None:
    server.script(chunks=chunks)
    assert cell("%%chat\nhi").ok
    assert magics.conversations["default"].turns[-1].reply == stored
    assert cell("%%chat\nagain").ok  # the history encodes: no UnicodeEncodeError
    assert server.bodies[-1]["messages"][1]["content"] == stored
    path = tmp_path / "c.json"
    assert cell(f"%chat save {path}").ok
    assert json.loads(path.read_text(encoding="utf-8"))["messages"][1]["content"] == stored
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_a_multibyte_character_split_across_tcp_writes_arrives_whole(cell, magics) -> None:
    text = "naïve café — 日本語 🙂"

    def handler(conn: socket.socket) -> None:
        payload = SSE_HEAD + event([delta(text)]) + event([delta("", finish="stop")]) + b"data: [DONE]\n\n"
        for i in range(0, len(payload), 3):  # 3 bytes at a time splits most characters
            conn.sendall(payload[i : i + 3])
            time.sleep(0.001)

    with RawServer(handler) as srv:
        raw(magics, srv)
        assert cell("%%chat\nhi").ok
    assert turns(magics)[-1].reply == text


@pytest.mark.parametrize(
    ("choices", "reply"),
    [
        ([None, delta("ok"), delta("", finish="stop")], "ok"),
        ([{"index": 0, "delta": None, "finish_reason": None}, delta("ok"), delta("", finish="stop")], "ok"),
        (
            [
                {"index": 0, "delta": {"content": [{"type": "text", "text": "parts"}]}},
                delta("", finish="stop"),
            ],
            "parts",
        ),
        ([{"delta": {"content": "no index"}}, delta("", finish="stop")], "no index"),
    ],
    ids=["null-choice", "null-delta", "content-parts", "no-index"],
)
def test_odd_but_readable_deltas_are_read(cell, magics, choices, reply) -> None:
    def handler(conn: socket.socket) -> None:
        conn.sendall(SSE_HEAD + event(None) + b"".join(event([c]) for c in choices) + b"data: [DONE]\n\n")

    with RawServer(handler) as srv:
        raw(magics, srv)
        run = cell("%%chat\nhi")
        assert run.ok, run.io.stdout
    assert turns(magics)[-1].reply == reply


@pytest.mark.parametrize(
    "bad",
    [
        {"index": 0, "delta": {"content": 5}},
        {"index": 0, "delta": {"content": {"nested": "x"}}},
        {"index": "zero", "delta": {"content": "x"}},
        {"index": 10**9, "delta": {"content": "x"}},
        {"index": 0, "delta": "text"},
        "a string choice",
    ],
    ids=["int-content", "dict-content", "string-index", "huge-index", "string-delta", "string-choice"],
)
def test_a_malformed_delta_is_one_line_and_nothing_is_recorded(cell, magics, bad) -> None:
    def handler(conn: socket.socket) -> None:
        conn.sendall(SSE_HEAD + event([delta("fine ")]) + event([bad]) + event([delta("", finish="stop")]))
        conn.sendall(b"data: [DONE]\n\n")

    assert cell("%%chat\nbefore").ok  # against the stand-in server
    before = list(turns(magics))
    with RawServer(handler) as srv:
        raw(magics, srv)
        run = cell("%%chat\nhi")
    out = run.io.stdout
    assert not run.ok and out.startswith("nbchat: the server sent a malformed reply") and out.count("\n") == 1
    assert "Traceback" not in out + run.io.stderr
    assert turns(magics) == before


@pytest.mark.parametrize(
    "usage", ["lots", {"prompt_tokens": "many"}, [1, 2], {"prompt_tokens": -3, "completion_tokens": 1}]
)
def test_malformed_usage_keeps_the_reply_and_estimates_the_counts(cell, magics, usage) -> None:
    def handler(conn: socket.socket) -> None:
        conn.sendall(SSE_HEAD + event([delta("kept")]) + event([delta("", finish="stop")]))
        conn.sendall(event([], usage=usage) + b"data: [DONE]\n\n")

    with RawServer(handler) as srv:
        raw(magics, srv)
        run = cell("%%chat\nhi")
    assert run.ok, run.io.stdout
    assert turns(magics)[-1].reply == "kept"
    assert turns(magics)[-1].usage is None
    assert run.metadata["usage_estimated"] is True
    assert cell("%chat history").ok and cell("%chat usage").ok


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"error": "plain text error"}', "plain text error"),
        (b'{"detail": "Not authenticated here"}', "Not authenticated here"),
        (b'{"detail": [{"loc": ["body"], "msg": "field required"}]}', "field required"),
        (b'{"error": {"message": {"inner": {"message": "deep words"}}}}', "deep words"),
        (b'{"message": "top-level message"}', "top-level message"),
        (b'["a", "list"]', "a; list"),
        (b"<html><body><h1>Bad Gateway</h1></body></html>", "Bad Gateway"),
        (b"null", "Error"),
    ],
    ids=["error-string", "detail", "detail-list", "nested", "message", "list", "html", "null"],
)
def test_an_error_body_in_another_servers_shape_is_read(cell, magics, body, said) -> None:
    with RawServer(lambda conn: conn.sendall(json_response(418, body))) as srv:
        raw(magics, srv)
        run = cell("%%chat\nhi")
    out = run.io.stdout
    assert not run.ok and out.startswith("nbchat: 418") and said in out, out
    assert out.count("\n") == 1 and "Traceback" not in out + run.io.stderr


def test_a_one_megabyte_multi_line_server_message_is_cut_to_one_readable_line(cell, magics) -> None:
    message = "first line\nsecond\tline\r\n" + "x" * 1_000_000
    body = json.dumps({"error": {"message": message}}).encode()
    with RawServer(lambda conn: conn.sendall(json_response(400, body))) as srv:
        raw(magics, srv)
        run = cell("%%chat\nhi")
    out = run.io.stdout
    assert out.startswith("nbchat: 400 Error: first line second line xxx") and out.count("\n") == 1
    assert len(out) < 500 and "…" in out


def test_a_stream_error_event_with_a_huge_message_is_one_line(cell, magics) -> None:
    error = {"error": {"message": "boom\n" * 50_000, "type": "server_error"}}
    with RawServer(
        lambda conn: conn.sendall(
            SSE_HEAD + event([delta("part")]) + b"data: " + json.dumps(error).encode() + b"\n\n"
        )
    ) as srv:
        raw(magics, srv)
        run = cell("%%chat\nhi")
    out = run.io.stdout
    assert out.startswith("nbchat: the server reported an error during the reply: boom boom")
    assert out.count("\n") == 1 and len(out) < 500
    assert turns(magics) == []


def test_a_stream_that_drops_while_a_second_choice_is_unfinished_records_nothing(cell, magics) -> None:
    def handler(conn: socket.socket) -> None:
        conn.sendall(SSE_HEAD + event([delta("one", 0), delta("two", 1)]) + event([delta("", 0, "stop")]))
        # choice 2 never finishes and no [DONE]: the connection just closes

    with RawServer(handler) as srv:
        raw(magics, srv)
        run = cell("%%chat -n 2\nhi")
    assert not run.ok and "before choice 2 was complete" in run.io.stdout
    assert turns(magics) == []


def test_a_reply_that_is_not_utf8_is_one_line(cell, magics) -> None:
    with RawServer(
        lambda conn: conn.sendall(SSE_HEAD + b'data: {"choices": [{"delta": {"content": "\xff\xfe"}}]}\n\n')
    ) as srv:
        raw(magics, srv)
        run = cell("%%chat\nhi")
    assert not run.ok and run.io.stdout.startswith("nbchat: ") and run.io.stdout.count("\n") == 1
    assert turns(magics) == []


def test_a_defect_in_nbchat_surfaces_as_itself_not_as_a_request_failure(cell, magics, monkeypatch) -> None:
    from nbchat.client import Completion

    def broken(self, choice, key):  # a bug of nbchat's own, not the server's
        raise TypeError("nbchat bug")

    monkeypatch.setattr(Completion, "take_choice", broken)
    run = cell("%%chat\nhi")
    assert type(run.error) is TypeError and "nbchat bug" in str(run.error)
    assert type(run.error) is not UsageError
