"""Tools: Python functions described as JSON Schema, their calls approved, run and answered.

Plain Python (no IPython): the magics hand in the user's namespace and an ``input``.
"""

from __future__ import annotations

import ast
import enum
import inspect
import io
import json
import math
import re
import sys
import time
import traceback
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from .content import text_of
from .context import Limits, cut, render, scrub_text
from .errors import NbChatError

_SIMPLE: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_ARRAYS = (list, tuple, set, frozenset)
_KINDS = "str, int, float, bool, list[...], dict[str, ...], Literal, Enum or Optional"


class ToolError(NbChatError):
    """A function cannot be offered as a tool (the message names the parameter)."""


class ToolArgumentsError(NbChatError):
    """The model's arguments do not fit the function (sent back to the model as the result)."""


class ToolFailed(NbChatError):
    """A tool gave no result (its server failed, timed out or stopped): the message is the
    call's error result, without the traceback a Python tool's exception gets."""


@dataclass
class ToolResult:
    """A result that is more than a value: the text the model reads, images shown to the
    user in the call's block (``{"mime", "data"}``, base64), and whether it is an error."""

    text: str
    images: list[dict[str, str]] = field(default_factory=list)
    error: bool = False


@dataclass
class Deferred:
    """Tools named now and described later (an MCP server's, listed once it runs): ``key``
    stands for them in the reply cache's key, so a replay loads nothing; ``load`` gives them."""

    key: dict[str, Any]
    load: Callable[[], list[Tool]]


@dataclass
class Tool:
    """A function the model may call, with the JSON Schema the model sees."""

    name: str
    function: Callable[..., Any]
    description: str
    parameters: dict[str, Any]
    hints: dict[str, Any] = field(default_factory=dict)
    ask: bool = True  # in tool_approval=ask mode, ask before each call
    always_ask: bool = False  # ask even after "a(ll)" (the python built-in)
    checked: bool = True  # arguments checked against the schema here (else by the tool's server)

    @property
    def spec(self) -> dict[str, Any]:
        """The entry of the request's ``tools`` list."""
        function: dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        function["parameters"] = self.parameters
        return {"type": "function", "function": function}

    def arguments(self, text: str) -> dict[str, Any]:
        """The model's JSON arguments, checked against the signature and converted
        (Enum members, floats); raises ``ToolArgumentsError`` saying what is wrong."""
        try:
            args = json.loads(text) if text and text.strip() else {}
        except json.JSONDecodeError as e:
            raise ToolArgumentsError(f"the arguments are not valid JSON ({e.msg}): {text[:200]}") from None
        if not isinstance(args, dict):
            raise ToolArgumentsError(f"the arguments must be a JSON object, not {type(args).__name__}")
        if not self.checked:
            return args
        properties = self.parameters.get("properties", {})
        unknown = [k for k in args if k not in properties]
        if unknown:
            takes = ", ".join(properties) or "no arguments"
            raise ToolArgumentsError(f"{self.name} has no argument {unknown[0]!r}; it takes {takes}")
        missing = [k for k in self.parameters.get("required", []) if k not in args]
        if missing:
            raise ToolArgumentsError(f"{self.name} needs the argument {missing[0]!r}")
        return {k: _convert(self.hints.get(k, Any), v, k) for k, v in args.items()}

    def __call__(self, arguments: str) -> Any:
        return self.function(**self.arguments(arguments))

    def display(self, arguments: str) -> str:
        # whole: the user approves exactly what will run, not the first 200 characters
        return call_text(self.name, arguments, limit=None)


