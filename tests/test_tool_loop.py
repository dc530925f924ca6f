"""The tool-call loop: the model asks, nbchat runs the user's functions and answers,
checked at the request-body level against the stand-in server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nbchat import Chat
from nbchat.testing.server import StandInServer


def lookup(key: str) -> str:
    """Look a key up in the glossary.

    Args:
        key: The term to look up.
    """
    return f"{key} means {key.upper()}"


def divide(a: float, b: float) -> float:
    """Divide a by b."""
    return a / b


def calls(*specs: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": name, "arguments": args} for name, args in specs]


@pytest.fixture
def chat(env: None) -> Chat:
    return Chat(tools=[lookup, divide], tool_approval="auto", namespace={})


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_a_call_is_run_and_its_result_goes_back_with_the_calls_id(
    chat: Chat, server: StandInServer, stream: bool
) -> None:
    server.script(tool_calls=calls(("lookup", {"key": "api"})), argument_pieces=4)
    reply = chat.send("What is an API?", stream=stream)
    first, second = server.bodies
    assert [t["function"]["name"] for t in first["tools"]] == ["lookup", "divide"]
    assert first["tools"][0]["function"]["parameters"]["properties"]["key"] == {
        "description": "The term to look up.",
        "type": "string",
    }
    asked, answered = second["messages"][-2:]
    (call,) = asked["tool_calls"]
    assert asked["role"] == "assistant" and asked["content"] is None
    assert call["function"] == {"name": "lookup", "arguments": '{"key": "api"}'}
    assert answered == {"role": "tool", "tool_call_id": call["id"], "content": "api means API"}
    assert second["tools"] == first["tools"]
    assert reply.text == "Echo: api means API"
    assert [(c.name, c.result) for c in reply.tool_calls] == [("lookup", "api means API")]


def test_streamed_arguments_split_across_many_chunks_are_assembled(chat: Chat, server: StandInServer) -> None:
    arguments = {"key": "a long key with spaces and ünïcode " * 3}
    server.script(tool_calls=calls(("lookup", arguments)), argument_pieces=40)
    chat.send("go")
    call = server.bodies[1]["messages"][-2]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == arguments


def test_several_calls_in_one_reply_each_get_their_own_result(chat: Chat, server: StandInServer) -> None:
    server.script(
        tool_calls=calls(("lookup", {"key": "a"}), ("divide", {"a": 1, "b": 4}), ("lookup", {"key": "b"}))
    )
    reply = chat.send("go")
    messages = server.bodies[1]["messages"]
    ids = [c["id"] for c in messages[1]["tool_calls"]]
    assert len(set(ids)) == 3
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": ids[0], "content": "a means A"},
        {"role": "tool", "tool_call_id": ids[1], "content": "0.25"},
        {"role": "tool", "tool_call_id": ids[2], "content": "b means B"},
    ]
    assert reply.text == "Echo: a means A | 0.25 | b means B"


def test_the_loop_goes_on_over_several_rounds_until_a_text_reply(chat: Chat, server: StandInServer) -> None:
    server.script(tool_calls=calls(("lookup", {"key": "a"})))
    server.script(tool_calls=calls(("lookup", {"key": "b"})))
    reply = chat.send("go")
    assert len(server.bodies) == 3
    assert [m["role"] for m in server.bodies[2]["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]
    assert reply.text == "Echo: b means B"
    assert "3 requests (2 tool calls)" in reply.notes


def test_a_tools_exception_goes_back_to_the_model_and_the_loop_goes_on(
    chat: Chat, server: StandInServer
) -> None:
    server.script(tool_calls=calls(("divide", {"a": 1, "b": 0})))
    reply = chat.send("go")
    result = server.bodies[1]["messages"][-1]["content"]
    assert result.startswith("Error: ZeroDivisionError: float division by zero (at divide, line ")
    assert reply.text == f"Echo: {result}"
    assert reply.tool_calls[0].error


def test_the_loop_stops_at_max_tool_steps_with_a_note_and_a_valid_history(
    env: None, server: StandInServer
) -> None:
    chat = Chat(tools=[lookup], tool_approval="auto", max_tool_steps=2, namespace={})
    server.script(tool_calls=calls(("lookup", {"key": "x"})), text="Thinking", times=3)
    reply = chat.send("loop forever")
    assert len(server.bodies) == 3  # two rounds of calls ran; the third round's call did not
    assert (
        "stopped after 2 rounds of tool calls (max_tool_steps); the model's last 1 tool call did not run"
        in reply.notes
    )
    history = chat.messages
    asked = [c["id"] for m in history if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    answered = [m["tool_call_id"] for m in history if m["role"] == "tool"]
    assert asked == answered and len(asked) == 2  # no call without its result
    assert history[-1] == {"role": "assistant", "content": "Thinking"}
    chat.send("and now?")  # the next request is valid: it carries every call with its result
    assert server.bodies[-1]["messages"][:-1] == history


def test_the_footer_sums_tokens_over_every_request_of_the_turn(chat: Chat, server: StandInServer) -> None:
    server.script(tool_calls=calls(("lookup", {"key": "a"})))
    reply = chat.send("go")
    assert reply.usage is not None
    ledger = chat.ledger.models["gpt-4o-mini"]
    assert ledger["requests"] == 2
    assert reply.usage["prompt_tokens"] == ledger["prompt_tokens"] > 0
    assert reply.usage["completion_tokens"] == ledger["completion_tokens"] > 0


def test_the_whole_exchange_is_one_turn(chat: Chat, server: StandInServer) -> None:
    server.script(tool_calls=calls(("lookup", {"key": "a"})))
    chat.send("first")
    (turn,) = chat.conversation.turns
    assert [m["role"] for m in turn.messages] == ["user", "assistant", "tool", "assistant"]
    chat.conversation.undo()
    assert chat.messages == []


def test_a_server_without_tool_calls_ends_the_turn_with_its_text(chat: Chat, server: StandInServer) -> None:
    reply = chat.send("plain")
    assert len(server.bodies) == 1 and reply.text == "Echo: plain" and reply.tool_calls == []


def test_a_call_to_a_tool_not_offered_is_answered_not_run(chat: Chat, server: StandInServer) -> None:
    server.script(tool_calls=calls(("rm_rf", {})))
    chat.send("go")
    assert (
        server.bodies[1]["messages"][-1]["content"]
        == "Error: there is no tool 'rm_rf' (tools: lookup, divide)"
    )


def test_tools_by_name_come_from_the_namespace_and_the_built_ins(env: None, server: StandInServer) -> None:
    namespace = {"lookup": lookup, "rows": [1, 2, 3]}
    chat = Chat(namespace=namespace, tool_approval="auto")
    server.script(tool_calls=calls(("describe", {"name": "rows"})))
    chat.send("what is rows?", tools=["lookup", "describe", "variables"])
    names = [t["function"]["name"] for t in server.bodies[0]["tools"]]
    assert names == ["lookup", "describe", "variables"]
    assert server.bodies[1]["messages"][-1]["content"] == "[1, 2, 3]"
    chat.send("again")  # per-call tools are for that call only
    assert "tools" not in server.bodies[-1]


def test_an_unknown_tool_name_is_an_error_and_nothing_is_sent(env: None, server: StandInServer) -> None:
    from nbchat.tools import ToolError

    chat = Chat(namespace={"rows": [1]})
    with pytest.raises(ToolError, match="unknown tool 'lokup': lokup is not defined"):
        chat.send("hi", tools=["lokup"])
    with pytest.raises(ToolError, match="unknown tool 'rows': rows is not a function"):
        chat.send("hi", tools=["rows"])
    assert server.bodies == []


def test_a_dataframe_result_is_described_compactly_like_a_substituted_value(
    env: None, server: StandInServer
) -> None:
    import pandas as pd

    frame = pd.DataFrame({"price": range(1000), "city": ["Oslo"] * 1000})

    def sales() -> object:
        """The sales table."""
        return frame

    chat = Chat(tools=[sales], tool_approval="auto", namespace={})
    server.script(tool_calls=calls(("sales", {})))
    chat.send("how many rows?")
    result = server.bodies[1]["messages"][-1]["content"]
    lines = result.splitlines()
    assert lines[:3] == [
        "DataFrame result: 1,000 rows × 2 columns",
        "columns: price (int64), city (str)",
        "first 5 rows:",
    ]
    assert "999    999  Oslo" in result and "(990 rows in between not shown)" in result
    assert len(result) < 1000


def test_a_long_result_is_cut_to_context_tokens_and_secrets_never_leave(
    env: None, server: StandInServer
) -> None:
    from conftest import FAKE_KEY

    def dump() -> str:
        return f"key={FAKE_KEY} " + "word " * 5000

    chat = Chat(tools=[dump], tool_approval="auto", namespace={}, context_tokens=100)
    server.script(tool_calls=calls(("dump", {})))
    chat.send("go")
    result = server.bodies[1]["messages"][-1]["content"]
    assert FAKE_KEY[3:] not in result and FAKE_KEY[-8:] not in result
    assert result.endswith("more characters left out)") and len(result) < 1000
