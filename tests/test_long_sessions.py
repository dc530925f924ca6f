"""Long sessions: hundreds of exchanges, and a 5,000-message history from a file."""

from __future__ import annotations

import json

from nbchat import Chat


def test_500_exchanges_in_one_conversation(env, server) -> None:
    chat = Chat(max_retries=0)
    for i in range(500):
        assert chat.send(f"message {i}", stream=i % 2 == 0).text == f"Echo: message {i}"
    assert len(chat.messages) == 1000
    last = server.bodies[-1]["messages"]
    assert len(last) == 999 and last[-1]["content"] == "message 499" and last[0]["content"] == "message 0"


def test_a_5000_message_history_loads_from_file_and_is_sent(cell, server, magics, tmp_path) -> None:
    messages = []
    for i in range(2500):
        messages += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
    data = {
        "format": "nbchat.conversation",
        "version": 1,
        "name": "big",
        "messages": messages,
        "turns": [{"size": 2, "usage": None} for _ in range(2500)],
    }
    path = tmp_path / "big.json"
    path.write_text(json.dumps(data))
    assert cell(f"%chat load {path}").ok
    run = cell("%%chat\nand the next one")
    assert run.ok
    sent = server.bodies[-1]["messages"]
    assert len(sent) == 5001 and sent[0] == {"role": "user", "content": "q0"}
    assert len(magics.conversations["default"].messages()) == 5002