def call_text(name: str, arguments: str, limit: int | None = 200) -> str:
    """``lookup(key='x')``: how a call looks in the prompt and in the call's block."""
    try:
        args = json.loads(arguments) if arguments and arguments.strip() else {}
        inner = ", ".join(f"{k}={v!r}" for k, v in args.items()) if isinstance(args, dict) else arguments
    except json.JSONDecodeError:
        inner = arguments
    text = visible(f"{name}({inner})")
    return text if limit is None or len(text) <= limit else text[: limit - 2] + "…)"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """Text from the model as the user must see it: a control character (an escape sequence
    that moves the cursor or erases a line could hide part of a call being approved) is
    shown as its escape, not obeyed."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def tool(function: Callable[..., Any] | None = None, *, name: str | None = None, ask: bool = True) -> Any:
    """Mark a function as a tool (optional: any function with type hints works)::

        @nbchat.tool
        def lookup(key: str) -> str:
            "Look a key up in the team's glossary."

    ``name`` renames it for the model; ``ask=False`` runs it without asking first (for
    functions that only read). The function itself is returned unchanged, so it stays
    callable as before; a function that cannot be described fails here, at definition.
    """

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        described = describe_function(fn, name=name)
        described.ask = ask
        fn.__nbchat_tool__ = described  # type: ignore[attr-defined]
        return fn

    return mark(function) if function is not None else mark


def as_tool(obj: Any, name: str | None = None) -> Tool:
    """A ``Tool`` for a function (or one already marked with ``@nbchat.tool``)."""
    if isinstance(obj, Tool):
        return obj
    marked = getattr(obj, "__nbchat_tool__", None)
    if isinstance(marked, Tool) and (name is None or name == marked.name):
        return marked
    if not callable(obj):
        raise ToolError(f"{name or obj!r} is not a function, so it cannot be a tool")
    return describe_function(obj, name=name)


_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what OpenAI accepts as a function's name


def describe_function(fn: Callable[..., Any], name: str | None = None) -> Tool:
    """The JSON Schema of ``fn``'s parameters, from its signature and its docstring."""
    label = name or getattr(fn, "__name__", None) or type(fn).__name__
    if not _NAME.fullmatch(label):
        raise ToolError(f"{label!r} cannot be a tool name (letters, digits, _ and -, at most 64)")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise ToolError(f"cannot read the signature of {label}()") from None
    hints = _hints(fn, signature, label)
    description, documented = parse_docstring(inspect.getdoc(fn))
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in signature.parameters.values():
        where = f"parameter {param.name!r} of {label}()"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise ToolError(f"cannot describe {star}{param.name} of {label}(): a tool takes named arguments")
        if param.kind is param.POSITIONAL_ONLY:
            raise ToolError(f"cannot describe {where}: it is positional-only; a tool takes named arguments")
        hint = hints.get(param.name, inspect.Parameter.empty)
        if hint is inspect.Parameter.empty:
            if param.default is inspect.Parameter.empty or param.default is None:
                raise ToolError(f"cannot describe {where}: it has no type hint")
            hint = type(param.default)
            hints[param.name] = hint
        schema = schema_of(hint, where)
        if param.name in documented:
            schema = {"description": documented[param.name], **schema}
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        else:
            default = param.default.value if isinstance(param.default, enum.Enum) else param.default
            if _is_json(default):
                schema["default"] = default
        properties[param.name] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    parameters["additionalProperties"] = False
    return Tool(label, fn, description, parameters, hints)


def _hints(fn: Callable[..., Any], signature: inspect.Signature, label: str) -> dict[str, Any]:
    """Resolved annotations; with ``from __future__ import annotations`` they are strings,
    and one that cannot be resolved is reported by its parameter."""
    try:
        return dict(typing.get_type_hints(fn))
    except Exception:
        pass
    scope = dict(getattr(fn, "__globals__", {}))
    hints: dict[str, Any] = {}
    for param in signature.parameters.values():
        annotation = param.annotation
        while isinstance(annotation, str):  # twice for a quoted hint under the future import
            try:
                annotation = eval(annotation, scope)  # the function's own module, as Python would
            except Exception as e:
                raise ToolError(
                    f"cannot describe parameter {param.name!r} of {label}(): "
                    f"its type hint {annotation!r} does not resolve ({type(e).__name__}: {e})"
                ) from None
        hints[param.name] = annotation
    return hints


