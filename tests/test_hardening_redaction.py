"""Redaction removes secrets, never words: every message nbchat can produce reads exactly
as written — with no key (the placeholder sent to local servers), an ``sk-`` key and an
``sk-proj-`` key — apart from the secret itself."""

from __future__ import annotations

import pytest
from conftest import Cell, make_shell
from IPython.core.interactiveshell import InteractiveShell

from nbchat.magics import ChatMagics
from nbchat.secret import PLACEHOLDER, credentials, redact, redact_foreign
from nbchat.testing.server import StandInServer

# random-looking secret parts: any 8-character run of one in output is a real leak
KEYS = {
    "no key": None,
    "sk-": "sk-Wq4zRt8LmX2vNc7KpB9dHj3Ys6Fg1",
    "sk-proj-": "sk-proj-" + "Tz5kQw9RmV2xLc8NpJ4bHg7Ds3Fy6Aq1Ue0Zo",  # split: a fake key
}

# (setup, cell) pairs, each ending in an error message a user can meet
SCENARIOS: list[tuple[str, dict[str, object], str]] = [
    ("401", {"status": 401, "error": "Incorrect API key provided"}, "%%chat\nhi"),
    ("403", {"status": 403, "error": "Project does not have access to model gpt-4o"}, "%%chat\nhi"),
    ("404", {"status": 404, "error": "The model `gpt-9` does not exist"}, "%%chat\nhi"),
    ("429", {"status": 429, "error": "Rate limit reached"}, "%%chat\nhi"),
    ("429-long", {"status": 429, "error": "Slow down", "retry_after": "3600"}, "%%chat\nhi"),
    ("500", {"status": 500, "error": "The server had an error"}, "%%chat\nhi"),
    ("400-param", {"status": 400, "error": "bad", "param": "temperature"}, "%%chat\nhi"),
    ("400-messages", {"status": 400, "error": "bad", "param": "messages"}, "%%chat\nhi"),
    ("error-event", {"error_event_at": 1}, "%%chat\none two three"),
    ("malformed", {"malformed_at": 1}, "%%chat\none two three"),
    ("reset", {"reset_after": 1}, "%%chat\none two three"),
    ("truncated", {"truncate_after": 1}, "%%chat\none two three"),
    ("models-401", {"status": 401, "error": "no"}, "%chat models"),
]
USAGE = [
    "%chatconfig temperature=5",
    "%chatconfig api_key=whatever",
    "%chatconfig model=",
    "%chatconfig --bogus",
    "%chatconfig --ini /nonexistent/config.ini",
    "%chat bogus",
    "%chat",
    "%chat pick 3",
    "%chat load /nonexistent/c.json",
    "%chat export c.txt",
    "%%chat -o In\nhi",
    "%%chat -t 7\nhi",
    "%%chat\n",
    "%chat undo",
]


def messages_of(
    shell: InteractiveShell, server: StandInServer, code: str, script: dict[str, object] | None
) -> str:
    from nbchat.magics import INSTANCES

    magics = INSTANCES[shell]
    magics.max_retries = 0
    magics.timeout = 5
    if script is not None:
        server.script(**script)
    run = Cell(shell)(code)
    server.scripts.clear()
    assert not run.ok, code
    return run.io.stdout + run.io.stderr + (str(run.error) if run.error else "")


def test_every_error_message_reads_the_same_with_no_key_an_sk_key_and_an_sk_proj_key(
    server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, dict[str, str]] = {}
    for kind, key in KEYS.items():
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(name, raising=False)
        if key:
            monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        shell = make_shell()
        try:
            for name, script, code in SCENARIOS:
                seen.setdefault(name, {})[kind] = messages_of(shell, server, code, script)
            for code in USAGE:
                seen.setdefault(code, {})[kind] = messages_of(shell, server, code, None)
        finally:
            InteractiveShell.clear_instance()
    for name, by_kind in seen.items():
        texts = set(by_kind.values())
        assert len(texts) == 1, f"{name}: {by_kind}"
        text = texts.pop()
        assert "redacted" not in text, f"{name}: {text}"  # nothing secret was in it
        assert text.strip(), name
    # nbchat's own advice survives intact
    assert "%chatconfig --key" in seen["401"]["sk-proj-"]
    assert "project or organization" in seen["403"]["sk-proj-"]
    assert "%chat models" in seen["404"]["no key"]
    assert "%chatconfig temperature=unset" in seen["400-param"]["sk-"]


@pytest.mark.parametrize("kind", ["sk-", "sk-proj-"])
def test_a_key_echoed_by_the_server_is_replaced_and_nothing_else_changes(
    server: StandInServer, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    key = KEYS[kind]
    assert key is not None
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    shell = make_shell()
    try:
        plain = messages_of(
            shell, server, "%%chat\nhi", {"status": 400, "error": "your key: KEY was refused"}
        )
        echoed = messages_of(
            shell, server, "%%chat\nhi", {"status": 400, "error": f"your key: {key} was refused"}
        )
        partial = messages_of(
            shell, server, "%%chat\nhi", {"status": 400, "error": f"your key: {key[:-12]} was refused"}
        )
    finally:
        InteractiveShell.clear_instance()
    assert echoed == plain.replace("KEY", "[redacted key]")
    assert partial == echoed
    secret_part = key.removeprefix("sk-proj-").removeprefix("sk-")
    assert all(secret_part[i : i + 8] not in echoed + partial for i in range(len(secret_part) - 7))


def test_no_key_for_openai_advice_is_intact(
    cell: Cell, magics: ChatMagics, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    magics.base_url = None
    run = cell("%%chat\nhello")
    assert run.io.stdout.strip() == (
        "nbchat: no API key for OpenAI: set OPENAI_API_KEY in the environment Jupyter starts from, "
        "or run %chatconfig --key (a hidden prompt)"
    )


def test_the_placeholder_and_public_prefixes_are_not_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLACEHOLDER)
    assert PLACEHOLDER not in credentials()
    words = "run %chatconfig -c x, %chat models; keys start with sk- or sk-proj- (a project key)"
    for key in KEYS.values():
        if key:
            assert redact(words, [key]) == words
            assert redact_foreign(words, [key]) == words


def test_long_runs_of_a_secret_are_redacted_wherever_they_appear() -> None:
    key = KEYS["sk-proj-"]
    assert key is not None
    body = key.removeprefix("sk-proj-")
    text = f"a {key} b {body[3:20]} c {body[-9:]} d {body[:7]}"
    clean = redact(text, [key])
    assert clean == "a sk-proj-[redacted] b [redacted] c [redacted] d " + body[:7]
