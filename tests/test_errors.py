"""Server errors are short messages, the cell fails, history is unchanged."""

from __future__ import annotations

import pytest
from conftest import sent
from IPython.core.error import UsageError


@pytest.fixture(params=["chat", "responses"], autouse=True)
def api(request, magics) -> str:
    """Every error, on both wire APIs."""
    magics.api = request.param
    return str(request.param)


def history(magics) -> list[dict]:
    return magics.conversations["default"].messages() if "default" in magics.conversations else []


def test_retryable_errors_are_retried_and_one_exchange_is_recorded(cell, server, magics) -> None:
    server.script(status=503, error="overloaded", times=1)
    run = cell("%%chat\nhello")
    assert run.ok
    assert len(sent(server)) == 2
    assert history(magics) == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Echo: hello"},
    ]


def test_connection_refused_says_where_and_what_to_do(cell, magics) -> None:
    magics.base_url = "http://127.0.0.1:9/v1"
    magics.max_retries = 0
    run = cell("%%chat\nhello")
    assert not run.ok
    assert "cannot reach http://127.0.0.1:9/v1" in run.io.stdout and "Is the server running" in run.io.stdout
    assert magics.conversations["default"].turns == []


def test_no_key_for_openai_is_a_clear_error_before_anything_is_sent(cell, magics, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    magics.base_url = None
    run = cell("%%chat\nhello")
    assert "no API key for OpenAI" in run.io.stdout and "%chatconfig --key" in run.io.stdout


def test_a_local_server_needs_no_key(cell, server, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    assert cell("%%chat\nhello").ok


def test_a_stream_that_ends_early_is_an_error_and_records_nothing(cell, server, magics) -> None:
    server.script(truncate_after=1)
    run = cell("%%chat\none two three")
    assert "stream ended before the reply was complete" in run.io.stdout
    assert magics.conversations["default"].turns == []


def test_user_mistakes_are_usage_errors_not_request_failures(cell, server) -> None:
    run = cell("%%chat -n two\nhello")
    assert type(run.error) is UsageError and server.requests == []