def schema_of(hint: Any, where: str = "a value") -> dict[str, Any]:
    """JSON Schema for one type hint; anything else raises ``ToolError`` naming ``where``."""
    if hint is Any:
        return {}
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    if hint is type(None):
        return {"type": "null"}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return schema_of(args[0], where)
    if origin is Literal:
        return _enum_schema(list(args), where)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_schema([member.value for member in hint], where)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        inner = (
            schema_of(options[0], where)
            if len(options) == 1
            else {"anyOf": [schema_of(a, where) for a in options]}
        )
        if len(options) == len(args):
            return inner
        return {"anyOf": [*inner.get("anyOf", [inner]), {"type": "null"}]}
    if hint in _ARRAYS or origin in _ARRAYS or origin in (typing.Sequence, _abc_sequence()):
        schema: dict[str, Any] = {"type": "array"}
        if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
            raise ToolError(f"cannot describe {where}: use tuple[X, ...] or list[X], not {_name(hint)}")
        if args:
            schema["items"] = schema_of(args[0], where)
        return schema
    if hint is dict or origin in (dict, typing.Mapping, _abc_mapping()):
        if args and args[0] is not str:
            raise ToolError(f"cannot describe {where}: JSON object keys are strings, not {_name(args[0])}")
        schema = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            schema["additionalProperties"] = schema_of(args[1], where)
        return schema
    raise ToolError(f"cannot describe {where}: {_name(hint)} has no JSON form (use {_KINDS})")


def _abc_sequence() -> Any:
    import collections.abc

    return collections.abc.Sequence


def _abc_mapping() -> Any:
    import collections.abc

    return collections.abc.Mapping


def _enum_schema(values: list[Any], where: str) -> dict[str, Any]:
    for kind, name in ((bool, "boolean"), (str, "string"), (int, "integer"), (float, "number")):
        if values and all(type(v) is kind for v in values):
            return {"type": name, "enum": values}
    if not all(_is_json(v) for v in values):
        raise ToolError(f"cannot describe {where}: its choices are not JSON values")
    return {"enum": values}


def _convert(hint: Any, value: Any, name: str) -> Any:
    """The model's JSON value as the type the function declared: converted where nothing is
    lost (``"3"`` → 3, 3.0 → 3, ``"true"`` → True, an int → float, a value → its Enum member),
    else ``ToolArgumentsError`` naming the argument. A function never gets a value of another
    type than its hint says."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        return value
    if origin is typing.Annotated:
        return _convert(args[0], value, name)
    if origin is Literal or (isinstance(hint, type) and issubclass(hint, enum.Enum)):
        return _choice(hint, value, name)
    if origin in (Union, types.UnionType):
        return _union(args, value, name)
    if hint is type(None):
        if value is None:
            return None
        raise _wrong(name, "null", value)
    if hint in _SIMPLE:
        return _simple(hint, value, name)
    if hint in _ARRAYS or origin in _ARRAYS or origin in (typing.Sequence, _abc_sequence()):
        value = _parsed(value, list)
        if not isinstance(value, list):
            raise _wrong(name, "a list", value)
        items = [_convert(args[0], v, f"{name}[{i}]") for i, v in enumerate(value)] if args else value
        kind = (
            origin if origin in (tuple, set, frozenset) else hint if hint in (tuple, set, frozenset) else list
        )
        return kind(items) if kind is not list else items
    if hint is dict or origin in (dict, typing.Mapping, _abc_mapping()):
        value = _parsed(value, dict)
        if not isinstance(value, dict):
            raise _wrong(name, "an object", value)
        if len(args) == 2:
            return {k: _convert(args[1], v, f"{name}[{k!r}]") for k, v in value.items()}
        return value
    return value


def _simple(hint: type, value: Any, name: str) -> Any:
    """str, int, float or bool from a JSON value, where that loses nothing."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if number and value in (0, 1):
            return bool(value)
    elif hint is int:
        if number and float(value).is_integer() and math.isfinite(value):
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return int(value)
    elif hint is float:
        if number:
            return float(value)
        if isinstance(value, str):
            try:
                parsed = float(value)
            except ValueError:
                parsed = math.nan
            if math.isfinite(parsed):
                return parsed
    elif hint is str:
        if isinstance(value, str):
            return value
        if number:
            return json.dumps(value)  # 3 → "3", 2.5 → "2.5": what the model wrote
    raise _wrong(name, _WANTED[hint], value)


_WANTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}


def _choice(hint: Any, value: Any, name: str) -> Any:
    """A Literal's value or an Enum's member, also from the text of one (``"2"`` for 2)."""
    members: list[Any] | None = list(typing.cast(Any, hint)) if isinstance(hint, type) else None
    values = [m.value for m in members] if members is not None else list(typing.get_args(hint))
    for candidate in (value, *(_as_kind(type(v), value) for v in values)):
        for position, choice in enumerate(values):
            if type(candidate) is type(choice) and candidate == choice:
                return members[position] if members is not None else choice
    choices = ", ".join(repr(v) for v in values)
    raise ToolArgumentsError(f"argument {name!r} must be one of {choices}, not {value!r}")


