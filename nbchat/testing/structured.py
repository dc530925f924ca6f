"""The stand-in's structured output: deterministic JSON that matches the request's schema.

Not a model: every value is derived from the last user message (strings echo it, numbers
count it), so tests can tell which item a reply belongs to and check it exactly. A choice (an
enum's value, a bool) also depends on the model asked: each model departs from the text's
choice on about one item in four, so two models disagree somewhere, as real ones do, and each
answers the same item the same way every time.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def wants_json(body: dict[str, Any]) -> bool:
    kind = (body.get("response_format") or {}).get("type")
    return kind in ("json_schema", "json_object")


def reply_json(body: dict[str, Any]) -> str:
    """The reply text for a ``response_format`` request."""
    form = body.get("response_format") or {}
    text = _last_user_text(body)
    if form.get("type") == "json_schema":
        schema = (form.get("json_schema") or {}).get("schema") or {}
    else:  # json_object: the schema, if any, is in the system message
        schema = _schema_in_system(body) or {}
    if not schema:
        return json.dumps({"echo": text})
    return json.dumps(value_for(schema, text, "", schema, str(body.get("model") or "")))


def value_for(schema: dict[str, Any], text: str, name: str, root: dict[str, Any], model: str = "") -> Any:
    """A value of ``schema``'s type, computed from ``text`` (and the field's ``name``; a
    choice also from the ``model``)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return value_for(node, text, name, root, model)
    if "enum" in schema:
        options = schema["enum"]
        choice = sum(text.encode()) + _departs(model, name, text)
        return options[choice % len(options)] if options else None
    if "const" in schema:
        return schema["const"]
    if "anyOf" in schema:
        variants = [s for s in schema["anyOf"] if s.get("type") != "null"] or schema["anyOf"]
        return value_for(variants[0], text, name, root, model)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {k: value_for(v, text, k, root, model) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [value_for(schema.get("items") or {"type": "string"}, text, name, root, model)]
    if kind == "integer":
        return len(text)
    if kind == "number":
        return len(text) / 10
    if kind == "boolean":
        return (len(text) + _departs(model, name, text)) % 2 == 0
    if kind == "null":
        return None
    return f"{name}: {text}" if name else text


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _schema_in_system(body: dict[str, Any]) -> dict[str, Any] | None:
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "system":
            content = str(message.get("content") or "")
            start = content.find("{")
            while start >= 0:
                try:
                    found, _ = json.JSONDecoder().raw_decode(content, start)
                except json.JSONDecodeError:
                    found = None
                if isinstance(found, dict) and ("properties" in found or "type" in found):
                    return found
                start = content.find("{", start + 1)
    return None


def _departs(model: str, name: str, text: str) -> int:
    """1 on about one (model, field, text) in four: where this model picks the next option."""
    return int(hashlib.sha256(f"{model}\n{name}\n{text}".encode()).digest()[0] < 64)
