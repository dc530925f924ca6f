"""Restart & Run All, measured: a chat notebook run again in a fresh kernel makes no request."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kernels import execute

from nbchat.testing.server import StandInServer

pytestmark = pytest.mark.kernel

DUMP = (
    "import json\nfrom nbchat.magics import INSTANCES\n"
    "print(json.dumps({n: c.messages() for n, c in sorted(INSTANCES[get_ipython()].conversations.items())}))"
)
# ten cells that ask, with most of what a reply can carry; cells 6-10 follow cell 6 in one conversation
ASKING = [
    "%%chat\nQuestion one",
    "%%chat -c side -t 0.2\nA side question",
    "%%chat -n 2\nQuestion three",
    "%%chat --logprobs 2\nQuestion four",
    "%%chat -o answer\nQuestion five",
    "%%chat\nQuestion six",
    "%%chat --no-stream\nQuestion seven",
    "%%chat -f code\nQuestion eight:\n```python\nprint(8)\n```",
    "%%chat --max-tokens 3\nQuestion nine, cut short",
    "%%chat\nQuestion ten",
]


def notebook(path: Path, asking: list[str]) -> Path:
    cells = ["%load_ext nbchat", "%%chat -s\nYou are terse.", *asking, "print(answer.text)", DUMP]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(nb, path)
    return path


@pytest.fixture
def kernel_env(server: StandInServer, tmp_path: Path) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": server.url,
        "OPENAI_API_KEY": "sk-local",
        "NBCHAT_CACHE": "replay",
        "NBCHAT_CACHE_PATH": str(tmp_path / "replies.sqlite3"),
    }


def comparable(output: Any) -> Any:
    """An output without what may differ between a request and its replay: the timing part
    of the footer (latency vs "replayed · asked … · saved …") and latency/replayed metadata."""
    out = copy.deepcopy(dict(output))
    data = out.get("data", {})
    if "text/markdown" in data and "<sub>" in data["text/markdown"]:
        body, footer = data["text/markdown"].split("<sub>")
        data["text/markdown"] = body + " · ".join(footer.split(" · ")[:2])
    # a footer follows the reply, or stands alone (after a log-prob view)
    if "text/plain" in data and "\n\n— " in "\n\n" + data["text/plain"]:
        body, footer = ("\n\n" + data["text/plain"]).split("\n\n— ")
        body = body[2:]
        data["text/plain"] = body + " · ".join(footer.split(" · ")[:2])
    meta = out.get("metadata", {}).get("nbchat", {})
    for key in ("latency", "replayed"):
        meta.pop(key, None)
    return out


def replies(nb: Any) -> list[Any]:
    return [c.outputs for c in nb.cells]


def test_run_all_in_a_fresh_kernel_sends_nothing_and_shows_the_same_replies(
    server: StandInServer, kernel_env: dict[str, str], tmp_path: Path
) -> None:
    path = notebook(tmp_path / "chat.ipynb", ASKING)
    first = execute(path, kernel_env)
    assert len(server.bodies) == 10
    assert not any(o.output_type == "error" for c in first.cells for o in c.outputs)

    second = execute(path, kernel_env | {"OPENAI_API_KEY": "sk-another-key"})
    assert len(server.bodies) == 10, "the second Run All sent no request (the key is not in the cache key)"
    assert [[comparable(o) for o in c] for c in replies(second)] == [
        [comparable(o) for o in c] for c in replies(first)
    ]
    replayed = [o for c in second.cells for o in c.outputs if "nbchat" in o.get("metadata", {})]
    flags = [o.metadata["nbchat"].get("replayed") for o in replayed if "usage" in o.metadata["nbchat"]]
    assert flags == [True] * 10
    assert all(
        "replayed · asked" in o.data["text/plain"] for o in replayed if "usage" in o.metadata["nbchat"]
    )

    edited = list(ASKING)
    edited[5] = "%%chat\nQuestion six, edited"
    third = execute(notebook(tmp_path / "chat.ipynb", edited), kernel_env)
    asked = [b["messages"][-1]["content"] for b in server.bodies[10:]]
    assert asked == [
        "Question six, edited",
        "Question seven",
        "Question eight:\n```python\nprint(8)\n```",
        "Question nine, cut short",
        "Question ten",
    ], "cells 6-10 asked again (their history changed), cells 1-5 replayed"
    assert third.cells[-1].outputs[0].text != first.cells[-1].outputs[0].text


def test_rebuild_in_a_fresh_kernel_restores_what_the_kernel_that_saved_the_notebook_had(
    server: StandInServer, kernel_env: dict[str, str], tmp_path: Path
) -> None:
    kernel_env["NBCHAT_CACHE"] = "off"
    path = notebook(tmp_path / "chat.ipynb", ASKING)
    ran = execute(path, kernel_env)
    nbformat.write(ran, path)
    original = json.loads(ran.cells[-1].outputs[0].text)
    assert len(original["default"]) == 1 + 2 * 9 and len(original["side"]) == 2

    rebuilding = tmp_path / "rebuild.ipynb"
    cells = ["%load_ext nbchat", "%chat rebuild", DUMP]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), rebuilding)
    # what jupyter_server puts in a kernel's environment: the notebook's path
    rebuilt = execute(rebuilding, kernel_env | {"JPY_SESSION_NAME": str(path)})
    assert "Rebuilt from" in rebuilt.cells[1].outputs[0].data["text/plain"]
    assert json.loads(rebuilt.cells[-1].outputs[0].text) == original
