"""The reply cache: a replayed cell against a warm request to the stand-in, and Restart &
Run All of a 20-cell chat notebook with the cache and without.

    python benchmarks/replay.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import CountingPublisher, best
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from nbchat.testing.server import StandInServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from run_notebook import execute  # noqa: E402

CELL = "%%chat --no-history\nWhat does a p-value measure? One sentence."


def cells(reps: int, server: StandInServer) -> None:
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "nbchat")
    shell.display_pub = CountingPublisher()
    from nbchat.magics import INSTANCES

    magics = INSTANCES[shell]
    magics.cache = "off"
    warm = best(lambda: shell.run_cell(CELL), reps)
    magics.cache = "replay"
    shell.run_cell(CELL)  # stored; without a cell id every identical request now replays
    sent = len(server.bodies)
    replay = best(lambda: shell.run_cell(CELL), reps)
    assert len(server.bodies) == sent, "a replay sent a request"
    empty = best(lambda: shell.run_cell("pass"), reps)  # IPython's own part of any cell
    print(f"{'cell':<44} {'ms':>8}")
    print(f"{'warm request to the stand-in (cache off)':<44} {warm * 1e3:>8.2f}")
    print(f"{'replayed from the cache':<44} {replay * 1e3:>8.2f}")
    print(f"{'  of which IPython running any cell':<44} {empty * 1e3:>8.2f}")
    print(f"{'  nbchat own time for a replayed cell':<44} {(replay - empty) * 1e3:>8.2f}   target < 2 ms")
    print(f"{'  ratio replay / warm request':<44} {replay / warm:>8.2f}")
    InteractiveShell.clear_instance()


def run_all(server: StandInServer, folder: Path, count: int = 20) -> None:
    import nbformat

    sources = ["%load_ext nbchat", "%%chat -s\nYou are terse."]
    sources += [f"%%chat\nQuestion {i + 1}: what is step {i + 1} of a t-test?" for i in range(count)]
    path = folder / "chat20.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    base = {"OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "sk-bench"}
    cache = {"NBCHAT_CACHE_PATH": str(folder / "replies.sqlite3")}
    print(f"\n{'Restart & Run All, 20 chat cells':<44} {'wall s':>8} {'requests':>10}")
    for label, env in (
        ("without the cache (cache=off)", base | {"NBCHAT_CACHE": "off"}),
        ("first run, cache on (stores)", base | cache | {"NBCHAT_CACHE": "replay"}),
        ("again in a fresh kernel (replays)", base | cache | {"NBCHAT_CACHE": "replay"}),
    ):
        before = len(server.bodies)
        start = time.perf_counter()
        execute(path, env)
        print(f"{label:<44} {time.perf_counter() - start:>8.2f} {len(server.bodies) - before:>10}")
    empty = folder / "empty.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%load_ext nbchat")]), empty)
    start = time.perf_counter()
    execute(empty, base)
    print(f"{'  (kernel start and %load_ext alone)':<44} {time.perf_counter() - start:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, StandInServer() as server:
        os.environ["OPENAI_BASE_URL"] = server.url
        os.environ["OPENAI_API_KEY"] = "sk-bench"
        os.environ["NBCHAT_CACHE_PATH"] = str(Path(folder) / "cells.sqlite3")  # never the user's cache
        cells(20 if args.quick else 100, server)
        run_all(server, Path(folder))


if __name__ == "__main__":
    main()
