"""The footer's time is the server's: not the time a tool ran, not the time a person took to
approve a call, not loading the SDK or building its client."""

from __future__ import annotations

import time

from nbchat import Chat

PAUSE = 1.5  # far longer than the stand-in takes to answer both requests of a tool turn


def slow(key: str) -> str:
    """Take a while."""
    time.sleep(PAUSE)
    return key


def test_a_tool_turns_time_leaves_out_the_tool_and_the_approval(env, server) -> None:
    server.script(tool_calls=[{"name": "slow", "arguments": {"key": "a"}}])

    def approve(question: str) -> str:
        time.sleep(PAUSE)  # a person reads the question
        return "y"

    chat = Chat(cache="off", ask=approve, tool_approval="ask")
    started = time.perf_counter()
    reply = chat.send("use slow", tools=[slow])
    took = time.perf_counter() - started
    assert reply.text == "Echo: a" and len(server.bodies) == 2
    assert took >= 2 * PAUSE  # the turn did wait for both
    assert 0 < reply.latency < PAUSE  # the footer shows the two requests' time alone


def test_a_first_request_does_not_count_loading_the_sdk_or_building_its_client(
    env, server, monkeypatch
) -> None:
    from nbchat import client

    built = client.shared_client

    def slow_to_build(*args: object) -> object:
        time.sleep(PAUSE)  # what importing openai and building a client cost on a cold kernel
        return built(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(client, "shared_client", slow_to_build)
    chat = Chat(cache="off")
    started = time.perf_counter()
    reply = chat.send("hello")
    assert time.perf_counter() - started >= PAUSE
    assert reply.text == "Echo: hello" and 0 < reply.latency < PAUSE
