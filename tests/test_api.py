"""The Python API works without IPython, and the magics are glue over it."""

from __future__ import annotations

import pytest

from nbchat import Chat, Conversation
from nbchat.errors import BadSetting, EmptyMessage, NbChatError


@pytest.fixture
def chat(env):
    return Chat(model="gpt-4o-mini", system="You are terse.", temperature=0.2)


def test_send_returns_a_reply_and_records_the_exchange(chat, server) -> None:
    reply = chat.send("Hello")
    assert reply.text == str(reply) == "Echo: Hello"
    assert reply.choices == [{"index": 0, "role": "assistant", "content": "Echo: Hello"}]
    assert reply.usage["completion_tokens"] == 2 and reply.finish_reason == "stop"
    assert reply.model == "gpt-4o-mini"
    assert chat.messages == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Echo: Hello"},
    ]
    assert server.bodies[-1]["temperature"] == 0.2


def test_stream_yields_deltas_and_records_only_when_complete(chat, server) -> None:
    server.script(chunks=["a", "b", "c"])
    stream = chat.stream("More")
    deltas = []
    for delta in stream:
        deltas.append(delta)
        assert len(chat.conversation.turns) == 0
    assert deltas == ["a", "b", "c"]
    assert chat.messages[-1] == {"role": "assistant", "content": "abc"}


def test_an_abandoned_stream_records_nothing(chat, server) -> None:
    server.script(chunks=["a", "b", "c"])
    stream = iter(chat.stream("More"))
    next(stream)
    stream.close()
    assert chat.conversation.turns == []


def test_per_call_overrides_and_settings_as_keywords(env, server) -> None:
    chat = Chat(base_url=server.url, timeout=5, max_retries=0, n=2)
    reply = chat.send("Hi", temperature=1.0, stream=False)
    assert len(reply.choices) == 2
    assert server.bodies[-1]["temperature"] == 1.0 and server.bodies[-1]["n"] == 2
    assert chat.settings.temperature is None


def test_a_bad_setting_raises_one_error_type_from_chat_send_and_apply(env) -> None:
    with pytest.raises(BadSetting, match="temperature must be a number from 0 to 2"):
        Chat(temperature=9)
    with pytest.raises(BadSetting, match="unknown setting 'temprature'"):
        Chat(temprature=0.1)
    chat = Chat()
    with pytest.raises(BadSetting, match="temperature must be a number from 0 to 2") as sent:
        chat.send("hi", temperature=9)
    with pytest.raises(BadSetting, match="temperature must be a number from 0 to 2") as applied:
        chat.settings.apply({"temperature": 9}, source="test")
    for error in (sent.value, applied.value):
        assert isinstance(error, ValueError) and isinstance(error, NbChatError)


def test_an_empty_message_is_refused_and_nothing_is_sent(env, server) -> None:
    chat = Chat()
    for empty in ("", "   \n", []):
        with pytest.raises(EmptyMessage, match="nothing to send"):
            chat.send(empty)
    assert server.bodies == [] and chat.messages == []


def test_a_value_that_is_not_text_is_sent_as_its_description_and_saves_and_loads(
    env, server, tmp_path
) -> None:
    chat = Chat()
    for value, said in ((42, "42"), (0, "0"), ({"a": 1}, "{'a': 1}")):
        assert chat.send(value).text == f"Echo: {said}"
    assert all(isinstance(m["content"], str) for m in chat.messages)
    chat.save(tmp_path / "c.json")
    assert Chat.load(tmp_path / "c.json").messages == chat.messages
    with pytest.raises(EmptyMessage):
        chat.send(None)


def test_map_of_something_that_is_not_a_list_names_what_it_got(env, server) -> None:
    for items, kind in ((None, "NoneType"), (3, "int"), ("abc", "one string or dict")):
        with pytest.raises(NbChatError, match=f"map takes a list .*not {kind}"):
            Chat().map(items, "Label {item}")
    assert server.bodies == []


def test_a_per_call_override_that_is_not_a_request_parameter_is_refused(env, server) -> None:
    chat = Chat()
    for name, value in (("base_url", "http://127.0.0.1:9/v1"), ("timeout", 5.0)):
        with pytest.raises(BadSetting, match=f"{name} cannot be changed for one call"):
            chat.send("hi", **{name: value})
    assert server.bodies == []
    assert chat.send("hi", temperature=0.5).text and server.bodies[-1]["temperature"] == 0.5


def test_save_and_load_round_trip(chat, tmp_path) -> None:
    chat.send("Hello")
    path = tmp_path / "conv.json"
    chat.save(path)
    again = Chat.load(path)
    assert again.messages == chat.messages
    assert isinstance(again.conversation, Conversation)


def test_the_magics_use_the_same_engine(cell, magics, server) -> None:
    assert cell("%%chat -c api\nfrom the magic").ok
    chat = magics.chat_for("api")
    reply = chat.send("from Python")
    assert reply.text == "Echo: from Python"
    assert cell("%%chat -c api\nback to the magic").ok
    assert [m["content"] for m in server.bodies[-1]["messages"]] == [
        "from the magic",
        "Echo: from the magic",
        "from Python",
        "Echo: from Python",
        "back to the magic",
    ]
