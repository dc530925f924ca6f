"""One connection resolver: which server, which key, which client, and where each came
from; the transport, the error messages and %chatconfig all read it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import FAKE_KEY, Cell, make_shell
from IPython.core.interactiveshell import InteractiveShell

from nbchat import Chat, NbChatError
from nbchat.connection import NO_KEY, OPENAI_URL, resolve
from nbchat.settings import Settings

AZURE_KEY = "9f3Kq7Zt2Lm9Vx4Rb8Nw1Yc6Hd0Pj5Ue"
CONNECTION_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "OPENAI_API_VERSION",
)


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in CONNECTION_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def azure_only(clean: pytest.MonkeyPatch, server) -> Iterator[Cell]:
    """Only the Azure variables are set, as an Azure user's environment has them."""
    clean.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    clean.setenv("AZURE_OPENAI_ENDPOINT", server.url.removesuffix("/v1"))
    clean.setenv("OPENAI_API_VERSION", "2024-10-21")
    yield Cell(make_shell())
    InteractiveShell.clear_instance()


def settings_table(run) -> dict[str, list[str]]:
    plain = run.outputs[-1]["text/plain"].splitlines()[2:]
    return {line.split()[0]: line.split(None, 1)[1].rsplit("  ", 1) for line in plain}


def test_with_only_azure_variables_chatconfig_shows_the_azure_key_that_requests_use(
    azure_only, server
) -> None:
    run = azure_only("%chatconfig")
    value, source = (part.strip() for part in settings_table(run)["api_key"])
    assert (value, source) == ("set", "env AZURE_OPENAI_API_KEY")
    assert f"Azure OpenAI at {server.url.removesuffix('/v1')}" in run.text
    assert AZURE_KEY not in run.text and AZURE_KEY[-6:] not in run.text
    assert azure_only("%%chat\nhello").ok
    assert server.requests[-1].headers["api-key"] == AZURE_KEY


def test_a_refused_azure_connection_names_the_azure_endpoint(azure_only, server) -> None:
    assert azure_only("%chatconfig azure_endpoint=http://127.0.0.1:9 max_retries=0").ok
    run = azure_only("%%chat\nhello")
    assert not run.ok
    assert "cannot reach Azure OpenAI at http://127.0.0.1:9" in run.io.stdout
    assert "api.openai.com" not in run.io.stdout and "is azure_endpoint right?" in run.io.stdout


def test_the_resolver_says_where_each_part_came_from(clean: pytest.MonkeyPatch, server) -> None:
    settings = Settings()
    nothing = resolve(settings)
    assert (nothing.url, nothing.url_from, nothing.key, nothing.key_from) == (
        OPENAI_URL,
        "default",
        None,
        "not set",
    )
    clean.setenv("OPENAI_API_KEY", FAKE_KEY)
    from_env = resolve(settings)
    assert from_env.key is not None and from_env.key.reveal() == FAKE_KEY
    assert from_env.key_from == "env OPENAI_API_KEY" and FAKE_KEY not in repr(from_env)
    settings.apply({"base_url": server.url}, source="%chatconfig")
    local = resolve(settings)
    assert (local.url, local.url_from, local.kind) == (
        server.url,
        "%chatconfig",
        "an OpenAI-compatible server",
    )
    assert local.key is not None and local.key.reveal() == FAKE_KEY  # the environment's key goes along
    clean.delenv("OPENAI_API_KEY")
    keyless = resolve(settings)
    assert keyless.key is not None and keyless.key.reveal() == NO_KEY
    assert keyless.key_from.startswith("none needed")
    settings.apply({"api_key": "sk-typed"}, source="Chat()")
    assert resolve(settings).key_from == "Chat()"


def test_without_a_key_plain_python_says_chat_api_key_not_a_magic(clean: pytest.MonkeyPatch) -> None:
    chat = Chat(max_retries=0)
    with pytest.raises(NbChatError) as info:
        chat.send("hello")
    message = str(info.value)
    assert "Chat(api_key=" in message and "OPENAI_API_KEY" in message
    assert "%chatconfig" not in message and "Jupyter" not in message


def test_without_a_key_a_cell_says_chatconfig_key(clean: pytest.MonkeyPatch) -> None:
    cell = Cell(make_shell())
    try:
        run = cell("%%chat\nhello")
        assert "no API key for OpenAI" in run.io.stdout and "%chatconfig --key" in run.io.stdout
        assert "Chat(api_key" not in run.io.stdout
    finally:
        InteractiveShell.clear_instance()


def test_the_transport_keeps_its_client_until_the_connection_changes(
    clean: pytest.MonkeyPatch, server
) -> None:
    chat = Chat(base_url=server.url, api_key=FAKE_KEY)
    first = chat.transport.client(chat.settings)
    assert chat.transport.client(chat.settings) is first
    chat.settings.apply({"timeout": 5.0}, source="Chat()")
    second = chat.transport.client(chat.settings)
    assert second is not first and second.base_url == server.url.rstrip("/") + "/"
