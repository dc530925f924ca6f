"""The stand-in's legacy ``/v1/completions``: a raw prompt in, its echo as the continuation,
with ``echo``, the integer ``logprobs`` (tokens, token_logprobs, top_logprobs, text_offset),
``n``, ``stop``, ``max_tokens`` and streaming."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from . import wire
from .chat import completion_parts, logprob_entry
from .text import TOKENS, count_tokens
from .wire import Handler


def legacy_logprobs(tokens: list[str], start: int, offset: int, top: int, prompt: bool) -> dict[str, Any]:
    """The legacy shape for ``tokens``; the first prompt token has no probability (nothing
    comes before it), as on OpenAI."""
    out: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for k, token in enumerate(tokens):
        entry = logprob_entry(token, start + k, top)
        first = prompt and start + k == 0
        out["tokens"].append(token)
        out["token_logprobs"].append(None if first else entry["logprob"])
        out["top_logprobs"].append(
            None if first else {alt["token"]: alt["logprob"] for alt in entry["top_logprobs"]}
        )
        out["text_offset"].append(offset)
        offset += len(token)
    return out


def completions(handler: Handler, raw: bytes) -> None:
    body = wire.body_of(handler, raw)
    if body is None:
        return
    prompt = body.get("prompt") if isinstance(body, dict) else None
    if not isinstance(prompt, str) or not body.get("model"):
        return wire.bad_request(handler, "'model' and a string 'prompt' are required", "prompt")
    if isinstance(body.get("logprobs"), bool) or not isinstance(body.get("logprobs", 0), int):
        return wire.bad_request(handler, "logprobs must be an integer from 0 to 5", "logprobs")
    script = wire.scripted(handler)
    if script is None:
        return
    # a continuation: the echo starts with a space, after the prompt
    text = script.text if script.text is not None else f" Echo: {prompt}"
    choices, reasons = completion_parts(body, dataclasses.replace(script, text=text), handler.stand_in.quirks)
    top = body.get("logprobs")
    echo = bool(body.get("echo"))
    prompt_tokens = TOKENS.findall(prompt)
    usage = {
        "prompt_tokens": count_tokens(prompt),
        "completion_tokens": sum(len(c) for c in choices),
        "total_tokens": count_tokens(prompt) + sum(len(c) for c in choices),
    }
    base = {
        "id": "cmpl-standin",
        "object": "text_completion",
        "created": int(time.time()),
        "model": body["model"],
    }

    def logprobs(tokens: list[str], start: int, offset: int, is_prompt: bool) -> Any:
        return legacy_logprobs(tokens, start, offset, top, is_prompt) if top is not None else None

    if not body.get("stream"):
        data = base | {
            "choices": [
                {
                    "index": i,
                    "text": (prompt if echo else "") + "".join(pieces),
                    "logprobs": _joined(
                        [logprobs(prompt_tokens, 0, 0, True)] * echo
                        + [logprobs(pieces, 0, len(prompt) * echo, False)]
                    ),
                    "finish_reason": reasons[i],
                }
                for i, pieces in enumerate(choices)
            ],
            "usage": usage,
        }
        return handler._json(200, data)

    def chunk(choices_: list[dict[str, Any]], **extra: Any) -> bytes:
        return wire.sse(base | {"choices": choices_} | extra)

    opening = (
        [
            chunk(
                [
                    {
                        "index": i,
                        "text": prompt,
                        "logprobs": logprobs(prompt_tokens, 0, 0, True),
                        "finish_reason": None,
                    }
                ]
            )
            for i in range(len(choices))
        ]
        if echo
        else []
    )
    content = []
    offsets = [len(prompt) * echo] * len(choices)
    for k in range(max(map(len, choices), default=0)):
        batch = []
        for i, pieces in enumerate(choices):
            if k < len(pieces):
                batch.append(
                    {
                        "index": i,
                        "text": pieces[k],
                        "logprobs": logprobs([pieces[k]], k, offsets[i], False),
                        "finish_reason": None,
                    }
                )
                offsets[i] += len(pieces[k])
        content.append(chunk(batch))
    closing = [
        chunk([{"index": i, "text": "", "logprobs": None, "finish_reason": r} for i, r in enumerate(reasons)])
    ]
    if (body.get("stream_options") or {}).get("include_usage") and script.usage:
        closing.append(chunk([], usage=usage))
    closing.append(b"data: [DONE]\n\n")
    error = {"error": {"message": "scripted error event", "type": "server_error"}}
    wire.stream(handler, script, opening, content, closing, lambda: wire.sse(error))


def _joined(parts: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    return {key: [v for p in present for v in p[key]] for key in present[0]}
