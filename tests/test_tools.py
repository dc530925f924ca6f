"""Tools: a function's signature and docstring become the JSON Schema the model sees."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from typing import Any, Literal, Optional

import pytest

import nbchat
from nbchat.tools import (
    Approval,
    ToolCall,
    ToolError,
    as_tool,
    builtin_tools,
    describe_function,
    parse_docstring,
    run_call,
    run_python,
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def schema(fn: Callable[..., Any]) -> dict[str, Any]:
    parameters: dict[str, Any] = describe_function(fn).spec["function"]["parameters"]
    return parameters


def prop(fn: Callable[..., Any]) -> dict[str, Any]:
    """The one property of a one-parameter function."""
    (value,) = schema(fn)["properties"].values()
    assert isinstance(value, dict)
    return value


def answering(prompts: list[str], answers: Iterator[str]) -> Callable[[str], str]:
    """An approval's ``ask``: records each prompt and gives the next answer."""

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    return ask


def defined(source: str) -> Callable[..., Any]:
    """The one function ``source`` defines: written as a user may write it, in a way a type
    checker refuses (a bare ``list``, no annotations at all)."""
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    (name,) = [name for name in namespace if name != "__builtins__"]
    fn: Callable[..., Any] = namespace[name]
    return fn


# -- one test per kind ---------------------------------------------------------------------


def test_str_int_float_bool_parameters_are_their_json_types() -> None:
    def f(s: str, i: int, x: float, b: bool) -> None: ...

    assert schema(f) == {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "x": {"type": "number"},
            "b": {"type": "boolean"},
        },
        "required": ["s", "i", "x", "b"],
        "additionalProperties": False,
    }


def test_a_list_parameter_is_an_array_of_its_items() -> None:
    def f(names: list[str]) -> None: ...

    def g(rows: list[list[int]]) -> None: ...

    h = defined("def h(anything: list) -> None: ...")

    def t(values: tuple[float, ...]) -> None: ...

    assert prop(f) == {"type": "array", "items": {"type": "string"}}
    assert prop(g) == {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}
    assert prop(h) == {"type": "array"}
    assert prop(t) == {"type": "array", "items": {"type": "number"}}


def test_a_dict_parameter_is_an_object_whose_values_have_the_value_type() -> None:
    def f(counts: dict[str, int]) -> None: ...

    g = defined("def g(options: dict) -> None: ...")

    assert prop(f) == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert prop(g) == {"type": "object"}


def test_a_literal_parameter_is_an_enum_of_its_values() -> None:
    def f(unit: Literal["cm", "in"]) -> None: ...

    def g(k: Literal[1, 2, 3]) -> None: ...

    assert prop(f) == {"type": "string", "enum": ["cm", "in"]}
    assert prop(g) == {"type": "integer", "enum": [1, 2, 3]}


def test_an_enum_parameter_is_an_enum_of_its_member_values_and_arrives_as_a_member() -> None:
    seen = []

    def paint(color: Color, level: Level = Level.LOW) -> str:
        seen.append((color, level))
        return "ok"

    assert schema(paint)["properties"] == {
        "color": {"type": "string", "enum": ["red", "green"]},
        "level": {"type": "integer", "enum": [1, 2], "default": 1},
    }
    assert schema(paint)["required"] == ["color"]
    assert as_tool(paint)('{"color": "green", "level": 2}') == "ok"
    assert seen == [(Color.GREEN, Level.HIGH)]


def test_an_optional_parameter_may_be_null_and_is_not_required_when_it_has_a_default() -> None:
    def f(limit: Optional[int] = None, tag: str | None = None, must: float | None = 0.5) -> None: ...  # noqa: UP045

    assert schema(f) == {
        "type": "object",
        "properties": {
            "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
            "tag": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "must": {"anyOf": [{"type": "number"}, {"type": "null"}], "default": 0.5},
        },
        "required": [],
        "additionalProperties": False,
    }


