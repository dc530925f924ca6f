"""Credentials: holding them hidden, knowing every one nbchat has, and redacting them."""

from __future__ import annotations

import base64
import logging
import os
import re
import weakref
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from traitlets import TraitError, TraitType

REDACTED = "[redacted]"
# Sent to local servers (Ollama, llama.cpp, vLLM) that want some key, any key: not a secret.
PLACEHOLDER = "nbchat-no-key"
# A long-enough run of a secret's characters is a leak; shorter ones are ordinary text
# (any four letters of a 160-character key also occur in English words).
PIECE = 8
# Environment variables that hold credentials nbchat (or the SDK) reads.
CREDENTIAL_ENV = ["OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_ADMIN_KEY"]
# Header names that carry credentials (Authorization, api-key, x-api-key, Cookie, …).
_CREDENTIAL_HEADER = re.compile(r"auth|key|token|secret|passw|cookie|session|signature", re.I)
# The public start of a key or header value: a kind, not a secret.
_PUBLIC_PREFIX = re.compile(
    r"^(?:(?:Bearer|Basic|Token)\s+)?(?:(?:sk|sess)-(?:(?:proj|svcacct|admin|None)-)?)?", re.I
)
# OpenAI echoes a partly masked key in 401 bodies ("sk-proj-abc***wxyz"): in text that
# came from a server, any key-shaped token goes.
_KEY_LIKE = re.compile(r"\b(?:sk|sess)-(?:(?:proj|svcacct|admin|None)-)?[\w*\-]{6,}")


class Secret:
    """A string that hides itself from ``str``, ``repr``, pickling and JSON."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret: set>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("an API key is not picklable")


class SecretTrait(TraitType[Secret | None, object]):
    """A trait whose value is a :class:`Secret`, so ``%config ChatMagics`` shows no key."""

    default_value = None
    allow_none = True
    info_text = "an API key (kept hidden)"

    def validate(self, obj: Any, value: object) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value.strip()) if value.strip() else None
        # not traitlets' own message: it would quote the value
        raise TraitError(f"{self.name or 'api_key'} must be a string (a key), not {type(value).__name__}")


# -- the credentials nbchat holds ----------------------------------------------------

# Each source yields the credentials it knows of, given the settings (or ``None``).
# Another kind of credential (a new key, a new header) is one more registered source.
Source = Callable[[Any], Iterable[str | None]]
SOURCES: list[Source] = []


def source(fn: Source) -> Source:
    """Register a source of credentials; every redaction then covers what it yields."""
    SOURCES.append(fn)
    return fn


def is_credential_header(name: str) -> bool:
    return bool(_CREDENTIAL_HEADER.search(name))


def url_password(url: str | None) -> str | None:
    try:
        return urlsplit(url).password if url else None
    except ValueError:
        return None


def public_url(url: str) -> str:
    """``url`` with any password masked, for messages and listings."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{host}"))
    except ValueError:
        return url


@source
def _from_environment(settings: Any) -> Iterable[str | None]:
    return [os.environ.get(name) for name in CREDENTIAL_ENV]


@source
def _from_settings(settings: Any) -> Iterable[str | None]:
    if settings is None:
        return
    key = getattr(settings, "api_key", None)
    if isinstance(key, Secret):
        yield key.reveal()
    for name, value in (getattr(settings, "default_headers", None) or {}).items():
        if isinstance(value, str) and is_credential_header(str(name)):
            yield value
    for name in ("base_url", "azure_endpoint"):
        url = getattr(settings, name, None)
        password = url_password(url)
        if password:
            yield password
            # httpx sends it as HTTP Basic auth: base64 of "user:password"
            user = urlsplit(str(url)).username or ""
            yield base64.b64encode(f"{user}:{password}".encode()).decode()


def credentials(settings: Any = None, extra: Iterable[str | None] = ()) -> list[str]:
    """Every credential nbchat holds (the placeholder key is not one), longest first."""
    found = {s.strip() for fn in SOURCES for s in fn(settings) if s and s.strip()}
    found |= {s.strip() for s in extra if s and s.strip()}
    found.discard(PLACEHOLDER)
    return sorted(found, key=len, reverse=True)


