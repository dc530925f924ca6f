"""The Responses API (``/v1/responses``): the history as input items, nothing stored on the
server, output text and reasoning summaries as they stream."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from ..compat import does_not_reason, is_reasoning_model
from ..errors import NbChatError, RequestFailed
from ..events import Chunk, ReasoningDelta, StreamEnd, TextDelta, Whole
from . import shape
from .shape import (
    MAX_PARTS,
    clean_usage,
    finish_reason,
    index_of,
    joined,
    model_name,
    reported,
    text_of,
    valid_text,
)

PATH = "/responses"
# Chat Completions parameters the Responses API does not have
LACKING = ("n", "frequency_penalty", "presence_penalty", "stop", "seed")
# the ones it has under another name or shape are mapped in request_body
_REASONING_REJECTS = ("temperature", "top_p", "top_logprobs")
_PART_TYPES = {"text": "input_text", "image_url": "input_image", "file": "input_file"}


class Unsupported(NbChatError):
    """A parameter is set that the Responses API does not take (a usage error in a cell)."""


def check(values: Mapping[str, Any]) -> None:
    """Raise :class:`Unsupported` naming the set parameters this API lacks."""
    missing = [name for name in LACKING if values.get(name) is not None]
    if missing:
        unset = " ".join(f"{n}=unset" for n in missing)
        raise Unsupported(
            f"the Responses API (api=responses) has no {', '.join(missing)}; "
            f"leave them out of this cell, or %chatconfig {unset}, or use api=chat"
        )


def request_body(
    values: Mapping[str, Any],
    messages: list[dict[str, Any]],
    *,
    stream: bool,
    summary: str | None,
    outputs: Mapping[int, list[dict[str, Any]]] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The body for the whole history; the parameters left out for this model. Raises
    :class:`Unsupported` naming the set parameters this API lacks.

    A reasoning model is asked for its reasoning encrypted, and gets it back on later
    turns: ``outputs`` maps an assistant message (by ``id()``) to the output items its
    reply came as, sent in its place. Other models get plain messages (reasoning items are
    refused by a model that does not reason)."""
    check(values)
    model = str(values["model"])
    body: dict[str, Any] = {"model": model, "input": [], "store": False}
    for name in ("temperature", "top_p"):
        if values.get(name) is not None:
            body[name] = values[name]
    if values.get("max_tokens") is not None:
        body["max_output_tokens"] = values["max_tokens"]
    if values.get("logprobs") is not None:
        body["top_logprobs"] = values["logprobs"]
        body["include"] = ["message.output_text.logprobs"]
    reasoning: dict[str, Any] = {}
    plain = does_not_reason(model)
    if values.get("reasoning_effort") is not None and not plain:
        reasoning["effort"] = values["reasoning_effort"]
    reasons = is_reasoning_model(model) or bool(reasoning)
    body["input"] = input_items(messages, outputs if reasons else None)
    if summary and reasons:
        reasoning["summary"] = summary
    if reasoning:
        body["reasoning"] = reasoning
    if values.get("verbosity") is not None:
        body["text"] = {"verbosity": values["verbosity"]}
    dropped = []
    if is_reasoning_model(model):
        dropped = [n for n in _REASONING_REJECTS if n in body]
        for name in dropped:
            del body[name]
        body.pop("include", None)
    if reasons:
        # nothing is stored (store false): without its encrypted reasoning, the next turn's
        # request would start the model's thinking over
        body["include"] = [*body.get("include", []), "reasoning.encrypted_content"]
    if stream:
        body["stream"] = True
    unsent = ["reasoning_effort"] if plain and values.get("reasoning_effort") is not None else []
    return body, [*(n if n != "top_logprobs" else "logprobs" for n in dropped), *unsent]


