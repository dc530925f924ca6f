"""The legacy Completions API (``/v1/completions``): a raw prompt, no chat template."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

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


def take_choice(choice: Mapping[str, Any], completion: Any, prompt_length: int) -> str | None:
    """Record one choice of a chunk or of a whole reply; return its new text."""
    index = int(choice.get("index") or 0)
    completion.parts.setdefault(index, [])
    if choice.get("finish_reason"):
        completion.finish[index] = choice["finish_reason"]
    logprobs = choice.get("logprobs")
    if isinstance(logprobs, Mapping) and logprobs.get("tokens"):
        completion.logprobs.setdefault(index, []).extend(entries(logprobs, prompt_length))
    text = choice.get("text")
    if text:
        completion.add(index, str(text))
        return str(text)
    return None


def entries(logprobs: Mapping[str, Any], prompt_length: int) -> list[dict[str, Any]]:
    """The legacy parallel lists as the per-token entries chat replies have; a token that
    starts inside the echoed prompt is marked ``prompt``."""
    tokens = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or [None] * len(tokens)
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    offsets = logprobs.get("text_offset") or [None] * len(tokens)
    out = []
    for token, value, top, offset in zip(tokens, values, tops, offsets, strict=False):
        alternatives = [{"token": t, "logprob": v} for t, v in (top or {}).items()]
        entry: dict[str, Any] = {"token": token, "logprob": value, "top_logprobs": alternatives}
        if isinstance(offset, int) and offset < prompt_length:
            entry["prompt"] = True
        out.append(entry)
    return out


def run(client: Any, body: dict[str, Any], completion: Any, stream_class: Any) -> Iterator[tuple[int, str]]:
    """Send ``body``; yield ``(choice index, text)`` as the continuation arrives."""
    from ..errors import RequestFailed

    prompt_length = len(body["prompt"]) if body.get("echo") else 0
    if not body.get("stream"):
        data = client.post(PATH, body=body, cast_to=object)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise RequestFailed("the server's reply is not a completion")
        completion.model = data.get("model")
        completion.usage = data.get("usage") or None
        for choice in data["choices"]:
            take_choice(choice, completion, prompt_length)
        for index, text in enumerate(completion.texts):
            if text:
                yield index, text
        return
    stream = client.post(PATH, body=body, cast_to=object, stream=True, stream_cls=stream_class)
    try:
        for chunk in stream:
            if not isinstance(chunk, dict):
                raise RequestFailed("the server sent a stream event that is not a JSON object")
            completion.model = chunk.get("model") or completion.model
            if chunk.get("usage"):
                completion.usage = chunk["usage"]
            for choice in chunk.get("choices") or ():
                text = take_choice(choice, completion, prompt_length)
                if text:
                    yield int(choice.get("index") or 0), text
    finally:
        stream.response.close()  # also on KeyboardInterrupt
    completion.done = stream.done
    if not stream.done and not completion.finish:
        raise RequestFailed(
            "the stream ended before the completion was complete (no finish_reason); re-run the cell"
        )
