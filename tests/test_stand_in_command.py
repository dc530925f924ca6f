"""``python -m nbchat.testing.server`` as a person runs it: no warning, a docstring that names
the command, and latency and faults as command-line options (no scripting endpoint needed)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import openai
import pytest

import nbchat.testing.server as stand_in


@contextmanager
def running(*options: str) -> Iterator[str]:
    """The stand-in started as a program; its base URL. Its stderr must stay empty."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbchat.testing.server", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("nbchat stand-in server (echo, not a model) at http://127.0.0.1:"), line
        yield line.split(" at ")[-1].strip()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
        assert err == "", err  # no RuntimeWarning (nor anything else)


def ask(url: str, text: str = "hi", stream: bool = False) -> tuple[int, str]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "stream": stream}
    request = urllib.request.Request(
        url + "/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_the_docstring_names_the_command_that_runs_it() -> None:
    assert "python -m nbchat.testing.server" in (stand_in.__doc__ or "")
    assert "nbchat.server`" not in (stand_in.__doc__ or "")


def test_latency_delays_every_reply() -> None:
    with running("--latency", "0.6") as url:
        started = time.monotonic()
        status, text = ask(url, "slow")
        assert status == 200 and "Echo: slow" in text
        assert time.monotonic() - started >= 0.6


def test_a_status_fault_hits_every_nth_request_and_the_sdk_sees_it() -> None:
    with running("--status", "429", "--message", "slow down", "--retry-after", "0", "--every", "2") as url:
        assert ask(url)[0] == 200
        status, text = ask(url)
        assert status == 429 and "slow down" in text
        assert ask(url)[0] == 200
        client = openai.OpenAI(base_url=url, api_key="sk-x", max_retries=0)
        with pytest.raises(openai.RateLimitError, match="slow down"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])


def test_a_dropped_connection_mid_stream() -> None:
    with running("--drop-after", "1") as url:
        client = openai.OpenAI(base_url=url, api_key="sk-x", max_retries=0)
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "one two three four"}], stream=True
        )
        with pytest.raises(Exception):  # noqa: B017 — the connection's own error, whichever the stack raises
            for _chunk in stream:
                pass


def test_help_lists_the_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nbchat.testing.server", "--help"], capture_output=True, text=True, check=True
    )
    for option in ("--latency", "--chunk-delay", "--status", "--retry-after", "--drop-after", "--every"):
        assert option in out.stdout
    assert out.stderr == ""
