"""Legacy completions: ``%%chat --completion`` sends the cell as a raw prompt to
/v1/completions (no history, no chat template); with --echo and --logprobs K the prompt's
own tokens are shaded by their probability, in Jupyter and as text in a terminal."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from IPython.core.error import UsageError
from terminal import IPython

from nbchat import Chat


def completion_bodies(server) -> list[dict]:
    return [r.body for r in server.requests if r.path.endswith("/v1/completions")]


def test_the_cell_goes_as_a_raw_prompt_with_its_options_and_no_history(cell, server, magics) -> None:
    assert cell("%%chat\nan earlier chat turn").ok
    run = cell("%%chat --completion --max-tokens 4 --stop '###' -n 2 -t 0.3\nOnce upon a time")
    assert run.ok, run.error
    (body,) = completion_bodies(server)
    assert body["prompt"] == "Once upon a time" and "messages" not in body
    assert body["model"] == "gpt-3.5-turbo-instruct"
    assert (body["max_tokens"], body["stop"], body["n"], body["temperature"]) == (4, ["###"], 2, 0.3)
    assert "Echo: Once upon" in run.text and "choice 2" in run.text
    assert len(magics.conversations["default"].turns) == 1, "a completion is not recorded"
    assert len(server.bodies) == 1, "no chat request"


def test_the_model_comes_from_completion_model_or_m(cell, server) -> None:
    assert cell("%chatconfig completion_model=davinci-002").ok
    assert cell("%%chat --completion\nhi").ok
    assert cell("%%chat --completion -m babbage-002\nhi").ok
    assert [b["model"] for b in completion_bodies(server)] == ["davinci-002", "babbage-002"]


def test_echo_with_logprobs_scores_the_prompts_own_tokens(cell, server) -> None:
    run = cell("%%chat --completion --echo --logprobs 2 --max-tokens 2\nThe cat sat")
    assert run.ok, run.error
    body = completion_bodies(server)[0]
    assert (body["echo"], body["logprobs"]) == (True, 2), "the legacy integer form"
    (shaded,) = [o["text/html"] for o in run.outputs if "text/html" in o]
    assert "prompt scoring" in shaded
    before, after = shaded.split('class="nbchat-boundary"')
    assert before.count('class="nbchat-token"') == 3 and after.count('class="nbchat-token"') == 2
    assert "no probability (the first token)" in before and "p = " in before and "top: " in before
    assert run.text.count("The cat sat") >= 1 and run.metadata["params"]["echo"] is True


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_streamed_and_whole_completions_read_the_same(server, stream: bool) -> None:
    chat = Chat(base_url=server.url, api_key="sk-test", stream=stream)
    stream_ = chat.complete("Two words", echo=True, logprobs=1, max_tokens=3)
    deltas = list(stream_)
    reply_ = stream_.reply
    assert reply_ is not None and "".join(deltas) == reply_.text == "Two words Echo: Two words"
    assert [e["token"] for e in reply_.logprobs or []] == ["Two", " words", " Echo:", " Two", " words"]
    assert [bool(e.get("prompt")) for e in reply_.logprobs or []] == [True, True, False, False, False]
    assert reply_.usage == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert completion_bodies(server)[-1].get("stream", False) is stream
    assert chat.conversation.turns == []


def test_out_gets_the_completion(cell, shell) -> None:
    assert cell("%%chat --completion -o done\nabc").ok
    assert str(shell.user_ns["done"]) == " Echo: abc"


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("%%chat --completion --reasoning-effort low", "--completion does not take --reasoning-effort"),
        ("%%chat --completion -s", "--completion does not take -s"),
        ("%%chat --echo", "--echo needs --completion"),
        ("%%chat --completion --logprobs 99", "logprobs must be an integer from 0 to 20"),
    ],
)
def test_options_that_do_not_apply_are_usage_errors(cell, server, line, named) -> None:
    run = cell(f"{line}\nhi")
    assert type(run.error) is UsageError and named in str(run.error)
    assert server.requests == []


def test_a_server_error_is_explained_and_the_next_completion_works(cell, server) -> None:
    server.script(status=404, error="The model `davinci-009` does not exist")
    run = cell("%%chat --completion\nhi")
    assert not run.ok and "404 Not Found: The model `davinci-009` does not exist" in run.io.stdout
    server.script(reset_after=1)
    run = cell("%%chat --completion\nhi there you")
    assert not run.ok and "dropped in the middle of the reply" in run.io.stdout
    deadline = time.monotonic() + 15  # a loaded machine may schedule the server thread late
    while server.open_streams and time.monotonic() < deadline:  # the server's side closes just after
        time.sleep(0.02)
    assert server.open_streams == 0
    assert cell("%%chat --completion\nhi").ok


def test_a_terminal_prints_the_scored_prompt_as_text(ipython: IPython) -> None:
    out = ipython.run("%%chat --completion --echo --logprobs 1 --max-tokens 1\nScore me")
    assert "prompt (scored):" in out and "completion:" in out
    assert "     —  'Score'" in out, "the first token has no probability"
    assert "%  ' me'" in out and "<span" not in out


def test_the_stand_in_run_as_a_program_serves_every_endpoint() -> None:
    import json
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "nbchat.testing.server", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" at ")[-1].strip()
        bodies = {
            "/completions": {"model": "davinci-002", "prompt": "hi"},
            "/responses": {"model": "gpt-4o-mini", "input": "hi"},
            "/images/generations": {"model": "dall-e-2", "prompt": "hi"},
        }
        for path, body in bodies.items():
            request = urllib.request.Request(
                url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200, path
        request = urllib.request.Request(
            url + "/organization/costs?start_time=0&limit=1", headers={"Authorization": "Bearer sk-admin-x"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["object"] == "page"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
