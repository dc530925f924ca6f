"""Structured output: a SPEC (short spec, dict, JSON Schema, dataclass, pydantic class) to a
strict JSON Schema, and a reply's JSON checked against it. No IPython, no pydantic import."""

from __future__ import annotations

import copy
import dataclasses
import enum
import json
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from .errors import NbChatError

# the short spec's type words, as in simonw/llm's schema DSL, plus list[...] of them
_WORDS = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
}
_PY = {str: "string", int: "integer", float: "number", bool: "boolean"}
_NAME = re.compile(r"[A-Za-z_][\w-]*$")


class SchemaError(NbChatError):
    """A SPEC that cannot become a schema (a user mistake: nothing is sent)."""


class Mismatch(NbChatError):
    """A reply that is not JSON matching the schema (nothing is recorded)."""


@dataclasses.dataclass
class Schema:
    """A strict JSON Schema plus what to build from a matching value."""

    json: dict[str, Any]
    name: str = "reply"
    target: Any = None  # a dataclass or pydantic class to build, or None for a dict

    @property
    def fields(self) -> list[str]:
        """Top-level property names, in order: the columns of a table of results."""
        return list(self.json.get("properties") or {})

    def response_format(self) -> dict[str, Any]:
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "strict": True, "schema": self.json},
        }

    def instruction(self) -> str:
        """The system-message text for servers that accept only ``json_object``."""
        return (
            "Reply with one JSON object only (no prose, no code fence) that matches this JSON Schema:\n"
            + json.dumps(self.json, separators=(",", ":"))
        )

    def parse_reply(self, text: str, finish_reason: str | None, body: Mapping[str, Any]) -> Any:
        """:meth:`parse` for a reply that ended with ``finish_reason``: a reply cut off by the
        token limit says so, and names the limit, instead of blaming the model's JSON."""
        try:
            return self.parse(text)
        except Mismatch:
            if finish_reason != "length":
                raise
        name = next((k for k in ("max_tokens", "max_completion_tokens") if body.get(k)), None)
        limit = f"{name}={body[name]}" if name else "the server's own max_tokens"
        bigger = f"raise {name or 'max_tokens'}" + (
            f" (e.g. --max-tokens {2 * int(body[name])})" if name else ""
        )
        raise Mismatch(
            f"the reply was cut off at {limit} before its JSON was complete, so it does not match the "
            f"schema; {bigger}: {_clip(text)}"
        ) from None

    def parse(self, text: str) -> Any:
        """The reply's value: a dict, or an instance of the target class; else :class:`Mismatch`."""
        try:
            value = json.loads(_unfenced(text))
        except json.JSONDecodeError as e:
            raise Mismatch(f"the reply is not JSON ({e.msg} at character {e.pos}): {_clip(text)}") from None
        problems = validate(value, self.json)
        if problems:
            raise Mismatch(f"the reply does not match the schema: {'; '.join(problems[:3])} — {_clip(text)}")
        return self.build(value)

    def build(self, value: Any) -> Any:
        if self.target is None:
            return value
        if hasattr(self.target, "model_validate"):
            try:
                return self.target.model_validate(value)
            except Exception as e:  # pydantic's ValidationError, without importing pydantic
                raise Mismatch(f"the reply does not validate as {self.name}: {e}") from None
        return _build_dataclass(self.target, value)


def to_schema(spec: Any) -> Schema:
    """Any SPEC form to a :class:`Schema`; a SPEC that cannot be described raises :class:`SchemaError`."""
    if isinstance(spec, Schema):
        return spec
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as e:
                raise SchemaError(f"the schema is not valid JSON: {e.msg}") from None
        else:
            return Schema(strict(short_spec(text)))
    if isinstance(spec, Mapping):
        if _is_json_schema(spec):
            return Schema(strict(copy.deepcopy(dict(spec))), name=_title(spec))
        return Schema(strict(_object({str(k): _type_schema(v, str(k)) for k, v in spec.items()})))
    if isinstance(spec, type) and callable(getattr(spec, "model_json_schema", None)):
        pydantic_schema = dict(getattr(spec, "model_json_schema")())  # noqa: B009 (duck-typed)
        return Schema(strict(pydantic_schema), name=_clean_name(spec.__name__), target=spec)
    if isinstance(spec, type) and dataclasses.is_dataclass(spec):
        return Schema(strict(_dataclass_schema(spec)), name=_clean_name(spec.__name__), target=spec)
    raise SchemaError(
        f"cannot use {type(spec).__name__} as a schema: give a short spec ('label, score float'), "
        "a dict of names to types, a JSON Schema, a dataclass or a pydantic model class"
    )