_NONE = object()  # no such conversion


def _as_kind(kind: type, value: Any) -> Any:
    try:
        return _simple(kind, value, "") if kind in _SIMPLE else _NONE
    except ToolArgumentsError:
        return _NONE


def _union(options: tuple[Any, ...], value: Any, name: str) -> Any:
    """The first option the value already is, else the first it converts to losslessly."""
    if value is None:
        if type(None) in options:
            return None
        raise _wrong(name, " or ".join(_WANTED.get(o, _name(o)) for o in options), value)
    real = [o for o in options if o is not type(None)]
    for option in real:  # exactly one of the types: no conversion
        if option in _SIMPLE and type(value) is option:
            return value
    for option in real:
        try:
            return _convert(option, value, name)
        except ToolArgumentsError:
            continue
    raise _wrong(name, " or ".join(_WANTED.get(o, _name(o)) for o in options), value)


def _parsed(value: Any, kind: type) -> Any:
    """A list or object the model sent as JSON text (``"[1, 2]"``) instead of as JSON."""
    if isinstance(value, str) and value.strip()[:1] in "[{":
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        return parsed if isinstance(parsed, kind) else value
    return value


def _wrong(name: str, wanted: str, value: Any) -> ToolArgumentsError:
    shown = json.dumps(value) if _is_json(value) else repr(value)
    shown = shown if len(shown) <= 60 else shown[:59] + "…"
    return ToolArgumentsError(f"argument {name!r} must be {wanted}, not {shown}; it was not run")


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


# -- docstrings (Google, NumPy and reST styles) -------------------------------------------

_PARAM_SECTIONS = {
    "args",
    "arguments",
    "parameters",
    "params",
    "keyword args",
    "keyword arguments",
    "other parameters",
}
_OTHER_SECTIONS = {
    "returns",
    "return",
    "yields",
    "yield",
    "raises",
    "examples",
    "example",
    "note",
    "notes",
    "attributes",
    "see also",
    "warning",
    "warnings",
    "todo",
    "references",
    "methods",
}
_GOOGLE_HEADER = re.compile(r"([A-Za-z][A-Za-z ]*):\s*")
_GOOGLE_ENTRY = re.compile(r"\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)")
_REST_PARAM = re.compile(
    r":(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*\s)?\*{0,2}(\w+)\s*:\s*(.*)"
)


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The description (the prose before any section) and each parameter's description."""
    lines = inspect.cleandoc(doc).splitlines() if doc else []
    prose: list[str] = []
    params: dict[str, str] = {}
    mode, base = "prose", None
    current: list[str] = []
    for i, line in enumerate(lines):
        stripped, indent = line.strip(), len(line) - len(line.lstrip())
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if indent == 0 and stripped and len(following) >= 3 and set(following) == {"-"}:
            mode, current = ("numpy" if stripped.lower() in _PARAM_SECTIONS else "other"), []
            continue
        if mode in ("numpy", "other") and stripped and set(stripped) == {"-"}:
            continue  # the underline of a NumPy header
        header = _GOOGLE_HEADER.fullmatch(line)
        if header and header.group(1).lower() in _PARAM_SECTIONS | _OTHER_SECTIONS:
            mode = "google" if header.group(1).lower() in _PARAM_SECTIONS else "other"
            current, base = [], None
            continue
        if indent == 0 and stripped.startswith(":"):
            rest = _REST_PARAM.fullmatch(stripped)
            mode, current = ("rest", [rest.group(1)]) if rest else ("other", [])
            if rest:
                params[rest.group(1)] = rest.group(2).strip()
            continue
        if mode == "prose":
            prose.append(stripped)
        elif not stripped:
            continue
        elif mode == "google":
            base = indent if base is None else base
            entry = _GOOGLE_ENTRY.fullmatch(stripped)
            if indent <= base and entry:
                current = [entry.group(1)]
                params[entry.group(1)] = entry.group(2).strip()
            else:
                _extend(params, current, stripped)
        elif mode == "numpy":
            if indent == 0:
                names = stripped.split(" :")[0].split(":")[0]
                current = [n.strip().lstrip("*") for n in names.split(",") if n.strip()]
                for name in current:
                    params[name] = ""
            else:
                _extend(params, current, stripped)
        elif mode == "rest" and indent > 0:
            _extend(params, current, stripped)
    paragraphs = " ".join(line or "\n\n" for line in prose).split("\n\n")
    description = "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())
    return description, {k: v for k, v in params.items() if v}


