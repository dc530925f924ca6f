"""The package's shape, read from its source: no import cycle, imports point one way
(magics → views → engine → transports → core data), the engine imports no IPython and no
view and never looks modules up, and the engine runs in a fresh interpreter without IPython.

What counts as an import: every ``import`` and ``from … import`` statement, at module level
or inside a function or method, wherever it runs. Imports under ``if TYPE_CHECKING:`` name
types for mypy and never run (every such module has ``from __future__ import annotations``,
checked below), so they are typing-only: they are not edges of the cycle or layer checks,
but the engine may not name IPython or a view even there.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nbchat"

# Each module of nbchat/ in one layer; a module may import its own layer or a lower one.
CORE, TRANSPORTS, ENGINE, VIEWS, MAGICS = range(5)
LAYER_NAMES = ["core data", "transports", "engine", "views", "magics"]
LAYERS = {
    CORE: [
        "agreement", "cache", "compat", "content", "context", "conversation", "errors", "events",
        "host", "items", "lazy", "markdown", "notebook", "options", "rebuild", "schema", "secret",
        "settings", "template", "tokens", "tools", "usage", "values", "wallclock",
    ],
    TRANSPORTS: ["client", "connection", "transports"],  # and every nbchat.transports.* module
    ENGINE: ["batch", "chat", "compare", "files", "images", "mapping"],
    VIEWS: ["compareview", "mapview", "render", "textview", "watch", "widgets"],
    MAGICS: ["", "hidden", "magics"],  # "": the package's front door, nbchat/__init__.py
}  # fmt: skip
# A module missing from LAYERS sits just above the highest layer it imports (a new module
# works at once); list it to pin it, as the engine's modules are for the checks below.
FORBIDDEN_IN_ENGINE = ("IPython", "ipywidgets")


@dataclass
class Module:
    name: str
    path: Path
    imports: dict[str, int] = field(default_factory=dict)  # runtime imports: module -> line
    typing_only: dict[str, int] = field(default_factory=dict)  # under `if TYPE_CHECKING:`
    foreign: dict[str, int] = field(default_factory=dict)  # outside the package, anywhere
    sys_modules: list[int] = field(default_factory=list)  # lines that read sys.modules
    future_annotations: bool = False


def read_package(root: Path) -> dict[str, Module]:
    """Every module under ``root`` with what it imports (resolved to modules of the package)."""
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = Module(".".join(parts), path)
    for module in modules.values():
        _read(module, modules, root.name)
    return modules


def _read(module: Module, modules: dict[str, Module], top: str) -> None:
    tree = ast.parse(module.path.read_text(), str(module.path))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "modules" and ast.unparse(node.value) == "sys":
            module.sys_modules.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            module.future_annotations |= any(a.name == "annotations" for a in node.names)
            continue
        for target in _targets(node, package, modules):
            if target.split(".")[0] != top:
                module.foreign.setdefault(target, node.lineno)
                continue
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target != module.name:
                where = module.typing_only if id(node) in typing_only else module.imports
                where.setdefault(target, node.lineno)


def _targets(node: ast.AST, package: str, modules: dict[str, Module]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        base = ".".join([*parent, *([base] if base else [])])
    # `from . import render` and `from .transports import wire` import those modules;
    # `from .chat import Chat` imports nbchat.chat
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def find_cycle(modules: dict[str, Module]) -> list[str] | None:
    """One import cycle as the modules along it (first == last), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for target in sorted(modules[name].imports):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(modules):
        if name not in state and (found := visit(name)) is not None:
            return found
    return None


def listed_layer(name: str) -> int | None:
    short = name.removeprefix("nbchat").removeprefix(".")
    if short.startswith("transports."):
        return TRANSPORTS
    return next((layer for layer, names in LAYERS.items() if short in names), None)


def layer_of(name: str, modules: dict[str, Module], seen: frozenset[str] = frozenset()) -> int | None:
    """The module's layer: as listed, else just above what it imports (``None``: the stand-in)."""
    listed = listed_layer(name)
    if listed is not None or not runtime(name) or name not in modules or name in seen:
        return listed
    below = [layer_of(t, modules, seen | {name}) for t in modules[name].imports]
    return max([CORE, *(b for b in below if b is not None)])


