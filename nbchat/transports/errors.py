"""The one error boundary: every SDK and network failure of every wire API becomes nbchat's
error here — the status, the server's words cut to one line, every credential removed, and
what to do — so a failure reads the same from a cell, ``Chat.send``, a map item, a batch
line, an image, a file call or a tool round. No IPython; ``openai`` when a failure is read.
"""

from __future__ import annotations

import http
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..connection import key_help, resolve
from ..errors import RequestFailed
from ..learned import PART, first_part, part_message, recognise
from ..secret import credentials, hide_in_traceback, one_line, redact, redact_foreign
from ..settings import Settings
from .shape import words

SDK_TIMEOUT = 600.0  # the SDK's default; nbchat makes it a wall-clock limit too

TOOLS_HELP = (
    "This server or model does not take tools: run the cell without --tools (and %chatconfig "
    "tools=unset), or use a server that speaks OpenAI tool calling (vLLM with --enable-auto-tool-choice "
    "--tool-call-parser, llama.cpp with --jinja, an Ollama model with tool support)"
)


@dataclass(frozen=True)
class ServerError:
    """What a server answered with a status: from the SDK's ``APIStatusError`` or from a
    batch's output line, read the same way."""

    status: int
    said: str  # the server's words, whatever the body's shape (not yet cut or redacted)
    reason: str  # the status's phrase ("Bad Request")
    param: Any = None
    retry_after: float | None = None

    @classmethod
    def of(cls, exc: Any) -> ServerError:
        return cls(
            exc.status_code, server_message(exc), _reason(exc), getattr(exc, "param", None), _wait(exc)
        )

    @classmethod
    def from_body(cls, status: int, body: Any) -> ServerError:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        error = body.get("error") if isinstance(body, Mapping) else None
        param = error.get("param") if isinstance(error, Mapping) else None
        return cls(status, _plain_words(words(body)) or reason, reason, param)


# -- the boundary ---------------------------------------------------------------------------


@contextmanager
def boundary(
    settings: Any,
    completion: Any = None,
    body: Mapping[str, Any] | None = None,
    *,
    api: str = "chat",
    extra: Iterable[str] = (),
    advice: Mapping[int, str] | None = None,
) -> Iterator[None]:
    """Around a call to the SDK: its failures and the network's become one ``RequestFailed``
    (carrying what the server refused of ``body``, if it refused something); nbchat's own
    failures lose any credential they quote; a defect (or an interrupt) keeps its
    traceback, minus credentials."""
    secrets = credentials(settings, extra)
    try:
        yield
    except transport_errors() as exc:
        raise failure(exc, settings, completion, body=body, api=api, extra=secrets, advice=advice) from None
    except RequestFailed as exc:  # read in a reply: it may quote the server, which may quote a credential
        raise _reread(exc, completion, body, api, secrets) from None
    except BaseException as exc:
        hide_in_traceback(exc, secrets)
        raise


def failure(
    exc: BaseException,
    settings: Any,
    completion: Any = None,
    *,
    body: Mapping[str, Any] | None = None,
    api: str = "chat",
    retries: int | None = None,
    extra: Iterable[str] = (),
    advice: Mapping[int, str] | None = None,
) -> RequestFailed:
    """The SDK's or the network's ``exc`` as nbchat's error (see :func:`explain`); a refusal
    of something ``body`` sent is recognised by the server's words (an image or file
    refused is named: it is never dropped)."""
    status = status_of(exc)
    secrets = credentials(settings, extra)
    said = redact_foreign(_words_only(exc), secrets)
    refusal = recognise(body, said, getattr(exc, "param", None), api) if said and body is not None else None
    if refusal is not None and refusal.kind == PART:
        message = redact_foreign(part_message(refusal, status), secrets)
    else:
        streamed = bool(body is not None and body.get("stream"))
        message = explain(
            exc, settings, completion, retries=retries, extra=secrets, advice=advice, streamed=streamed
        )
    return RequestFailed(message, status=status, refusal=refusal)


def _reread(
    exc: RequestFailed, completion: Any, body: Mapping[str, Any] | None, api: str, secrets: list[str]
) -> RequestFailed:
    """nbchat's reading of a reply (a stream's error event, a malformed reply), credentials
    removed, and what it refused recognised as for a status."""
    said = redact_foreign(exc.said, secrets) if exc.said else None
    refusal = recognise(body, said, None, api) if said and body is not None else None
    message = str(exc)
    if refusal is not None and refusal.kind == PART:
        message = part_message(refusal, None)
    elif body is not None and message.startswith("the stream ended") and completion is not None:
        unread = first_part(body) if getattr(completion, "first_token", None) is None else None
        message = f"{message.rstrip('.')}. {unread}" if unread else message
    return RequestFailed(redact_foreign(message, secrets), status=exc.status, said=said, refusal=refusal)


