"""Fixtures: a real stand-in OpenAI server on 127.0.0.1 and a real InteractiveShell."""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output
from traitlets.config import Config

from nbchat.testing.server import StandInServer

if TYPE_CHECKING:  # imported by the fixtures that need them, so collecting tests stays quick
    from jupyter_client.blocking.client import BlockingKernelClient
    from jupyter_client.manager import KernelManager
    from terminal import IPython

    from nbchat.magics import ChatMagics


# random-looking, so any 4-character piece of it found in output is a real leak
FAKE_KEY = "sk-Zq8vR2mK7pL4xW9nB3cTj6HyQe1"


@pytest.fixture
def server() -> Iterator[StandInServer]:
    with StandInServer() as srv:
        yield srv


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, server: StandInServer) -> None:
    """The environment a user would have: a key and a base_url, nothing else."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)


def make_shell(config: Config | None = None) -> InteractiveShell:
    config = config or Config()
    config.HistoryManager.enabled = False
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(config=config)
    # each shell's exit hook runs gc.collect(); hundreds of test shells would stall the
    # interpreter's exit for minutes, and with history off there is nothing to save
    atexit.unregister(shell.atexit_operations)
    assert isinstance(shell, InteractiveShell) and shell.extension_manager is not None
    shell.extension_manager.load_extension("nbchat")
    return shell


@pytest.fixture
def shell(env: None) -> Iterator[InteractiveShell]:
    sh = make_shell()
    yield sh
    InteractiveShell.clear_instance()


class Cell:
    """Runs a cell in ``shell`` and keeps what the user would see."""

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell

    def __call__(self, code: str, cell_id: str | None = None) -> Run:
        with capture_output() as io:
            result = self.shell.run_cell(code, store_history=True, cell_id=cell_id)
        assert isinstance(result, ExecutionResult)
        return Run(result, io)


class Run:
    """A cell's result and what it showed: display outputs, stdout, stderr."""

    def __init__(self, result: ExecutionResult, io: CapturedIO) -> None:
        self.result, self.io = result, io

    @property
    def ok(self) -> bool:
        return bool(self.result.success)

    @property
    def error(self) -> BaseException | None:
        error: BaseException | None = self.result.error_in_exec or self.result.error_before_exec
        return error

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """Each display output's data, by MIME type."""
        return [o.data for o in self.io.outputs]

    @property
    def markdown(self) -> str:
        """The Markdown of the last display output (what the user sees last)."""
        for data in reversed(self.outputs):
            if "text/markdown" in data:
                return str(data["text/markdown"])
        return ""

    def final(self, mime: str = "text/markdown") -> str:
        """What the cell shows at the end, in ``mime`` (else plain text): each display's
        last update, in the order the displays appeared (a tool turn shows its calls and
        the reply in displays of their own, with what the tools printed between them)."""
        last: dict[Any, dict[str, Any]] = {}
        for k, output in enumerate(self.io.outputs):
            key = (output.transient or {}).get("display_id") or k
            last[key] = output.data
        return "\n\n".join(str(d.get(mime, d.get("text/plain", ""))) for d in last.values())

    @property
    def text(self) -> str:
        return "\n".join(str(d.get("text/plain", "")) for d in self.outputs) + self.io.stdout + self.io.stderr

    @property
    def metadata(self) -> dict[str, Any]:
        """nbchat's metadata on the last output that has it."""
        for output in reversed(self.io.outputs):
            if output.metadata and "nbchat" in output.metadata:
                meta: dict[str, Any] = output.metadata["nbchat"]
                return meta
        return {}


@pytest.fixture
def cell(shell: InteractiveShell) -> Cell:
    return Cell(shell)


@pytest.fixture
def magics(shell: InteractiveShell) -> ChatMagics:
    from nbchat.magics import INSTANCES

    return INSTANCES[shell]


@pytest.fixture(scope="session")
def cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def reply_cache_off(monkeypatch: pytest.MonkeyPatch, cache_folder: Path) -> None:
    """The reply cache: never the user's ~/.cache, and off unless a test turns it on, so a
    test that sends the same request twice still reaches the server. Kernels and programs a
    test starts inherit both; tests of the cache choose `cache` and `cache_path` themselves."""
    monkeypatch.setenv("NBCHAT_CACHE_PATH", str(cache_folder / "replies.sqlite3"))
    monkeypatch.setenv("NBCHAT_CACHE", "off")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets the debugger in kernels


@pytest.fixture
def ipython(server: StandInServer, tmp_path: Path) -> IPython:
    """Terminal IPython against the stand-in server, with this test's own IPYTHONDIR."""
    from terminal import IPython

    return IPython(server, tmp_path)


@pytest.fixture
def kernel_manager(server: StandInServer) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A real python3 kernel that talks to the stand-in server, and its client."""
    from kernels import started_kernel

    with started_kernel(server) as started:
        yield started


@pytest.fixture
def kernel(kernel_manager: tuple[KernelManager, BlockingKernelClient]) -> BlockingKernelClient:
    return kernel_manager[1]


def sent(server: StandInServer) -> list[Any]:
    """The bodies of the chat requests received, by either API (Chat Completions, Responses)."""
    return [r.body for r in server.requests if r.path.endswith(("/chat/completions", "/v1/responses"))]


def said(body: dict[str, Any]) -> list[Any]:
    """The contents of a chat request's messages (Chat Completions) or input items (Responses)."""
    return [m["content"] for m in body.get("messages") or body["input"]]