def _extend(params: dict[str, str], names: list[str], text: str) -> None:
    for name in names:
        params[name] = f"{params[name]} {text}".strip()


def message_text(message: Mapping[str, Any]) -> str:
    """A message as a transcript shows it; the calls it asks for as ``→ lookup(key='a')``."""
    asked = message.get("tool_calls")
    calls = [c.get("function") for c in asked if isinstance(c, dict)] if isinstance(asked, list) else []
    lines = [text_of(message.get("content"))]
    lines += [
        f"→ {call_text(str(f.get('name')), str(f.get('arguments') or ''))}"
        for f in calls
        if isinstance(f, dict)
    ]
    return "\n".join(line for line in lines if line)


# -- results ------------------------------------------------------------------------------


def result_text(value: Any, limits: Limits | None = None, name: str = "result") -> str:
    """A tool's return value as the text the model reads: text as it is, JSON values as
    JSON, anything else described as ``{name}`` would show it (a DataFrame's shape,
    columns and first and last rows); cut to ``context_tokens``, secrets removed."""
    limits = limits or Limits()
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, (bool, int, float)):
        text = json.dumps(value)
    elif isinstance(value, (dict, list, tuple)) and _is_json(value):
        text = json.dumps(value, ensure_ascii=False)
    else:
        piece = render(value, limits, name).piece
        # a tool message carries text only: an image is named, not sent
        return (
            piece
            if isinstance(piece, str)
            else f"{text_of([piece])} (an image; a tool result carries text only)"
        )
    return cut(scrub_text(text, limits), limits.context_tokens)[0]


# -- built-in tools ------------------------------------------------------------------------

_HIDDEN = {"In", "Out", "exit", "quit", "get_ipython", "open"}
BUILTIN_NAMES = ("variables", "describe", "python")


def builtin_tools(
    namespace: Mapping[str, Any],
    hidden: Iterable[str] = (),
    transform: Callable[[str], str] | None = None,
    limits: Limits | None = None,
) -> dict[str, Tool]:
    """``variables``, ``describe`` and ``python``, working on ``namespace`` (the user's).

    ``hidden`` names are left out of ``variables`` (IPython's own); ``transform`` turns
    IPython syntax (``%magic``, ``!cmd``) into Python before ``python`` runs it.
    """
    skip = set(hidden) | _HIDDEN

    def variables() -> str:
        """List the user's variables: name, type and shape or length."""
        rows = []
        for name, value in namespace.items():
            if name.startswith("_") or name in skip or isinstance(value, types.ModuleType):
                continue
            rows.append(f"{name}: {_summary(value)}")
        return "\n".join(rows) if rows else "(no variables)"

    def describe(name: str) -> str:
        """Describe one of the user's variables compactly: for a table its shape, columns
        with types and first and last rows; for anything else its value.

        Args:
            name: The variable's name, or a dotted path such as ``df.columns``.
        """
        first, *attrs = name.strip().split(".")
        if first not in namespace:
            raise NameError(f"there is no variable named {first!r} (call variables to list them)")
        value = namespace[first]
        for attr in attrs:
            value = getattr(value, attr)
        return result_text(value, limits, name.strip())

    def python(code: str) -> str:
        """Run Python code in the user's notebook namespace and return what it printed, the
        value of its last expression, or its error. Variables it defines stay defined.

        Args:
            code: The code to run.
        """
        return run_python(code, namespace, transform, limits)

    found = {fn.__name__: describe_function(fn) for fn in (variables, describe, python)}
    found["variables"].ask = found["describe"].ask = False  # they only read
    found["python"].always_ask = True
    return found


def _summary(value: Any) -> str:
    kind = type(value).__name__
    if callable(value) and isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        try:
            return f"function{inspect.signature(value, eval_str=True)}"
        except Exception:
            return "function"
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return f"{kind}, shape {shape}"
    try:
        return f"{kind}, length {len(value)}"
    except Exception:
        text = repr(value) if isinstance(value, (int, float, bool, complex)) else ""
        return f"{kind} = {text}" if text else kind