def line_failure(status: Any, body: Any, settings: Any) -> RequestFailed:
    """An error the server put in place of one reply (a batch's output or error line), read as
    the same failure of a live request would be."""
    if not isinstance(status, int) or status < 400:
        said = redact_foreign(
            one_line(_plain_words(words(body)) or "the request failed"), credentials(settings)
        )
        return RequestFailed(f"the server reported an error for this item: {said}")
    text = _status_text(ServerError.from_body(status, body), settings, credentials(settings), retries=0)
    return RequestFailed(text, status=status)


def redacted(text: str, settings: Any) -> str:
    """Text that may quote a server or a value, with every credential of ``settings`` removed."""
    return redact_foreign(text, credentials(settings))


# -- what each failure says -------------------------------------------------------------------


def explain(
    exc: BaseException,
    settings: Any,
    completion: Any = None,
    *,
    retries: int | None = None,
    extra: Iterable[str] = (),
    advice: Mapping[int, str] | None = None,
    streamed: bool = False,
) -> str:
    """One short message: what failed, the server's words, and what to do. The server's
    words are cut to one readable line; every credential is redacted, nbchat's own
    words never are. ``retries``: how many times it was asked again (default: the
    SDK's ``max_retries``)."""
    secrets = credentials(settings, extra)
    import openai

    if isinstance(exc, openai.APIStatusError):
        text = _status_text(ServerError.of(exc), settings, secrets, retries, advice)
    else:
        text = _other_text(exc, settings, completion, secrets, streamed)
    return redact(text, secrets)


def _status_text(
    refusal: ServerError,
    settings: Any,
    secrets: list[str],
    retries: int | None = None,
    advice: Mapping[int, str] | None = None,
) -> str:
    status, said = refusal.status, _foreign(refusal.said, secrets).rstrip(".")
    count = settings.max_retries if retries is None else retries
    retried = f" after {count} retries" if count else ""
    where = resolve(settings).where
    if advice and status in advice:  # what to do, in the caller's words (an admin key, GET /models)
        return f"{status} {refusal.reason}: {said}. {advice[status]}"
    if status == 401:
        return f"401 Unauthorized: {said}. The key was refused: {key_help(settings, resolve(settings))}."
    if status == 403:
        return f"403 Forbidden: {said}. The key's project or organization may not use this model."
    if status == 404:
        return f"404 Not Found: {said}. Check the model name (%chat models) and base_url ({where})."
    if status == 429:
        wait = refusal.retry_after
        if wait is not None and wait > 120:
            return (
                f"429 Too Many Requests: {said}. The server asks to wait {wait:g} s (Retry-After), "
                "longer than nbchat waits in a cell; re-run the cell later."
            )
        return f"429 Too Many Requests{retried}: {said}. Wait a moment and re-run the cell."
    if status >= 500:
        return f"{status} server error{retried}: {said}. The server at {where} failed; try again later."
    param, hint = refusal.param, ""
    if isinstance(param, str) and param in Settings.class_trait_names(request=True):
        hint = f" (parameter {param!r}: unset it with %chatconfig {param}=unset)"
    elif isinstance(param, str) and param:
        hint = f" (parameter {_foreign(param, secrets, 60)!r})"
    if param in ("tools", "tool_choice") or "tool" in said.lower():
        hint = f". {TOOLS_HELP}"
    return f"{status} {_foreign(refusal.reason, secrets, 60)}: {said}{hint}"


def _other_text(
    exc: BaseException, settings: Any, completion: Any, secrets: list[str], streamed: bool
) -> str:
    """A failure without a status: a timeout, the network, a broken stream."""
    import openai

    connection = resolve(settings)
    where = connection.where
    midway = completion is not None and getattr(completion, "first_token", None) is not None
    if isinstance(exc, openai.APITimeoutError) or _is_timeout(exc):
        phase = "between tokens" if midway else "before the first token"
        limit = f"{settings.timeout:g} s" if settings.timeout else f"the default {SDK_TIMEOUT:g} s"
        return f"timed out {phase} after {limit} (setting: timeout); the server at {where} is slow or stuck"
    cause: BaseException | None = exc
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
    if isinstance(exc, openai.APIConnectionError) or _is_network(exc):
        said_by_os = _os_words(cause)
        detail = f" ({type(cause).__name__}: {_foreign(said_by_os, secrets, 200)})" if said_by_os else ""
        if midway:
            return f"the connection to {where} dropped in the middle of the reply{detail}"
        setting = "azure_endpoint" if connection.azure else "base_url"
        return f"cannot reach {where}{detail}. Is the server running, and is {setting} right?"
    if isinstance(exc, openai.APIError):
        # the SDK's message is generic when the error is not in OpenAI's shape
        found = words(exc.body) or exc.message
        return f"the server reported an error during the reply: {_foreign(found, secrets)}"
    if isinstance(exc, json.JSONDecodeError):
        if streamed:
            return f"the server sent a malformed stream event (invalid JSON: {exc.msg})"
        return f"the server sent a reply that is not valid JSON ({exc.msg})"
    if isinstance(exc, UnicodeDecodeError):
        return "the server sent a reply that is not valid UTF-8 text"
    return f"the OpenAI client failed: {type(exc).__name__}: {_foreign(exc, secrets)}"