def runtime(name: str) -> bool:
    """nbchat's runtime modules: everything but the stand-in server (``nbchat.testing``)."""
    return name != "nbchat.testing" and not name.startswith("nbchat.testing.")


@pytest.fixture(scope="module")
def package() -> dict[str, Module]:
    return read_package(PACKAGE)


def _cycle_message(cycle: list[str]) -> str:
    return "import cycle: " + " → ".join(cycle)


def test_no_import_cycle_anywhere_in_the_package(package: dict[str, Module]) -> None:
    cycle = find_cycle(package)
    assert cycle is None, _cycle_message(cycle or [])


def upward_imports(modules: dict[str, Module]) -> list[str]:
    """Each runtime import of a higher layer, as ``file:line: who (layer) imports what (layer)``."""
    upward = []
    for module in modules.values():
        mine = layer_of(module.name, modules)
        for target, line in module.imports.items():
            theirs = layer_of(target, modules)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(
                    f"{module.path.name}:{line}: {module.name} ({LAYER_NAMES[mine]}) imports "
                    f"{target} ({LAYER_NAMES[theirs]})"
                )
    return upward


def test_imports_point_one_way_from_the_magics_down_to_the_core_data(package: dict[str, Module]) -> None:
    upward = upward_imports(package)
    assert not upward, "\n".join(upward)


def engine_problems(modules: dict[str, Module]) -> list[str]:
    """Where the engine or a transport imports IPython or a view, or reads ``sys.modules``."""
    problems = []
    for module in modules.values():
        layer = listed_layer(module.name)
        if layer not in (ENGINE, TRANSPORTS):
            continue
        for target, line in module.foreign.items():
            if target.split(".")[0] in FORBIDDEN_IN_ENGINE:
                problems.append(f"{module.path.name}:{line}: {module.name} imports {target}")
        for target, line in {**module.typing_only, **module.imports}.items():
            if layer_of(target, modules) in (VIEWS, MAGICS):
                problems.append(f"{module.path.name}:{line}: {module.name} imports the view {target}")
        problems += [
            f"{module.path.name}:{line}: {module.name} reads sys.modules" for line in module.sys_modules
        ]
    return problems


def test_the_engine_and_transports_import_no_ipython_no_view_and_never_read_sys_modules(
    package: dict[str, Module],
) -> None:
    problems = engine_problems(package)
    assert not problems, "\n".join(problems)


def test_the_stand_in_imports_nothing_of_nbchats_runtime(package: dict[str, Module]) -> None:
    # its token counts and its reading of messages are its own: a test that compares nbchat's
    # estimate or request with what the stand-in saw compares two implementations, not one
    leaks = [
        f"{module.path.name}:{line}: {module.name} imports {target}"
        for module in package.values()
        if not runtime(module.name)
        for target, line in {**module.imports, **module.typing_only}.items()
        if runtime(target) and target != "nbchat"
    ]
    assert not leaks, "\n".join(leaks)


def test_the_stand_in_has_one_route_table(package: dict[str, Module]) -> None:
    from nbchat.testing import server

    tables = [
        f"{module.name}.{target.id}"
        for module in package.values()
        if not runtime(module.name)
        for node in ast.walk(ast.parse(module.path.read_text()))
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, (ast.Dict, ast.DictComp))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and "ROUTE" in target.id.upper()
    ]  # a table of routes is a dict named for them
    assert tables == ["nbchat.testing.server.ROUTES"]
    assert server.find_route("GET", "/v1/files/file-1/content") is server.ROUTES[("GET", "/files/*/content")]
    azure = server.find_route("POST", "/openai/deployments/d/chat/completions?api-version=1")
    assert azure is server.ROUTES[("POST", "/chat/completions")]
    assert server.find_route("POST", "/v1/nowhere") is None


