"""Loading, unloading, autoloading, and what loading costs."""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import warnings

import pytest
from conftest import Cell, make_shell
from IPython.core.magic import Magics, cell_magic, magics_class
from terminal import IPython

from nbchat.testing.server import StandInServer


def magic_names(shell) -> tuple[set[str], set[str]]:
    table = shell.magics_manager.magics
    return set(table["cell"]), set(table["line"])


def test_load_ext_registers_chat_cell_and_line_magics_and_chatconfig(shell) -> None:
    cells, lines = magic_names(shell)
    assert "chat" in cells
    assert {"chat", "chatconfig"} <= lines


def test_loading_twice_is_harmless_and_reload_keeps_conversations(shell, server) -> None:
    cell = Cell(shell)
    assert cell("%%chat\nremember me").ok
    shell.extension_manager.load_extension("nbchat")
    assert cell("%reload_ext nbchat").ok
    assert cell("%%chat\nand now?").ok
    assert [m["content"] for m in server.bodies[-1]["messages"]] == [
        "remember me",
        "Echo: remember me",
        "and now?",
    ]
    assert len(shell.events.callbacks["pre_run_cell"]) == len(
        set(map(id, shell.events.callbacks["pre_run_cell"]))
    )


def test_unload_ext_removes_the_magics(shell) -> None:
    assert Cell(shell)("%unload_ext nbchat").ok
    cells, lines = magic_names(shell)
    assert "chat" not in cells and "chat" not in lines and "chatconfig" not in lines
    assert not Cell(shell)("%%chat\nhello").ok


def test_another_extensions_chat_magic_is_reported_once(env) -> None:
    @magics_class
    class Other(Magics):
        @cell_magic
        def chat(self, line: str, cell: str) -> None:
            pass

    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance(config=config)
    atexit.unregister(sh.atexit_operations)  # as in make_shell
    try:
        sh.register_magics(Other)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sh.extension_manager.load_extension("nbchat")
            sh.extension_manager.load_extension("nbchat")
        messages = [str(w.message) for w in caught if "nbchat" in str(w.message)]
        assert len(messages) == 1 and "replaces the %%chat magic" in messages[0]
    finally:
        InteractiveShell.clear_instance()


def run_python(code: str, **env: str) -> str:
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=full_env
    ).stdout


def test_load_ext_imports_neither_openai_nor_ipywidgets() -> None:
    out = run_python(
        "import sys, json\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\n"
        "sh.run_line_magic('load_ext', 'nbchat')\n"
        "print(json.dumps(['openai' in sys.modules, 'ipywidgets' in sys.modules,"
        " 'chat' in sh.magics_manager.magics['cell']]))"
    )
    assert json.loads(out) == [False, False, True]


def test_load_ext_registers_the_magics_without_loading_the_request_engine_or_views() -> None:
    # %load_ext stays about 10 ms: the engine, the views and the cache load with the first
    # cell that needs them (they are most of nbchat's import time)
    engine = ["cache", "chat", "client", "context", "mapview", "render", "schema", "tools", "widgets"]
    out = run_python(
        "import sys, json\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\n"
        "sh.run_line_magic('load_ext', 'nbchat')\n"
        f"loaded = [m for m in {engine!r} if 'nbchat.' + m in sys.modules and "
        "not type(sys.modules['nbchat.' + m]).__name__.startswith('_Lazy')]\n"
        "sh.run_cell('1/0')\n"  # {Err} is recorded from the start, without the engine
        "print(json.dumps([loaded, sorted(sh.magics_manager.magics['line']).count('chatconfig')]))"
    )
    assert json.loads(out.strip().splitlines()[-1]) == [[], 1]


def test_load_ext_formats_no_help_until_a_person_asks_for_it(shell) -> None:
    # formatting ~50 options' help was most of %load_ext's time: it waits for %%chat?
    out = run_python(
        "import json\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\n"
        "sh.run_line_magic('load_ext', 'nbchat')\n"
        "from nbchat.magics import ChatMagics\n"
        "magics = [vars(ChatMagics)[name] for name in ('chat_cell', 'chat_line', 'chatconfig')]\n"
        "print(json.dumps(['parser' in vars(m) for m in magics]))"
    )
    assert json.loads(out.strip().splitlines()[-1]) == [False, False, False]
    # asked for, the help is all there, and the options parse
    help_text = shell.magics_manager.magics["cell"]["chat"].__doc__
    assert "--temperature" in help_text and "Send the cell to the model" in help_text
    assert "--sliders" in (shell.magics_manager.magics["line"]["chatconfig"].__doc__ or "")


def test_core_modules_do_not_import_ipython() -> None:
    out = run_python(
        "import sys\n"
        "import nbchat, nbchat.chat, nbchat.conversation, nbchat.settings, nbchat.client, nbchat.tools, nbchat.testing.server\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('IPython', 'openai', 'ipywidgets')))"
    )
    assert out.strip() == "[]"


def test_ipython_config_autoloads_and_configures_and_terminal_prints_plain_text(
    ipython: IPython, server: StandInServer
) -> None:
    ipython.profile.mkdir()
    (ipython.profile / "ipython_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["nbchat"]\nc.ChatMagics.temperature = 0.3\n'
    )
    out = ipython.run("%%chat\nhello terminal", ext=False)
    assert "Echo: hello terminal" in out
    assert "gpt-4o-mini · " in out and "completion tokens" in out
    assert "<sub>" not in out and "text/markdown" not in out
    assert server.bodies[-1]["temperature"] == 0.3


@pytest.mark.parametrize("module", ["nbchat.chat", "nbchat.conversation", "nbchat.settings", "nbchat.client"])
def test_each_core_module_has_a_one_line_docstring(module: str) -> None:
    import importlib

    doc = importlib.import_module(module).__doc__ or ""
    assert doc.strip() and len(doc.strip().splitlines()[0]) < 100


def test_make_shell_gives_a_display_capable_shell(env) -> None:
    make_shell()
    try:
        from IPython.display import display

        assert display({"text/plain": "x"}, raw=True, display_id=True) is not None
    finally:
        from IPython.core.interactiveshell import InteractiveShell

        InteractiveShell.clear_instance()
