"""The transport: (messages, parameters) -> text deltas, usage and clear errors.

``openai`` is imported on first use only: it costs about half a second, which
``%load_ext nbchat`` must not pay.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from .compat import adapt, mentions_stream_options
from .content import rejected_part
from .errors import NbChatError, RequestFailed
from .secret import scrub
from .settings import Settings
from .tools import CallParts

OPENAI_URL = "https://api.openai.com/v1"
NO_KEY = "nbchat-no-key"  # local servers (Ollama, llama.cpp, vLLM) want some key, any key
# sent under their own names; model and logprobs get special treatment below
SIMPLE_PARAMS = tuple(n for n in Settings.class_trait_names(request=True) if n not in ("model", "logprobs"))
KEY_HELP = (
    "set OPENAI_API_KEY in the environment Jupyter starts from, or run %chatconfig --key (a hidden prompt)"
)


TOOLS_HELP = (
    "This server or model does not take tools: run the cell without --tools (and %chatconfig "
    "tools=unset), or use a server that speaks OpenAI tool calling (vLLM with --enable-auto-tool-choice "
    "--tool-call-parser, llama.cpp with --jinja, an Ollama model with tool support)"
)


def request_body(
    values: Mapping[str, Any], messages: list[dict[str, Any]], stream: bool
) -> tuple[dict[str, Any], list[str]]:
    """The one place settings become request parameters; unset ones are not sent.
    Returns the body and the parameters this model does not take (left out of it)."""
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
    return body, adapt(body)


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

    @property
    def texts(self) -> list[str]:
        return ["".join(self.parts[i]) for i in sorted(self.parts)]

    @property
    def latency(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def add(self, index: int, text: str) -> None:
        if self.first_token is None:
            self.first_token = time.perf_counter()
        self.parts.setdefault(index, []).append(text)

    def take_choice(self, choice: Mapping[str, Any], key: str) -> str | None:
        """Record one choice of a chunk (``key="delta"``) or a whole reply ("message")."""
        index = int(choice.get("index") or 0)
        self.parts.setdefault(index, [])
        if choice.get("finish_reason"):
            self.finish[index] = choice["finish_reason"]
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict) and logprobs.get("content"):
            self.logprobs.setdefault(index, []).extend(logprobs["content"])
        message = choice.get(key) or {}
        if index == 0 and message.get("tool_calls"):
            self.calls.take(message["tool_calls"])
        content = message.get("content")
        if content:
            self.add(index, content)
            return str(content)
        return None


class Transport:
    """Owns the SDK client (rebuilt when the connection settings change)."""

    def __init__(self) -> None:
        self._client: Any = None
        self._identity: tuple[Any, ...] | None = None
        self.no_stream_options = False  # this server rejected them once
        self.no_json_schema = False  # this server rejected response_format json_schema once

    def client(self, settings: Any) -> Any:
        key = settings.api_key.reveal() if settings.api_key else None
        key = key or os.environ.get("AZURE_OPENAI_API_KEY" if settings.azure_endpoint else "OPENAI_API_KEY")
        base_url = settings.base_url
        if not key:
            if settings.azure_endpoint or base_url is None or "api.openai.com" in base_url:
                raise NbChatError(
                    f"no API key for {'Azure OpenAI' if settings.azure_endpoint else 'OpenAI'}: {KEY_HELP}"
                )
            key = NO_KEY
        identity = (
            key,
            base_url,
            settings.organization,
            settings.project,
            settings.timeout,
            settings.max_retries,
            settings.azure_endpoint,
            settings.azure_deployment,
            settings.api_version,
            tuple(sorted(settings.default_headers.items())),
        )
        if identity != self._identity:
            import openai

            options: dict[str, Any] = {
                "max_retries": settings.max_retries,
                "default_headers": dict(settings.default_headers) or None,
                "organization": settings.organization,
                "project": settings.project,
            }
            if settings.timeout is not None:
                options["timeout"] = settings.timeout
            if settings.azure_endpoint:
                if not settings.api_version:
                    raise NbChatError(
                        "Azure OpenAI needs api_version (or OPENAI_API_VERSION), e.g. 2024-10-21"
                    )
                self._client = openai.AzureOpenAI(
                    api_key=key,
                    azure_endpoint=settings.azure_endpoint,
                    azure_deployment=settings.azure_deployment,
                    api_version=settings.api_version,
                    **options,
                )
            else:
                self._client = openai.OpenAI(api_key=key, base_url=base_url, **options)
            self._identity = identity
        return self._client

    def run(self, settings: Any, body: dict[str, Any], completion: Any, api: str = "chat") -> Iterator[Any]:
        """Send ``body`` to ``api`` (chat, or a module of nbchat.transports); yield
        ``(choice index, text)`` (or that module's events) as the reply arrives."""
        client = self.client(settings)
        try:
            if api != "chat":
                wire = importlib.import_module(f"nbchat.transports.{api}")
                yield from wire.run(client, body, completion, _stream_class())
            elif body.get("stream"):
                if self.no_stream_options:
                    body.pop("stream_options", None)
                yield from self._stream_once_more_without_stream_options(client, body, completion)
            else:
                # client.post skips the SDK's per-message transform (~0.15 ms a message)
                # and its model parsing: the body is already in wire format.
                data = client.post("/chat/completions", body=body, cast_to=object)
                self._take_whole(data, completion)
                for index, text in enumerate(completion.texts):
                    if text:
                        yield index, text
        except NbChatError:
            raise
        except Exception as exc:  # the SDK's and the network's, made readable
            status = getattr(exc, "status_code", None)
            refused = rejected_part(body, status, getattr(exc, "param", None), _said(exc)) if status else None
            raise RequestFailed(
                scrub(refused or explain(exc, settings, completion), getattr(client, "api_key", None)),
                status=status,
            ) from None
        finally:
            completion.ended = time.perf_counter()

    def _stream_once_more_without_stream_options(
        self, client: Any, body: dict[str, Any], completion: Completion
    ) -> Iterator[tuple[int, str]]:
        """Servers that reject ``stream_options`` get the request again without it."""
        import openai

        try:
            yield from self._stream(client, body, completion)
        except openai.BadRequestError as exc:
            if "stream_options" not in body or not mentions_stream_options(exc):
                raise
            self.no_stream_options = True  # and for the rest of the session
            del body["stream_options"]
            yield from self._stream(client, body, completion)

    def _stream(self, client: Any, body: dict[str, Any], completion: Completion) -> Iterator[tuple[int, str]]:
        stream = client.post(
            "/chat/completions", body=body, cast_to=object, stream=True, stream_cls=_stream_class()
        )
        try:
            for chunk in stream:
                if not isinstance(chunk, dict):
                    raise RequestFailed("the server sent a stream event that is not a JSON object")
                completion.model = chunk.get("model") or completion.model
                if chunk.get("usage"):
                    completion.usage = chunk["usage"]
                for choice in chunk.get("choices") or ():
                    text = completion.take_choice(choice, "delta")
                    if text:
                        yield int(choice.get("index") or 0), text
        finally:
            # also on KeyboardInterrupt: never leave the connection open
            stream.response.close()
        completion.done = stream.done
        if not stream.done and not completion.finish:
            raise RequestFailed(
                "the stream ended before the reply was complete (no finish_reason); "
                "nothing was recorded — re-run the cell"
            )

    @staticmethod
    def _take_whole(data: Any, completion: Completion) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise RequestFailed("the server's reply is not a chat completion")
        completion.model = data.get("model")
        completion.usage = data.get("usage") or None
        for choice in data["choices"]:
            completion.take_choice(choice, "message")

    def models(self, settings: Any) -> list[str]:
        import openai

        client = self.client(settings)
        try:
            data = client.get("/models", cast_to=object)
        except openai.NotFoundError:
            where = settings.base_url or OPENAI_URL
            raise RequestFailed(
                f"the server at {where} does not list its models (GET /models: 404 Not Found); "
                "name the model yourself: %chatconfig model=NAME",
                status=404,
            ) from None
        except Exception as exc:
            raise RequestFailed(
                scrub(explain(exc, settings, None), getattr(client, "api_key", None))
            ) from None
        entries = data.get("data", []) if isinstance(data, dict) else []
        return sorted(str(m["id"]) for m in entries if isinstance(m, dict) and "id" in m)


def _said(exc: Exception) -> str:
    """The server's own words in an error (an image-capable check needs them)."""
    try:
        return _server_message(exc)
    except Exception:
        return type(exc).__name__


def explain(exc: Exception, settings: Any, completion: Completion | None) -> str:
    """One short message: what failed, the server's words, and what to do."""
    import openai

    where = settings.base_url or OPENAI_URL
    midway = completion is not None and completion.first_token is not None
    if isinstance(exc, openai.APIStatusError):
        status, said = exc.status_code, _server_message(exc)
        retried = f" after {settings.max_retries} retries" if settings.max_retries else ""
        if status == 401:
            return f"401 Unauthorized: {said}. The key was refused: {KEY_HELP}."
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
        hint = f" (parameter {param!r}: unset it with %chatconfig {param}=unset)" if param else ""
        if param in ("tools", "tool_choice") or "tool" in said.lower():
            hint = f". {TOOLS_HELP}"
        return f"{status} {_reason(exc)}: {said}{hint}"
    if isinstance(exc, openai.APITimeoutError):
        phase = "between tokens" if midway else "before the first token"
        limit = f"{settings.timeout:g} s" if settings.timeout else "the SDK's 600 s"
        return f"timed out {phase} after {limit} (setting: timeout); the server at {where} is slow or stuck"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f" ({type(cause).__name__}: {cause})" if cause and str(cause) else ""
        if midway:
            return f"the connection to {where} dropped in the middle of the reply{detail}"
        return f"cannot reach {where}{detail}. Is the server running, and is base_url right?"
    if isinstance(exc, openai.APIError):
        return f"the server reported an error during the reply: {exc.message}"
    if isinstance(exc, json.JSONDecodeError):
        return f"the server sent a malformed stream event (invalid JSON: {exc.msg})"
    if isinstance(exc, openai.OpenAIError):
        return f"the OpenAI client failed: {exc}"
    return f"the request failed: {type(exc).__name__}: {exc}"


@functools.cache
def _stream_class() -> Any:
    """The SDK's stream of plain dicts, noting whether the closing ``[DONE]`` arrived:
    a connection that just closes mid-reply otherwise looks like a normal end."""
    from openai import Stream

    class DoneStream(Stream[object]):
        done = False

        def _iter_events(self) -> Iterator[Any]:
            for sse in super()._iter_events():
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
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if message:
            return str(message).rstrip(".")
    return _reason(exc)


def _reason(exc: Any) -> str:
    return str(getattr(exc.response, "reason_phrase", "") or type(exc).__name__)
