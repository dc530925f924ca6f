"""Terminal IPython as a first-class view: a real ``ipython`` process on a pseudo-terminal
(or a pipe), typed into as a person would, against the stand-in server."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import pytest
from terminal import IPython, Terminal

ERASE = "\r\x1b[K"


@pytest.fixture
def terminal(ipython: IPython) -> Iterator[Terminal]:
    term = ipython.start()
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


def test_without_a_terminal_no_indicator_or_escape_codes_are_printed(ipython: IPython, server) -> None:
    server.script(text="piped answer", delay=0.6)
    out = ipython.run("%%chat\nhi")
    assert "piped answer\n— gpt-4o-mini · " in out
    assert "⏳" not in out and "\x1b" not in out


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
