"""The stand-in's ``/v1/responses``: the last input item echoed back, a reasoning summary
when one is asked for, in the Responses API's JSON and streaming events."""

from __future__ import annotations

import base64
import dataclasses
import time
from typing import Any

from . import refusals, wire
from .chat import REASONING_TOKENS, completion_parts
from .text import TOKENS, count_tokens, text_of
from .tool_calls import scripted_calls, written_calls
from .wire import STAND_IN, Handler

_PARTS = {"input_text": "text", "output_text": "text", "input_image": "image_url", "input_file": "file"}


def as_messages(items: list[Any]) -> list[dict[str, Any]]:
    """Input items as chat messages, so the echo reads them as the chat stand-in does."""
    messages: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict) and item.get("type") == "function_call":
            call = {"id": item.get("call_id"), "type": "function", "function": {"name": item.get("name")}}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            continue
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item.get("call_id"), "content": item.get("output")}
            )
            continue
        if not isinstance(item, dict) or "role" not in item:
            continue
        value = item.get("content")
        if isinstance(value, list):
            parts: list[dict[str, Any]] = []
            for part in value:
                kind = _PARTS.get(part.get("type"))
                if kind == "text":
                    parts.append({"type": "text", "text": part.get("text", "")})
                elif kind == "image_url":
                    parts.append({"type": "image_url", "image_url": {"url": part.get("image_url", "")}})
                elif kind == "file":
                    fields = {k: v for k, v in part.items() if k != "type"}
                    parts.append({"type": "file", "file": fields})
            value = parts
        messages.append({"role": item["role"], "content": value})
    return messages


def summary_of(messages: list[dict[str, Any]]) -> str:
    last = messages[-1]["content"] if messages else ""
    text = last if isinstance(last, str) else text_of(last)
    return (
        f"**Reading the message**\n\nThe stand-in was asked about {len(text)} characters; it will echo them."
    )


