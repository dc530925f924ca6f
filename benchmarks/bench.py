"""nbchat against the raw openai SDK, in one process, against one stand-in server.

Prints each figure for nbchat and for the raw SDK and their ratio (lower is better).
    python benchmarks/bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from nbchat import Chat
from nbchat.conversation import Turn
from nbchat.testing.server import StandInServer


class CountingPublisher(DisplayPublisher):
    """What a kernel would send to the frontend: count the display messages and bytes."""

    messages = 0
    bytes = 0

    def publish(
        self,
        data: Any,
        metadata: Any = None,
        source: Any = None,
        *,
        transient: Any = None,
        update: bool = False,
    ) -> None:
        self.messages += 1
        self.bytes += len(
            json.dumps({"data": data, "metadata": metadata or {}, "transient": transient or {}})
        )


def best(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``repeat`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_fresh_python(code: str, runs: int) -> float:
    values = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        values.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(values)


LOAD_EXT = """
import time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
start = time.perf_counter()
shell.run_line_magic("load_ext", "nbchat")
print(time.perf_counter() - start)
"""
IMPORT_OPENAI = """
import time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
start = time.perf_counter()
import openai
print(time.perf_counter() - start)
"""


def row(name: str, ours: float, raw: float, unit: str = "ms", target: str = "") -> None:
    scale = 1000 if unit == "ms" else 1
    print(f"{name:<42} {ours * scale:>10.2f} {raw * scale:>10.2f} {unit:<3} {ours / raw:>6.2f}x  {target}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    reps = 20 if args.quick else 100

    import openai

    server = StandInServer().start()
    os.environ["OPENAI_BASE_URL"] = server.url
    os.environ["OPENAI_API_KEY"] = "sk-bench"
    raw = openai.OpenAI(base_url=server.url, api_key="sk-bench")

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "nbchat")
    publisher = CountingPublisher()
    shell.display_pub = publisher
    from nbchat.magics import INSTANCES

    magics = INSTANCES[shell]
    magics.show_usage = True
    magics.cache = "off"  # these figures are about requests; benchmarks/replay.py measures replays

    print(f"{'figure':<42} {'nbchat':>10} {'raw SDK':>10}     {'ratio':>6}   target")
    runs = 5 if args.quick else 15
    # pip compiles installed packages (openai included); an editable checkout may run
    # with PYTHONDONTWRITEBYTECODE, so compile nbchat too for a like-for-like load time
    import compileall

    import nbchat

    compileall.compile_dir(os.path.dirname(nbchat.__file__), quiet=1)
    row(
        "%load_ext nbchat vs import openai",
        in_fresh_python(LOAD_EXT, runs),
        in_fresh_python(IMPORT_OPENAI, runs),
        target="load_ext <= 20 ms",
    )

    hello = [{"role": "user", "content": "hello"}]
    chat = Chat(transport=magics.transport, cache="off")
    raw_warm = best(lambda: raw.chat.completions.create(model="gpt-4o-mini", messages=hello), reps)
    api_warm = best(lambda: chat.send("hello", stream=False, history=False), reps)
    cell_warm = best(lambda: shell.run_cell("%%chat --no-stream --no-history\nhello"), reps)
    # the same work written by hand in a cell: call the SDK, display the reply as Markdown
    shell.user_ns.update(raw=raw, hello=hello)
    raw_cell = (
        "from IPython.display import Markdown, display\n"
        "r = raw.chat.completions.create(model='gpt-4o-mini', messages=hello)\n"
        "display(Markdown(r.choices[0].message.content))"
    )
    raw_cell_warm = best(lambda: shell.run_cell(raw_cell), reps)
    row("warm request, Chat.send vs SDK call", api_warm, raw_warm, target="<= 1.10x")
    # a new Chat for every send (a script's loop, a function that builds its own) shares the
    # SDK client of the connection instead of building one
    fresh = best(lambda: Chat(cache="off").send("hello", stream=False, history=False), reps)
    row("new Chat per send vs one reused", fresh, api_warm, target="<= 2x")
    row("warm request, %%chat cell vs SDK cell", cell_warm, raw_cell_warm, target="<= 1.10x")
    row("warm request, %%chat cell vs SDK call", cell_warm, raw_warm, target="(includes IPython's cell cost)")

    long = []
    for i in range(500):
        long += [
            {"role": "user", "content": f"question {i} about the data"},
            {"role": "assistant", "content": f"answer {i} with some detail"},
        ]
    history_chat = Chat(transport=magics.transport, cache="off")
    for i in range(0, len(long), 2):
        history_chat.conversation.turns.append(Turn(long[i : i + 2]))

    def ours_long() -> None:
        history_chat.send("and now?", stream=False)
        history_chat.conversation.undo()

    raw_long = best(
        lambda: raw.chat.completions.create(
            model="gpt-4o-mini", messages=[*long, {"role": "user", "content": "and now?"}]
        ),
        reps // 4,
    )
    row("1,000-message history request", best(ours_long, reps // 4), raw_long, target="<= 1.00x")

    chunks = [f"tok{i} " for i in range(4000)]

    def raw_stream() -> None:
        server.script(chunks=chunks)
        out = []
        for chunk in raw.chat.completions.create(
            model="gpt-4o-mini", messages=hello, stream=True, stream_options={"include_usage": True}
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                out.append(chunk.choices[0].delta.content)

    def cell_stream() -> None:
        server.script(chunks=chunks)
        shell.run_cell("%%chat --no-history\nhello")

    stream_reps = 5 if args.quick else 15
    raw_s = best(raw_stream, stream_reps)
    publisher.messages = publisher.bytes = 0
    ours_s = best(cell_stream, stream_reps)
    per_run_messages = publisher.messages / (stream_reps + 1)
    per_run_bytes = publisher.bytes / (stream_reps + 1)
    row("4,000-chunk stream, %%chat cell", ours_s, raw_s, target="<= 1.20x")
    naive = sum(len("".join(chunks[: k + 1])) * 2 for k in range(len(chunks)))
    label = "  display messages per stream"
    print(f"{label:<42} {per_run_messages:>10.0f} {len(chunks):>10} (one per token, naive)")
    label = "  bytes sent to the frontend"
    print(f"{label:<42} {per_run_bytes / 1e6:>10.3f} {naive / 1e6:>10.1f} MB  (target <= 0.5 MB)")
    server.stop()


if __name__ == "__main__":
    main()