def test_defaults_are_sent_and_make_a_parameter_optional() -> None:
    def f(key: str, limit: int = 10, exact: bool = False, tags: list[str] | None = None) -> None: ...

    s = schema(f)
    assert s["required"] == ["key"]
    assert s["properties"]["limit"] == {"type": "integer", "default": 10}
    assert s["properties"]["exact"] == {"type": "boolean", "default": False}
    assert s["properties"]["tags"] == {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
        "default": None,
    }


def test_an_unannotated_parameter_with_a_default_takes_the_defaults_type() -> None:
    f = defined("def f(limit=5, name='x'):\n    return limit")

    assert schema(f)["properties"] == {
        "limit": {"type": "integer", "default": 5},
        "name": {"type": "string", "default": "x"},
    }


def test_string_annotations_are_resolved_in_the_functions_module() -> None:
    namespace: dict[str, Any] = {}
    exec(
        "from __future__ import annotations\ndef f(k: list[str], n: int = 2) -> str:\n    return ''",
        namespace,
    )
    assert schema(namespace["f"])["properties"] == {
        "k": {"type": "array", "items": {"type": "string"}},
        "n": {"type": "integer", "default": 2},
    }


# -- docstrings ----------------------------------------------------------------------------


def test_google_docstring_gives_the_description_and_each_arguments_description() -> None:
    def lookup(key: str, limit: int = 3) -> list[str]:
        """Look a key up in the team glossary.

        Matches are case-insensitive.

        Args:
            key: The term to look up.
            limit (int): How many matches
                to return at most.

        Returns:
            The matching entries.
        """
        return []

    spec = describe_function(lookup).spec
    assert spec == {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a key up in the team glossary.\n\nMatches are case-insensitive.",
            "parameters": {
                "type": "object",
                "properties": {
                    "key": {"description": "The term to look up.", "type": "string"},
                    "limit": {
                        "description": "How many matches to return at most.",
                        "type": "integer",
                        "default": 3,
                    },
                },
                "required": ["key"],
                "additionalProperties": False,
            },
        },
    }


def test_numpy_docstring_gives_each_parameters_description() -> None:
    doc = """Convert a length.

    Parameters
    ----------
    value : float
        The length.
    unit, target : str
        Units, e.g. ``cm``.

    Returns
    -------
    float
        The converted length.
    """
    assert parse_docstring(doc) == (
        "Convert a length.",
        {"value": "The length.", "unit": "Units, e.g. ``cm``.", "target": "Units, e.g. ``cm``."},
    )


def test_rest_docstring_gives_each_parameters_description() -> None:
    doc = """Convert a length.

    :param value: The length,
        in any unit.
    :param str unit: The unit.
    :returns: the converted length
    :rtype: float
    """
    assert parse_docstring(doc) == (
        "Convert a length.",
        {"value": "The length, in any unit.", "unit": "The unit."},
    )


def test_a_function_without_docstring_has_no_description() -> None:
    def f(x: int) -> int:
        return x

    assert "description" not in describe_function(f).spec["function"]


# -- what cannot be described --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(x): pass", "cannot describe parameter 'x' of f(): it has no type hint"),
        ("def f(x: object): pass", "cannot describe parameter 'x' of f(): object has no JSON form"),
        ("def f(*rows: int): pass", "cannot describe *rows of f(): a tool takes named arguments"),
        ("def f(**kw: int): pass", "cannot describe **kw of f(): a tool takes named arguments"),
        (
            "def f(m: dict[int, str]): pass",
            "cannot describe parameter 'm' of f(): JSON object keys are strings",
        ),
        ("def f(t: tuple[int, str]): pass", "cannot describe parameter 't' of f(): use tuple[X, ...]"),
        (
            "def f(x: 'Missing'): pass",
            "cannot describe parameter 'x' of f(): its type hint 'Missing' does not resolve",
        ),
    ],
)
def test_a_function_that_cannot_be_described_is_one_error_naming_the_parameter(
    source: str, message: str
) -> None:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    with pytest.raises(ToolError) as info:
        describe_function(namespace["f"])
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_the_decorator_is_optional_names_the_tool_and_keeps_the_function_callable() -> None:
    @nbchat.tool(name="find", ask=False)
    def lookup(key: str) -> str:
        """Find a key."""
        return key.upper()

    assert lookup("a") == "A"
    described = as_tool(lookup)
    assert described.name == "find" and described.ask is False
    assert described.spec["function"]["description"] == "Find a key."

    @nbchat.tool
    def plain(key: str) -> str:
        return key

    assert as_tool(plain).ask is True

    with pytest.raises(ToolError, match="parameter 'x' of bad"):

        @nbchat.tool
        def bad(x: object) -> None: ...