def run_python(
    code: str,
    namespace: Mapping[str, Any],
    transform: Callable[[str], str] | None = None,
    limits: Limits | None = None,
) -> str:
    """Run ``code`` like a cell: output, the last expression's value, or the error, as text."""
    ns = typing.cast(dict[str, Any], namespace)
    out = io.StringIO()
    value: Any = None
    error = ""
    try:
        tree = ast.parse(transform(code) if transform else code, "<python tool>")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        with redirect_stdout(out), redirect_stderr(out):
            exec(compile(tree, "<python tool>", "exec"), ns)
            if isinstance(last, ast.Expr):
                value = eval(compile(ast.Expression(last.value), "<python tool>", "eval"), ns)
    except Exception as e:
        # the traceback without nbchat's own frames: the model should see the code's error
        frames = traceback.extract_tb(e.__traceback__)
        own = [f for f in frames if f.filename == "<python tool>"]
        lines = traceback.format_list(own) + traceback.format_exception_only(type(e), e)
        error = "Traceback (most recent call last):\n" + "".join(lines)
    parts = [scrub_text(out.getvalue().rstrip("\n"), limits or Limits())]
    if value is not None:
        parts.append(result_text(value, limits))
    parts.append(error.rstrip("\n"))
    text = "\n".join(p for p in parts if p)
    return text or "(no output)"


@dataclass
class Workspace:
    """Where tools live: the user's namespace (functions by name, and what the built-ins
    read and run in), IPython's own names to leave out, and how to turn IPython syntax
    into Python."""

    namespace: Mapping[str, Any]
    hidden: Iterable[str] = ()
    transform: Callable[[str], str] | None = None
    limits: Limits = field(default_factory=Limits)  # how much of a result is sent; secrets

    def builtins(self) -> dict[str, Tool]:
        return builtin_tools(self.namespace, self.hidden, self.transform, self.limits)

    def resolve(self, wanted: Iterable[Any], sources: Sources | None = None) -> dict[str, Tool]:
        return resolve(wanted, self.namespace, self.builtins, sources)

    def offer(
        self, wanted: Iterable[Any], sources: Sources | None = None
    ) -> tuple[dict[str, Tool], list[Deferred]]:
        """The tools to offer now, and those described only when a request goes out."""
        later: list[Deferred] = []
        return resolve(wanted, self.namespace, self.builtins, sources, later), later


# -- approval -----------------------------------------------------------------------------


class Approval:
    """``tool_approval`` for one cell: ``auto`` runs every call; ``ask`` asks with ``ask``
    (``input``) before each call, and "a(ll)" approves the rest of the cell's calls."""

    def __init__(self, mode: str = "ask", ask: Callable[[str], str] | None = None) -> None:
        self.mode = mode
        # looked up at each call: ipykernel swaps ``input`` in while a cell runs
        self.ask = ask if ask is not None else lambda prompt: input(prompt)
        self.everything = False
        self.asked = False  # the last check put its question to a person

    def asks(self, tool: Tool | None) -> bool:
        """Whether :meth:`check` will ask a person about a call of ``tool``."""
        if tool is None or self.mode == "auto" or not (tool.ask or tool.always_ask):
            return False
        return tool.always_ask or not self.everything

    def check(self, tool: Tool, arguments: str) -> str | None:
        """``None`` if the call may run, else why not (the model is told)."""
        self.asked = False
        if not self.asks(tool):
            return None
        choices = "[y/N]" if tool.always_ask else "[y/N/a(ll)]"
        prompt = f"Run {tool.display(arguments)}? {choices} "
        if tool.always_ask and "code" in tool.parameters["properties"]:
            code = visible(_code_of(arguments))
            prompt = f"Run this code with python?\n{code}\n{choices} "
        try:
            answer = self.ask(prompt).strip().lower()
            self.asked = True  # a person saw the question (it stays on screen)
        except (NotImplementedError, EOFError):
            # IPython's StdinNotImplementedError is a NotImplementedError: nbclient, voilà
            return "the user could not be asked to approve this call (no input available), so it did not run"
        if answer in ("a", "all") and not tool.always_ask:
            self.everything = True
            return None
        if answer in ("y", "yes"):
            return None
        return "the user declined this call, so it did not run"


