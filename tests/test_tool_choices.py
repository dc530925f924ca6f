"""Tools and several choices: a tool turn continues one reply, so ``-n`` above 1 with tools
is refused before anything is sent (cells, the tools setting, the Python API)."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from nbchat import Chat, NbChatError
from nbchat.tools import ToolError

DEFINE = '''
def lookup(key: str) -> str:
    """Look a key up in the glossary."""
    return key.upper()
'''


@pytest.mark.parametrize(
    ("setup", "line"),
    [
        ("pass", "%%chat --tools lookup -n 2"),
        ("%chatconfig tools=lookup", "%%chat -n 3"),
        ("%chatconfig n=2", "%%chat --tools lookup"),
        ("pass", "%%chat --tools lookup -n 2 --dry-run"),
    ],
    ids=["both-in-the-cell", "tools-setting", "n-setting", "dry-run"],
)
def test_several_choices_with_tools_is_a_usage_error_and_nothing_is_sent(
    cell, server, magics, setup: str, line: str
) -> None:
    assert cell(DEFINE).ok and cell(setup).ok
    run = cell(f"{line}\nWhat is an API?")
    assert type(run.error) is UsageError
    assert "cannot be used with tools" in str(run.error) and "lookup" in str(run.error)
    assert server.requests == []
    assert magics.conversations.get("default") is None or magics.conversations["default"].turns == []


def test_one_choice_with_tools_and_several_without_still_work(cell, server, magics) -> None:
    assert cell(DEFINE).ok
    magics.tool_approval = "auto"
    server.script(tool_calls=[{"name": "lookup", "arguments": {"key": "api"}}])
    assert cell("%%chat --tools lookup -n 1\nWhat is an API?").ok
    assert cell("%%chat -n 2\nAnd now?").ok
    assert server.bodies[-1]["n"] == 2 and "tools" not in server.bodies[-1]


def test_the_python_api_refuses_several_choices_with_tools(env, server) -> None:
    def lookup(key: str) -> str:
        return key

    chat = Chat(tools=[lookup], tool_approval="auto", namespace={})
    with pytest.raises(ToolError, match="n=2 cannot be used with tools") as caught:
        chat.send("hi", n=2)
    assert isinstance(caught.value, NbChatError)
    assert server.requests == [] and chat.conversation.turns == []
