"""The stand-in's structured output: deterministic JSON that matches the request's schema.

Not a model: every value is derived from the last user message (strings echo it, numbers
count it), so tests can tell which item a reply belongs to and check it exactly.
"""

from __future__ import annotations

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
    return json.dumps(value_for(schema, text, "", schema))


def value_for(schema: dict[str, Any], text: str, name: str, root: dict[str, Any]) -> Any:
    """A value of ``schema``'s type, computed from ``text`` (and the field's ``name``)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return value_for(node, text, name, root)
    if "enum" in schema:
        options = schema["enum"]
        return options[sum(text.encode()) % len(options)] if options else None
    if "const" in schema:
        return schema["const"]
    if "anyOf" in schema:
        variants = [s for s in schema["anyOf"] if s.get("type") != "null"] or schema["anyOf"]
        return value_for(variants[0], text, name, root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {k: value_for(v, text, k, root) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [value_for(schema.get("items") or {"type": "string"}, text, name, root)]
    if kind == "integer":
        return len(text)
    if kind == "number":
        return len(text) / 10
    if kind == "boolean":
        return len(text) % 2 == 0
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
