"""Terminal IPython as the tests run it: a real ``ipython`` process that talks to the
stand-in server, either run once on a cell (``ipython -c``, output through a pipe) or typed
into on a pseudo-terminal as a person would."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from nbchat.testing.server import StandInServer

IPYTHON = [sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor"]


class IPython:
    """Terminal IPython with its own IPYTHONDIR (so ``profile`` holds this test's config and
    startup files) and the stand-in server's URL and a key in its environment."""

    def __init__(self, server: StandInServer, folder: Path) -> None:
        self.folder = folder
        self.profile = folder / "profile_default"
        self.env = {
            **os.environ,
            "IPYTHONDIR": str(folder),
            "OPENAI_BASE_URL": server.url,
            "OPENAI_API_KEY": "sk-terminal",
            "TERM": "xterm",
        }

    def run(self, code: str, *, ext: bool = True, input: str | None = None, **env: str) -> str:
        """What ``ipython -c CODE`` prints (nbchat loaded unless ``ext`` is False; ``input``
        on its stdin; ``env`` added to its environment), once it has exited without error.
        The output is read as bytes and decoded, so carriage returns stay as printed."""
        result = subprocess.run(
            [*IPYTHON, *(["--ext=nbchat"] if ext else []), "-c", code],
            input=None if input is None else input.encode(),
            capture_output=True,
            env=self.env | env,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        return result.stdout.decode(errors="replace")

    def start(self) -> Terminal:
        """``ipython --simple-prompt`` with nbchat loaded, on a pseudo-terminal."""
        return Terminal(self.env)


class Terminal:
    """An interactive IPython on a pseudo-terminal; ``type`` sends keystrokes."""

    def __init__(self, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [*IPYTHON, "--simple-prompt", "--HistoryManager.enabled=False", "--ext=nbchat"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
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
