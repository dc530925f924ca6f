"""Timeouts mean wall-clock: the wait for the first token and each gap between tokens are
bounded as elapsed time, also against a server that dribbles bytes (slowloris); an
interrupt before the first token records nothing, also with keep_partial."""

from __future__ import annotations

import _thread
import socket
import threading
import time

from rawserver import SSE_HEAD, RawServer, delta, event, send_slowly


def test_a_server_that_sends_its_headers_a_byte_at_a_time_hits_the_timeout(cell, magics) -> None:
    headers = SSE_HEAD[:-2] + b"X-Padding: " + b"p" * 200 + b"\r\n\r\n"
    with RawServer(lambda conn: send_slowly(conn, headers, 0.05)) as srv:
        url = magics.base_url = srv.url
        magics.timeout = 1
        magics.max_retries = 2  # the wall clock is not multiplied by the retries
        start = time.monotonic()
        run = cell("%%chat\nhi")
        elapsed = time.monotonic() - start
    assert not run.ok
    assert run.io.stdout.strip() == (
        f"nbchat: timed out before the first token after 1 s (setting: timeout); "
        f"the server at {url} is slow or stuck"
    )
    # the headers alone would take 12 s; the bound leaves a loaded machine room
    assert 0.9 < elapsed < 5.0, elapsed
    assert srv.connections == 1  # a passed deadline is not retried
    assert magics.conversations["default"].turns == []


def test_a_server_that_dribbles_a_token_byte_by_byte_hits_the_gap_timeout(cell, magics) -> None:
    def handler(conn: socket.socket) -> None:
        conn.sendall(SSE_HEAD + event([delta("first ")]))
        send_slowly(conn, event([delta("x" * 200)]), 0.05)

    with RawServer(handler) as srv:
        magics.base_url = srv.url
        magics.timeout = 1
        start = time.monotonic()
        run = cell("%%chat\nhi")
        elapsed = time.monotonic() - start
    assert not run.ok and "timed out between tokens after 1 s (setting: timeout)" in run.io.stdout
    assert 0.9 < elapsed < 5.0, elapsed  # the token alone would take 10 s
    assert magics.conversations["default"].turns == []


def test_a_slow_but_steady_stream_is_not_cut_by_the_timeout(cell, magics) -> None:
    def handler(conn: socket.socket) -> None:
        conn.sendall(SSE_HEAD)
        for word in ["a ", "b ", "c ", "d ", "e "]:
            time.sleep(0.3)  # the whole reply takes longer than the timeout, each gap does not
            conn.sendall(event([delta(word)]))
        conn.sendall(event([delta("", finish="stop")]) + b"data: [DONE]\n\n")

    with RawServer(handler) as srv:
        magics.base_url = srv.url
        magics.timeout = 1
        run = cell("%%chat\nhi")
    assert run.ok, run.io.stdout
    assert magics.conversations["default"].turns[-1].reply == "a b c d e "


def test_a_silent_server_hits_the_timeout_once_not_once_per_retry(cell, magics) -> None:
    with RawServer(lambda conn: time.sleep(5)) as srv:
        magics.base_url = srv.url
        magics.timeout = 0.5
        magics.max_retries = 2
        start = time.monotonic()
        run = cell("%%chat\nhi")
        elapsed = time.monotonic() - start
    assert "timed out before the first token after 0.5 s" in run.io.stdout
    assert srv.connections == 1  # a passed deadline is not retried
    assert elapsed < 4.0, elapsed  # the server stays silent for 5 s


def interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


def test_an_interrupt_before_the_first_token_records_nothing_even_with_keep_partial(
    cell, server, magics
) -> None:
    magics.keep_partial = True
    assert cell("%%chat\nbefore").ok
    before = magics.conversations["default"].messages()
    server.script(delay=10)
    interrupt_after(1.5)  # the request is out by then even on a loaded machine; the reply is not
    run = cell("%%chat\nnever answered")
    assert not run.ok
    assert magics.conversations["default"].messages() == before
    assert cell("%%chat\nafter").ok
    sent = server.bodies[-1]["messages"]
    assert all(m["content"] for m in sent)  # no empty assistant message goes out
    assert [m["content"] for m in sent if m["role"] == "user"] == ["before", "after"]


def test_an_interrupt_after_the_first_token_keeps_the_partial_with_keep_partial(cell, server, magics) -> None:
    magics.keep_partial = True
    server.script(text="one two three four five six", stall_at=2, stall=10)
    interrupt_after(2.0)  # the first words are in by then even on a loaded machine; the rest are not
    run = cell("%%chat\nhi")
    assert not run.ok
    turns = magics.conversations["default"].turns
    assert len(turns) == 1 and turns[0].reply and turns[0].reply.startswith("one")
    assert turns[0].finish_reason == "interrupted"


def test_the_connection_pools_still_take_nbchats_network_backend(shell, magics) -> None:
    """The wall clock reaches the sockets through the HTTP pools' network backend; a new
    httpx2 that renames it would silently lose the limits, so this notices."""
    from nbchat import wallclock

    client = wallclock.http_client()
    assert isinstance(client._transport._pool._network_backend, wallclock._Backend)
