"""The ``mcp_servers`` setting: MCP servers declared as other MCP clients declare them,
``{"mcpServers": {NAME: {"command", "args", "env", "cwd"} | {"url", "headers"}}}``, given as
that dict or as the path of a JSON file holding it.

Plain data and the standard library only (the ``mcp`` SDK is imported by ``nbchat.mcp``
when a server is first used). ``env`` values and ``headers`` are credentials: never shown
(the setting's ``repr`` hides them) and registered with :mod:`nbchat.secret`, so every
redaction covers them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from traitlets import TraitType

from .secret import is_credential_header, public_url, source, url_password
from .values import SettingError

HIDDEN = "<secret: set>"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_STDIO_KEYS = {"command", "args", "env", "cwd", "type", "transport"}
_HTTP_KEYS = {"url", "headers", "type", "transport"}


@dataclass(frozen=True)
class ServerConfig:
    """One declared server: a local command (stdio) or a URL (streamable HTTP)."""

    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # credentials
    cwd: str | None = None
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)  # credentials

    @property
    def kind(self) -> str:
        return "http" if self.url else "stdio"

    @property
    def shown(self) -> str:
        """What the server is, for listings and errors: its command line or URL (no
        ``env`` value, no header)."""
        if self.url:
            return public_url(self.url)
        return " ".join([self.command, *self.args])

    @property
    def fingerprint(self) -> str:
        """Tells configurations apart without holding a credential: the public parts as
        written, and a digest of the secret ones (a changed token is another server)."""
        secret = json.dumps([sorted(self.env.items()), sorted(self.headers.items())])
        public = json.dumps([self.name, self.command, self.args, self.cwd, self.url])
        import hashlib  # here, not at load: it loads OpenSSL (≈4 ms of %load_ext's budget)

        digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
        return hashlib.sha256(f"{public}\0{digest}".encode()).hexdigest()[:24]

    @property
    def public(self) -> dict[str, Any]:
        """The non-secret parts, as the reply cache's key may hold them."""
        if self.url:
            return {"name": self.name, "url": public_url(self.url)}
        return {"name": self.name, "command": self.command, "args": list(self.args), "cwd": self.cwd}

    def secrets(self) -> list[str]:
        """The values removed from any text nbchat shows or sends (a result, an error, a
        server's last lines). Every ``env`` value and header is hidden where nbchat shows the
        setting; removing ``debug`` or ``application/json`` from every result would garble
        them, so text loses the values that can be secrets: those of credential-like names
        (``*_TOKEN``, ``*_KEY``, ``Authorization``…), a URL's password, and any long opaque
        value."""
        found = []
        for name, value in [*self.env.items(), *self.headers.items()]:
            password = url_password(value) if "://" in value else None
            if is_credential_header(name) or _opaque(value):
                found.append(value)
            if password:
                found.append(password)
        return found


def _opaque(value: str) -> bool:
    """A long run of letters mixed with digits, not a path: a token by its look."""
    return (
        len(value) >= 16
        and not any(c.isspace() for c in value)
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
        and not value.startswith(("/", "~", "."))
    )


class ServerTable(dict[str, Any]):
    """The ``mcpServers`` mapping as given, whose ``repr`` (``%config``, ``%chatconfig``)
    hides every ``env`` value and header."""

    def __repr__(self) -> str:
        shown = {}
        for name, entry in self.items():
            entry = dict(entry)
            for key in ("env", "headers"):
                if isinstance(entry.get(key), dict):
                    entry[key] = dict.fromkeys(entry[key], HIDDEN)
            shown[name] = entry
        return repr({"mcpServers": shown})


