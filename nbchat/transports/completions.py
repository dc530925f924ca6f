"""The legacy Completions API (``/v1/completions``): a raw prompt, no chat template."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import RequestFailed
from ..events import Chunk, StreamEnd, TextDelta, Whole
from . import shape
from .shape import (
    check_finished,
    choice_index,
    choices_of,
    clean_usage,
    model_name,
    text_of,
)

PATH = "/completions"
# the request parameters this API takes; logprobs is its own integer form
PARAMS = ("temperature", "top_p", "max_tokens", "frequency_penalty", "presence_penalty", "stop", "n", "seed")


def request_body(
    values: Mapping[str, Any], prompt: str, *, echo: bool, stream: bool
) -> tuple[dict[str, Any], list[str]]:
    """The body for ``prompt``, and the settings that are set but this API does not take."""
    body: dict[str, Any] = {"model": values["model"], "prompt": prompt}
    for name in PARAMS:
        if values.get(name) is not None:
            body[name] = values[name]
    if values.get("logprobs") is not None:
        body["logprobs"] = values["logprobs"]
    if echo:
        body["echo"] = True
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    ignored = [n for n, v in values.items() if v is not None and n not in (*PARAMS, "model", "logprobs")]
    return body, ignored


def take_choice(choice: Any, completion: Any, prompt_length: int) -> tuple[int, str] | None:
    """Record one choice of a chunk or of a whole reply; return its index and new text.
    A malformed choice raises ``RequestFailed``; malformed logprobs are left out."""
    index = choice_index(choice, completion)
    if index is None:
        return None
    logprobs = choice.get("logprobs")
    if isinstance(logprobs, Mapping) and logprobs.get("tokens"):
        completion.logprobs.setdefault(index, []).extend(entries(logprobs, prompt_length))
    text = text_of(choice.get("text"), f"choice {index + 1}'s text")
    if text and (added := completion.add(index, text)):
        return index, added
    return None


def entries(logprobs: Mapping[str, Any], prompt_length: int) -> list[dict[str, Any]]:
    """The legacy parallel lists as the per-token entries chat replies have; a token that
    starts inside the echoed prompt is marked ``prompt``. Entries that are not in the
    legacy shape are left out."""
    tokens = _list(logprobs.get("tokens"))
    values = _list(logprobs.get("token_logprobs")) or [None] * len(tokens)
    tops = _list(logprobs.get("top_logprobs")) or [None] * len(tokens)
    offsets = _list(logprobs.get("text_offset")) or [None] * len(tokens)
    out = []
    for token, value, top, offset in zip(tokens, values, tops, offsets, strict=False):
        if not isinstance(token, str) or not (value is None or isinstance(value, (int, float))):
            continue
        alternatives = [
            {"token": t, "logprob": v}
            for t, v in (top.items() if isinstance(top, Mapping) else ())
            if isinstance(v, (int, float))
        ]
        entry: dict[str, Any] = {"token": token, "logprob": value, "top_logprobs": alternatives}
        if isinstance(offset, int) and offset < prompt_length:
            entry["prompt"] = True
        out.append(entry)
    return out


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def read(client: Any, body: dict[str, Any], stream_class: Any) -> Iterator[Chunk | Whole | StreamEnd]:
    """This API's events (:func:`nbchat.transports.shape.read`); :func:`fold` builds the reply."""
    return shape.read(client, PATH, body, stream_class)


def fold(completion: Any, event: Chunk | Whole | StreamEnd, body: dict[str, Any]) -> Iterator[TextDelta]:
    """Take one of :func:`read`'s events into ``completion``; yield the new text of each choice."""
    prompt_length = len(body["prompt"]) if body.get("echo") else 0
    if isinstance(event, Whole):
        data = event.data
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise RequestFailed("the server's reply is not a completion")
        completion.model = model_name(data.get("model"))
        completion.usage = clean_usage(data.get("usage"))
        for choice in data["choices"]:
            take_choice(choice, completion, prompt_length)
        for index, text in zip(sorted(completion.parts), completion.texts, strict=True):
            if text:
                yield TextDelta(index, text)
    elif isinstance(event, Chunk):
        completion.model = model_name(event.data.get("model")) or completion.model
        if event.data.get("usage") is not None:
            completion.usage = clean_usage(event.data["usage"])
        for choice in choices_of(event.data):
            taken = take_choice(choice, completion, prompt_length)
            if taken:
                yield TextDelta(*taken)
    else:
        completion.done = event.done
        check_finished(completion, event.asked, event.done, "the completion")
