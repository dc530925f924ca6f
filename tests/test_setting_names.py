"""A misspelt setting is reported as unknown, with the nearest real one; tool names are
checked when they are set; ``unset`` works for every setting, ``tools`` included."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from nbchat import Chat
from nbchat.errors import NbChatError


def test_an_unknown_keyword_of_send_is_named_with_the_nearest_setting(env, server) -> None:
    chat = Chat(cache="off")
    with pytest.raises(NbChatError) as caught:
        chat.send("hi", temprature=1)
    message = str(caught.value)
    assert message.startswith("unknown setting 'temprature'. Did you mean temperature?")
    assert "cannot be changed for one call" not in message
    with pytest.raises(NbChatError, match="base_url cannot be changed for one call"):
        chat.send("hi", base_url="http://127.0.0.1:1/v1")  # a real setting, just not per call
    assert server.bodies == []  # nothing was sent


def test_chatconfig_refuses_a_tool_that_does_not_exist_and_every_cell_keeps_working(cell, magics) -> None:
    run = cell("%chatconfig tools=nonexistent")
    assert type(run.error) is UsageError
    assert str(run.error).startswith("unknown tool 'nonexistent': nonexistent is not defined")
    assert magics.tools == []
    assert cell("%%chat\nstill fine").ok
    cell("rows = [1, 2]")
    not_a_function = cell("%chatconfig tools=rows")
    assert "rows is not a function" in str(not_a_function.error)
    cell("def lookup(key: str) -> str:\n    '''Look a key up.'''\n    return key")
    assert cell("%chatconfig tools=lookup,describe").ok
    assert magics.tools == ["lookup", "describe"]


def test_tools_unset_empties_the_list_as_unset_does_for_every_setting(cell, magics) -> None:
    assert cell("%chatconfig tools=describe temperature=0.5").ok
    assert cell("%chatconfig tools=unset temperature=unset").ok
    assert magics.tools == [] and magics.temperature is None
    assert cell("%chatconfig tools=none").ok and magics.tools == []
