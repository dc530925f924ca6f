"""The stand-in's Chat Completions (``/chat/completions``, JSON and streamed) and its model
list (``/models``): the last message echoed back, as the quirks and scripts of the server
say. Not a model."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any

from . import refusals, wire
from .structured import reply_json, wants_json
from .text import TOKENS, content_tokens, is_parts, text_of
from .tool_calls import call_deltas, rejects_tools, scripted_calls, tool_results, written_calls
from .wire import STAND_IN, Handler, Quirks, Script

# the stand-in "thinks" a fixed number of tokens per reasoning_effort
REASONING_TOKENS = {"low": 16, "medium": 64, "high": 256, "xhigh": 512}
_COUNT_LOCK = threading.Lock()


def completions(handler: Handler, raw: bytes) -> None:
    """``POST …/chat/completions``; counts the requests answered at once (a map's bound)."""
    with _COUNT_LOCK:
        handler.stand_in.inflight += 1
        handler.stand_in.max_inflight = max(handler.stand_in.max_inflight, handler.stand_in.inflight)
    try:
        body = wire.body_of(handler, raw)
        if body is not None:
            _answer(handler, body)
    finally:
        with _COUNT_LOCK:
            handler.stand_in.inflight -= 1


def models(handler: Handler, raw: bytes) -> None:
    """``GET …/models``: the server's model list (a scripted error answers it instead)."""
    handler._record(None)
    if handler.stand_in.quirks.no_models:
        return handler._json(
            404, {"error": {"message": f"no route {handler.path}", "type": "invalid_request_error"}}
        )
    script = handler.stand_in.scripts[0] if handler.stand_in.scripts else None
    if script is not None and script.status != 200:
        handler.stand_in.next_script()
        return handler._error(script)
    data = [
        {"id": m, "object": "model", "created": 0, "owned_by": "nbchat stand-in (not a model)"}
        for m in handler.stand_in.models
    ]
    handler._json(200, {"object": "list", "data": data})


def _refusal(handler: Handler, body: dict[str, Any]) -> dict[str, Any] | None:
    """The 400 a request gets for a quirk of this server (no tools, no stream_options, no
    json_schema, no vision)."""
    quirks = handler.stand_in.quirks
    if quirks.reject_tools and (refusal := rejects_tools(body)):
        return refusal
    if quirks.reject_stream_options and "stream_options" in body:
        return _invalid("Unrecognized request argument supplied: stream_options", "stream_options")
    if quirks.reject_json_schema and (body.get("response_format") or {}).get("type") == "json_schema":
        return _invalid("response_format json_schema is not supported by this server", "response_format")
    refused = _refused_part(body) if quirks.text_only else None
    return {"error": refused} if refused is not None else None


def _invalid(message: str, param: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param}}


def _answer(handler: Handler, body: Any) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
        return handler._json(400, _invalid("'model' and 'messages' are required", "messages"))
    if "/openai/deployments/" in handler.path and (
        "api-version=" not in handler.path or "api-key" not in handler.headers
    ):
        said = "Azure requests need ?api-version= and an api-key header"
        return handler._json(401, {"error": {"message": said, "type": "invalid_request_error"}})
    if refusals.refused(handler, body):
        return None
    refusal = _refusal(handler, body)
    if refusal is not None:
        return handler._json(400, refusal)
    script = handler.stand_in.next_script(body)
    if script.tool_calls is None and script.text is None and script.chunks is None:
        script = dataclasses.replace(script, tool_calls=written_calls(body))
    if script.delay:
        time.sleep(script.delay)
    if script.reset_before:
        return handler._reset()
    if script.status != 200:
        return handler._error(script)
    if body.get("stream"):
        return stream(handler, body, script)
    return whole(handler, body, script)


def reply_text(body: dict[str, Any]) -> str:
    if wants_json(body):
        return reply_json(body)
    messages = body.get("messages") or [{}]
    results = tool_results(messages)
    if results is not None:  # after tool calls: echo their results, so a tool loop ends
        return f"Echo: {' | '.join(results)}"
    last = messages[-1].get("content") if isinstance(messages[-1], dict) else None
    if isinstance(last, list) and is_parts(last):
        # parts arrive as text, with each image or file named: "[image/png 640×480]"
        return f"Echo: {text_of(last)}"
    return f"Echo: {last if isinstance(last, str) else json.dumps(last)}"


