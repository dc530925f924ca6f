"""nbchat: chat with OpenAI-compatible models from IPython and Jupyter cells.

``%load_ext nbchat`` registers ``%%chat``, ``%chat`` and ``%chatconfig``. The same
engine works without IPython: ``from nbchat import Chat``.
"""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING, Any

from . import watch
from .errors import NbChatError
from .host import HOST

if TYPE_CHECKING:  # the magics import IPython, which %load_ext pays for only when it loads them
    from .batch import BatchJob
    from .chat import Chat, Reply
    from .conversation import Conversation
    from .magics import ChatMagics
    from .tools import tool

__version__ = "0.1.0"
__all__ = ["BatchJob", "Chat", "Conversation", "NbChatError", "Reply", "__version__", "tool"]


def _new_chat(options: dict[str, Any]) -> Chat:
    from .chat import Chat

    return Chat(**options)


def _session_chat(options: dict[str, Any]) -> Chat:
    """A ``Chat`` with the settings of the IPython session where ``%load_ext nbchat`` ran (a
    copy: ``options`` change only this one), or with the defaults in another shell."""
    from IPython import get_ipython

    from .chat import Chat
    from .magics import INSTANCES
    from .settings import Settings

    shell = get_ipython()
    session = INSTANCES.get(shell) if shell is not None else None
    if session is None:
        return Chat(**options)
    settings = Settings()
    with settings.hold_trait_notifications():
        for name in session.setting_names():  # already valid: copied as they are
            setattr(settings, name, getattr(session, name))
    settings.__dict__["_origins"] = dict(session.__dict__.get("_origins", {}))
    return Chat(settings=settings, transport=session.transport, ledger=session.ledger, **options)


def _run_map(*args: Any, **options: Any) -> Any:
    from .mapping import run_map

    return run_map(*args, **options)


def _submit_map(*args: Any, **options: Any) -> Any:
    from .batch import submit_map

    return submit_map(*args, **options)


def _run_compare(*args: Any, **options: Any) -> Any:
    from .compare import run_compare

    return run_compare(*args, **options)


# The engine is handed its views, its default Chat and the Chat its runners here, once (each
# loaded when first used): no module of the engine imports another that imports it back.
HOST.progress, HOST.status, HOST.chat = watch.progress, watch.status, _new_chat
HOST.map, HOST.submit_map, HOST.compare = _run_map, _submit_map, _run_compare


def load_ipython_extension(shell: Any) -> None:
    """Build (or reuse) the magics, register them, subscribe to cell ids."""
    from .hidden import install_config
    from .magics import INSTANCES, ChatMagics

    HOST.chat = _session_chat  # BatchJob.attach() follows %chatconfig from now on

    magics = INSTANCES.get(shell)
    if magics is None:
        magics = ChatMagics(shell=shell)
        INSTANCES[shell] = magics
    existing = shell.magics_manager.magics["cell"].get("chat")
    owner = getattr(existing, "__self__", None)
    if existing is not None and not isinstance(owner, ChatMagics):
        source = getattr(existing, "__module__", None) or type(owner).__module__
        warnings.warn(f"nbchat replaces the %%chat magic registered by {source}", stacklevel=2)
    shell.register_magics(magics)
    install_config(shell, magics)  # %config ChatMagics.x = … errors in one line, never quoting a key
    if magics.pre_run_cell not in shell.events.callbacks["pre_run_cell"]:
        shell.events.register("pre_run_cell", magics.pre_run_cell)
    if magics.notebook.post_run_cell not in shell.events.callbacks["post_run_cell"]:
        shell.events.register("post_run_cell", magics.notebook.post_run_cell)  # {Err}


def unload_ipython_extension(shell: Any) -> None:
    """Remove the magics; the conversations stay for a later load in this kernel."""
    from .magics import INSTANCES

    magics = INSTANCES.get(shell)
    if magics is not None:
        _unregister(shell, magics)
    # the MCP servers this kernel started (if it started any: the module is loaded with the first)
    servers = sys.modules.get("nbchat.mcp")
    if servers is not None:
        servers.stop_all()


def _unregister(shell: Any, magics: ChatMagics) -> None:
    from .hidden import uninstall_config

    uninstall_config(shell)
    for kind, names in (("cell", ["chat"]), ("line", ["chat", "chatconfig"])):
        table = shell.magics_manager.magics[kind]
        for name in names:
            if getattr(table.get(name), "__self__", None) is magics:
                del table[name]
    if magics.pre_run_cell in shell.events.callbacks["pre_run_cell"]:
        shell.events.unregister("pre_run_cell", magics.pre_run_cell)
    if magics.notebook.post_run_cell in shell.events.callbacks["post_run_cell"]:
        shell.events.unregister("post_run_cell", magics.notebook.post_run_cell)


# The public names, each loaded when first used: ``import nbchat`` (and ``%load_ext``) does
# not pay for the request engine or the map machinery until a cell or a script needs them.
_PUBLIC = {
    "BatchJob": "batch",
    "Chat": "chat",
    "Reply": "chat",
    "Conversation": "conversation",
    "tool": "tools",
}


def __getattr__(name: str) -> Any:
    import importlib

    where = _PUBLIC.get(name)
    if where is None:
        raise AttributeError(f"module 'nbchat' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{where}", __name__), name)
    globals()[name] = value  # looked up once
    return value
