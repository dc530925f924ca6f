"""The key never appears — not whole, not as any 4-character piece — anywhere a user
or a file could see it, while every feature (failures included) is exercised."""

from __future__ import annotations

import json
import logging

from conftest import FAKE_KEY, Cell

TYPED_KEY = "sk-Hb4nW8qT2xLm6vR9cJ3pZ7kYd5s"


def pieces(key: str) -> set[str]:
    return {key[i : i + 4] for i in range(len(key) - 3)}


def leaks(text: str) -> set[str]:
    return {p for key in (FAKE_KEY, TYPED_KEY) for p in pieces(key) if p in text}


def test_no_piece_of_the_key_appears_in_any_output_file_error_repr_or_log(
    shell, server, magics, tmp_path, caplog, monkeypatch
) -> None:
    caplog.set_level(logging.DEBUG)
    cell = Cell(shell)
    seen: list[str] = []

    def run(code: str) -> None:
        r = cell(code)
        seen.append(r.io.stdout + r.io.stderr)
        for output in r.io.outputs:
            seen.append(json.dumps(output.data) + json.dumps(output.metadata or {}))
        if r.error is not None:
            seen.append(f"{r.error!s} {r.error!r}")

    run("%%chat -s\nBe brief.")
    run("%%chat -t 0.3 -n 2 --logprobs 2\nhello")
    run("%%chat --no-stream\nagain")
    run("%chatconfig")
    run("%config ChatMagics")
    run("%config ChatMagics.api_key")
    run("%chatconfig api_key=sk-typed-in-a-cell")
    server.script(status=401, error=f"Incorrect API key provided: {FAKE_KEY[:7]}************{FAKE_KEY[-4:]}")
    run("%%chat\nfails")
    server.script(status=400, error=f"bad key {FAKE_KEY}")
    run("%%chat\nfails too")
    server.script(status=500, error=f"key {FAKE_KEY} broke us")
    magics.max_retries = 0
    run("%%chat\nfails thrice")
    server.script(malformed_at=1)
    run("%%chat\nfails mid-stream")
    monkeypatch.setattr("getpass.getpass", lambda prompt: TYPED_KEY)
    run("%chatconfig --key")
    run("%%chat -o out\nwith the typed key")
    run("%chat history")
    run("%chat list")
    run("%chat usage")
    run("%chat models")
    run("%chat request next")
    run(f"%chat save {tmp_path / 'c.json'}")
    run(f"%chat export {tmp_path / 'c.md'}")
    run(f"%chat export {tmp_path / 'c.jsonl'}")
    magics.base_url = "http://127.0.0.1:9/v1"
    run("%%chat\nunreachable")
    run("%chat models")
    for path in tmp_path.iterdir():
        seen.append(path.read_text())
    from nbchat import Chat

    chat = magics.chat_for("default")
    seen += [
        repr(magics),
        repr(chat),
        repr(chat.settings.api_key),
        str(chat.settings.api_key),
        repr(shell.user_ns["out"]),
        repr(Chat(api_key=FAKE_KEY).settings.api_key),
        repr(magics.trait_values()),
        repr(magics.config),
    ]
    seen += [record.getMessage() for record in caplog.records]
    everything = "\n".join(seen)
    assert "Echo: hello" in everything and "401 Unauthorized" in everything  # the session really ran
    assert server.requests[-1].headers["authorization"] == f"Bearer {TYPED_KEY}"  # the key was used
    assert leaks(everything) == set()


def test_the_key_cannot_be_pickled_or_serialised(env) -> None:
    import pickle

    import pytest

    from nbchat.secret import Secret

    secret = Secret(FAKE_KEY)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        json.dumps(secret)
    assert leaks(f"{secret} {secret!r} {[secret]}") == set()
