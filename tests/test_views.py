"""The one stream consumer: every way a reply ends stops the waiting indicator, an
interrupt looks the same in every view, and views paint events they know."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from IPython.utils.capture import capture_output

from nbchat.chat import Chat
from nbchat.events import TextDelta
from nbchat.render import TICK, View, Waiting, consume
from nbchat.widgets import output_text


def later_interrupt(seconds: float) -> threading.Timer:
    """A kernel interrupt (SIGINT to this process) after ``seconds``: what Ctrl-C does."""
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def assert_indicator_stopped(shell) -> None:
    """No refresh of the waiting indicator reaches any output after the cell ended."""
    assert Waiting._current is None
    with capture_output() as io:
        time.sleep(TICK * 3)
    assert not io.outputs and "waiting" not in io.stdout


def test_an_empty_reply_stops_the_waiting_indicator_and_says_so_in_its_footer(cell, shell, server) -> None:
    server.script(chunks=[])
    run = cell("%%chat\nsay nothing")
    assert run.ok, run.error
    assert "empty reply" in run.markdown and "completion tokens" in run.markdown
    assert run.io.outputs[-1].data["text/plain"].startswith("— gpt-4o-mini")  # not the indicator
    assert_indicator_stopped(shell)


def test_an_error_before_the_first_token_stops_the_waiting_indicator(cell, shell, magics, server) -> None:
    magics.max_retries = 0
    server.script(status=500, error="exploded", delay=TICK * 2)
    run = cell("%%chat\nhello")
    assert not run.ok and "exploded" in str(run.error)
    assert run.io.outputs[-1].data == {"text/plain": ""}  # the indicator is cleared
    assert_indicator_stopped(shell)


@pytest.mark.parametrize("keep_partial", [False, True])
def test_an_interrupt_before_the_first_token_stops_the_indicator_and_records_nothing(
    cell, shell, magics, server, keep_partial
) -> None:
    magics.keep_partial = keep_partial
    server.script(text="too late", delay=10)
    later_interrupt(TICK * 6)  # the request is out by then even on a loaded machine; the reply is not
    run = cell("%%chat\nhello")
    assert not run.ok
    assert str(run.error) == "interrupted: nothing arrived and nothing was recorded"
    assert "waiting" not in run.io.outputs[-1].data["text/plain"]
    assert magics.conversations["default"].turns == []
    assert_indicator_stopped(shell)


@pytest.mark.parametrize("fmt", ["markdown", "widget"])
@pytest.mark.parametrize("keep_partial", [False, True])
def test_an_interrupt_mid_stream_is_the_same_in_the_markdown_and_widget_views(
    cell, shell, magics, server, fmt, keep_partial
) -> None:
    magics.keep_partial = keep_partial
    server.script(chunks=[f"word{i} " for i in range(100)], chunk_delay=0.05)
    later_interrupt(1.5)  # the first words are in by then even on a loaded machine; word99 is not
    run = cell(f"%%chat -f {fmt}\ntell me a story")
    assert not run.ok
    kept = " and kept in history" if keep_partial else ", not kept in history (keep_partial is off)"
    assert str(run.error) == f"interrupted: the partial reply is shown above{kept}"
    if fmt == "markdown":
        shown = run.markdown
        assert shown.startswith("word0 word1 ") and "*(interrupted)*" in shown and "word99" not in shown
    else:
        from nbchat.widgets import shown_view

        view = shown_view(run.outputs)
        shown = output_text(view.reply.children[0])
        assert "word0 word1 " in shown and "(interrupted)" in shown and "word99" not in shown
    turns = magics.conversations["default"].turns
    assert len(turns) == (1 if keep_partial else 0)
    if keep_partial:
        assert turns[0].messages[-1]["content"].startswith("word0 word1 ")
    assert_indicator_stopped(shell)


class Recorder(View):
    """A view that notes what the consumer asked of it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def waiting(self, text: str) -> None:
        if not self.calls or self.calls[-1] != "waiting":
            self.calls.append("waiting")

    def started(self) -> None:
        self.calls.append("started")

    def on_text(self, event: TextDelta) -> None:
        self.calls.append(f"text {event.choice} {event.text!r}")

    def finish(self, reply, foot, interrupted) -> None:
        self.calls.append(f"finish {reply.text!r} {interrupted}")


def test_the_consumer_hands_each_event_to_the_views_paint_method_in_order(env, server) -> None:
    server.script(chunks=["Hel", "lo"], delay=TICK * 3)
    view = Recorder()
    reply = consume(Chat().stream("hi"), view)
    assert reply.text == "Hello"
    assert view.calls == ["waiting", "started", "text 0 'Hel'", "text 0 'lo'", "finish 'Hello' False"]


def test_a_view_skips_event_kinds_it_has_no_method_for(env, server) -> None:
    class Other:
        kind = "something_new"
        size = 0

    chat = Chat()
    stream = chat.stream("hi")
    real = stream.events

    def with_an_unknown_kind():
        for event in real():
            yield Other()
            yield event

    stream.events = with_an_unknown_kind
    view = Recorder()
    assert consume(stream, view).text == "Echo: hi"
    assert view.calls[-1] == "finish 'Echo: hi' False"
