"""Refusals learned per server and model: a server that refuses something nbchat sent (a
parameter, json_schema, stream_options, tools on Chat Completions) is asked once more
without it, the footer says so, and later requests to that model never send it again;
an image is never dropped; %chatconfig lists what was learned and --reset forgets it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import sent

from nbchat.testing.refusals import WORDS, Refuse
from nbchat.testing.server import StandInServer

SAID_BY = {what: words for what, (words, _) in WORDS.items()}
MODEL = "local-model"  # no name rule knows it: only its server's refusals teach nbchat
HOW = [400, 500, "event"]  # a status, or an error event that opens the stream

# what is refused -> (the cell's options that send it, whether a request body carries it)
SENT: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "temperature": ("-t 0.2", lambda body: "temperature" in body),
    "max_tokens": ("--max-tokens 40", lambda body: "max_tokens" in body),
    "seed": ("--seed 3", lambda body: "seed" in body),
    "json_schema": (
        "--schema 'label, score float'",
        lambda body: (body.get("response_format") or {}).get("type") == "json_schema",
    ),
    "stream_options": ("", lambda body: "stream_options" in body),
}
SAID = {
    "temperature": "refused temperature: asked once more without temperature",
    "max_tokens": "refused max_tokens: asked once more with max_completion_tokens",
    "seed": "refused seed: asked once more without seed",
    "json_schema": "refused the json_schema response format: asked once more with json_object",
    "stream_options": "refused stream_options: asked once more without stream_options",
}

LOOKUP = '''
def lookup(key: str) -> str:
    """Look a key up in the glossary."""
    return f"{key} means {key.upper()}"
'''


def seen(run: Any) -> str:
    """Everything the cell showed (a schema's table comes after its footer)."""
    return "\n".join(str(o.get("text/markdown") or o.get("text/plain", "")) for o in run.outputs)


def requests_of(server: StandInServer, since: int) -> list[Any]:
    return sent(server)[since:]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("what", list(SENT))
def test_a_refusal_is_asked_once_more_without_it_and_remembered_for_that_model(
    cell, server, magics, what, how
) -> None:
    options, carries = SENT[what]
    server.quirks.refuse = [Refuse(what, how, models=(MODEL,))]
    run = cell(f"%%chat -m {MODEL} {options}\nfirst")
    assert run.ok, run.error
    first = requests_of(server, 0)
    assert [carries(b) for b in first] == [True, False], "one more request, without it"
    assert f"{MODEL} {SAID[what]}" in seen(run) and "remembered for this session" in seen(run)

    run = cell(f"%%chat -m {MODEL} {options}\nsecond")
    assert run.ok, run.error
    later = requests_of(server, 2)
    assert len(later) == 1 and not carries(later[0]), "later cells send it no more"
    assert f"as {MODEL} refused before:" in seen(run)

    run = cell(f"%%chat -m gpt-4o-mini {options}\nanother model")
    assert run.ok, run.error
    other = requests_of(server, 3)
    assert len(other) == 1 and carries(other[0]), "another model still gets it"
    assert len(magics.conversations["default"].turns) == 3


@pytest.mark.parametrize("how", HOW)
def test_chatconfig_lists_what_was_learned_and_reset_forgets_it(cell, server, how) -> None:
    server.quirks.refuse = [Refuse("temperature", how, models=(MODEL,))]
    assert cell(f"%%chat -m {MODEL} -t 0.2\nhi").ok
    shown = cell("%chatconfig")
    assert "Learned from 1 refusal this session" in seen(shown)
    table = shown.outputs[-1]["text/plain"]
    assert MODEL in table and "without temperature" in table and "Only the default (1) value" in table
    reset = cell("%chatconfig --reset")
    assert "1 refusal learned from servers forgotten" in reset.text
    assert "Learned from" not in cell("%chatconfig").text
    before = len(sent(server))
    assert cell(f"%%chat -m {MODEL} -t 0.2\nagain").ok
    assert ["temperature" in b for b in requests_of(server, before)] == [True, False], "asked as at first"


@pytest.mark.parametrize("how", HOW)
def test_tools_refused_on_chat_completions_go_through_the_responses_api(cell, server, magics, how) -> None:
    server.quirks.refuse = [Refuse("tools", how, models=(MODEL,))]
    assert cell(LOOKUP).ok
    magics.tool_approval = "auto"
    run = cell(f"%%chat -m {MODEL} --tools lookup\nPlease lookup(key='api')")
    assert run.ok, run.error
    paths = [r.path.rsplit("/", 1)[-1] for r in server.requests]
    assert paths == ["completions", "responses", "responses"], "refused, then the call and the answer"
    call, answer = requests_of(server, 1)
    assert call["tools"] == [
        {
            "type": "function",
            "name": "lookup",
            "description": "Look a key up in the glossary.",
            "parameters": call["tools"][0]["parameters"],
        }
    ]
    assert answer["input"][-2]["type"] == "function_call" and answer["input"][-2]["name"] == "lookup"
    assert answer["input"][-1] == {
        "type": "function_call_output",
        "call_id": answer["input"][-2]["call_id"],
        "output": "api means API",
    }
    assert "Echo: api means API" in run.markdown
    assert (
        "refused function tools on Chat Completions: asked once more through the Responses API"
        in run.markdown
    )
    turn = magics.conversations["default"].turns[-1].messages
    assert [m["role"] for m in turn] == ["user", "assistant", "tool", "assistant"]

    run = cell(f"%%chat -m {MODEL} --tools lookup\nAnd lookup(key='sdk')")
    assert run.ok, run.error
    assert [r.path.rsplit("/", 1)[-1] for r in server.requests[3:]] == ["responses", "responses"]
    assert "Echo: sdk means SDK" in run.markdown and "tools through the Responses API" in run.markdown
    run = cell("%%chat -m gpt-4o-mini --tools lookup\nlookup(key='x')")
    assert run.ok and [r.path.rsplit("/", 1)[-1] for r in server.requests[5:]] == ["completions"] * 2


@pytest.mark.parametrize("how", HOW)
def test_a_refused_image_fails_the_cell_naming_it_and_is_never_dropped(
    cell, server, magics, tmp_path, how
) -> None:
    from images import png

    server.quirks.refuse = [Refuse("image", how)]
    (tmp_path / "chart.png").write_bytes(png(64, 48))
    assert cell("%%chat\ntext is fine").ok
    run = cell(f"%%chat --image {tmp_path / 'chart.png'}\nWhat is this?")
    assert not run.ok
    message = str(run.error)
    assert "the server rejected the [image/png 64×48, " in message and "image in message 3" in message
    assert "image input is not supported" in message and "without --image" in message
    assert len(sent(server)) == 2, "not asked again: without the image the question would change"
    assert len(magics.conversations["default"].turns) == 1


def test_a_stream_that_ends_before_a_reply_to_an_image_names_the_image(
    cell, server, magics, tmp_path
) -> None:
    from images import png

    (tmp_path / "chart.png").write_bytes(png(64, 48))
    server.script(truncate_after=0)  # the connection just ends, as some servers do
    run = cell(f"%%chat --image {tmp_path / 'chart.png'}\nWhat is this?")
    assert not run.ok
    message = str(run.error)
    assert message.startswith("nbchat: the stream ended before") or "the stream ended before" in message
    assert "The request carried the [image/png 64×48, " in message and "without --image" in message
    assert magics.conversations["default"].turns == []


def test_when_the_second_try_fails_too_the_message_names_the_refused_part(cell, server, magics) -> None:
    server.quirks.refuse = [Refuse("temperature", 400), Refuse("seed", 500)]
    assert cell("%%chat\nbefore").ok
    run = cell(f"%%chat -m {MODEL} -t 0.2 --seed 3\nhi")
    assert not run.ok
    message = str(run.error)
    assert message.startswith("the server refused temperature (Unsupported value: 'temperature'")
    assert "asked once more without temperature, and that failed too: 500" in message
    assert "Unrecognized request argument supplied: seed" in message
    assert len(magics.conversations["default"].turns) == 1, "history as it was"
    count = len(sent(server))
    run = cell(f"%%chat -m {MODEL} -t 0.2 --seed 3\nagain")
    assert run.ok, run.error
    assert len(sent(server)) == count + 1 and not {"temperature", "seed"} & set(sent(server)[-1])
    assert "as local-model refused before: temperature not sent, seed not sent" in run.markdown


def test_the_dry_run_maps_and_the_responses_api_use_what_was_learned(cell, server, magics) -> None:
    server.quirks.refuse = [Refuse("temperature", 400, models=(MODEL,))]
    assert cell(f"%%chat -m {MODEL} -t 0.2\nhi").ok
    count = len(sent(server))
    dry = cell(f"%%chat --dry-run -m {MODEL} -t 0.2\nhi")
    shown = next(o["text/plain"] for o in dry.outputs if o["text/plain"].startswith("{"))
    body, _ = json.JSONDecoder().raw_decode(shown)
    assert "temperature" not in body and body["model"] == MODEL and len(sent(server)) == count
    assert f"as {MODEL} refused before: temperature not sent" in dry.text, "the dry run says so too"
    assert cell("items = ['a', 'b']").ok
    assert cell(f"%%chat --map items -m {MODEL} -t 0.2 -o out\nSay {{item}}").ok
    mapped = requests_of(server, count)
    assert len(mapped) == 2 and not any("temperature" in b for b in mapped)
    magics.api = "responses"
    run = cell(f"%%chat -m {MODEL} -t 0.2\nhi")
    assert run.ok, run.error
    assert server.requests[-1].path.endswith("/responses") and "temperature" not in sent(server)[-1]
    assert "temperature not sent" in run.markdown


def test_a_setting_not_sent_to_a_model_is_named_in_the_footer(cell, server, magics) -> None:
    run = cell("%%chat -m gpt-4o-mini --reasoning-effort none\nhi")
    assert run.ok and "reasoning_effort" not in server.bodies[-1]
    assert "not sent to gpt-4o-mini: reasoning_effort" in run.markdown
    run = cell("%%chat -m gpt-5-mini --reasoning-effort none -t 0.3\nhi")
    assert run.ok and server.bodies[-1]["reasoning_effort"] == "none", "none is a value, not unset"
    assert "temperature" not in server.bodies[-1] and "not sent to gpt-5-mini: temperature" in run.markdown
    magics.api = "responses"
    run = cell("%%chat -m gpt-4o-mini --reasoning-effort low\nhi")
    assert run.ok and "reasoning" not in sent(server)[-1], "the Responses API too"
    assert "not sent to gpt-4o-mini: reasoning_effort" in run.markdown


def test_a_refusal_500_is_not_retried_by_the_client(cell, server, magics) -> None:
    magics.max_retries = 2  # the SDK would send a 5xx twice more; a refusal would only come back
    server.quirks.refuse = [Refuse("json_schema", 500)]
    assert cell("%%chat --schema 'label'\nhi").ok
    assert len(server.requests) == 2 and server.requests[0].status == 500


@pytest.mark.parametrize("how", [400, 500])
def test_a_map_learns_from_its_first_refused_item_and_asks_that_item_once_more(cell, server, how) -> None:
    server.quirks.refuse = [Refuse("json_schema", how)]
    assert cell("items = ['a', 'b', 'c']").ok
    run = cell("%%chat --map items --concurrency 1 --schema 'label' -o out\nLabel {item}")
    assert run.ok, run.error
    kinds = [b["response_format"]["type"] for b in sent(server)]
    assert kinds == ["json_schema", "json_object", "json_object", "json_object"], "one more request, once"
    assert [row["label"] for row in cell.shell.user_ns["out"]] == [
        "label: Label a",
        "label: Label b",
        "label: Label c",
    ]
    run = cell("%%chat --schema 'label'\nhi")
    assert run.ok and sent(server)[-1]["response_format"]["type"] == "json_object", "a cell uses it too"


@pytest.mark.parametrize("how", HOW)
def test_the_responses_api_learns_a_refusal_too(cell, server, magics, how) -> None:
    magics.api = "responses"
    server.quirks.refuse = [Refuse("temperature", how, models=(MODEL,))]
    run = cell(f"%%chat -m {MODEL} -t 0.2\nfirst")
    assert run.ok, run.error
    assert ["temperature" in b for b in sent(server)] == [True, False]
    assert f"{MODEL} refused temperature: asked once more without temperature" in run.markdown
    assert cell(f"%%chat -m {MODEL} -t 0.2\nsecond").ok and "temperature" not in sent(server)[-1]
    magics.api = "chat"
    assert cell(f"%%chat -m {MODEL} -t 0.2\nthird").ok and "temperature" not in sent(server)[-1]


@pytest.mark.parametrize(
    ("body", "said", "param", "expected"),
    [
        ({"temperature": 0.2}, SAID_BY["temperature"], "temperature", ("param", "temperature")),
        ({"seed": 1}, "Unrecognized request argument supplied: seed", None, ("param", "seed")),
        ({"max_tokens": 9}, SAID_BY["max_tokens"], "max_tokens", ("max_tokens", "max_tokens")),
        (
            {"top_logprobs": 2, "logprobs": True},
            "Unknown parameter: 'top_logprobs'.",
            None,
            ("param", "logprobs"),
        ),
        ({"response_format": {"type": "json_schema"}}, SAID_BY["json_schema"], None, ("json_schema", "")),
        (
            {"stream_options": {}},
            "Extra inputs are not permitted: stream_options",
            None,
            ("stream_options", ""),
        ),
        ({"tools": [{}]}, SAID_BY["tools"], "tools", ("tools", "")),
        # not refusals: a value out of range, tools without the Responses API, another failure
        (
            {"max_tokens": 9000},
            "max_tokens is too large: 9000. This model supports at most 4096",
            "max_tokens",
            None,
        ),
        ({"tools": [{}]}, "gemma:2b does not support tools", None, None),
        ({"seed": 1, "n": 2}, "The server had an error while processing your request", None, None),
        ({"stop": ["x"]}, "Please stop sending so many requests", None, None),
    ],
)
def test_a_refusal_is_known_by_its_words(body, said, param, expected) -> None:
    from nbchat.learned import recognise

    found = recognise({"model": "m", "messages": [], **body}, said, param)
    assert (None if found is None else (found.kind, found.name)) == expected
