"""Kernels and notebooks as the tests run them: a fresh python3 kernel whose environment is
this process's plus what the test gives (this process's own environment is left alone), and
a notebook's every cell executed in one, its outputs read back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel
from nbclient import NotebookClient
from nbformat import NotebookNode

from nbchat.testing.server import StandInServer

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(path: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> NotebookNode:
    """Run every cell of ``path`` (in ``cwd``, by default the notebook's folder); return the
    executed notebook."""
    nb: NotebookNode = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(cwd or path.parent)}},
        record_timing=False,
        store_widget_state=True,
    )
    client.execute(env={**os.environ, **(env or {})})
    return nb


def against(server: StandInServer, **env: str) -> dict[str, str]:
    """The environment of a kernel that talks to the stand-in ``server``."""
    return {"OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "sk-local", **env}


def text_of(output: NotebookNode) -> str:
    """What an output shows as text: a stream's text, an error's one line, or the Markdown
    (else plain text) of a display."""
    if output.output_type == "stream":
        return str(output.text)
    if output.output_type == "error":
        return f"{output.ename}: {output.evalue}"
    data = output.get("data", {})
    return str(data.get("text/markdown") or data.get("text/plain") or "")


def outputs_of(nb: NotebookNode, source_start: str) -> list[NotebookNode]:
    """The outputs of the first code cell whose source starts with ``source_start``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    assert cells, f"no cell starts with {source_start!r}"
    return list(cells[0].outputs)


@contextmanager
def started_kernel(server: StandInServer) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A fresh python3 kernel that talks to the stand-in ``server``; shut down on the way out."""
    env = {**os.environ, **against(server, OPENAI_API_KEY="sk-kernel")}
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def send(
    kc: BlockingKernelClient,
    code: str,
    cell_id: str | None = None,
    expressions: dict[str, str] | None = None,
) -> str:
    """Send an execute_request the way JupyterLab does (the cell's id, if any, in metadata);
    return its message id."""
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": expressions or {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    msg = kc.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
    kc.shell_channel.send(msg)
    return str(msg["header"]["msg_id"])


def reply_to(kc: BlockingKernelClient, msg_id: str) -> dict[str, Any]:
    """The content of the kernel's execute_reply to ``msg_id``."""
    while True:
        reply = kc.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg_id:
            return dict(reply["content"])
