"""Terminal IPython as a first-class view: a real ``ipython`` process on a pseudo-terminal
(or a pipe), typed into as a person would, against the stand-in server."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ERASE = "\r\x1b[K"


class Terminal:
    """``ipython --simple-prompt`` on a pseudo-terminal; ``type`` sends keystrokes."""

    def __init__(self, server, tmp_path: Path) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "IPython",
                "--no-banner",
                "--colors=nocolor",
                "--simple-prompt",
                "--HistoryManager.enabled=False",
                "--ext=nbchat",
            ],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=terminal_env(server, tmp_path),
            start_new_session=True,
        )
        os.close(slave)
        self.output = ""

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def read_until(self, pattern: str, seconds: float = 30, since: int = 0) -> str:
        """All output so far, once ``pattern`` (a regex) appears in it (after ``since``)."""
        deadline = time.monotonic() + seconds
        while not re.search(pattern, self.output[since:]):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} in the terminal; it shows:\n{self.output[-2000:]!r}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                try:
                    self.output += os.read(self.master, 65536).decode(errors="replace")
                except OSError:
                    break
        return self.output

    def drain(self, seconds: float) -> str:
        """Everything printed in the next ``seconds``."""
        start, deadline = len(self.output), time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if select.select([self.master], [], [], left)[0]:
                self.output += os.read(self.master, 65536).decode(errors="replace")
        return self.output[start:]

    def run(self, cell: str, until: str) -> str:
        """Type a cell (a terminal cell ends with an empty line) and wait for ``until``."""
        start = len(self.output)
        # --simple-prompt ends a cell magic at its second empty line (the full prompt: the first)
        self.type(cell.replace("\n", "\r") + ("\r\r\r" if "\n" in cell else "\r"))
        self.read_until(re.escape(cell.splitlines()[0]), since=start)
        self.read_until(until, since=start + len(cell))
        return self.output[start:]

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)
        os.close(self.master)


def terminal_env(server, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "IPYTHONDIR": str(tmp_path),
        "OPENAI_BASE_URL": server.url,
        "OPENAI_API_KEY": "sk-terminal",
        "TERM": "xterm",
    }


@pytest.fixture
def terminal(server, tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(server, tmp_path)
    term.read_until(r"In \[1\]: ")
    yield term
    term.close()


def visible(text: str) -> str:
    """What the screen shows: each erased stretch of a line is gone."""
    return re.sub(r"[^\r\n]*\r\x1b\[K", "", text)


def test_the_waiting_indicator_shows_until_the_reply_starts_then_is_erased(terminal, server) -> None:
    server.script(text="a slow answer", delay=1.0)
    shown = terminal.run("%%chat\nhello", r"completion tokens.*\n")
    before_reply = shown[: shown.index("a slow answer")]
    assert "⏳ gpt-4o-mini · waiting" in before_reply
    assert before_reply.rstrip(" ").endswith(ERASE), "the indicator is erased before the reply starts"
    assert "⏳" not in visible(shown)
    assert re.search(r"\n(\r)?a slow answer\r?\n— gpt-4o-mini · ", visible(shown))


def test_an_empty_reply_erases_the_indicator_and_the_footer_says_so(terminal, server) -> None:
    server.script(chunks=[], delay=0.6)
    shown = terminal.run("%%chat\nsay nothing", r"empty reply.*\n[\s\S]*In \[2\]: ")
    assert "⏳" in shown and "⏳" not in visible(shown)
    assert terminal.drain(0.8) == "", "nothing is printed once the cell has ended"


def test_a_stream_error_starts_on_its_own_line(terminal, server) -> None:
    server.script(chunks=["partial ", "text", " never shown"], error_event_at=2)
    shown = terminal.run("%%chat\nhello", r"nbchat: .*\n")
    assert re.search(r"partial text\r?\n(\r?\n)*nbchat: ", visible(shown)), shown


@pytest.mark.parametrize("keep_partial", [False, True])
def test_ctrl_c_shows_the_interrupted_mark_one_line_and_honours_keep_partial(
    terminal, server, keep_partial
) -> None:
    terminal.run(f"%chatconfig keep_partial={keep_partial}", r"Set keep_partial")
    server.script(chunks=[f"word{i} " for i in range(200)], chunk_delay=0.05)
    start = len(terminal.output)
    terminal.type("%%chat\rtell me a story\r\r\r")
    terminal.read_until(r"word3 ")
    terminal.process.send_signal(signal.SIGINT)
    shown = terminal.read_until(r"nbchat: interrupted.*\n[\s\S]*In \[\d+\]: ", since=start)[start:]
    assert "(interrupted)" in shown and "word199" not in shown
    assert "Traceback" not in shown and "KeyboardInterrupt" not in shown
    after = visible(shown[shown.index("word0") :]).strip().splitlines()
    assert after[0].startswith("word0 word1 word2 word3 ") and after[1] == "(interrupted)", after
    assert after[2].startswith("— gpt-4o-mini · ") and after[3].startswith("nbchat: interrupted: "), after
    history = terminal.run("%chat history", r"In \[\d+\]: ")
    assert ("word0 word1 word2 word3" in history) == keep_partial


def test_without_a_terminal_no_indicator_or_escape_codes_are_printed(server, tmp_path: Path) -> None:
    server.script(text="piped answer", delay=0.6)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "IPython",
            "--no-banner",
            "--colors=nocolor",
            "--ext=nbchat",
            "-c",
            "%%chat\nhi",
        ],
        capture_output=True,
        text=True,
        env=terminal_env(server, tmp_path),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "piped answer\n— gpt-4o-mini · " in result.stdout
    assert "⏳" not in result.stdout and "\x1b" not in result.stdout


def test_the_slider_panel_says_it_needs_jupyter(terminal) -> None:
    shown = terminal.run("%chatconfig --sliders", r"In \[2\]: ")
    assert "UsageError: the slider panel needs Jupyter" in shown
    assert "VBox" not in shown and "Traceback" not in shown


def test_notes_are_plain_text_and_help_names_the_magic(terminal) -> None:
    shown = terminal.run("%%chat -s\nBe terse.", r"In \[2\]: ")
    assert "System prompt of default set" in shown and "*default*" not in shown
    start = len(terminal.output)
    terminal.type("%chat?\r")
    helped = terminal.read_until(r"Docstring:[\s\S]*::\s+%chat \[-c", since=start)[start:]
    assert "chat_line" not in helped.split("Docstring:")[1]
    terminal.type("q")