def short_spec(text: str) -> dict[str, Any]:
    """``"label, score float, tags list[str]: why"`` to an object schema (comma or newline separated;
    a field without a type is a string; text after ``:`` is the field's description)."""
    fields = [f.strip() for f in re.split(r"\n" if "\n" in text else r",(?![^\[]*\])", text)]
    properties: dict[str, Any] = {}
    for field in filter(None, fields):
        head, _, description = field.partition(":")
        words = head.split(None, 1)
        if not words:
            raise SchemaError(f"schema field {field!r} has no name")
        name = words[0]
        if not _NAME.match(name):
            raise SchemaError(f"schema field name {name!r} is not a name (letters, digits, _ and -)")
        if name in properties:
            raise SchemaError(f"schema field {name!r} appears twice")
        prop = _word_schema(words[1].strip() if len(words) > 1 else "str", name)
        if description.strip():
            prop["description"] = description.strip()
        properties[name] = prop
    if not properties:
        raise SchemaError("the schema names no fields, e.g. --schema 'label, score float'")
    return _object(properties)


def _word_schema(word: str, name: str) -> dict[str, Any]:
    compact = word.replace(" ", "").lower()
    if compact in _WORDS:
        return {"type": _WORDS[compact]}
    inner = re.fullmatch(r"list\[(.+)\]", compact)
    if inner:
        return {"type": "array", "items": _word_schema(inner.group(1), name)}
    if compact == "list":
        return {"type": "array", "items": {"type": "string"}}
    raise SchemaError(
        f"schema field {name!r}: unknown type {word!r} (use str, int, float, bool or list[...])"
    )


def _type_schema(tp: Any, name: str) -> dict[str, Any]:
    """A Python type (or a type word) to a JSON Schema fragment."""
    if isinstance(tp, str):
        return _word_schema(tp, name)
    if isinstance(tp, Mapping):
        if _is_json_schema(tp):
            return dict(tp)
        return _object({str(k): _type_schema(v, f"{name}.{k}") for k, v in tp.items()})
    if tp in _PY:
        return {"type": _PY[tp]}
    if tp is list:
        return {"type": "array", "items": {"type": "string"}}
    if tp is type(None):
        return {"type": "null"}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and args:
        return {"type": "array", "items": _type_schema(args[0], name)}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(a, name) for a in args]}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_schema(tp)
    if isinstance(tp, type) and callable(getattr(tp, "model_json_schema", None)):
        return dict(getattr(tp, "model_json_schema")())  # noqa: B009 (duck-typed)
    raise SchemaError(f"schema field {name!r}: cannot describe type {tp!r}")


def _dataclass_schema(cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception as e:  # an annotation that does not resolve
        raise SchemaError(f"cannot read the type hints of {cls.__name__}: {e}") from None
    return _object(
        {f.name: _type_schema(hints.get(f.name, str), f.name) for f in dataclasses.fields(cls) if f.init}
    )


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def strict(schema: dict[str, Any], root: dict[str, Any] | None = None) -> dict[str, Any]:
    """What strict mode demands: every property required, no additional properties, ``$ref``
    siblings inlined (after openai-python's ``to_strict_json_schema``). Changes ``schema`` in place."""
    root = schema if root is None else root
    for key in ("$defs", "definitions"):
        for sub in (schema.get(key) or {}).values():
            strict(sub, root)
    if schema.get("type") == "object" or "properties" in schema:
        schema.setdefault("additionalProperties", False)
        props = schema.setdefault("properties", {})
        schema["required"] = list(props)
        for sub in props.values():
            strict(sub, root)
    if isinstance(schema.get("items"), dict):
        strict(schema["items"], root)
    for key in ("anyOf", "allOf", "prefixItems"):
        for sub in schema.get(key) or []:
            strict(sub, root)
    if "default" in schema and schema["default"] is None:
        del schema["default"]
    ref = schema.get("$ref")
    if isinstance(ref, str) and len(schema) > 1:
        resolved = _resolve(root, ref)
        schema.pop("$ref")
        merged = {**copy.deepcopy(resolved), **schema}
        schema.clear()
        schema.update(strict(merged, root))
    return schema


def validate(
    value: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None, at: str = "$"
) -> list[str]:
    """Problems of ``value`` against the subset of JSON Schema strict mode uses; ``[]`` if none."""
    root = schema if root is None else root
    if "$ref" in schema:
        return validate(value, _resolve(root, schema["$ref"]), root, at)
    if "anyOf" in schema:
        options = [validate(value, s, root, at) for s in schema["anyOf"]]
        if all(options):
            return [f"{at}: matches none of the allowed forms ({min(options, key=len)[0]})"]
        return []
    if "allOf" in schema:
        return [p for s in schema["allOf"] for p in validate(value, s, root, at)]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{at}: {value!r} is not one of {schema['enum']}"]
    if "const" in schema and value != schema["const"]:
        return [f"{at}: expected {schema['const']!r}"]
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_is(value, k) for k in kinds):
            return [f"{at}: expected {' or '.join(kinds)}, got {_kind(value)} {_clip(json.dumps(value), 40)}"]
    problems: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                problems.append(f"{at}: missing {name!r}")
        for name, item in value.items():
            if name in props:
                problems += validate(item, props[name], root, f"{at}.{name}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{at}: unexpected field {name!r}")
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            problems += validate(item, schema["items"], root, f"{at}[{i}]")
    return problems


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    checks: dict[str, Any] = {"string": str, "boolean": bool, "array": list, "object": dict}
    if kind == "null":
        return value is None
    return kind in checks and isinstance(value, checks[kind])


