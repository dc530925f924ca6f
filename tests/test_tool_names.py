"""A tool is offered under a name the model can call: the function's own name, or the
name the user gave it when the function has none (a lambda, a functools.partial)."""

from __future__ import annotations

import json

from conftest import Cell, sent

from nbchat.testing.server import StandInServer


def test_a_partial_or_lambda_is_offered_and_called_under_its_variable_name(
    cell: Cell, server: StandInServer
) -> None:
    cell(
        "import functools\ndef add(a: int, b: int) -> int:\n    return a + b\nplus = functools.partial(add, 10)"
    )
    cell("%chatconfig tool_approval=auto")
    server.script(tool_calls=[{"name": "plus", "arguments": {"b": 5}}])
    run = cell("%%chat --tools plus\nUse it")
    assert run.ok, run.error
    first, second = sent(server)
    assert [t["function"]["name"] for t in first["tools"]] == ["plus"]
    assert [json.loads(m["content"]) for m in second["messages"] if m["role"] == "tool"] == [15]
    # a lambda is named too, and then refused for what really stops it: no type hints
    cell("twice = lambda x: x * 2")
    run = cell("%%chat --tools twice\nUse it")
    assert str(run.error) == "cannot describe parameter 'x' of twice(): it has no type hint"


def test_a_named_function_keeps_its_own_name_under_another_variable(
    cell: Cell, server: StandInServer
) -> None:
    cell("def lookup(key: str) -> str:\n    return key.upper()\nalias = lookup")
    run = cell("%%chat --tools alias --dry-run\nhi")
    assert run.ok, run.error
    assert '"name": "lookup"' in run.text and '"name": "alias"' not in run.text
