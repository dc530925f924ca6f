"""The stand-in's tool calls: a script asks for calls, streamed (arguments split across
chunks, several calls in one reply) or whole; ``tool`` results are echoed so loops end.

Unscripted, the stand-in (not a model) calls the offered tools that the user's message
writes out as calls, ``describe(name='sales')``, so demo notebooks run offline."""

from __future__ import annotations

import ast
import itertools
import json
import re
from typing import Any

_IDS = itertools.count(1)


def scripted_calls(spec: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """``[{"name", "arguments" (a dict or JSON text), "id"?}]`` as the wire's ``tool_calls``."""
    calls = []
    for entry in spec or ():
        arguments = entry.get("arguments", {})
        calls.append(
            {
                "id": entry.get("id") or f"call_standin_{next(_IDS)}",
                "type": "function",
                "function": {
                    "name": entry["name"],
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                },
            }
        )
    return calls


def call_deltas(calls: list[dict[str, Any]], pieces: int) -> list[dict[str, Any]]:
    """The ``delta`` of each stream chunk for ``calls``: one opens a call (id, name, no
    arguments yet), then its arguments follow in ``pieces`` parts, as OpenAI sends them."""
    deltas: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        function = call["function"]
        opening = {"index": index, "id": call["id"], "type": "function"}
        deltas.append({"tool_calls": [opening | {"function": {"name": function["name"], "arguments": ""}}]})
        text = function["arguments"]
        size = max(1, -(-len(text) // max(pieces, 1)))
        for start in range(0, len(text), size):
            part = {"index": index, "function": {"arguments": text[start : start + size]}}
            deltas.append({"tool_calls": [part]})
    return deltas


def tool_results(messages: list[Any]) -> list[str] | None:
    """The results at the end of a request (after the model's calls), or ``None``."""
    results: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        results.insert(0, str(message.get("content") or ""))
    return results or None


def rejects_tools(body: dict[str, Any]) -> dict[str, Any] | None:
    """The 400 a server without tool support answers (vLLM without a tool parser)."""
    if not body.get("tools"):
        return None
    return {
        "error": {
            "message": '"auto" tool choice requires --enable-auto-tool-choice and '
            "--tool-call-parser to be set",
            "type": "BadRequestError",
            "param": "tools",
            "code": 400,
        }
    }


_WRITTEN = re.compile(r"\b([A-Za-z_][\w-]*)\(([^()]*)\)")


def written_calls(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The calls the last user message writes out, of tools the request offers."""
    offered = {(t.get("function") or {}).get("name") for t in body.get("tools") or () if isinstance(t, dict)}
    messages = body.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    if not offered or last.get("role") != "user" or not isinstance(last.get("content"), str):
        return None
    found = []
    for name, inner in _WRITTEN.findall(last["content"]):
        if name not in offered:
            continue
        try:
            call = ast.parse(f"f({inner})", mode="eval").body
            if not isinstance(call, ast.Call) or call.args:
                continue  # only name=value arguments, as a JSON object has them
            arguments = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
        except (SyntaxError, ValueError):
            continue
        found.append({"name": name, "arguments": arguments})
    return found or None
