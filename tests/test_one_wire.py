"""One wire: every path's failures cross the same error boundary, and no path carries a
credential — a 400, 401 and 500 whose message holds the key, and a refused connection,
read the same from a cell, Chat.send, Chat.stream, a map item, a batch line, an image, a
file call and a tool round; a key in a map's template field, a map item or a batch item
is sent redacted, as a cell's {var} is."""

from __future__ import annotations

import http
import json
import socket
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKE_KEY, Cell
from rawserver import SSE_HEAD, RawServer, delta, event, json_response

from nbchat import Chat
from nbchat.errors import NbChatError, RequestFailed
from nbchat.testing.batches import store_of
from nbchat.testing.server import StandInServer

WORDS = "this request was refused for key"  # the server's words, kept in every message
MESSAGE = f"{WORDS} {FAKE_KEY} (shown as {FAKE_KEY[:7]}***{FAKE_KEY[-4:]})"
FAILURES = ["400", "401", "500", "refused"]


def pieces(key: str) -> set[str]:
    body = key.removeprefix("sk-")
    return {body[i : i + 6] for i in range(len(body) - 5)}


def leaks(text: str) -> set[str]:
    """Every 6-character piece of the key found in ``text`` (the key is random-looking)."""
    return {p for p in pieces(FAKE_KEY) if p in text}


def error_body(status: int) -> bytes:
    return json.dumps({"error": {"message": MESSAGE, "type": "invalid_request_error", "code": None}}).encode()


def failing(status: int) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        conn.sendall(json_response(status, error_body(status), http.HTTPStatus(status).phrase))

    return answer


def dead_url() -> str:
    """A URL where nothing listens: the connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture(params=FAILURES)
def failure(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(the failure's name, the base_url that fails that way for every request)."""
    if request.param == "refused":
        yield request.param, dead_url()
        return
    with RawServer(failing(int(request.param))) as raw:
        yield request.param, raw.url


@pytest.fixture
def cache_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The reply cache on, in a file of this test's own (set before the shell is made)."""
    path = tmp_path / "replies.sqlite3"
    monkeypatch.setenv("NBCHAT_CACHE", "replay")
    monkeypatch.setenv("NBCHAT_CACHE_PATH", str(path))
    return path


def python_chat(url: str, **settings: Any) -> Chat:
    return Chat(base_url=url, api_key=FAKE_KEY, max_retries=0, timeout=10, **settings)


def reference(url: str) -> str:
    """What Chat.send says of this failure: every other path must say the same."""
    with pytest.raises(RequestFailed) as caught:
        python_chat(url).send("hi")
    return str(caught.value)


def expect(name: str, text: str) -> None:
    """The message names the status and keeps the server's words (or names the refusal)."""
    if name == "refused":
        assert "cannot reach" in text and "Connection refused" in text, text
    else:
        assert f"{name} " in text and WORDS in text, text


def seen_in(run: Any) -> str:
    """Everything a cell showed: outputs (data and metadata), stdout, stderr, the error."""
    parts = [run.io.stdout, run.io.stderr]
    parts += [
        json.dumps(o.data, default=str) + json.dumps(o.metadata or {}, default=str) for o in run.io.outputs
    ]
    if run.error is not None:
        parts.append(f"{run.error!s} {run.error!r}")
    return "\n".join(parts)


def raised(action: Callable[[], Any]) -> str:
    try:
        action()
    except NbChatError as exc:
        return f"{exc!s} {exc!r}"
    raise AssertionError("the failure was not raised")


# -- the paths: each returns what the user could see of the failure, by world ----------------
# (what to do about a refused key is said in the caller's world: a notebook's or plain Python's)

Seen = list[tuple[str, str]]  # ("python" or "notebook", everything shown)


def via_send(url: str, cell: Cell, magics: Any, tmp_path: Path) -> Seen:
    return [("python", raised(lambda: python_chat(url).send("hi")))]


def via_stream(url: str, cell: Cell, magics: Any, tmp_path: Path) -> Seen:
    return [("python", raised(lambda: list(python_chat(url).stream("hi"))))]


def via_cell(url: str, cell: Cell, magics: Any, tmp_path: Path) -> Seen:
    magics.base_url, magics.max_retries = url, 0
    run = cell("%%chat\nhi")
    assert not run.ok and run.io.stdout.startswith("nbchat: ")
    return [("notebook", seen_in(run))]


