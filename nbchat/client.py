"""The transport: (messages, parameters) -> text deltas, usage and clear errors.

``openai`` is imported on first use only: it costs about half a second, which
``%load_ext nbchat`` must not pay.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

from .compat import adapt
from .connection import key_help, resolve, shared_client
from .errors import NbChatError, RequestFailed
from .learned import PART, Learned, first_part, part_message, recognise
from .secret import credentials, guard_logs, hide_in_traceback, one_line, public_url, redact, redact_foreign
from .settings import Settings
from .tools import CallParts
from .transports.shape import (
    Events,
    check_finished,
    choice_index,
    choices_of,
    clean_usage,
    content_text,
    joined,
    kind,
    malformed,
    model_name,
    valid_text,
    words,
)

SDK_TIMEOUT = 600.0  # the SDK's default; nbchat makes it a wall-clock limit too
# sent under their own names; model and logprobs get special treatment below
SIMPLE_PARAMS = tuple(n for n in Settings.class_trait_names(request=True) if n not in ("model", "logprobs"))


TOOLS_HELP = (
    "This server or model does not take tools: run the cell without --tools (and %chatconfig "
    "tools=unset), or use a server that speaks OpenAI tool calling (vLLM with --enable-auto-tool-choice "
    "--tool-call-parser, llama.cpp with --jinja, an Ollama model with tool support)"
)


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
            self.calls.take(calls)
        content = content_text(part.get("content"), index)
        if content:
            text = self.add(index, content)
            return (index, text) if text else None
        return None


class Transport:
    """Owns the SDK client (rebuilt when the connection settings change)."""

    def __init__(self) -> None:
        self._client: Any = None
        self._identity: str | None = None
        self.learned = Learned()  # what servers refused this session, by server and model

    def client(self, settings: Any) -> Any:
        _check_urls(settings)
        connection = resolve(settings)
        identity = connection.identity(settings)
        if identity != self._identity:
            guard_logs(settings)
            self._client = shared_client(connection, settings)  # one per connection, not per Chat
            _refusals_not_retried(self._client)
            self._identity = identity
        return self._client

    def run(self, settings: Any, body: dict[str, Any], completion: Any, api: str = "chat") -> Iterator[Any]:
        """Send ``body`` to ``api`` (chat, or a module of nbchat.transports); yield
        ``(choice index, text)`` (or that module's events) as the reply arrives. A failure
        is a ``RequestFailed``; one that refuses something the body sent carries the
        ``Refusal`` (the engine decides whether to ask again)."""
        from . import wallclock

        wallclock.limit(settings.timeout or SDK_TIMEOUT)
        try:
            client = self.client(settings)
            # the server's time from here: not the SDK's import, not building a client
            completion.started = time.perf_counter()
            if api != "chat":
                wire = importlib.import_module(f"nbchat.transports.{api}")
                yield from wire.run(client, body, completion, _stream_class())
            elif body.get("stream"):
                yield from self._stream(client, body, completion)
            else:
                # client.post skips the SDK's per-message transform (~0.15 ms a message)
                # and its model parsing: the body is already in wire format.
                data = client.post("/chat/completions", body=body, cast_to=object)
                completion.take_whole(data)
                for index, text in zip(sorted(completion.parts), completion.texts, strict=True):
                    if text:
                        yield index, text
        except transport_errors() as exc:  # the SDK's and the network's, made readable
            status, said = _status(exc), redact(_said(exc), credentials(settings))
            refusal = recognise(body, said, getattr(exc, "param", None), api) if said else None
            message = part_message(refusal, status) if refusal and refusal.kind == PART else None
            message = (
                redact(message, credentials(settings)) if message else explain(exc, settings, completion)
            )
            raise RequestFailed(message, status=status, refusal=refusal) from None
        except RequestFailed as exc:  # it may quote the server, which may quote a credential
            words_ = redact(exc.said, credentials(settings)) if exc.said else None
            refusal = recognise(body, words_, None, api) if words_ else None
            message = str(exc)
            if refusal and refusal.kind == PART:
                message = part_message(refusal, None)
            elif message.startswith("the stream ended") and completion.first_token is None:
                unread = first_part(body)
                message = f"{message.rstrip('.')}. {unread}" if unread else message
            raise RequestFailed(
                redact(message, credentials(settings)), status=exc.status, said=words_, refusal=refusal
            ) from None
        except BaseException as exc:  # a defect (or an interrupt) keeps its traceback, minus credentials
            hide_in_traceback(exc, credentials(settings))
            raise
        finally:
            wallclock.clear()
            completion.ended = time.perf_counter()

    def _stream(self, client: Any, body: dict[str, Any], completion: Completion) -> Iterator[tuple[int, str]]:
        events = Events(client, "/chat/completions", body, _stream_class())
        for chunk in events:
            completion.model = model_name(chunk.get("model")) or completion.model
            if chunk.get("usage") is not None:
                completion.usage = clean_usage(chunk["usage"])
            for choice in choices_of(chunk):
                taken = completion.take_choice(choice, "delta")
                if taken:
                    yield taken
        completion.done = events.done
        check_finished(completion, int(body.get("n") or 1), events.done)

    def models(self, settings: Any) -> list[str]:
        import openai

        from . import wallclock

        client = self.client(settings)
        wallclock.limit(settings.timeout or SDK_TIMEOUT)
        try:
            data = client.get("/models", cast_to=object)
        except openai.NotFoundError:
            where = resolve(settings).where
            raise RequestFailed(
                f"the server at {where} does not list its models (GET /models: 404 Not Found); "
                "name the model yourself: %chatconfig model=NAME",
                status=404,
            ) from None
        except transport_errors() as exc:
            raise RequestFailed(explain(exc, settings, None), status=_status(exc)) from None
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


def _said(exc: BaseException) -> str:
    """The server's own words in an error, if it sent any (a refusal is known by them)."""
    said = words(getattr(exc, "body", None))
    return one_line(re.sub(r"<[^>]*>", " ", said)) if said else ""


def explain(exc: BaseException, settings: Any, completion: Completion | None) -> str:
    """One short message: what failed, the server's words, and what to do. The server's
    words are cut to one readable line; every credential is redacted, nbchat's own
    words never are."""
    secrets = credentials(settings)
    return redact(_explain(exc, settings, completion, secrets), secrets)


def _explain(exc: BaseException, settings: Any, completion: Completion | None, secrets: list[str]) -> str:
    import openai

    connection = resolve(settings)
    where = connection.where
    midway = completion is not None and completion.first_token is not None

    def foreign(text: Any, limit: int = 300) -> str:
        return redact_foreign(one_line(str(text), limit), secrets)

    if isinstance(exc, openai.APIStatusError):
        status, said = exc.status_code, foreign(_server_message(exc)).rstrip(".")
        retried = f" after {settings.max_retries} retries" if settings.max_retries else ""
        if status == 401:
            return f"401 Unauthorized: {said}. The key was refused: {key_help(settings, connection)}."
        if status == 403:
            return f"403 Forbidden: {said}. The key's project or organization may not use this model."
        if status == 404:
            return f"404 Not Found: {said}. Check the model name (%chat models) and base_url ({where})."
        if status == 429:
            wait = _retry_after(exc)
            if wait is not None and wait > 120:
                return (
                    f"429 Too Many Requests: {said}. The server asks to wait {wait:g} s (Retry-After), "
                    "longer than nbchat waits in a cell; re-run the cell later."
                )
            return f"429 Too Many Requests{retried}: {said}. Wait a moment and re-run the cell."
        if status >= 500:
            return f"{status} server error{retried}: {said}. The server at {where} failed; try again later."
        param = getattr(exc, "param", None)
        hint = ""
        if isinstance(param, str) and param in Settings.class_trait_names(request=True):
            hint = f" (parameter {param!r}: unset it with %chatconfig {param}=unset)"
        elif isinstance(param, str) and param:
            hint = f" (parameter {foreign(param, 60)!r})"
        if param in ("tools", "tool_choice") or "tool" in said.lower():
            hint = f". {TOOLS_HELP}"
        return f"{status} {foreign(_reason(exc), 60)}: {said}{hint}"
    if isinstance(exc, openai.APITimeoutError) or _is_timeout(exc):
        phase = "between tokens" if midway else "before the first token"
        limit = f"{settings.timeout:g} s" if settings.timeout else f"the default {SDK_TIMEOUT:g} s"
        return f"timed out {phase} after {limit} (setting: timeout); the server at {where} is slow or stuck"
    cause: BaseException | None = exc
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
    if isinstance(exc, openai.APIConnectionError) or _is_network(exc):
        detail = f" ({type(cause).__name__}: {foreign(cause, 200)})" if cause and str(cause) else ""
        if midway:
            return f"the connection to {where} dropped in the middle of the reply{detail}"
        setting = "azure_endpoint" if connection.azure else "base_url"
        return f"cannot reach {where}{detail}. Is the server running, and is {setting} right?"
    if isinstance(exc, openai.APIError):
        # the SDK's message is generic when the error is not in OpenAI's shape
        return f"the server reported an error during the reply: {foreign(words(exc.body) or exc.message)}"
    if isinstance(exc, json.JSONDecodeError):
        return f"the server sent a malformed stream event (invalid JSON: {exc.msg})"
    if isinstance(exc, UnicodeDecodeError):
        return "the server sent a reply that is not valid UTF-8 text"
    return f"the OpenAI client failed: {type(exc).__name__}: {foreign(exc)}"


@functools.cache
def _stream_class() -> Any:
    """The SDK's stream of plain dicts, noting whether the closing ``[DONE]`` arrived:
    a connection that just closes mid-reply otherwise looks like a normal end."""
    from openai import Stream

    from . import wallclock

    class DoneStream(Stream[object]):
        done = False

        def _iter_events(self) -> Iterator[Any]:
            for sse in super()._iter_events():
                wallclock.renew()  # the limit (setting: timeout) is on each gap, not the whole reply
                if sse.data.startswith("[DONE]"):
                    self.done = True
                yield sse

    return DoneStream


def _retry_after(exc: Any) -> float | None:
    try:
        return float(exc.response.headers.get("retry-after"))
    except (TypeError, ValueError, AttributeError):
        return None


def _server_message(exc: Any) -> str:
    """The server's own words, whatever shape its error body has: OpenAI's
    ``{"error": {"message": …}}``, ``{"error": "text"}``, FastAPI's ``{"detail": …}``,
    nested or listed ones, or plain text (an HTML page loses its tags)."""
    said = words(exc.body)
    if said and said.lstrip().startswith("<"):
        said = re.sub(r"<[^>]*>", " ", said)
    return said if said and said.strip() else _reason(exc)


def _reason(exc: Any) -> str:
    return str(getattr(exc.response, "reason_phrase", "") or type(exc).__name__)


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


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def transport_errors() -> tuple[type[BaseException], ...]:
    """What the SDK and the network raise. Anything else is a defect in nbchat and
    surfaces as one, with its traceback."""
    import httpx2
    import openai

    from .wallclock import TimeUp

    return (
        TimeUp,  # a wall-clock limit (setting: timeout) passed
        openai.OpenAIError,
        httpx2.HTTPError,  # a stream that breaks after it started is not wrapped by the SDK
        httpx2.InvalidURL,
        json.JSONDecodeError,  # a malformed server-sent event
        UnicodeDecodeError,  # a server-sent event that is not UTF-8
    )


def _is_timeout(exc: BaseException) -> bool:
    import httpx2

    from .wallclock import TimeUp

    return isinstance(exc, (httpx2.TimeoutException, TimeoutError, TimeUp))


def _is_network(exc: BaseException) -> bool:
    import httpx2

    return isinstance(exc, (httpx2.TransportError, httpx2.InvalidURL, OSError))