def _code_of(arguments: str) -> str:
    try:
        args = json.loads(arguments)
        return str(args.get("code", arguments)) if isinstance(args, dict) else arguments
    except json.JSONDecodeError:
        return arguments


# -- one call -----------------------------------------------------------------------------


@dataclass
class ToolCall:
    """One call the model asked for, and what came of it."""

    id: str
    name: str
    arguments: str
    result: str | None = None
    error: bool = False  # the tool raised (its error is the result)
    refused: bool = False  # not approved, or not a tool offered
    seconds: float = 0.0
    # a person's decision (declined, or no one could be asked) or an interrupt: the turn is
    # not cached, so that a replay asks again rather than repeat what happened this once
    declined: bool = False
    interrupted: bool = False
    said: str = ""  # the text the model wrote with this round's calls (on its first call only)
    images: list[dict[str, str]] = field(default_factory=list)  # shown in the call's block, not sent
    asking: bool = False  # a person is being asked to approve it: nothing runs yet
    asked: bool = False  # a person was asked (the question stays on screen where it was asked)

    @property
    def shown(self) -> str:
        return call_text(self.name, self.arguments)

    def __repr__(self) -> str:
        return f"<ToolCall {self.shown} · {self.status}>"

    @property
    def status(self) -> str:
        """``waiting for approval``, ``running…``, ``0.02 s``, ``error · 0.02 s`` or ``not run``."""
        if self.result is None:
            return "waiting for approval" if self.asking else "running…"
        if self.refused:
            return "not run"
        return ("error · " if self.error else "") + f"{self.seconds:.2f} s"

    @property
    def message(self) -> dict[str, Any]:
        """The call as it appears in the assistant message's ``tool_calls``."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    @property
    def answer(self) -> dict[str, Any]:
        """The ``tool`` message carrying this call's result."""
        return {"role": "tool", "tool_call_id": self.id, "content": self.result or ""}


class CallParts:
    """Tool calls of one reply, assembled from stream deltas (the id and name arrive first,
    the arguments in pieces) or taken whole. Calls are told apart by ``id`` as well as by
    ``index``: some servers (Ollama) send index 0 for every call, others send no index."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []  # in the order the calls opened
        self._by_id: dict[str, int] = {}
        self._by_index: dict[int, int] = {}  # a delta's index -> the call it last opened

    def take(self, entries: Any, whole: bool = False) -> None:
        """Add a chunk's ``tool_calls`` deltas (``whole``: a whole message's calls, each its own)."""
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, dict):
                continue
            slot = self._new() if whole else self._slot(entry)
            slot["id"] = slot["id"] or str(entry.get("id") or "")
            function = entry.get("function") or {}
            slot["name"] = slot["name"] or str(function.get("name") or "")
            arguments = function.get("arguments")
            if isinstance(arguments, (dict, list)):  # some servers send an object, not JSON text
                arguments = json.dumps(arguments)
            if arguments:
                slot["arguments"].append(str(arguments))

    def _slot(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The call a delta belongs to: the one with its id; else the one its index opened,
        unless that one has another id (a repeated index); else, with neither index nor id,
        the latest, unless both are named (a name opens a call); otherwise a new call."""
        call_id = str(entry.get("id") or "")
        function = entry.get("function")
        named = isinstance(function, dict) and bool(function.get("name"))
        index = entry.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else None
        if call_id and call_id in self._by_id:
            number = self._by_id[call_id]
        elif (
            index is not None
            and index in self._by_index
            and not (call_id and self.parts[self._by_index[index]]["id"])
        ):
            number = self._by_index[index]
        elif index is None and not call_id and self.parts and not (named and self.parts[-1]["name"]):
            number = len(self.parts) - 1
        else:
            self._new()
            number = len(self.parts) - 1
        if index is not None:
            self._by_index[index] = number
        if call_id:
            self._by_id[call_id] = number
        return self.parts[number]

    def _new(self) -> dict[str, Any]:
        self.parts.append({"id": "", "name": "", "arguments": []})
        return self.parts[-1]

    def calls(self) -> list[ToolCall]:
        return [
            ToolCall(part["id"] or f"call_{number}", part["name"], "".join(part["arguments"]) or "{}")
            for number, part in enumerate(self.parts)
        ]

    def __bool__(self) -> bool:
        return bool(self.parts)