# -- calls ---------------------------------------------------------------------------------


def test_a_call_with_bad_arguments_tells_the_model_what_is_wrong_without_running() -> None:
    ran = []

    def lookup(key: str, limit: float = 1.0) -> str:
        ran.append((key, limit))
        return "ok"

    tools = {"lookup": as_tool(lookup)}
    auto = Approval("auto")
    assert run_call(ToolCall("1", "lookup", '{"key": "a", "limit": 2}'), tools, auto).result == "ok"
    assert ran == [("a", 2.0)] and isinstance(ran[0][1], float)
    assert run_call(ToolCall("2", "lookup", '{"kee": "a"}'), tools, auto).result == (
        "Error: lookup has no argument 'kee'; it takes key, limit"
    )
    assert (
        run_call(ToolCall("3", "lookup", "{}"), tools, auto).result
        == "Error: lookup needs the argument 'key'"
    )
    bad = run_call(ToolCall("4", "lookup", '{"key": '), tools, auto)
    assert (
        bad.error
        and bad.result is not None
        and bad.result.startswith("Error: the arguments are not valid JSON")
    )
    unknown = run_call(ToolCall("5", "drop_tables", "{}"), tools, auto)
    assert unknown.refused and unknown.result == "Error: there is no tool 'drop_tables' (tools: lookup)"
    assert len(ran) == 1


def test_a_tools_exception_becomes_its_result() -> None:
    def divide(a: int, b: int) -> float:
        return a / b

    call = run_call(
        ToolCall("1", "divide", '{"a": 1, "b": 0}'), {"divide": as_tool(divide)}, Approval("auto")
    )
    assert call.error
    assert call.result == "Error: ZeroDivisionError: division by zero (at divide, line 330)".replace(
        "330", str(divide.__code__.co_firstlineno + 1)
    )


def test_results_are_text_json_or_a_description() -> None:
    def f(kind: str) -> object:
        return {"text": "plain", "dict": {"a": [1, 2]}, "none": None, "number": 2.5, "set": {3}}[kind]

    tools, auto = {"f": as_tool(f)}, Approval("auto")
    results = [
        run_call(ToolCall("1", "f", f'{{"kind": "{k}"}}'), tools, auto).result
        for k in ("text", "dict", "none", "number", "set")
    ]
    assert results == ["plain", '{"a": [1, 2]}', "null", "2.5", "{3}"]


# -- approval ------------------------------------------------------------------------------


def test_ask_shows_the_call_and_runs_it_only_on_yes() -> None:
    def lookup(key: str) -> str:
        return f"found {key}"

    prompts: list[str] = []
    answers = iter(["n", "y", ""])
    approval = Approval("ask", answering(prompts, answers))
    tools = {"lookup": as_tool(lookup)}
    results = [run_call(ToolCall(str(i), "lookup", '{"key": "x"}'), tools, approval).result for i in range(3)]
    assert prompts == ["Run lookup(key='x')? [y/N/a(ll)] "] * 3
    assert results == [
        "Not run: the user declined this call, so it did not run.",
        "found x",
        "Not run: the user declined this call, so it did not run.",
    ]


