"""The Responses API with store false: a reasoning model is asked for its reasoning
encrypted, and each later request carries that reasoning back (with the message it led to),
so the model does not think the conversation over from scratch; other models get plain
messages."""

from __future__ import annotations

import base64
import json

import pytest

from nbchat import Chat


def responses_bodies(server) -> list[dict]:
    return [r.body for r in server.requests if r.path.endswith("/v1/responses")]


@pytest.fixture
def responses_api(magics) -> None:
    magics.api = "responses"


def _reasoning_items(body: dict) -> list[dict]:
    return [i for i in body["input"] if i.get("type") == "reasoning"]


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_a_reasoning_models_encrypted_reasoning_goes_back_on_the_next_turn(
    cell, server, magics, responses_api, stream
) -> None:
    magics.stream = stream
    assert cell("%%chat -m o4-mini\nfirst").ok
    assert cell("%%chat -m o4-mini\nsecond").ok
    one, two = responses_bodies(server)
    assert one["store"] is False and one["include"] == ["reasoning.encrypted_content"]
    assert one["input"] == [{"role": "user", "content": "first"}]
    user, reasoning, message, question = two["input"]
    assert user == {"role": "user", "content": "first"}
    secret = base64.b64decode(reasoning["encrypted_content"]).decode()
    assert secret == "stand-in reasoning over 1 input items (not encrypted)"  # the first reply's, as sent
    assert reasoning["type"] == "reasoning" and reasoning["id"] == "rs_standin"
    assert message["type"] == "message" and message["content"][0]["text"] == "Echo: first"
    assert question == {"role": "user", "content": "second"}
    # the stand-in, like OpenAI, finds no reasoning item without its encrypted content
    assert not [r for r in server.requests if r.status == 404]


def test_a_non_reasoning_model_is_not_asked_and_gets_plain_messages(cell, server, responses_api) -> None:
    assert cell("%%chat -m o4-mini\nfirst").ok
    assert cell("%%chat -m gpt-4o-mini\nsecond").ok
    _, two = responses_bodies(server)
    assert "include" not in two
    assert two["input"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Echo: first"},
        {"role": "user", "content": "second"},
    ]


def test_a_rerun_sends_only_the_reasoning_of_the_turns_before_it(cell, server, responses_api) -> None:
    assert cell("%%chat -m o4-mini\nfirst", cell_id="a").ok
    assert cell("%%chat -m o4-mini\nsecond", cell_id="b").ok
    assert cell("%%chat -m o4-mini\nfirst again", cell_id="a").ok
    rerun = responses_bodies(server)[-1]
    assert rerun["input"] == [{"role": "user", "content": "first again"}]
    assert cell("%%chat -m o4-mini\nthird", cell_id="c").ok
    kinds = [i.get("type") or i["role"] for i in responses_bodies(server)[-1]["input"]]
    assert kinds == ["user", "reasoning", "message", "user", "reasoning", "message", "user"]


def test_the_chat_api_and_saved_files_never_carry_the_reasoning(
    cell, server, magics, responses_api, tmp_path
) -> None:
    assert cell("%%chat -m o4-mini\nfirst").ok
    assert cell(f"%chat save {tmp_path / 'c.json'}").ok
    assert "encrypted_content" not in (tmp_path / "c.json").read_text()
    magics.api = "chat"
    assert cell("%%chat -m o4-mini\nsecond").ok
    assert server.bodies[-1]["messages"][:2] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Echo: first"},
    ]
    assert "encrypted_content" not in json.dumps(server.bodies[-1])


def test_the_python_api_passes_the_reasoning_back_too(server) -> None:
    chat = Chat(base_url=server.url, api_key="sk-test", api="responses", model="o3", stream=False)
    chat.send("one")
    chat.send("two")
    assert len(_reasoning_items(responses_bodies(server)[-1])) == 1
