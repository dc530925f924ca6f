"""The transport: (messages, parameters) -> text deltas and usage, through the module of
each wire API (``nbchat.transports``) and its one error boundary.

``openai`` is imported on first use only: it costs about half a second, which
``%load_ext nbchat`` must not pay.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from .compat import adapt
from .connection import resolve, shared_client
from .errors import NbChatError, RequestFailed
from .events import Chunk, Event, StreamEnd, TextDelta, Whole
from .learned import Learned, recognise
from .secret import guard_logs, one_line, public_url
from .settings import Settings
from .tools import CallParts
from .transports import chat as chat_wire
from .transports.errors import SDK_TIMEOUT, boundary
from .transports.shape import (
    check_finished,
    choice_index,
    choices_of,
    clean_usage,
    content_text,
    joined,
    kind,
    malformed,
    model_name,
    stream_class,
    valid_text,
    words,
)

T = TypeVar("T")
# sent under their own names; model and logprobs get special treatment below
SIMPLE_PARAMS = tuple(n for n in Settings.class_trait_names(request=True) if n not in ("model", "logprobs"))


def request_body(
    values: Mapping[str, Any], messages: list[dict[str, Any]], stream: bool, reasons: bool | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The one place settings become request parameters; unset ones are not sent.
    Returns the body and the parameters this model does not take (left out of it);
    ``reasons``: the server said this model reasons (else its name says)."""
    body: dict[str, Any] = {"model": values["model"], "messages": messages}
    for name in SIMPLE_PARAMS:
        if values.get(name) is not None:
            body[name] = values[name]
    if values.get("logprobs") is not None:
        body["logprobs"] = True
        if values["logprobs"] > 0:
            body["top_logprobs"] = values["logprobs"]
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body, adapt(body, reasons)