def _os_words(cause: BaseException | None) -> str:
    """What the operating system said, the same whether the synchronous or the asynchronous
    HTTP stack failed ("[Errno 111] Connection refused"); else the failure's own words."""
    seen: BaseException | None = cause
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, OSError) and isinstance(seen.errno, int):
            words = os.strerror(seen.errno) if seen.errno > 0 else seen.strerror
            return f"[Errno {seen.errno}] {words}"
        seen = seen.__cause__ or seen.__context__
    return str(cause) if cause is not None else ""


def _foreign(text: Any, secrets: list[str], limit: int = 300) -> str:
    return redact_foreign(one_line(str(text), limit), secrets)


# -- reading a failure ------------------------------------------------------------------------


def transport_errors() -> tuple[type[BaseException], ...]:
    """What the SDK and the network raise. Anything else is a defect in nbchat and
    surfaces as one, with its traceback."""
    import httpx2
    import openai

    from ..wallclock import TimeUp

    return (
        TimeUp,  # a wall-clock limit (setting: timeout) passed
        openai.OpenAIError,
        httpx2.HTTPError,  # a stream that breaks after it started is not wrapped by the SDK
        httpx2.InvalidURL,
        json.JSONDecodeError,  # a malformed server-sent event
        UnicodeDecodeError,  # a server-sent event that is not UTF-8
    )


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def retry_after(exc: BaseException) -> float | None:
    """The server's ``Retry-After`` in seconds, within 0–120 (what a map waits at most)."""
    wait = _wait(exc)
    return None if wait is None else min(max(wait, 0.0), 120.0)


def worth_retrying(exc: BaseException) -> bool:
    """A failure that may pass if asked again (what the SDK itself retries): a timeout, the
    network, 408, 409 and 5xx. A 429 is a matter of pace, not of asking again."""
    import openai

    status = status_of(exc)
    if status is not None:
        return status in (408, 409) or status >= 500
    return isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)) or _is_network(exc)


def code_of(exc: BaseException) -> str | None:
    """The ``code`` of an error body (``insufficient_quota``, …), if the server gave one."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    code = (error if isinstance(error, dict) else body if isinstance(body, dict) else {}).get("code")
    return code if isinstance(code, str) else None


def unreachable(exc: BaseException) -> bool:
    """The server could not be reached at all (not a timeout): every request would fail so."""
    import openai

    if isinstance(exc, openai.APITimeoutError) or _is_timeout(exc):
        return False
    return isinstance(exc, openai.APIConnectionError) or _is_network(exc)


def _words_only(exc: BaseException) -> str:
    """The server's own words in an error, in one line, if it sent any (a refusal is known
    by them); not redacted."""
    found = _plain_words(words(getattr(exc, "body", None)))
    return one_line(found) if found and found.strip() else ""


def server_message(exc: Any) -> str:
    """The server's own words, whatever shape its error body has: OpenAI's
    ``{"error": {"message": …}}``, ``{"error": "text"}``, FastAPI's ``{"detail": …}``,
    nested or listed ones, or plain text (an HTML page loses its tags)."""
    found = _plain_words(words(exc.body))
    return found if found and found.strip() else _reason(exc)


def _plain_words(found: str | None) -> str | None:
    if found and found.lstrip().startswith("<"):
        return re.sub(r"<[^>]*>", " ", found)
    return found


def _reason(exc: Any) -> str:
    response = getattr(exc, "response", None)
    return str(getattr(response, "reason_phrase", "") or type(exc).__name__)


def _wait(exc: Any) -> float | None:
    try:
        return float(exc.response.headers.get("retry-after"))
    except (TypeError, ValueError, AttributeError):
        return None


def _is_timeout(exc: BaseException) -> bool:
    import httpx2

    from ..wallclock import TimeUp

    return isinstance(exc, (httpx2.TimeoutException, TimeoutError, TimeUp))


def _is_network(exc: BaseException) -> bool:
    import httpx2

    return isinstance(exc, (httpx2.TransportError, httpx2.InvalidURL, OSError))
