"""Credentials kept out of what IPython itself shows: its config objects, ``%config`` lines
for ``ChatMagics`` and the tracebacks of defects (also with ``%xmode Verbose``)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from traitlets import TraitError
from traitlets.config import Config

from .errors import NbChatError
from .secret import Secret, credentials, hide_in_traceback, redact_foreign
from .values import Headers, MaskedURL

# the config sections ChatMagics reads
SECTIONS = ("ChatMagics", "Settings")
_ASSIGNMENT = re.compile(r"^\s*ChatMagics\.(\w+)\s*=(.*)$", re.S)


def hide_in_config(*configs: Any) -> None:
    """Hold the credentials of ``configs`` (a config file's, ``%config``'s) in forms whose
    ``repr`` hides them: what ``get_ipython().config`` or ``magics.config`` shows. The
    settings read them back unchanged."""
    for config in configs:
        if not isinstance(config, Config):
            continue
        for name in SECTIONS:
            if name not in config:  # Config creates a section on lookup
                continue
            section = config[name]
            key = section.get("api_key")
            if isinstance(key, str):
                section["api_key"] = Secret(key.strip()) if key.strip() else None
            headers = section.get("default_headers")
            if isinstance(headers, dict) and not isinstance(headers, Headers):
                section["default_headers"] = Headers(headers)
            for field in ("base_url", "azure_endpoint"):
                url = section.get(field)
                if isinstance(url, str) and not isinstance(url, MaskedURL):
                    section[field] = MaskedURL(url)


def guarded(settings_of: Callable[[Any], Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A magic whose defects (not nbchat's own errors, which are redacted when made) are
    shown without a credential in their traceback."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return func(self, *args, **kwargs)
            except (NbChatError, UsageError):
                raise
            except BaseException as exc:
                hide_in_traceback(exc, credentials(settings_of(self)))
                raise

        return run

    return decorate


def install_config(shell: Any, magics: Any) -> None:
    """Put :func:`config_magic` in front of IPython's ``%config`` (once)."""
    table = shell.magics_manager.magics["line"]
    current = table.get("config")
    if current is not None and getattr(type(current), "_resolve", None) is not None:
        current = current._resolve()  # IPython's LazyMagic: load the real %config (cheap) to wrap it
    if current is not None:
        original = (
            current.__dict__.get("nbchat_original", current) if hasattr(current, "__dict__") else current
        )
        table["config"] = config_magic(magics, original)


def uninstall_config(shell: Any) -> None:
    table = shell.magics_manager.magics["line"]
    original = getattr(table.get("config"), "nbchat_original", None)
    if original is not None:
        table["config"] = original


def config_magic(magics: Any, original: Callable[[str], Any]) -> Callable[[str], Any]:
    """IPython's ``%config``, except that ``%config ChatMagics.NAME = VALUE`` is set here:
    a value that is not Python, a name that is no setting and a value the setting refuses
    are one-line usage errors that never repeat the value (it may be a key)."""

    @functools.wraps(original)
    def config(line: str) -> Any:
        match = _ASSIGNMENT.match(line)
        if match is None:
            return original(line)
        name, expression = match.group(1), match.group(2).strip()
        if name not in magics.class_trait_names(config=True):
            raise UsageError(f"ChatMagics has no setting {name!r}; %chatconfig lists them")
        try:
            value = eval(expression, magics.shell.user_ns)  # what %config itself does
        except Exception as exc:  # whatever the user typed: say what kind of mistake
            raise UsageError(
                f"%config ChatMagics.{name}: the value is not a Python value ({type(exc).__name__}); "
                f"put text in quotes, e.g. %config ChatMagics.{name} = 'text', or use %chatconfig {name}=…"
            ) from None
        update = Config()
        update.ChatMagics[name] = value
        # the value refused may be a credential typed into the wrong setting
        typed = [value] if isinstance(value, str) and len(value) >= 12 else []
        try:
            magics.update_config(update)
        except TraitError as exc:
            said = redact_foreign(str(exc), credentials(magics, typed))
            raise UsageError(f"%config ChatMagics.{name}: {said}") from None
        return None

    config.nbchat_original = original  # type: ignore[attr-defined]
    return config