class ServersTrait(TraitType[Any, Any]):
    """``mcp_servers``: ``None``, the path of a JSON file, or the dict itself."""

    default_value = None
    allow_none = True
    info_text = 'the path of a JSON file or a dict like {"mcpServers": {"name": {"command": …}}}'

    def validate(self, obj: Any, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            if isinstance(value, (str, os.PathLike)):
                path = os.fspath(value).strip()
                read_file(path)  # a missing or malformed file is refused when set, not at first use
                return path
            if isinstance(value, Mapping):
                return ServerTable(parse(value, "mcp_servers"))
        except ValueError as e:
            raise SettingError(str(e)) from None
        raise SettingError(f"mcp_servers must be {self.info_text}, not {type(value).__name__}")


def parse(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The ``{NAME: entry}`` table of ``value`` (wrapped in ``mcpServers`` or not), each
    entry checked; a mistake is a ``ValueError`` naming the server and the field, never
    quoting an ``env`` value or a header."""
    table = value.get("mcpServers", value) if isinstance(value, Mapping) else value
    if not isinstance(table, Mapping):
        raise ValueError(f"{where}: mcpServers must be a JSON object of servers by name")
    out: dict[str, Any] = {}
    for name, entry in table.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"{where}: {name!r} cannot be an MCP server name (letters, digits, _, - and ., at most 64)"
            )
        out[name] = _entry(name, entry, where)
    return out


def _entry(name: str, entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: server {name!r} must be a JSON object with command or url")
    has_command, has_url = "command" in entry, "url" in entry
    if has_command == has_url:
        raise ValueError(f"{where}: server {name!r} needs either command (a local server) or url (remote)")
    allowed = _STDIO_KEYS if has_command else _HTTP_KEYS
    unknown = sorted(k for k in entry if k not in allowed)
    if unknown:
        takes = ", ".join(sorted(allowed - {"type", "transport"}))
        raise ValueError(f"{where}: server {name!r} has no field {unknown[0]!r} (it takes {takes})")
    for key, item in entry.items():
        if not _fits(key, item):
            raise ValueError(f"{where}: {key} of server {name!r} must be {_KINDS[key]}")
    return {
        k: (dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, list) else v)
        for k, v in entry.items()
    }


_KINDS = {
    "command": "a non-empty string",
    "args": "a list of strings",
    "env": "an object of strings",
    "cwd": "a string",
    "url": "an http(s) URL",
    "headers": "an object of strings",
    "type": "a string",
    "transport": "a string",
}


def _fits(key: str, item: Any) -> bool:
    if key in ("env", "headers"):
        return isinstance(item, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in item.items()
        )
    if key == "args":
        return isinstance(item, list) and all(isinstance(a, str) for a in item)
    if key == "url":
        return isinstance(item, str) and item.startswith(("http://", "https://"))
    if key == "command":
        return isinstance(item, str) and bool(item.strip())
    return isinstance(item, str) or (key == "cwd" and item is None)


_READ: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}


def read_file(path: str) -> dict[str, Any]:
    """The servers of a JSON file (read again only when it changes)."""
    full = os.path.expanduser(path)
    try:
        stat = os.stat(full)
    except OSError:
        raise ValueError(f"mcp_servers: no such file: {path!r}") from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _READ.get(full)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        with open(full, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"mcp_servers: cannot read {path!r} ({type(e).__name__})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"mcp_servers: {path!r} is not JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"mcp_servers: {path!r} must hold a JSON object with mcpServers")
    table = parse(data, f"mcp_servers ({path})")
    _READ[full] = (stamp, table)
    return table


def servers_of(settings: Any) -> dict[str, ServerConfig]:
    """The declared servers by name (none when ``mcp_servers`` is unset); a file that
    became unreadable since it was set is a ``ValueError``."""
    value = getattr(settings, "mcp_servers", None)
    if not value:
        return {}
    table = read_file(value) if isinstance(value, str) else value
    base = os.path.dirname(os.path.abspath(os.path.expanduser(value))) if isinstance(value, str) else None
    return {name: _config(name, entry, base) for name, entry in table.items()}


def _config(name: str, entry: Mapping[str, Any], base: str | None) -> ServerConfig:
    cwd = entry.get("cwd")
    if cwd and base and not os.path.isabs(os.path.expanduser(cwd)):
        cwd = os.path.join(base, cwd)  # relative to the file that declares it, as its author meant
    return ServerConfig(
        name=name,
        command=str(entry.get("command") or ""),
        args=tuple(entry.get("args") or ()),
        env=dict(entry.get("env") or {}),
        cwd=os.path.expanduser(cwd) if cwd else None,
        url=str(entry.get("url") or ""),
        headers=dict(entry.get("headers") or {}),
    )


def split(item: str, names: Iterable[str]) -> tuple[str | None, str]:
    """``("fs", "")`` for server ``fs``, ``("fs", "read_file")`` for ``fs.read_file`` (a
    server's name may hold dots: the first split that names a server wins)."""
    names = set(names)
    if item in names:
        return item, ""
    for at in (i for i, c in enumerate(item) if c == "."):
        if item[:at] in names and item[at + 1 :]:
            return item[:at], item[at + 1 :]
    return None, ""


def server_of(item: str, value: Any) -> str | None:
    """The server of ``mcp_servers`` (its value, a path or a table) that ``item`` names."""
    try:
        table = read_file(value) if isinstance(value, str) else value or {}
    except ValueError:
        return None
    return split(item, table)[0]


@source
def _mcp_credentials(settings: Any) -> Iterable[str | None]:
    try:
        configs = servers_of(settings)
    except ValueError:
        return []
    return [s for config in configs.values() for s in config.secrets()]


__all__ = [
    "ServerConfig",
    "ServerTable",
    "ServersTrait",
    "parse",
    "read_file",
    "server_of",
    "servers_of",
    "split",
]