def _kind(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), "null")


def _resolve(root: Mapping[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise SchemaError(f"only local $ref values are supported, not {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, Mapping) or part not in node:
            raise SchemaError(f"$ref {ref!r} does not resolve")
        node = node[part]
    return dict(node)


def _is_json_schema(spec: Mapping[str, Any]) -> bool:
    """A JSON Schema (rather than a dict of field names to types)."""
    if isinstance(spec.get("type"), str) and spec.get("type") in {
        "object",
        "array",
        "string",
        "number",
        "integer",
        "boolean",
        "null",
    }:
        return True
    return (
        any(k in spec for k in ("$schema", "$defs", "anyOf"))
        or isinstance(spec.get("properties"), Mapping)
        or isinstance(spec.get("enum"), list)  # {"label": {"enum": ["pos", "neg"]}}
    )


def _title(spec: Mapping[str, Any]) -> str:
    return _clean_name(str(spec.get("title") or "reply"))


def _clean_name(name: str) -> str:
    # the API allows letters, digits, _ and - (at most 64)
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "reply"


def _build_dataclass(cls: Any, value: Any) -> Any:
    """A dataclass instance from a checked dict, nested dataclasses (and lists of them) too."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)) or not isinstance(value, dict):
        return value
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in value:
            tp = hints.get(f.name)
            item = value[f.name]
            if typing.get_origin(tp) is list and typing.get_args(tp) and isinstance(item, list):
                kwargs[f.name] = [_build_dataclass(typing.get_args(tp)[0], x) for x in item]
            elif isinstance(tp, type) and issubclass(tp, enum.Enum):
                kwargs[f.name] = tp(item)
            else:
                kwargs[f.name] = _build_dataclass(tp, item)
    return cls(**kwargs)


def as_record(value: Any) -> dict[str, Any]:
    """A parsed value as a dict of its fields (for tables and DataFrame rows)."""
    if isinstance(value, dict):
        return value
    if callable(getattr(value, "model_dump", None)):
        return dict(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return {"value": value}


def _unfenced(text: str) -> str:
    """Some servers wrap JSON in a Markdown code fence even in JSON mode."""
    match = re.fullmatch(r"\s*```(?:json)?\s*\n(.*)\n\s*```\s*", text, re.S)
    return match.group(1) if match else text


def _clip(text: str, limit: int = 120) -> str:
    text = text.strip().replace("\n", " ")
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def request_with(body: dict[str, Any], schema: Schema, fallback: bool) -> None:
    """Ask for ``schema`` in ``body``: ``json_schema`` strict, or (for servers that reject it)
    ``json_object`` with the schema in the system message. Changes ``body`` in place."""
    if not fallback:
        body["response_format"] = schema.response_format()
        return
    body["response_format"] = {"type": "json_object"}
    messages = [dict(m) for m in body["messages"]]
    if messages and messages[0]["role"] == "system" and isinstance(messages[0].get("content"), str):
        messages[0]["content"] = f"{messages[0]['content']}\n\n{schema.instruction()}"
    else:
        messages.insert(0, {"role": "system", "content": schema.instruction()})
    body["messages"] = messages
