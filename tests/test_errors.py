"""Errors of set-up and use: where a server cannot be reached, a missing key, a user's
mistake. Each is a short message, the cell fails and history is unchanged. Server faults
and retries are in test_faults.py."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError


@pytest.fixture(params=["chat", "responses"], autouse=True)
def api(request, magics) -> str:
    """Every error, on both wire APIs."""
    magics.api = request.param
    return str(request.param)


def test_connection_refused_says_where_and_what_to_do(cell, magics) -> None:
    magics.base_url = "http://127.0.0.1:9/v1"
    magics.max_retries = 0
    run = cell("%%chat\nhello")
    assert not run.ok
    assert "cannot reach http://127.0.0.1:9/v1" in run.io.stdout and "Is the server running" in run.io.stdout
    assert magics.conversations["default"].turns == []


def test_no_key_for_openai_is_a_clear_error_and_nothing_is_recorded(cell, magics, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    magics.base_url = None
    run = cell("%%chat\nhello")
    assert not run.ok and not any(c.turns for c in magics.conversations.values())
    assert "no API key for OpenAI" in run.io.stdout and "%chatconfig --key" in run.io.stdout


def test_a_local_server_needs_no_key(cell, server, monkeypatch) -> None:
    from nbchat.connection import NO_KEY

    monkeypatch.delenv("OPENAI_API_KEY")
    run = cell("%%chat\nhello")
    assert run.ok and run.markdown.startswith("Echo: hello")
    (request,) = server.requests
    assert request.headers["authorization"] == f"Bearer {NO_KEY}", "a placeholder, not a key"


def test_user_mistakes_are_usage_errors_not_request_failures(cell, server) -> None:
    run = cell("%%chat -n two\nhello")
    assert type(run.error) is UsageError and server.requests == []