class Completion:
    """What one request returned, filled in while its deltas are read."""

    def __init__(self) -> None:
        self.parts: dict[int, list[str]] = {0: []}
        self.finish: dict[int, str | None] = {}
        self.logprobs: dict[int, list[dict[str, Any]]] = {}
        self.usage: dict[str, int] | None = None
        self.model: str | None = None
        self.started = time.perf_counter()
        self.first_token: float | None = None
        self.ended: float | None = None
        self.done = False  # the stream's closing [DONE] arrived
        self.calls = CallParts()  # the tool calls of choice 1
        self.tool_turn: dict[str, Any] | None = None  # a whole tool turn, cached with its reply
        self.reasoning: list[str] = []  # the reasoning summary's parts (Responses API)
        # the Responses API's output items when they carry encrypted reasoning: sent back on
        # later turns (with store false, the server keeps nothing between requests)
        self.output: list[dict[str, Any]] | None = None
        # a high surrogate that ended a delta, waiting for its low half in the next one
        self._pending: dict[int, str] = {}
        self.pending_reasoning: dict[int, str] = {}  # the same, for summary parts

    @property
    def texts(self) -> list[str]:
        return [valid_text("".join(self.parts[i]) + self._pending.get(i, "")) for i in sorted(self.parts)]

    @property
    def empty(self) -> bool:
        """No choice has any text: a view says so rather than wait for more."""
        return not any(self.texts)

    @property
    def latency(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def add(self, index: int, text: str) -> str:
        """Keep ``text`` of choice ``index``; return it as valid text. A surrogate pair
        split across deltas (\\ud83d + \\ude00) is joined, a lone half becomes U+FFFD:
        broken text stored once would fail every later request and save."""
        if self.first_token is None:
            self.first_token = time.perf_counter()
        text = joined(self._pending, index, text)
        self.parts.setdefault(index, []).append(text)
        return text

    def fold(self, event: Event) -> Iterator[Event]:
        """Take one of the wire's events into the reply; yield what a view paints of it (the
        new text of a choice, as valid text). A reply is this fold of its events."""
        if isinstance(event, Chunk):
            self.model = model_name(event.data.get("model")) or self.model
            if event.data.get("usage") is not None:
                self.usage = clean_usage(event.data["usage"])
            for choice in choices_of(event.data):
                taken = self.take_choice(choice, "delta")
                if taken:
                    yield TextDelta(*taken)
        elif isinstance(event, Whole):
            self.take_whole(event.data)
            for index, text in zip(sorted(self.parts), self.texts, strict=True):
                if text:
                    yield TextDelta(index, text)
        elif isinstance(event, StreamEnd):
            self.done = event.done
            check_finished(self, event.asked, event.done)
        else:
            yield event

    def take_whole(self, data: Any) -> None:
        """Record a whole (not streamed) chat completion: a live reply, a map's, a batch's."""
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise RequestFailed("the server's reply is not a chat completion")
        self.model = model_name(data.get("model"))
        self.usage = clean_usage(data.get("usage"))
        for choice in data["choices"]:
            self.take_choice(choice, "message")

    def take_choice(self, choice: Any, key: str) -> tuple[int, str] | None:
        """Record one choice of a chunk (``key="delta"``) or a whole reply ("message");
        return its index and new text. A malformed choice raises ``RequestFailed``."""
        index = choice_index(choice, self)
        if index is None:
            return None
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
            entries = [e for e in logprobs["content"] if isinstance(e, dict)]
            self.logprobs.setdefault(index, []).extend(entries)
        part = choice.get(key)
        if part is None:
            return None
        if not isinstance(part, dict):
            raise malformed(f"choice {index + 1}'s {key} is {kind(part)}, not an object")
        calls = part.get("tool_calls")
        if index == 0 and calls:
            if not isinstance(calls, list):
                raise malformed(f"tool_calls is {kind(calls)}, not a list")
            self.calls.take(calls, whole=key == "message")
        content = content_text(part.get("content"), index)
        if content:
            text = self.add(index, content)
            return (index, text) if text else None
        return None


class Transport:
    """Owns the SDK clients (rebuilt when the connection settings change) and sends each
    request through its wire API's module, inside the one error boundary."""

    def __init__(self) -> None:
        self._client: Any = None
        self._identity: str | None = None
        self._async: tuple[Any, Any] | None = None  # (the client it twins, an AsyncOpenAI)
        self.learned = Learned()  # what servers refused this session, by server and model

    def client(self, settings: Settings) -> Any:
        _check_urls(settings)
        connection = resolve(settings)
        identity = connection.identity(settings)
        if identity != self._identity:
            guard_logs(settings)
            self._client = shared_client(connection, settings)  # one per connection, not per Chat
            _refusals_not_retried(self._client)
            self._identity = identity
        return self._client

    def async_client(self, settings: Settings) -> Any:
        """An ``AsyncOpenAI`` twin of :meth:`client` (same key, URL, headers), without the
        SDK's own retries: a map's limiter decides when to ask again."""
        with boundary(settings):
            sync = self.client(settings)
            if self._async is None or self._async[0] is not sync:
                twin = resolve(settings).client(settings, asynchronous=True, max_retries=0)
                self._async = (sync, twin)
            return self._async[1]

    def call(self, settings: Settings, what: Callable[[Any], T]) -> T:
        """``what(client)`` inside the error boundary: a Files, Batch or other one-shot call."""
        with boundary(settings):
            return what(self.client(settings))

    def run(
        self, settings: Settings, body: dict[str, Any], completion: Any, api: str = "chat"
    ) -> Iterator[Event]:
        """Send ``body`` to ``api`` (chat, responses, completions or images); yield its
        events (``nbchat.events``) as the reply arrives. A failure
        is a ``RequestFailed``; one that refuses something the body sent carries the
        ``Refusal`` (the engine decides whether to ask again)."""
        from . import wallclock

        wallclock.limit(settings.timeout or SDK_TIMEOUT)
        try:
            with boundary(settings, completion, body, api=api):
                client = self.client(settings)
                # the server's time from here: not the SDK's import, not building a client
                completion.started = time.perf_counter()
                module = wire(api)
                # the picture an image edit sends is the drawing's, not a request parameter
                extra = (completion.picture,) if api == "images" else ()
                # the wire's events, folded into the reply: the transport keeps nothing
                for event in module.read(client, body, stream_class(), *extra):
                    yield from module.fold(completion, event, body)
        finally:
            wallclock.clear()
            completion.ended = time.perf_counter()

    def models(self, settings: Settings) -> list[str]:
        from . import wallclock

        where = resolve(settings).where
        unlisted = (
            f"The server at {where} does not list its models (GET /models); "
            "name the model yourself: %chatconfig model=NAME"
        )
        wallclock.limit(settings.timeout or SDK_TIMEOUT)
        try:
            with boundary(settings, advice={404: unlisted}):
                data = chat_wire.model_ids(self.client(settings))
        finally:
            wallclock.clear()
        entries = data.get("data", []) if isinstance(data, dict) else []
        return sorted(one_line(str(m["id"]), 200) for m in entries if isinstance(m, dict) and "id" in m)


def _refusals_not_retried(client: Any) -> None:
    """The SDK retries a 5xx; a server that answers a refusal with a 500 (llama.cpp's)
    would only refuse again: such an answer goes straight to the engine, which asks once
    more without what was refused."""
    if getattr(client, "_nbchat_refusals", False):  # a shared client is wrapped once
        return
    client._nbchat_refusals = True
    should_retry = client._should_retry

    def _should_retry(response: Any) -> bool:
        if response.status_code >= 500:
            try:
                response.read()
                body, error = json.loads(response.request.content), response.json()
            except (ValueError, RuntimeError, AttributeError):
                body, error = None, None
            said = words(error) if isinstance(body, dict) else None
            inner = error.get("error") if isinstance(error, dict) else None
            param = inner.get("param") if isinstance(inner, dict) else None
            api = "responses" if "input" in (body or {}) else "chat"
            if said and isinstance(body, dict) and recognise(body, one_line(said), param, api) is not None:
                return False
        return bool(should_retry(response))

    client._should_retry = _should_retry


def wire(api: str) -> Any:
    """The module of a wire API (imported when first used, but Chat Completions)."""
    if api == "chat":
        return chat_wire
    if api == "responses":
        from .transports import responses

        return responses
    if api == "completions":
        from .transports import completions

        return completions
    if api == "images":
        from .transports import images

        return images
    raise ValueError(f"no wire API {api!r}")


def _check_urls(settings: Any) -> None:
    """A URL taken from the environment is checked here, before it is used."""
    from .values import url_problem

    for name, variable in (("base_url", "OPENAI_BASE_URL"), ("azure_endpoint", "AZURE_OPENAI_ENDPOINT")):
        url = getattr(settings, name, None)
        problem = url_problem(url) if url else None
        if problem:
            raise NbChatError(
                f"{name} (from {variable}) must be an http(s) URL, e.g. http://localhost:11434/v1: "
                f"{problem} in {public_url(str(url))!r}; fix {variable}, or set %chatconfig {name}=URL"
            )