def via_map(url: str, cell: Cell, magics: Any, tmp_path: Path) -> Seen:
    """A map item: its .errors entry, the failed-items table and the summary of the cell,
    and Python's map: its .errors (or what it raised)."""
    magics.base_url, magics.max_retries = url, 0
    cell("items = ['a', 'b']")
    run = cell("%%chat --map items -o out\nLabel {item}")
    out = magics.user_shell.user_ns.get("out")
    errors = [e.error for e in getattr(out, "errors", [])] if out is not None else []
    assert errors or run.error is not None, "the failure is reported"
    try:
        results = python_chat(url).map(["c"], "Label {item}", progress=None)
        from_python = "\n".join(str(e) for e in results.errors)
    except NbChatError as exc:
        from_python = f"{exc!s} {exc!r}"
    shown = seen_in(run)
    return [
        ("notebook", shown + "\n".join(errors)),
        ("notebook", "\n".join(errors) or shown),
        ("python", from_python),
    ]


def via_image(url: str, cell: Cell, magics: Any, tmp_path: Path) -> Seen:
    magics.base_url, magics.max_retries = url, 0
    run = cell("%%chat -f image\nA lighthouse")
    assert not run.ok
    return [("notebook", seen_in(run))]


def via_files(url: str, cell: Cell, magics: Any, tmp_path: Path) -> Seen:
    magics.base_url, magics.max_retries = url, 0
    source = tmp_path / "notes.txt"
    source.write_text("hello")
    listed, uploaded = cell("%chat files"), cell(f"%chat files upload {source}")
    assert not listed.ok and not uploaded.ok
    return [("notebook", seen_in(listed)), ("notebook", seen_in(uploaded))]


def via_batch_submit(url: str, cell: Cell, magics: Any, tmp_path: Path) -> Seen:
    return [("python", raised(lambda: python_chat(url).map(["a"], "{item}", batch=True)))]


PATHS = {
    "send": via_send,
    "stream": via_stream,
    "cell": via_cell,
    "map": via_map,
    "image": via_image,
    "files": via_files,
    "batch-submit": via_batch_submit,
}


@pytest.mark.parametrize("path", list(PATHS))
def test_a_failure_reads_the_same_on_every_path_and_shows_no_credential(
    path: str, cache_file: Path, failure: tuple[str, str], cell: Cell, magics: Any, tmp_path: Path
) -> None:
    name, url = failure
    messages = {"python": reference(url), "notebook": cell_reference(url, cell, magics)}
    for message in messages.values():
        expect(name, message)
        assert not leaks(message), message
    for world, shown in PATHS[path](url, cell, magics, tmp_path):
        assert not leaks(shown), shown
        assert messages[world] in shown, f"{path} says it differently:\n{shown}\nnot\n{messages[world]}"
    if cache_file.exists():  # a failure is not cached; whatever the file holds, no credential
        assert not leaks(cache_file.read_bytes().decode("utf-8", "replace"))


# -- any server's shape of error: one line, its words, no credential, the same on every path ------

TRACEBACK = (
    'Traceback (most recent call last):\n  File "server.py", line 12, in handle\n    check(key)\n'
    f"ValueError: {MESSAGE}\n"
)
SHAPES = {
    "error text": (400, "application/json", json.dumps({"error": MESSAGE})),
    "detail": (422, "application/json", json.dumps({"detail": [{"loc": ["body", "x"], "msg": MESSAGE}]})),
    "1 MB": (
        400,
        "application/json",
        json.dumps({"error": {"message": MESSAGE + f"\nand {FAKE_KEY}" * 25000}}),
    ),
    "traceback": (500, "text/plain", TRACEBACK),
}