def completion_parts(
    body: dict[str, Any], script: Script, quirks: Quirks
) -> tuple[list[list[str]], list[str | None]]:
    """Each choice's pieces after ``stop`` and ``max_tokens``, and its finish_reason."""
    calling = bool(script.tool_calls) and script.text is None and script.chunks is None
    base = "" if calling else script.text if script.text is not None else reply_text(body)
    n = 1 if quirks.ignore_n else int(body.get("n") or 1)
    stops = body.get("stop") or []
    stops = [stops] if isinstance(stops, str) else stops
    choices, reasons = [], []
    for i in range(n):
        text = base if i == 0 else f"{base} (choice {i + 1})"
        pieces = list(script.chunks) if script.chunks is not None and i == 0 else TOKENS.findall(text)
        reason: str | None = None if quirks.no_finish_reason else script.finish_reason
        if script.tool_calls and i == 0 and reason == "stop":
            reason = "tool_calls"
        joined = "".join(pieces)
        cut = min((joined.find(s) for s in stops if s and s in joined), default=-1)
        if cut >= 0:
            pieces, reason = TOKENS.findall(joined[:cut]), reason and "stop"
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if limit is not None and len(pieces) > limit:
            pieces, reason = pieces[:limit], reason and "length"
        choices.append(pieces)
        reasons.append(reason)
    return choices, reasons


def logprob_entry(token: str, position: int, top: int) -> dict[str, Any]:
    logprob = -round(0.05 + 0.4 * (position % 7), 3)
    alternatives = [token, token.upper(), token.strip() + "?"][: max(top, 0)]
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode()),
        "top_logprobs": [
            {"token": alt, "logprob": round(logprob - k * 1.5, 3), "bytes": list(alt.encode())}
            for k, alt in enumerate(alternatives)
        ],
    }


def usage(body: dict[str, Any], choices: list[list[str]]) -> dict[str, Any]:
    prompt = 3 + sum(3 + content_tokens(m.get("content")) for m in body["messages"] if isinstance(m, dict))
    # like OpenAI: reasoning tokens are part of the completion tokens, reported apart
    reasoning = REASONING_TOKENS.get(str(body.get("reasoning_effort")), 0)
    completion = sum(len(c) for c in choices) + reasoning
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def whole(handler: Handler, body: dict[str, Any], script: Script) -> None:
    choices, reasons = completion_parts(body, script, handler.stand_in.quirks)
    top = body.get("top_logprobs") or 0
    logprobs = body.get("logprobs") and not handler.stand_in.quirks.no_logprobs
    calls = scripted_calls(script.tool_calls)
    data: dict[str, Any] = {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "system_fingerprint": STAND_IN,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": "".join(pieces)}
                | ({"tool_calls": calls, "content": "".join(pieces) or None} if calls and i == 0 else {}),
                "finish_reason": reasons[i],
                "logprobs": {"content": [logprob_entry(t, k, top) for k, t in enumerate(pieces)]}
                if logprobs
                else None,
            }
            for i, pieces in enumerate(choices)
        ],
    }
    if script.usage:
        data["usage"] = usage(body, choices)
    handler._json(200, data | handler.stand_in.quirks.extra_fields)


def stream(handler: Handler, body: dict[str, Any], script: Script) -> None:
    choices, reasons = completion_parts(body, script, handler.stand_in.quirks)
    top = body.get("top_logprobs") or 0
    base = {
        "id": "chatcmpl-standin",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
        "system_fingerprint": STAND_IN,
    }

    def event(choices_: list[dict[str, Any]], **extra: Any) -> bytes:
        return wire.sse(base | {"choices": choices_} | extra)

    opening = [
        event(
            [
                {"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                for i in range(len(choices))
            ]
        )
    ]
    content = []
    for k in range(max(map(len, choices), default=0)):
        batch = []
        for i, pieces in enumerate(choices):
            if k < len(pieces):
                choice: dict[str, Any] = {
                    "index": i,
                    "delta": {"content": pieces[k]},
                    "finish_reason": None,
                }
                if body.get("logprobs") and not handler.stand_in.quirks.no_logprobs:
                    choice["logprobs"] = {"content": [logprob_entry(pieces[k], k, top)]}
                batch.append(choice)
        content.append(event(batch))
    calls = [
        event([{"index": 0, "delta": delta, "finish_reason": None}])
        for delta in call_deltas(scripted_calls(script.tool_calls), script.argument_pieces)
    ]
    closing = [event([{"index": i, "delta": {}, "finish_reason": reasons[i]} for i in range(len(choices))])]
    wants_usage = (body.get("stream_options") or {}).get("include_usage")
    if script.usage and wants_usage and not handler.stand_in.quirks.no_stream_usage:
        closing.append(event([], usage=usage(body, choices)))
    closing.append(b"data: [DONE]\n\n")
    error = {"error": {"message": "scripted error event", "type": "server_error"}}
    wire.stream(handler, script, opening, content, closing, lambda: wire.sse(error), paced=calls)


def _refused_part(body: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's answer when a model without vision is sent an image (or a file)."""
    for i, message in enumerate(body["messages"]):
        parts = message.get("content") if isinstance(message, dict) else None
        for j, part in enumerate(parts if isinstance(parts, list) else []):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in ("image_url", "file"):
                return {
                    "message": f"Invalid content type. {kind} is only supported by certain models.",
                    "type": "invalid_request_error",
                    "param": f"messages.[{i}].content.[{j}].type",
                    "code": None,
                }
    return None
