"""Tool arguments of the wrong type for the function's hints are converted where nothing is
lost ("3" → 3) or refused with an error result naming the argument — never passed through."""

from __future__ import annotations

import enum
import json
from typing import Any, Literal

import pytest

from nbchat import Chat
from nbchat.testing.server import StandInServer
from nbchat.tools import ToolArgumentsError, as_tool


class Colour(enum.Enum):
    RED = 1
    BLUE = 2


def typed(
    count: int,
    ratio: float,
    name: str,
    flag: bool,
    tags: list[int],
    weights: dict[str, float],
    mode: Literal["fast", "slow"],
    colour: Colour,
    limit: int | None = None,
    either: int | str = 0,
) -> str:
    return "ok"


TOOL = as_tool(typed)
GOOD = {
    "count": 1,
    "ratio": 0.5,
    "name": "x",
    "flag": True,
    "tags": [1],
    "weights": {"a": 1.0},
    "mode": "fast",
    "colour": 1,
}


def converted(**changes: Any) -> dict[str, Any]:
    return TOOL.arguments(json.dumps(GOOD | changes))


@pytest.mark.parametrize(
    ("name", "sent", "got"),
    [
        ("count", "3", 3),
        ("count", " -12 ", -12),
        ("count", 3.0, 3),
        ("ratio", 2, 2.0),
        ("ratio", "0.25", 0.25),
        ("name", 3, "3"),
        ("name", 2.5, "2.5"),
        ("flag", "true", True),
        ("flag", "False", False),
        ("flag", 0, False),
        ("tags", ["1", 2.0], [1, 2]),
        ("tags", "[1, 2]", [1, 2]),
        ("weights", {"a": 1, "b": "0.5"}, {"a": 1.0, "b": 0.5}),
        ("weights", '{"a": 2}', {"a": 2.0}),
        ("colour", "2", Colour.BLUE),
        ("limit", None, None),
        ("limit", "7", 7),
        ("either", "word", "word"),
        ("either", 5, 5),
        ("either", 5.0, 5),
    ],
)
def test_a_value_that_converts_without_loss_is_converted_to_the_hinted_type(
    name: str, sent: Any, got: Any
) -> None:
    value = converted(**{name: sent})[name]
    assert value == got and type(value) is type(got)


@pytest.mark.parametrize(
    ("name", "sent", "said"),
    [
        ("count", "3.5", "argument 'count' must be an integer, not \"3.5\""),
        ("count", 3.5, "argument 'count' must be an integer, not 3.5"),
        ("count", True, "argument 'count' must be an integer, not true"),
        ("count", "three", "argument 'count' must be an integer, not \"three\""),
        ("ratio", "NaN", "argument 'ratio' must be a number, not \"NaN\""),
        ("ratio", [1], "argument 'ratio' must be a number, not [1]"),
        ("name", {"a": 1}, "argument 'name' must be a string, not {\"a\": 1}"),
        ("name", True, "argument 'name' must be a string, not true"),
        ("flag", "yes please", "argument 'flag' must be true or false"),
        ("flag", 2, "argument 'flag' must be true or false, not 2"),
        ("tags", "1,2", "argument 'tags' must be a list, not \"1,2\""),
        ("tags", [1, "x"], "argument 'tags[1]' must be an integer, not \"x\""),
        ("weights", [1], "argument 'weights' must be an object, not [1]"),
        ("mode", "medium", "argument 'mode' must be one of 'fast', 'slow', not 'medium'"),
        ("colour", 3, "argument 'colour' must be one of 1, 2, not 3"),
        ("limit", "many", "argument 'limit' must be an integer or null, not \"many\""),
        ("either", None, "argument 'either' must be an integer or a string, not null"),
    ],
)
def test_a_value_that_cannot_convert_is_refused_naming_the_argument(name: str, sent: Any, said: str) -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        converted(**{name: sent})
    assert str(caught.value).startswith(said), caught.value


def test_through_the_loop_the_function_gets_converted_values_or_the_model_gets_the_error(
    env: None, server: StandInServer
) -> None:
    received: list[tuple[Any, Any]] = []

    def repeat(text: str, times: int) -> str:
        received.append((text, times))
        return text * times

    chat = Chat(tools=[repeat], tool_approval="auto", stream=False)
    server.script(tool_calls=[{"name": "repeat", "arguments": {"text": "ab", "times": "3"}}])
    reply = chat.send("go")
    assert received == [("ab", 3)] and reply.tool_calls[0].result == "ababab"
    server.script(tool_calls=[{"name": "repeat", "arguments": {"text": "ab", "times": "lots"}}])
    reply = chat.send("again")
    assert received == [("ab", 3)], "not run with a value of the wrong type"
    (call,) = reply.tool_calls
    assert call.error and call.result.startswith("Error: argument 'times' must be an integer, not \"lots\"")
    assert server.bodies[-1]["messages"][-1]["content"] == call.result, "the model is told"
