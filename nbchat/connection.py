"""Which server, which key and which client, resolved in one place together with where
each came from: the transport builds its client from it, error messages name its server,
``%chatconfig`` shows it. No IPython; ``openai`` only when a client is built."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from .errors import NbChatError
from .secret import PLACEHOLDER, Secret, credentials, public_url, redact

OPENAI_URL = "https://api.openai.com/v1"
NO_KEY = PLACEHOLDER  # local servers (Ollama, llama.cpp, vLLM) want some key, any key
COMPATIBLE = "an OpenAI-compatible server"


@dataclass(frozen=True)
class Connection:
    """Where requests go and with which key. The key stays a :class:`Secret` (a traceback
    shown with ``%xmode Verbose`` lists every local); ``key_from`` says where it came from."""

    kind: str  # "OpenAI", "Azure OpenAI" or COMPATIBLE
    url: str  # the server's address as requests use it (may hold a password: see `where`)
    url_from: str  # "default", "env OPENAI_BASE_URL", "%chatconfig", …
    key: Secret | None = field(repr=False)  # None: no key found
    key_from: str  # "env AZURE_OPENAI_API_KEY", "%chatconfig --key", "none needed …", "not set"
    key_env: str  # the environment variable this kind of server takes its key from

    @property
    def azure(self) -> bool:
        return self.kind == "Azure OpenAI"

    @property
    def where(self) -> str:
        """The server in a few words for messages, any password in its URL masked."""
        url = public_url(self.url)
        return f"Azure OpenAI at {url}" if self.azure else url

    def require_key(self, settings: Any) -> Secret:
        """The key to send; a clear error (and no request) when there is none."""
        if self.key is None:
            raise NbChatError(f"no API key for {self.kind}: {key_help(settings, self)}")
        return self.key

    def identity(self, settings: Any) -> str:
        """A digest of everything a client is built from: a change means a new client.
        A digest, not the values: the key must not sit in an attribute in clear."""
        import hashlib

        key = self.key.reveal() if self.key is not None else None
        values = (
            key,
            self.url,
            self.kind,
            settings.organization,
            settings.project,
            settings.timeout,
            settings.max_retries,
            settings.azure_deployment,
            settings.api_version,
            sorted(settings.default_headers.items()),
        )
        return hashlib.sha256(repr(values).encode("utf-8", "surrogatepass")).hexdigest()

    def client(self, settings: Any, *, asynchronous: bool = False, **extra: Any) -> Any:
        """A new SDK client for this connection. The transport keeps and reuses its own; a
        map asks for an asynchronous one (``max_retries=0``: its limiter retries)."""
        import openai

        key = self.require_key(settings).reveal()
        options: dict[str, Any] = {
            "max_retries": settings.max_retries,
            "default_headers": dict(settings.default_headers) or None,
            "organization": settings.organization,
            "project": settings.project,
        }
        if settings.timeout is not None:
            options["timeout"] = settings.timeout
        options |= extra
        try:
            if not self.azure:
                plain = openai.AsyncOpenAI if asynchronous else openai.OpenAI
                return plain(api_key=key, base_url=self.url, **options)
            if not settings.api_version:
                raise NbChatError("Azure OpenAI needs api_version (or OPENAI_API_VERSION), e.g. 2024-10-21")
            azure = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
            return azure(
                api_key=key,
                azure_endpoint=self.url,
                azure_deployment=settings.azure_deployment,
                api_version=settings.api_version,
                **options,
            )
        except openai.OpenAIError as exc:
            raise NbChatError(
                redact(f"cannot set up the OpenAI client: {exc}", credentials(settings))
            ) from None


_SHARED: dict[str, Any] = {}  # SDK clients by the identity of what they were built from
_SHARED_MAX = 16  # a kernel that cycles through more connections builds the older ones again
_SHARED_LOCK = threading.Lock()


def shared_client(connection: Connection, settings: Any) -> Any:
    """The synchronous SDK client for this connection, one per process: building one costs
    tens of milliseconds (the HTTP stack's TLS setup), sending through it a fraction of that,
    so every ``Chat`` on the same server with the same key and options shares it. Never
    closed by a user of it: another ``Chat`` may be sending through it."""
    from .wallclock import http_client

    identity = connection.identity(settings)
    with _SHARED_LOCK:
        client = _SHARED.get(identity)
        if client is None:
            if len(_SHARED) >= _SHARED_MAX:
                del _SHARED[next(iter(_SHARED))]  # the oldest; whoever still holds it keeps it
            plain_http = connection.url.lower().startswith("http://")
            client = connection.client(settings, http_client=http_client(plain_http=plain_http))
            _SHARED[identity] = client
        return client


def resolve(settings: Any) -> Connection:
    """The connection the settings (and the environment) describe right now."""
    if settings.azure_endpoint:
        kind, url, url_from = "Azure OpenAI", str(settings.azure_endpoint), settings.origin("azure_endpoint")
        env = "AZURE_OPENAI_API_KEY"
    elif settings.base_url:
        url, url_from, env = str(settings.base_url), settings.origin("base_url"), "OPENAI_API_KEY"
        kind = "OpenAI" if "api.openai.com" in url else COMPATIBLE
    else:
        kind, url, url_from, env = "OpenAI", OPENAI_URL, "default", "OPENAI_API_KEY"
    key: Secret | None = settings.api_key
    key_from = str(settings.origin("api_key")) if key is not None else "not set"
    if key is None and os.environ.get(env, "").strip():
        key, key_from = Secret(os.environ[env].strip()), f"env {env}"
    if key is None and kind == COMPATIBLE:
        key, key_from = Secret(NO_KEY), "none needed (a placeholder is sent to a local server)"
    return Connection(kind, url, url_from, key, key_from, env)


def key_help(settings: Any, connection: Connection | None = None) -> str:
    """Where to put a key, in the words of the caller's world (a notebook or plain Python)."""
    env = connection.key_env if connection is not None else "OPENAI_API_KEY"
    return f"set {env} in the environment {settings.key_env_where}, or {settings.key_hint}"