@pytest.mark.parametrize("path", ["send", "stream", "cell", "map", "image", "files"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_any_servers_error_shape_is_one_line_with_its_words_on_every_path(
    shape: str, path: str, cell: Cell, magics: Any, tmp_path: Path
) -> None:
    status, kind, text = SHAPES[shape]
    payload = text.encode()
    head = f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\nContent-Type: {kind}\r\n"
    response = (
        head.encode() + f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload
    )
    with RawServer(lambda conn: conn.sendall(response)) as raw:
        messages = {"python": reference(raw.url), "notebook": cell_reference(raw.url, cell, magics)}
        for message in messages.values():
            assert message.startswith(f"{status} ") and WORDS in message, message
            assert "\n" not in message and len(message) < 1000 and not leaks(message), message
        for world, shown in PATHS[path](raw.url, cell, magics, tmp_path):
            assert not leaks(shown), shown
            assert messages[world] in shown, f"{path} says it differently:\n{shown}\nnot\n{messages[world]}"


def cell_reference(url: str, cell: Cell, magics: Any) -> str:
    """What a %%chat cell says of this failure (after "nbchat: ")."""
    magics.base_url, magics.max_retries = url, 0
    run = cell("%%chat\nhi")
    assert not run.ok
    return str(run.error)


# -- a tool round: the request after the calls fails ---------------------------------------------


def lookup(term: str) -> str:
    """Look a term up."""
    return f"{term} is a word"


def tool_turn() -> bytes:
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"term": "x"}'}}
    reply = {
        "id": "r",
        "object": "chat.completion",
        "model": "raw",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
    }
    return json_response(200, json.dumps(reply).encode(), "OK")


@pytest.mark.parametrize("name", FAILURES)
def test_a_tool_rounds_failure_reads_as_a_cells_and_shows_no_credential(name: str, env: None) -> None:
    raw: RawServer

    def answer(conn: socket.socket) -> None:
        if raw.connections == 1:
            if name == "refused":  # nothing listens any more: the round's request is refused
                raw.sock.shutdown(socket.SHUT_RDWR)
            conn.sendall(tool_turn())
            return
        failing(int(name))(conn)

    with RawServer(answer) as raw:
        url = raw.url
        chat = python_chat(url, tools=[lookup], tool_approval="auto", namespace={})
        shown = raised(lambda: chat.send("look x up", stream=False))
    assert raw.connections == (1 if name == "refused" else 2), "the round's request followed the calls"
    assert not leaks(shown), shown
    expect(name, shown)
    if name == "refused":
        elsewhere = dead_url()
        message = reference(elsewhere).replace(elsewhere, url)
    else:
        with RawServer(failing(int(name))) as other:
            message = reference(other.url).replace(other.url, url)
    assert message in shown, f"{shown}\nnot\n{message}"
    assert chat.conversation.turns == [], "the history is as it was"


# -- a batch line: the server's error in place of one reply -------------------------------------


@pytest.mark.parametrize("status", [400, 401, 500])
def test_a_batch_lines_failure_reads_as_a_live_requests_and_shows_no_credential(
    status: int, server: StandInServer, tmp_path: Path
) -> None:
    chat = Chat(base_url=server.url, api_key=FAKE_KEY, max_retries=0, cache_path=str(tmp_path / "c.sqlite3"))
    server.script(status=status, error=MESSAGE)
    with pytest.raises(RequestFailed) as caught:
        chat.send("hi")
    live = str(caught.value)
    server.script(times=1)
    server.script(status=status, error=MESSAGE, times=1)
    out = chat.map(["a", "b"], "{item}", batch=True).wait(poll=0.05).results()
    assert str(out[0]) == "Echo: a" and out[1] is None
    (error,) = out.errors
    assert error.error == live and f"{status} " in error.error and WORDS in error.error
    assert not leaks(error.error) and not leaks(repr(out.errors))


# -- credentials out of what a map sends ------------------------------------------------------


def test_a_key_in_a_map_template_field_or_item_is_sent_redacted_as_a_cells_var(
    cell: Cell, server: StandInServer, tmp_path: Path
) -> None:
    cache = tmp_path / "replies.sqlite3"
    cell(f"%chatconfig cache=replay cache_path={cache}")
    cell(f"creds = 'token {FAKE_KEY}'")
    assert cell("%%chat\nMy settings: {creds}").ok
    marked = server.bodies[-1]["messages"][-1]["content"]
    assert not leaks(marked) and "[redacted]" in marked
    cell(f"items = ['plain', 'key {FAKE_KEY} inside']")
    assert cell("%%chat --map items -o out\nUse {creds} for {item}").ok
    mapped = [b["messages"][-1]["content"] for b in server.bodies[1:]]
    assert len(mapped) == 2 and all(marked.split(": ", 1)[1] in m for m in mapped), mapped
    assert not leaks(json.dumps(server.bodies)), "no credential was sent"
    assert any("key sk-[redacted] inside" in m for m in mapped), (
        "an item's key is marked as a cell's {var} is"
    )
    assert cache.exists() and not leaks(cache.read_bytes().decode("utf-8", "replace"))
    with sqlite3.connect(cache) as db:
        rows = db.execute("select * from sqlite_master").fetchall()
    assert rows and not leaks(repr(rows))


def test_a_key_in_a_batch_item_and_its_template_field_is_not_in_the_uploaded_file(
    cell: Cell, server: StandInServer
) -> None:
    cell(f"creds = 'token {FAKE_KEY}'")
    cell(f"import pandas as pd; df = pd.DataFrame({{'text': ['a', 'key {FAKE_KEY} b']}})")
    run = cell("%%chat --map df --batch -o job\nUse {creds} on {text}")
    assert run.ok, seen_in(run)
    store = store_of(server)
    (data,) = [store.contents[i] for i, meta in store.files.items() if meta["filename"] == "nbchat-map.jsonl"]
    assert not leaks(b"".join(store.contents.values()).decode()), "nor in the results"
    lines = [json.loads(x) for x in data.decode().splitlines()]
    sent = [x["body"]["messages"][-1]["content"] for x in lines]
    assert not leaks(data.decode()) and all("token sk-[redacted]" in s for s in sent), sent
    assert "key sk-[redacted] b" in sent[1]


def test_a_key_in_pythons_map_items_is_redacted_too(env: None, server: StandInServer) -> None:
    chat = Chat(cache="off")
    out = chat.map([{"text": f"key {FAKE_KEY}"}], "Check {text}", progress=None)
    assert out.errors == [] and not leaks(json.dumps(server.bodies))
    assert server.bodies[0]["messages"][-1]["content"] == "Check key sk-[redacted]"


# -- streamed tool calls told apart by id -----------------------------------------------------


def call_delta(**entry: Any) -> bytes:
    return event([{"index": 0, "delta": {"tool_calls": [entry]}, "finish_reason": None}])


def opened(call_id: str, term: str | None = None, **index: Any) -> bytes:
    arguments = json.dumps({"term": term}) if term is not None else ""
    function = {"name": "lookup", "arguments": arguments}
    return call_delta(id=call_id, type="function", function=function, **index)


def more(text: str, **index: Any) -> bytes:
    return call_delta(function={"arguments": text}, **index)


ENDING = event([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]) + b"data: [DONE]\n\n"
STREAMS = {
    # Ollama: each call whole in one delta, every one at index 0
    "index repeats": [opened("call_a", "x", index=0), opened("call_b", "y", index=0)],
    # the same, the arguments in pieces after each opening
    "index repeats, pieces": [
        opened("call_a", index=0),
        more('{"term": ', index=0),
        more('"x"}', index=0),
        opened("call_b", index=0),
        more('{"term": "y"}', index=0),
    ],
    # no index at all: an id opens a call, pieces without one continue the latest
    "no index": [opened("call_a"), more('{"term": '), more('"x"}'), opened("call_b"), more('{"term": "y"}')],
}


@pytest.mark.parametrize("shape", list(STREAMS))
def test_streamed_tool_calls_are_told_apart_by_id(shape: str, env: None) -> None:
    def answer(conn: socket.socket) -> None:
        if raw.connections == 1:
            conn.sendall(SSE_HEAD + b"".join(STREAMS[shape]) + ENDING)
        else:
            conn.sendall(SSE_HEAD + event([delta("both looked up", finish="stop")]) + b"data: [DONE]\n\n")

    with RawServer(answer) as raw:
        chat = python_chat(raw.url, tools=[lookup], tool_approval="auto", namespace={})
        reply = chat.send("look x and y up", stream=True)
    assert reply.text == "both looked up"
    assert [(c.id, c.arguments, c.result) for c in reply.tool_calls] == [
        ("call_a", '{"term": "x"}', "x is a word"),
        ("call_b", '{"term": "y"}', "y is a word"),
    ]
    second = json.loads(raw.requests[1])
    asked, *answers = second["messages"][-3:]
    assert [c["id"] for c in asked["tool_calls"]] == ["call_a", "call_b"]
    assert [(a["tool_call_id"], a["content"]) for a in answers] == [
        ("call_a", "x is a word"),
        ("call_b", "y is a word"),
    ]


def test_a_whole_reply_that_is_not_json_reads_the_same_from_send_and_a_map_item(env: None) -> None:
    with RawServer(lambda conn: conn.sendall(json_response(200, b"{not json", "OK"))) as raw:
        chat = python_chat(raw.url, cache="off")
        said = raised(lambda: chat.send("hi", stream=False))
        with pytest.raises(NbChatError) as caught:
            chat.map(["a"], "{item}", progress=None)
    assert "the server sent a reply that is not valid JSON (Expecting property name" in said
    assert str(caught.value.results.errors[0].error) in said  # type: ignore[attr-defined]