def responses(handler: Handler, raw: bytes) -> None:
    body = wire.body_of(handler, raw)
    if body is None:
        return
    items = body.get("input") if isinstance(body, dict) else None
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not body.get("model"):
        return wire.bad_request(handler, "'model' and 'input' are required", "input")
    for name in ("n", "stop", "seed", "frequency_penalty", "presence_penalty", "messages", "max_tokens"):
        if name in body:
            return wire.bad_request(handler, f"Unsupported parameter: '{name}'.", name)
    if refusals.refused(handler, body, "responses"):
        return None
    lost = unkept_reasoning(body, items)
    if lost is not None:
        return handler._json(
            404,
            {"error": {"message": lost, "type": "invalid_request_error", "param": "input", "code": None}},
        )
    script = wire.scripted(handler)
    if script is None:
        return
    messages = as_messages(items)
    chat_body = {
        "messages": messages or [{"role": "user", "content": ""}],
        "max_tokens": body.get("max_output_tokens"),
        "tools": [{"function": t} for t in body.get("tools") or () if isinstance(t, dict)],
    }
    if script.tool_calls is None and script.text is None and script.chunks is None:
        script = dataclasses.replace(script, tool_calls=written_calls(chat_body))
    calls = [_call_item(c) for c in scripted_calls(script.tool_calls)]
    (pieces,), (reason,) = completion_parts(chat_body, script, handler.stand_in.quirks)
    reasoning = body.get("reasoning") or {}
    summary = TOKENS.findall(summary_of(messages)) if reasoning.get("summary") else []
    thought = REASONING_TOKENS.get(str(reasoning.get("effort") or "medium"), 0) if reasoning else 0
    prompt = 3 + sum(3 + count_tokens(text_of(m["content"])) for m in messages)
    usage = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": len(pieces) + thought,
        "output_tokens_details": {"reasoning_tokens": thought},
        "total_tokens": prompt + len(pieces) + thought,
    }
    cut = reason == "length"
    response = {
        "id": "resp_standin",
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if cut else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "error": None,
        "model": body["model"],
        "store": body.get("store", True),
        "output": output(summary, pieces, encrypted(body, items), calls),
        "usage": usage if script.usage else None,
        "metadata": {"served_by": STAND_IN},
    }
    if not body.get("stream"):
        return handler._json(200, response)
    events = Events()
    started = response | {"status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    opening = [events("response.created", response=started), events("response.in_progress", response=started)]
    content_: list[bytes] = []
    if summary:
        opening.append(events("response.output_item.added", output_index=0, item=_reasoning_item([])))
        opening.append(
            events(
                "response.reasoning_summary_part.added",
                item_id="rs_standin",
                output_index=0,
                summary_index=0,
                part={"type": "summary_text", "text": ""},
            )
        )
        for piece in summary:
            content_.append(
                events(
                    "response.reasoning_summary_text.delta",
                    item_id="rs_standin",
                    output_index=0,
                    summary_index=0,
                    delta=piece,
                )
            )
    at = 1 if summary else 0
    head = b""
    if summary:
        done = "".join(summary)
        head += events(
            "response.reasoning_summary_text.done",
            item_id="rs_standin",
            output_index=0,
            summary_index=0,
            text=done,
        )
        head += events("response.output_item.done", output_index=0, item=_reasoning_item(summary))
    head += events("response.output_item.added", output_index=at, item=_message_item([], "in_progress"))
    head += events(
        "response.content_part.added",
        item_id="msg_standin",
        output_index=at,
        content_index=0,
        part={"type": "output_text", "text": "", "annotations": []},
    )
    for k, piece in enumerate(pieces):
        delta = events(
            "response.output_text.delta",
            item_id="msg_standin",
            output_index=at,
            content_index=0,
            delta=piece,
            logprobs=[],
        )
        content_.append((head if k == 0 else b"") + delta)
    if not pieces:
        opening.append(head)
    called = [b"".join(_call_events(events, at + 1 + k, c)) for k, c in enumerate(calls)]
    closing = [
        *called,
        events(
            "response.output_text.done",
            item_id="msg_standin",
            output_index=at,
            content_index=0,
            text="".join(pieces),
        ),
        events("response.output_item.done", output_index=at, item=_message_item(pieces, "completed")),
        events("response.incomplete" if cut else "response.completed", response=response),
    ]

    def error_event() -> bytes:
        return events("error", code="server_error", message="scripted error event", param=None)

    wire.stream(handler, script, opening, content_, closing, error_event)


class Events:
    """Numbers each event, as the Responses API does."""

    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return wire.sse(data, event=kind)


def output(
    summary: list[str],
    pieces: list[str],
    secret: str | None = None,
    calls: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    items = [_reasoning_item(summary)] if summary or secret else []
    if secret:
        items[0]["encrypted_content"] = secret
    return [*items, _message_item(pieces, "completed"), *(calls or [])]


def _call_item(call: dict[str, Any]) -> dict[str, Any]:
    function = call["function"]
    return {
        "id": f"fc_{call['id']}",
        "type": "function_call",
        "status": "completed",
        "call_id": call["id"],
        "name": function["name"],
        "arguments": function["arguments"],
    }


def _call_events(events: Events, at: int, item: dict[str, Any]) -> list[bytes]:
    """A function call as the Responses API streams it: added, its arguments, done."""
    opened = item | {"arguments": "", "status": "in_progress"}
    return [
        events("response.output_item.added", output_index=at, item=opened),
        events(
            "response.function_call_arguments.delta",
            item_id=item["id"],
            output_index=at,
            delta=item["arguments"],
        ),
        events(
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=at,
            arguments=item["arguments"],
        ),
        events("response.output_item.done", output_index=at, item=item),
    ]


def encrypted(body: dict[str, Any], items: list[Any]) -> str | None:
    """The stand-in's "encrypted reasoning" when ``include`` asks for it: a deterministic
    token naming the request's input (not encrypted, and says so)."""
    if "reasoning.encrypted_content" not in (body.get("include") or ()):
        return None
    said = f"stand-in reasoning over {len(items)} input items (not encrypted)"
    return base64.b64encode(said.encode()).decode()


def unkept_reasoning(body: dict[str, Any], items: list[Any]) -> str | None:
    """OpenAI's answer to a reasoning item without its encrypted content when nothing is
    stored: the server cannot find it."""
    for item in items:
        if isinstance(item, dict) and item.get("type") == "reasoning" and body.get("store") is False:
            if not isinstance(item.get("encrypted_content"), str):
                return (
                    f"Item with id '{item.get('id')}' not found. Items are not persisted when "
                    "`store` is set to false. Try again with `store` set to true, or remove this item "
                    "from your input."
                )
    return None


def _reasoning_item(summary: list[str]) -> dict[str, Any]:
    parts = [{"type": "summary_text", "text": "".join(summary)}] if summary else []
    return {"id": "rs_standin", "type": "reasoning", "summary": parts}


def _message_item(pieces: list[str], status: str) -> dict[str, Any]:
    parts = [{"type": "output_text", "text": "".join(pieces), "annotations": []}] if pieces else []
    return {"id": "msg_standin", "type": "message", "role": "assistant", "status": status, "content": parts}