# names beyond the namespace and the built-ins (an MCP server's tools): a name -> its tools
Sources = Callable[[str], "Deferred | None"]


def resolve(
    wanted: Iterable[Any],
    namespace: Mapping[str, Any],
    builtins: Callable[[], Mapping[str, Tool]],
    sources: Sources | None = None,
    later: list[Deferred] | None = None,
) -> dict[str, Tool]:
    """Tools by name: a function (or ``Tool``) as it is; a name from ``namespace`` (a
    function there wins over a built-in of the same name); else a built-in; else one of
    ``sources`` (collected in ``later`` if given, loaded now if not)."""
    found: dict[str, Tool] = {}
    # "lookup,describe" is two names, as in --tools and %chatconfig
    items = [n.strip() if isinstance(n, str) else n for i in wanted for n in _names(i)]
    for item in items:
        if item == "":
            continue
        if not isinstance(item, str):
            described = as_tool(item)
        elif callable(namespace.get(item)):
            fn = namespace[item]
            # a lambda or a functools.partial has no usable name of its own: the model
            # calls it by the name the user gave it
            own = getattr(fn, "__name__", None)
            described = as_tool(fn, name=None if own and _NAME.fullmatch(own) else item)
        elif item in BUILTIN_NAMES:
            described = builtins()[item]
        elif sources is not None and (deferred := sources(item)) is not None:
            if later is not None:
                later.append(deferred)
            else:
                found.update((t.name, t) for t in deferred.load())
            continue
        else:
            what = "is not a function" if item in namespace else "is not defined"
            raise ToolError(
                f"unknown tool {item!r}: {item} {what} (built-in tools: {', '.join(BUILTIN_NAMES)})"
            )
        found[described.name] = described
    return found


def _names(item: Any) -> list[Any]:
    return item.split(",") if isinstance(item, str) else [item]


def run_call(
    call: ToolCall, tools: Mapping[str, Tool], approval: Approval, limits: Limits | None = None
) -> ToolCall:
    """Approve and run one call; any exception of the tool becomes its result."""
    tool = tools.get(call.name)
    if tool is None:
        offered = ", ".join(tools) or "none"
        call.result, call.refused = f"Error: there is no tool {call.name!r} (tools: {offered})", True
        return call
    refusal = approval.check(tool, call.arguments)
    call.asked = approval.asked
    if refusal is not None:
        call.result, call.refused, call.declined = f"Not run: {refusal}.", True, True
        return call
    start = time.perf_counter()
    try:
        value = tool(call.arguments)
        if isinstance(value, ToolResult):
            call.images, call.error = value.images, value.error
            value = value.text
        call.result = result_text(value, limits)
    except ToolArgumentsError as e:
        call.result, call.error = f"Error: {e}", True
    except ToolFailed as e:
        call.result, call.error = scrub_text(f"Error: {e}", limits or Limits()), True
    except Exception as e:
        call.result, call.error = scrub_text(f"Error: {_exception_text(e)}", limits or Limits()), True
    finally:
        call.seconds = time.perf_counter() - start
    return call


def _exception_text(e: BaseException) -> str:
    """The exception and where in the user's function it was raised: the innermost frame
    outside nbchat (a library's own line, deep inside pandas, says less than the call in the
    user's function that led there; nbchat's own lines say nothing to the user)."""
    import os

    ours = os.path.dirname(os.path.abspath(__file__))
    frames = [
        f for f in traceback.extract_tb(e.__traceback__) if not os.path.abspath(f.filename).startswith(ours)
    ]
    mine = [f for f in frames if "site-packages" not in f.filename and not f.filename.startswith(sys.prefix)]
    chosen = mine or frames
    where = f" (at {chosen[-1].name}, line {chosen[-1].lineno})" if chosen else ""
    return "".join(traceback.format_exception_only(type(e), e)).strip() + where


__all__ = [
    "BUILTIN_NAMES",
    "Approval",
    "CallParts",
    "Deferred",
    "Tool",
    "ToolArgumentsError",
    "ToolCall",
    "ToolError",
    "ToolFailed",
    "ToolResult",
    "Workspace",
    "as_tool",
    "builtin_tools",
    "describe_function",
    "message_text",
    "parse_docstring",
    "resolve",
    "result_text",
    "run_call",
    "run_python",
    "schema_of",
    "tool",
]
