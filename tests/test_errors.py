"""§7 (core part): server errors are short messages, the cell fails, history is unchanged."""

from __future__ import annotations

import pytest
from conftest import FAKE_KEY
from IPython.core.error import UsageError


def history(magics) -> list[dict]:  # type: ignore[no-untyped-def]
    return magics.conversations["default"].messages() if "default" in magics.conversations else []


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            {"status": 400, "error": "Unsupported value: 'temperature'", "param": "temperature"},
            "400 Bad Request: Unsupported value: 'temperature' (parameter 'temperature': unset it with %chatconfig temperature=unset)",
        ),
        (
            {"status": 401, "error": f"Incorrect API key provided: {FAKE_KEY[:8]}***{FAKE_KEY[-4:]}"},
            "401 Unauthorized: Incorrect API key provided: [redacted key]. The key was refused: set OPENAI_API_KEY",
        ),
        (
            {"status": 403, "error": "Project does not have access"},
            "403 Forbidden: Project does not have access",
        ),
        (
            {"status": 404, "error": "The model `gpt-9` does not exist"},
            "404 Not Found: The model `gpt-9` does not exist. Check the model name",
        ),
        ({"status": 500, "error": "boom", "times": 3}, "500 server error after 2 retries: boom"),
    ],
)
def test_server_errors_are_one_short_message_and_history_is_unchanged(
    cell, server, magics, script, expected
) -> None:  # type: ignore[no-untyped-def]
    magics.max_retries = 2
    assert cell("%%chat\nfirst").ok
    before = history(magics)
    server.script(**script)
    run = cell("%%chat\nsecond")
    assert not run.ok
    assert expected in run.io.stdout
    assert (
        run.io.stdout.startswith("nbchat: ")
        and "Traceback" not in run.io.stdout
        and "openai" not in run.io.stdout
    )
    assert FAKE_KEY not in run.io.stdout and FAKE_KEY[-4:] not in run.io.stdout
    assert "api_key=" not in run.io.stdout  # never suggests typing the key into a cell
    assert history(magics) == before
    assert cell("%%chat\nthird").ok  # and the next cell works
    assert [m["content"] for m in server.bodies[-1]["messages"]] == ["first", "Echo: first", "third"]


def test_retryable_errors_are_retried_and_one_exchange_is_recorded(cell, server, magics) -> None:  # type: ignore[no-untyped-def]
    server.script(status=503, error="overloaded", times=1)
    run = cell("%%chat\nhello")
    assert run.ok
    assert len(server.bodies) == 2
    assert history(magics) == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Echo: hello"},
    ]


def test_connection_refused_says_where_and_what_to_do(cell, magics) -> None:  # type: ignore[no-untyped-def]
    magics.base_url = "http://127.0.0.1:9/v1"
    magics.max_retries = 0
    run = cell("%%chat\nhello")
    assert not run.ok
    assert "cannot reach http://127.0.0.1:9/v1" in run.io.stdout and "Is the server running" in run.io.stdout
    assert magics.conversations["default"].turns == []


def test_no_key_for_openai_is_a_clear_error_before_anything_is_sent(cell, magics, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("OPENAI_API_KEY")
    magics.base_url = None
    run = cell("%%chat\nhello")
    assert "no API key for OpenAI" in run.io.stdout and "%chatconfig --key" in run.io.stdout


def test_a_local_server_needs_no_key(cell, server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("OPENAI_API_KEY")
    assert cell("%%chat\nhello").ok


def test_a_stream_that_ends_early_is_an_error_and_records_nothing(cell, server, magics) -> None:  # type: ignore[no-untyped-def]
    server.script(truncate_after=1)
    run = cell("%%chat\none two three")
    assert "stream ended before the reply was complete" in run.io.stdout
    assert magics.conversations["default"].turns == []


def test_user_mistakes_are_usage_errors_not_request_failures(cell, server) -> None:  # type: ignore[no-untyped-def]
    run = cell("%%chat -n two\nhello")
    assert type(run.error) is UsageError and server.requests == []
