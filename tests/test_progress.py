"""A map's progress wherever it runs, the same facts in each: a plain script on a terminal
and terminal IPython (one stderr line rewritten in place, then a summary), the same under
pipes (the summary alone), nbclient's Markdown line (dollars escaped) and the widget."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from conftest import Cell
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from terminal import IPython

from nbchat.items import Progress
from nbchat.mapview import ProgressView
from nbchat.testing.server import StandInServer
from nbchat.textview import ERASE, TextProgress

SCRIPT = """\
from nbchat import Chat

chat = Chat(cache="off")
out = chat.map([f"item {i}" for i in range(30)], "{item}", concurrency=2)
print("results", len(out), len(out.errors))
"""
SUMMARY = re.compile(
    r"map: 30/30 done · \d+ tokens · \$[0-9.]+ \(estimated ≈\$[0-9.]+\) · [0-9.]+ s · [0-9.]+ requests/s"
)


def screen(text: str) -> str:
    """What a terminal shows: each line rewritten after a carriage return, erased to its end."""
    return "\n".join(
        line.split("\r")[-1].replace(ERASE, "") for line in text.replace("\r\n", "\n").split("\n")
    )


def environment(server: StandInServer) -> dict[str, str]:
    return {**os.environ, "OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "sk-script", "TERM": "xterm"}


def on_a_terminal(argv: list[str], env: dict[str, str]) -> str:
    """Everything ``argv`` writes to its terminal (stdout and stderr on one pseudo-terminal)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the program exited and closed its side
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(master)
    assert process.wait(10) == 0, output.decode(errors="replace")
    return output.decode(errors="replace")


def test_a_script_on_a_terminal_shows_a_line_rewritten_in_place_then_a_summary(
    server: StandInServer, tmp_path: Path
) -> None:
    server.script(delay=0.05, times=30)  # about 0.8 s at two at once: several refreshes
    script = tmp_path / "label.py"
    script.write_text(SCRIPT)
    shown = on_a_terminal([sys.executable, str(script)], environment(server))
    live = re.findall(r"\r(map [█░]+ \d+/30 · [^\r\n]*?)\x1b\[K", shown)
    assert live, shown
    assert all(re.search(r"\d+\.\d/s · .* tokens", line) for line in live)
    assert any("left" in line for line in live), "time left, once a rate is known"
    lines = screen(shown).strip().split("\n")
    assert SUMMARY.fullmatch(lines[0]), lines
    assert lines[1:] == ["results 30 0"], "the summary replaced the live line, then the script printed"


def test_a_script_under_pipes_prints_only_the_summary_on_stderr(
    server: StandInServer, tmp_path: Path
) -> None:
    server.script(delay=0.05, times=30)
    script = tmp_path / "label.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=environment(server), timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "results 30 0\n"
    assert SUMMARY.fullmatch(done.stderr.rstrip("\n")) and done.stderr.count("\n") == 1, done.stderr


def test_terminal_ipython_paints_on_stderr_and_pipes_get_the_summary(
    ipython: IPython, server: StandInServer
) -> None:
    ipython.profile.mkdir()
    (ipython.profile / "ipython_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["nbchat"]\nc.InteractiveShellApp.exec_lines = ["items = list(range(5))"]\n'
    )
    piped = subprocess.run(
        [*ipython_argv(), "-c", "%%chat --map items -o out\nn={item}"],
        capture_output=True,
        text=True,
        env=ipython.env,
        timeout=60,
    )
    assert piped.returncode == 0, piped.stderr
    assert re.fullmatch(r"items: 5/5 done · [^\r\x1b\n]*\n", piped.stderr), piped.stderr
    assert "\r" not in piped.stdout and "done" not in piped.stdout
    assert len(server.bodies) == 5

    server.script(delay=0.1, times=5)
    shown = on_a_terminal(
        [*ipython_argv(), "-c", "%%chat --map items --concurrency 1 -o out\nm={item}"], ipython.env
    )
    assert re.search(r"\ritems [█░]+ \d/5 · [^\r\n]*\x1b\[K", shown), shown
    assert re.search(r"\ritems: 5/5 done · [^\r\n]*\x1b\[K\r?\n", shown), shown


def ipython_argv() -> list[str]:
    return [sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor"]


def test_every_view_shows_the_same_facts() -> None:
    state = Progress(total=10, label="rows")
    state.started -= 4.0
    state.done, state.failed, state.tokens, state.cost, state.estimate, state.inflight = (
        4,
        1,
        320,
        0.002,
        0.01,
        2,
    )
    line = state.line()
    assert line.startswith("rows █████████░░░░░░░░░░░░░░░ 4/10 · 1 failed · 1.0/s · ≈6 s left · 320 tokens")
    assert "$0.00200 of ≈$0.0100" in line and line.endswith("2 in flight")


def test_a_plain_kernel_shows_a_markdown_line_with_dollars_escaped(cell: Cell, server: StandInServer) -> None:
    cell.shell.user_ns["my_items"] = ["a", "b"]
    run = cell("%%chat --map my_items -o out\n{item}")
    assert run.ok, run.error
    summary = run.outputs[-1]
    assert summary["text/plain"].startswith("my_items: 2/2 done · ") and "$" in summary["text/plain"]
    markdown = summary["text/markdown"]
    assert markdown.startswith("my\\_items: 2/2 done · ")
    assert "$" not in markdown.replace("<span>\\$</span>", ""), "every $ shown as a dollar, never math"


def test_the_widget_summary_escapes_dollars_too(shell: InteractiveShell) -> None:
    state = Progress(total=2, label="rows")
    state.done, state.cost = 2, 0.5
    with capture_output() as io:
        view = ProgressView(2, "rows", terminal=False, widget=True)
        view.update(state)
        # the widget's HTML is shown as written: MathJax is told to leave it alone (a "\\$"
        # there would show its backslash), so its dollars read as dollars, not as maths
        html = view.info.value
        assert html.startswith('<span class="tex2jax_ignore">') and "$0.5000" in html and "\\$" not in html
        view.close(state.summary())
    assert "<span>\\$</span>0.5000 · " in io.outputs[-1].data["text/markdown"]


def test_a_closed_or_odd_stream_gets_no_live_line() -> None:
    class Odd:
        def __init__(self) -> None:
            self.written = ""

        def isatty(self) -> bool:
            raise ValueError("I/O operation on closed file")

        def write(self, text: str) -> None:
            self.written += text

        def flush(self) -> None:
            pass

    odd = Odd()
    view = TextProgress.on(odd)  # type: ignore[arg-type]
    view.update(Progress(total=1))
    view.close("map: 1/1 done")
    assert odd.written == "map: 1/1 done\n"
