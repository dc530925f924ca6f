"""A new ``Chat`` costs little: every ``Chat`` on one connection shares the SDK client, and a
plain ``http://`` server gets a client that loads no certificates."""

from __future__ import annotations

import ssl

import pytest

from nbchat import Chat


@pytest.fixture
def certificate_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each time a certificate store is loaded (what made a new client cost ~60 ms)."""
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    return loads


def test_chats_on_the_same_connection_share_one_sdk_client(env, server) -> None:
    first, second = Chat(cache="off"), Chat(cache="off")
    assert first.send("one").text == "Echo: one"
    assert second.send("two").text == "Echo: two"
    client = first.transport.client(first.settings)
    assert second.transport.client(second.settings) is client
    other = Chat(cache="off", timeout=7.0)  # another option the client is built with: its own
    assert other.send("three").text == "Echo: three"
    assert other.transport.client(other.settings) is not client
    assert len(server.bodies) == 3


def test_a_plain_http_server_gets_a_client_without_certificates(env, server, certificate_loads) -> None:
    chat = Chat(cache="off", max_retries=1)  # settings no other test uses: a client built here
    assert chat.send("hello").text == "Echo: hello"
    assert certificate_loads == []


def test_an_https_server_gets_a_verifying_client(env, certificate_loads) -> None:
    chat = Chat(cache="off", base_url="https://example.invalid/v1", max_retries=3)
    client = chat.transport.client(chat.settings)
    assert certificate_loads  # the default store: TLS is verified as the SDK would
    assert str(client.base_url).startswith("https://example.invalid")