def test_all_approves_the_rest_of_the_cell_but_python_still_asks() -> None:
    def lookup(key: str) -> str:
        return key

    prompts: list[str] = []
    answers = iter(["a", "y", "n"])
    approval = Approval("ask", answering(prompts, answers))
    tools = {"lookup": as_tool(lookup), **builtin_tools({"x": 1})}
    calls = [
        ToolCall("1", "lookup", '{"key": "a"}'),
        ToolCall("2", "lookup", '{"key": "b"}'),
        ToolCall("3", "python", '{"code": "x + 1"}'),
        ToolCall("4", "python", '{"code": "x + 2"}'),
        ToolCall("5", "variables", "{}"),
    ]
    results = [run_call(c, tools, approval).result for c in calls]
    assert prompts == [
        "Run lookup(key='a')? [y/N/a(ll)] ",
        "Run this code with python?\nx + 1\n[y/N] ",
        "Run this code with python?\nx + 2\n[y/N] ",
    ]
    assert results == [
        "a",
        "b",
        "2",
        "Not run: the user declined this call, so it did not run.",
        "x: int = 1",
    ]


def test_without_stdin_an_unapproved_call_is_refused_and_the_model_is_told() -> None:
    from IPython.core.error import StdinNotImplementedError

    def no_stdin(prompt: str) -> str:
        raise StdinNotImplementedError(
            "raw_input was called, but this frontend does not support input requests."
        )

    ran = []

    def lookup(key: str) -> None:
        ran.append(key)

    call = run_call(
        ToolCall("1", "lookup", '{"key": "x"}'), {"lookup": as_tool(lookup)}, Approval("ask", no_stdin)
    )
    assert ran == [] and call.refused
    assert (
        call.result
        == "Not run: the user could not be asked to approve this call (no input available), so it did not run."
    )


# -- built-ins -----------------------------------------------------------------------------


def test_variables_lists_names_types_and_sizes_but_not_modules_or_private_names() -> None:
    import os

    def helper(a: int) -> int:
        return a

    ns = {"os": os, "_hidden": 1, "rows": [1, 2, 3], "name": "ab", "n": 4, "helper": helper, "In": []}
    text = as_tool(builtin_tools(ns)["variables"])("{}")
    assert text.splitlines() == [
        "rows: list, length 3",
        "name: str, length 2",
        "n: int = 4",
        "helper: function(a: int) -> int",
    ]


def test_describe_describes_one_variable_and_says_when_there_is_none() -> None:
    ns = {"config": {"depth": 3}}
    tools = builtin_tools(ns)
    assert (
        run_call(ToolCall("1", "describe", '{"name": "config"}'), tools, Approval("auto")).result
        == '{"depth": 3}'
    )
    missing = run_call(ToolCall("2", "describe", '{"name": "cfg"}'), tools, Approval("auto"))
    assert missing.error and "there is no variable named 'cfg'" in str(missing.result)


def test_python_runs_in_the_namespace_and_returns_output_value_or_error() -> None:
    ns: dict[str, Any] = {"x": 2}
    assert run_python("y = x * 10\nprint('hi')\ny + 1", ns) == "hi\n21"
    assert ns["y"] == 20
    error = run_python("print('before')\n1 / 0", ns)
    assert error.startswith("before\nTraceback (most recent call last):\n")
    assert error.endswith("ZeroDivisionError: division by zero")
    assert "nbchat" not in error
    assert run_python("z = 1", ns) == "(no output)"
    assert "SyntaxError" in run_python("def (", ns)


def test_call_deltas_assemble_across_the_shapes_compatible_servers_send() -> None:
    from nbchat.tools import CallParts

    openai = CallParts()  # id and name first, arguments in pieces, calls told apart by index
    for delta in [
        [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}],
        [{"index": 0, "function": {"arguments": '{"k": '}}],
        [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}],
        [{"index": 0, "function": {"arguments": '"v"}'}}],
    ]:
        openai.take(delta)
    assert [(c.id, c.name, c.arguments) for c in openai.calls()] == [
        ("call_a", "f", '{"k": "v"}'),
        ("call_b", "g", "{}"),
    ]

    ollama = CallParts()  # whole calls in one delta, arguments as an object, no index
    ollama.take(
        [{"id": "call_x", "function": {"name": "f", "arguments": {"k": "v"}}}, {"function": {"name": "g"}}]
    )
    assert [(c.id, c.name, c.arguments) for c in ollama.calls()] == [
        ("call_x", "f", '{"k": "v"}'),
        ("call_1", "g", "{}"),
    ]

    assert not CallParts() and not CallParts().calls()