def function_tools(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat Completions' function tools in the Responses API's shape (name and schema at the top)."""
    out = []
    for spec in specs:
        function = spec.get("function") or {}
        out.append({"type": "function", **{k: v for k, v in function.items() if v is not None}})
    return out


def input_items(
    messages: list[dict[str, Any]], outputs: Mapping[int, list[dict[str, Any]]] | None = None
) -> list[dict[str, Any]]:
    """Chat messages as Responses input items: content parts renamed, tool calls and their
    results as function_call and function_call_output items; a reply in ``outputs`` as the
    output items it came as."""
    items: list[dict[str, Any]] = []
    for m in messages:
        if outputs and id(m) in outputs:
            items.extend(outputs[id(m)])
            continue
        role = m.get("role")
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": m.get("tool_call_id"),
                    "output": _text(m.get("content")),
                }
            )
            continue
        content = m.get("content")
        if (content is not None and content != "") or not m.get("tool_calls"):
            items.append({"role": role, "content": _content(content, role)})
        for call in m.get("tool_calls") or ():
            function = call.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments") or "{}",
                }
            )
    return items


def _content(content: Any, role: Any) -> Any:
    if not isinstance(content, list):
        return content if content is not None else ""
    parts = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append(
                {"type": "output_text" if role == "assistant" else "input_text", "text": part["text"]}
            )
        elif kind == "image_url":
            image = part.get("image_url") or {}
            item = {"type": "input_image", "image_url": image.get("url")}
            if image.get("detail"):
                item["detail"] = image["detail"]
            parts.append(item)
        elif kind == "file":
            parts.append({"type": "input_file", **(part.get("file") or {})})
        else:
            parts.append(dict(part))
    return parts


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def usage_of(usage: Any) -> dict[str, Any] | None:
    """Responses usage in the Chat Completions shape the footer, ledger and prices read;
    ``None`` when it is malformed (then the counts are estimated)."""
    if not isinstance(usage, Mapping):
        return None
    out: dict[str, Any] = {
        "prompt_tokens": usage.get("input_tokens"),
        "completion_tokens": usage.get("output_tokens"),
        "total_tokens": usage.get("total_tokens"),
    }
    details = usage.get("output_tokens_details")
    if isinstance(details, Mapping) and "reasoning_tokens" in details:
        out["completion_tokens_details"] = {"reasoning_tokens": details["reasoning_tokens"]}
    cached = usage.get("input_tokens_details")
    if isinstance(cached, Mapping) and "cached_tokens" in cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached["cached_tokens"]}
    return clean_usage(out)


def _take_response(response: Any, completion: Any) -> None:
    """The end state: model, usage and why it stopped."""
    if not isinstance(response, Mapping):
        return
    completion.model = model_name(response.get("model")) or completion.model
    completion.usage = usage_of(response.get("usage")) or completion.usage
    completion.output = returned_reasoning(response.get("output")) or completion.output
    status = response.get("status")
    if status == "failed":
        raise reported(response.get("error"))
    details = response.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, Mapping) else None
    if status == "incomplete":
        cut = reason == "max_output_tokens"
        completion.finish[0] = "length" if cut else finish_reason(reason or "incomplete")
    else:
        completion.finish[0] = "tool_calls" if completion.calls else "stop"
    for part, half in completion.pending_reasoning.items():  # a high surrogate that never paired
        completion.reasoning[part] += valid_text(half)
    completion.pending_reasoning.clear()
    completion.done = True


def returned_reasoning(output: Any) -> list[dict[str, Any]] | None:
    """The output items to send back next turn, when they hold encrypted reasoning: the
    reasoning and message items as the server sent them (the reasoning must come with the
    message that followed it); ``None`` otherwise (the reply's text is enough)."""
    items = [dict(i) for i in _objects(output) if i.get("type") in ("reasoning", "message", "function_call")]
    encrypted = any(i["type"] == "reasoning" and isinstance(i.get("encrypted_content"), str) for i in items)
    return items if encrypted else None


def _add_reasoning(completion: Any, index: Any, piece: Any) -> str:
    """Keep a piece of summary part ``index``; return it as valid text."""
    part = index_of(index, "a reasoning summary's index", MAX_PARTS)
    text = joined(completion.pending_reasoning, part, text_of(piece, "a reasoning summary"))
    if completion.first_token is None:
        completion.first_token = time.perf_counter()
    while len(completion.reasoning) <= part:
        completion.reasoning.append("")
    completion.reasoning[part] += text
    return text


def _add_logprobs(completion: Any, logprobs: Any) -> None:
    if isinstance(logprobs, list):
        completion.logprobs.setdefault(0, []).extend(e for e in logprobs if isinstance(e, dict))


def _take_output(output: list[Any], completion: Any) -> None:
    """A whole response's output items: reasoning summaries and the message's text."""
    for item in output:
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "reasoning":
            for k, summary in enumerate(_objects(item.get("summary"))):
                _add_reasoning(completion, k, summary.get("text"))
        elif item.get("type") == "function_call":
            _take_call(completion, item)
        elif item.get("type") == "message":
            for part in _objects(item.get("content")):
                if part.get("type") == "output_text":
                    text = text_of(part.get("text"), "the reply's text")
                    if text:
                        completion.add(0, text)
                    _add_logprobs(completion, part.get("logprobs"))


def _take_call(completion: Any, item: Mapping[str, Any]) -> None:
    """A function call the model asked for, in the shape Chat Completions streams it."""
    call = {
        "id": item.get("call_id"),
        "function": {"name": item.get("name"), "arguments": item.get("arguments")},
    }
    completion.calls.take([call | {"index": len(completion.calls.parts)}])


def _objects(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def read(client: Any, body: dict[str, Any], stream_class: Any) -> Iterator[Chunk | Whole | StreamEnd]:
    """This API's events (:func:`nbchat.transports.shape.read`); :func:`fold` builds the reply."""
    return shape.read(client, PATH, body, stream_class)


def fold(
    completion: Any, event: Chunk | Whole | StreamEnd, body: dict[str, Any]
) -> Iterator[TextDelta | ReasoningDelta]:
    """Take one of :func:`read`'s events into ``completion``; yield the reply's new text
    (``TextDelta``) and the reasoning summary's (``ReasoningDelta``)."""
    completion.parts.setdefault(0, [])
    if isinstance(event, Whole):
        yield from _fold_whole(completion, event.data)
    elif isinstance(event, Chunk):
        yield from _fold_event(completion, event.data)
    elif not completion.done:
        raise RequestFailed(
            "the stream ended before the reply was complete (no response.completed); "
            "nothing was recorded — re-run the cell"
        )


def _fold_whole(completion: Any, data: Any) -> Iterator[TextDelta | ReasoningDelta]:
    if not isinstance(data, dict) or not isinstance(data.get("output"), list):
        raise RequestFailed("the server's reply is not a response")
    _take_output(data["output"], completion)
    _take_response(data, completion)
    for text in completion.reasoning:
        yield ReasoningDelta(text)
    if completion.texts[0]:
        yield TextDelta(0, completion.texts[0])


def _fold_event(completion: Any, event: Any) -> Iterator[TextDelta | ReasoningDelta]:
    """One event of a streamed response."""
    kind = event.get("type")
    if kind == "response.output_text.delta":
        delta = text_of(event.get("delta"), "a text delta")
        _add_logprobs(completion, event.get("logprobs"))
        if delta and (text := completion.add(0, delta)):
            yield TextDelta(0, text)
    elif kind == "response.reasoning_summary_text.delta":
        text = _add_reasoning(completion, event.get("summary_index"), event.get("delta"))
        if text:
            yield ReasoningDelta(text)
    elif kind == "response.created":
        started = event.get("response")
        if isinstance(started, Mapping):
            completion.model = model_name(started.get("model")) or completion.model
    elif kind == "response.output_item.done":
        item = event.get("item")
        if isinstance(item, Mapping) and item.get("type") == "function_call":
            _take_call(completion, item)
    elif kind in ("response.completed", "response.incomplete", "response.failed"):
        _take_response(event.get("response"), completion)
    elif kind == "error":
        raise reported(event)