def test_no_function_outside_the_stand_in_is_over_60_lines(package: dict[str, Module]) -> None:
    # from its ``def`` line to its last, docstring and comments included
    long = [
        f"{module.path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for module in package.values()
        if runtime(module.name)
        for node in ast.walk(ast.parse(module.path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (node.end_lineno or 0) - node.lineno + 1 > 60
    ]
    assert not long, "\n".join(long)


def test_each_magic_is_parse_then_dispatch_then_render() -> None:
    # the handler of %%chat, %chat and %chatconfig: a parse, a look-up in a table, a call; the
    # work is in the methods the tables name
    tree = ast.parse((PACKAGE / "magics.py").read_text())
    handlers = {
        node.name: node.body[1:] if ast.get_docstring(node) else node.body
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d).startswith(("cell_magic(", "line_magic(")) for d in node.decorator_list)
    }
    assert sorted(handlers) == ["chat_cell", "chat_line", "chatconfig"]
    sizes = {name: body[-1].end_lineno - body[0].lineno + 1 for name, body in handlers.items()}  # type: ignore[operator]
    assert all(size <= 10 for size in sizes.values()), sizes
    for name, body in handlers.items():
        first = ast.unparse(body[0])
        assert first.startswith("args") and ".parse_" in first, f"{name} starts by parsing its line"


def test_typing_only_imports_are_never_run(package: dict[str, Module]) -> None:
    # with postponed annotations the names are strings; without, a TYPE_CHECKING name would fail at import
    missing = sorted(m.name for m in package.values() if m.typing_only and not m.future_annotations)
    assert not missing, (
        f"{missing} name types under TYPE_CHECKING without `from __future__ import annotations`"
    )


def test_the_checks_catch_a_cycle_inside_a_function_an_upward_import_and_ipython_in_the_engine(
    tmp_path: Path,
) -> None:
    # the checks above can fail: a made-up package with a cycle through a function's import
    root = tmp_path / "nbchat"
    (root / "transports").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "transports" / "__init__.py").write_text("")
    (root / "chat.py").write_text("from .transports import wire\n")
    (root / "transports" / "wire.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..render import x\n"
        "def send():\n    from ..mapping import run\n"
    )
    (root / "mapping.py").write_text(
        "import sys\ndef run():\n    from . import chat\n    if sys.modules.get('IPython'):\n"
        "        from IPython.display import display\n"
    )
    (root / "render.py").write_text("x = 1\n")
    (root / "newcomer.py").write_text("from . import chat\n")  # in no layer: above the engine it imports
    found = read_package(root)
    cycle = find_cycle(found)
    assert cycle is not None
    assert _cycle_message(cycle) == (
        "import cycle: nbchat.chat → nbchat.transports.wire → nbchat.mapping → nbchat.chat"
    )
    wire = found["nbchat.transports.wire"]
    assert wire.imports == {"nbchat.mapping": 5} and wire.typing_only == {"nbchat.render": 3}
    assert layer_of("nbchat.newcomer", found) == ENGINE
    assert upward_imports(found) == [
        "wire.py:5: nbchat.transports.wire (transports) imports nbchat.mapping (engine)"
    ]
    assert engine_problems(found) == [
        "mapping.py:5: nbchat.mapping imports IPython.display",
        "mapping.py:4: nbchat.mapping reads sys.modules",
        "wire.py:3: nbchat.transports.wire imports the view nbchat.render",
    ]


# -- the engine in a plain interpreter ----------------------------------------------------

ENGINE_ROUND_TRIP = """
import json, sys
from nbchat import Chat

chat = Chat(base_url=sys.argv[1], api_key="sk-test", cache="off")
sent = chat.send("hello").text
mapped = [str(r) for r in chat.map(["a", "b"], "Label {item}", concurrency=2)]
job = chat.map(["c"], "Label {item}", batch=True)
batched = [str(r) for r in job.wait(poll=0.05).results()]
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("IPython", "ipywidgets"))
print(json.dumps({"sent": sent, "mapped": mapped, "batched": batched, "status": job.status,
                  "loaded": loaded}))
"""


def test_send_map_and_a_batch_in_a_fresh_interpreter_never_import_ipython(server: object) -> None:
    url = getattr(server, "url")  # noqa: B009 (the fixture's StandInServer, typed loosely here)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, "-c", ENGINE_ROUND_TRIP, url], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["sent"] == "Echo: hello"
    assert out["mapped"] == ["Echo: Label a", "Echo: Label b"]
    assert out["status"] == "completed" and out["batched"] == ["Echo: Label c"]
    assert out["loaded"] == []
