"""Wall-clock limits on waiting for a server: the first token, and each gap between tokens.

The HTTP stack's timeouts bound each socket read, so a server that sends its headers or
its reply a byte at a time never trips them. Here every read of the connection is
bounded by the time left until the current thread's deadline instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

_local = threading.local()


class TimeUp(BaseException):
    """The deadline passed. A ``BaseException``, like ``KeyboardInterrupt``, so the SDK's
    retry loop (which retries every ``Exception``) and the HTTP stack let it through and
    close the connection; the transport turns it into a one-line timeout message and it
    never reaches the user as such."""


def limit(seconds: float | None) -> None:
    """From now on, this thread's reads give up after ``seconds`` (``None``: no limit)."""
    _local.seconds = seconds
    _local.deadline = None if seconds is None else time.monotonic() + seconds


def renew() -> None:
    """Something arrived: the next wait gets the whole limit again."""
    limit(getattr(_local, "seconds", None))


def clear() -> None:
    _local.seconds = _local.deadline = None


def _left(timeout: float | None) -> float | None:
    """The socket timeout to use: ``timeout`` or the time left, whichever is shorter."""
    deadline: float | None = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeUp
    return left if timeout is None else min(timeout, left)


def _expired() -> bool:
    deadline = getattr(_local, "deadline", None)
    return deadline is not None and time.monotonic() >= deadline


class _Stream:
    """A connection whose reads and writes end at the deadline."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return bytes(self._inner.read(max_bytes, _left(timeout)))
        except Exception:
            if _expired():  # the shortened socket timeout fired: that is the deadline
                raise TimeUp from None
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._inner.write(buffer, _left(timeout))
        except Exception:
            if _expired():
                raise TimeUp from None
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend:
    """The HTTP stack's network backend, handing out deadline-bound connections."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _Stream:
        try:
            return _Stream(self._inner.connect_tcp(host, port, _left(timeout), local_address, socket_options))
        except Exception:
            if _expired():
                raise TimeUp from None
            raise

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> _Stream:
        return _Stream(self._inner.connect_unix_socket(path, _left(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def http_client(plain_http: bool = False) -> Any:
    """The SDK's default HTTP client, its connections bound by this thread's deadline.

    ``plain_http``: the server is reached over ``http://`` (a local server, the stand-in),
    so no certificate store is loaded — that is most of a client's cost. The bare context
    given instead trusts no certificate: a redirect to ``https://`` fails, never goes
    unverified."""
    import openai

    options: dict[str, Any] = {}
    if plain_http:
        import ssl

        options["verify"] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client = openai.DefaultHttpxClient(**options)
    # httpx2 builds its connection pools itself and takes no network backend; the pools
    # keep theirs in ``_network_backend`` (tests/test_hardening_timeouts.py notices a change).
    for transport in [client._transport, *client._mounts.values()]:
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = _Backend(pool._network_backend)
    return client