# -- redaction ------------------------------------------------------------------------


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret and every run of ``PIECE`` or more of its characters; keep its
    public prefix (``sk-``, ``sk-proj-``, ``Bearer``) and every other word as written."""
    for secret in secrets:
        prefix = _PUBLIC_PREFIX.match(secret)
        body = secret[prefix.end() :] if prefix else secret
        # the whole value too (a short secret part is still a secret as a whole)
        if len(secret) >= 4 and prefix and prefix.end():
            text = text.replace(secret, secret[: prefix.end()] + REDACTED)
        if len(body) >= 4:  # shorter: too short to tell from ordinary text
            text = _redact_runs(text, body)
    return text


def redact_foreign(text: str, secrets: Iterable[str]) -> str:
    """Like :func:`redact`, for text a server or library wrote: key-shaped tokens go too."""
    return redact(_KEY_LIKE.sub("[redacted key]", text), secrets)


def _redact_runs(text: str, body: str) -> str:
    size = min(PIECE, len(body))
    windows = {body[i : i + size] for i in range(len(body) - size + 1)}
    finder = re.compile("|".join(re.escape(w) for w in sorted(windows, key=len, reverse=True)))
    out, pos = [], 0
    while match := finder.search(text, pos):
        start, end = match.start(), match.end()
        while end < len(text) and text[start : end + 1] in body:
            end += 1
        out.append(text[pos:start] + REDACTED)
        pos = end
    return "".join(out) + text[pos:]


def one_line(text: str, limit: int = 300) -> str:
    """A server's words as one readable line: control characters and runs of whitespace
    become one space, and a long message is cut (a 1 MB error body must not flood a cell)."""
    text = text[: limit * 4].encode("utf-8", "replace").decode("utf-8")  # lone surrogates too
    text = re.sub(r"[\s\x00-\x1f\x7f]+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- tracebacks ----------------------------------------------------------------------


def hide_in_traceback(exc: BaseException, secrets: list[str]) -> None:
    """Let IPython show a defect with its type and traceback but no credential: with
    ``%xmode Verbose`` the frames below the SDK list their locals, and those hold the
    request's headers and URL. Only IPython calls ``_render_traceback_``."""
    if not secrets or hasattr(exc, "_render_traceback_") or isinstance(exc, GeneratorExit):
        return

    def render() -> list[str]:
        from IPython.core.getipython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise RuntimeError("no shell")  # IPython then formats the exception itself
        lines = shell.InteractiveTB.structured_traceback(type(exc), exc, exc.__traceback__)
        return [redact_foreign(line, secrets) for line in lines]

    try:
        exc._render_traceback_ = render  # type: ignore[attr-defined]
    except AttributeError:  # an exception without a __dict__
        pass


# -- logging --------------------------------------------------------------------------

# The loggers of the SDK and the HTTP stack (current and successor package names).
LOGGERS = ("openai", "httpx", "httpx2", "httpcore", "httpcore2")


# every settings object that has made a client: its credentials are redacted from logs
_IN_USE: weakref.WeakSet[Any] = weakref.WeakSet()


class RedactingFilter(logging.Filter):
    """Rewrites log records of the SDK and HTTP stack with every credential redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot format itself: logging reports that, not us
            return True
        secrets = credentials(None, (s for settings in list(_IN_USE) for s in credentials(settings)))
        clean = redact_foreign(message, secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def guard_logs(settings: Any) -> None:
    """Redact ``settings``' credentials from the SDK's and HTTP stack's log records. The
    filter goes on every such logger, children included: a logger's filters do not see
    its children's records."""
    _IN_USE.add(settings)
    names = [n for n in list(logging.Logger.manager.loggerDict) if n.split(".")[0] in LOGGERS]
    for name in [*LOGGERS, *names]:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


def scrub(text: str, *secrets: str | None) -> str:
    """:func:`redact` for the given secrets (the placeholder key is not one)."""
    return redact(text, [s for s in secrets if s and s.strip() and s.strip() != PLACEHOLDER])
