"""The fault matrix. After every fault the history is as before (or holds exactly the
one exchange a successful retry produced), the stream's connection is closed, and the
next %%chat works."""

from __future__ import annotations

import time

import pytest
from conftest import FAKE_KEY, said, sent


@pytest.fixture(params=["chat", "responses"], autouse=True)
def api(request, magics) -> str:
    """Every fault, on both wire APIs."""
    magics.api = request.param
    return str(request.param)


def wait_for_closed_streams(server, seconds: float = 15.0) -> int:
    deadline = time.monotonic() + seconds
    while server.open_streams and time.monotonic() < deadline:
        time.sleep(0.02)
    return int(server.open_streams)


FAILURES = [
    pytest.param(
        {"status": 400, "error": "Unsupported value: 'temperature'", "param": "temperature"},
        {},
        "400 Bad Request: Unsupported value: 'temperature' (parameter 'temperature': unset it with %chatconfig temperature=unset)",
        1,
        id="400",
    ),
    pytest.param(
        {"status": 401, "error": f"Incorrect API key provided: {FAKE_KEY[:6]}***{FAKE_KEY[-4:]}"},
        {},
        "401 Unauthorized: Incorrect API key provided: [redacted key]. The key was refused: set OPENAI_API_KEY",
        1,
        id="401",
    ),
    pytest.param(
        {"status": 403, "error": "Project does not have access to model gpt-4o"},
        {},
        "403 Forbidden: Project does not have access to model gpt-4o",
        1,
        id="403",
    ),
    pytest.param(
        {"status": 404, "error": "The model `gpt-9` does not exist", "code": "model_not_found"},
        {},
        "404 Not Found: The model `gpt-9` does not exist. Check the model name (%chat models)",
        1,
        id="404-model",
    ),
    pytest.param(
        {"status": 429, "error": "Rate limit reached", "retry_after": "3600", "times": 5},
        {"max_retries": 2},
        "The server asks to wait 3600 s (Retry-After), longer than nbchat waits",
        1,
        id="429-too-long",
    ),
    pytest.param(
        {"status": 500, "error": "boom", "times": 5},
        {"max_retries": 1},
        "500 server error after 1 retries: boom",
        2,
        id="500",
    ),
    pytest.param(
        {"status": 502, "error": "bad gateway", "times": 5},
        {"max_retries": 1},
        "502 server error after 1 retries: bad gateway",
        2,
        id="502",
    ),
    pytest.param(
        {"status": 503, "error": "overloaded", "times": 5},
        {"max_retries": 2},
        "503 server error after 2 retries: overloaded",
        3,
        id="503",
    ),
    pytest.param(
        {"reset_before": True, "times": 5},
        {"max_retries": 1},
        "cannot reach",
        2,
        id="reset-before-first-byte",
    ),
    pytest.param({"reset_after": 2}, {}, "dropped in the middle of the reply", 1, id="reset-mid-stream"),
    pytest.param(
        {"malformed_at": 1},
        {},
        "the server sent a malformed stream event (invalid JSON",
        1,
        id="malformed-sse",
    ),
    pytest.param(
        {"error_event_at": 1},
        {},
        "the server reported an error during the reply: scripted error event",
        1,
        id="error-event",
    ),
    pytest.param(
        {"truncate_after": 2}, {}, "the stream ended before the reply was complete", 1, id="no-done"
    ),
    pytest.param(
        {"delay": 1.5},
        {"timeout": 0.4, "max_retries": 0},
        "timed out before the first token after 0.4 s (setting: timeout)",
        1,
        id="timeout-first-token",
    ),
    pytest.param(
        {"stall_at": 2, "stall": 1.5},
        {"timeout": 0.4, "max_retries": 0},
        "timed out between tokens after 0.4 s",
        1,
        id="timeout-between-tokens",
    ),
]


@pytest.mark.parametrize(("script", "settings", "message", "attempts"), FAILURES)
def test_a_fault_leaves_history_unchanged_closes_the_stream_and_the_next_cell_works(
    cell, server, magics, script, settings, message, attempts
) -> None:
    assert cell("%%chat\nbefore the fault").ok
    before = magics.conversations["default"].messages()
    for name, value in settings.items():
        setattr(magics, name, value)
    requests = len(sent(server))
    server.script(text="one two three four five six", **script)
    start = time.monotonic()
    run = cell("%%chat\nduring the fault")
    assert time.monotonic() - start < 10, "no hang"
    assert not run.ok
    assert run.io.stdout.startswith("nbchat: ") and message in run.io.stdout
    assert "Traceback" not in run.io.stdout + run.io.stderr
    assert "api_key=" not in run.io.stdout  # never suggests typing the key into a cell
    assert FAKE_KEY[-6:] not in run.io.stdout
    assert len(sent(server)) - requests == attempts
    assert magics.conversations["default"].messages() == before
    assert wait_for_closed_streams(server) == 0
    server.scripts.clear()
    for name in settings:
        setattr(magics, name, magics.trait_defaults(name))
    assert cell("%%chat\nafter the fault").ok
    assert said(sent(server)[-1]) == [
        "before the fault",
        "Echo: before the fault",
        "after the fault",
    ]


def test_429_with_retry_after_is_retried_after_that_delay(cell, server, magics) -> None:
    server.script(status=429, error="slow down", retry_after="1")
    start = time.monotonic()
    run = cell("%%chat\nhello")
    assert run.ok and time.monotonic() - start >= 1.0
    assert len(sent(server)) == 2
    assert magics.conversations["default"].messages() == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Echo: hello"},
    ]


@pytest.mark.parametrize(
    ("script", "requests"),
    [({"status": 503, "error": "x"}, 2), ({"reset_before": True}, 2)],
    ids=["503", "reset"],
)
def test_a_retry_that_succeeds_records_exactly_one_exchange(cell, server, magics, script, requests) -> None:
    magics.max_retries = 2
    server.script(**script)
    assert cell("%%chat\nhello").ok
    assert len(sent(server)) == requests, "each failed attempt was retried, then one succeeded"
    assert magics.conversations["default"].messages() == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Echo: hello"},
    ]


def test_5xx_retries_back_off(cell, server, magics) -> None:
    magics.max_retries = 2
    server.script(status=500, error="x", times=3)
    start = time.monotonic()
    assert not cell("%%chat\nhello").ok
    # the SDK waits about 0.5 s then 1 s (less up to 25 % jitter) between attempts
    assert time.monotonic() - start >= 0.5 * 0.75 + 1.0 * 0.75


def test_an_abandoned_stream_closes_its_connection(shell, server) -> None:
    from nbchat.magics import INSTANCES

    chat = INSTANCES[shell].chat_for("default")
    server.script(chunks=[f"w{i} " for i in range(50)], chunk_delay=0.05)
    stream = iter(chat.stream("hello"))
    next(stream)
    stream.close()  # what a KeyboardInterrupt inside the loop amounts to
    assert wait_for_closed_streams(server) == 0
    assert chat.conversation.turns == []
