"""What %%chat sends, records and shows, checked at the request-body level."""

from __future__ import annotations

import re

import pytest
from IPython.core.error import UsageError

BASE_KEYS = {"model", "messages", "stream", "stream_options"}


def contents(body) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in body["messages"]]


def test_cell_goes_out_as_a_user_message_with_the_whole_history(cell, server) -> None:
    assert cell("%%chat\n  What is a p-value?  \n").ok
    assert cell("%%chat\nAnd a confidence interval?").ok
    assert contents(server.bodies[0]) == [("user", "What is a p-value?")]
    assert contents(server.bodies[1]) == [
        ("user", "What is a p-value?"),
        ("assistant", "Echo: What is a p-value?"),
        ("user", "And a confidence interval?"),
    ]


def test_only_parameters_that_are_set_are_sent(cell, server) -> None:
    assert cell("%%chat\nhi").ok
    body = server.bodies[0]
    assert set(body) == BASE_KEYS
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("-m gpt-4o", {"model": "gpt-4o"}),
        ("--model gpt-4o", {"model": "gpt-4o"}),
        ("-t 0.3", {"temperature": 0.3}),
        ("--temperature 1.5", {"temperature": 1.5}),
        ("--top-p 0.9", {"top_p": 0.9}),
        ("--max-tokens 40", {"max_tokens": 40}),
        ("--frequency-penalty -1.5", {"frequency_penalty": -1.5}),
        ("--presence-penalty 0.5", {"presence_penalty": 0.5}),
        ('--stop "###" --stop END', {"stop": ["###", "END"]}),
        ("-n 3", {"n": 3}),
        ("--seed 42", {"seed": 42}),
        ("--logprobs 3", {"logprobs": True, "top_logprobs": 3}),
        ("--logprobs 0", {"logprobs": True}),
    ],
)
def test_each_per_cell_option_becomes_exactly_its_parameter(cell, server, options, expected) -> None:
    run = cell(f"%%chat {options}\nhello world")
    assert run.ok, run.error
    body = server.bodies[-1]
    assert {
        k: v for k, v in body.items() if k not in BASE_KEYS or (k == "model" and "model" in expected)
    } == expected


def test_no_stream_sends_no_stream_parameter_and_still_shows_the_reply(cell, server) -> None:
    run = cell("%%chat --no-stream\nhello")
    assert run.ok
    assert set(server.bodies[-1]) == {"model", "messages"}
    assert run.markdown.startswith("Echo: hello")


def test_per_cell_overrides_are_not_persisted(cell, server, magics) -> None:
    assert cell("%%chat -t 0.7 -m gpt-4o\none").ok
    assert cell("%%chat\ntwo").ok
    assert server.bodies[-1]["model"] == "gpt-4o-mini" and "temperature" not in server.bodies[-1]
    assert magics.temperature is None


def test_system_flag_sets_the_system_prompt_without_a_request(cell, server) -> None:
    run = cell("%%chat -s\nYou are terse.")
    assert run.ok and server.bodies == []
    assert "System prompt" in run.markdown
    assert cell("%%chat --system\nYou are very terse.").ok
    assert cell("%%chat\nhi").ok
    assert contents(server.bodies[0]) == [("system", "You are very terse."), ("user", "hi")]


def test_role_assistant_primes_and_role_system_sets_the_prompt(cell, server) -> None:
    assert cell("%%chat --role system\nAnswer in French.").ok
    assert cell("%%chat\nSay hello").ok
    assert cell("%%chat --role assistant\nBonjour !").ok
    assert cell("%%chat --role user\nSay goodbye").ok
    assert len(server.bodies) == 2
    assert contents(server.bodies[1]) == [
        ("system", "Answer in French."),
        ("user", "Say hello"),
        ("assistant", "Echo: Say hello"),
        ("assistant", "Bonjour !"),
        ("user", "Say goodbye"),
    ]


def test_named_conversations_keep_separate_histories(cell, server) -> None:
    assert cell("%%chat -c a\nfirst a").ok
    assert cell("%%chat --conversation b\nfirst b").ok
    assert cell("%%chat -c a\nsecond a").ok
    assert contents(server.bodies[1]) == [("user", "first b")]
    assert [c for _, c in contents(server.bodies[2])] == ["first a", "Echo: first a", "second a"]


def test_new_starts_over_but_keeps_the_system_prompt(cell, server) -> None:
    assert cell("%%chat -s\nBe kind.").ok
    assert cell("%%chat\none").ok
    assert cell("%%chat --new\ntwo").ok
    assert contents(server.bodies[-1]) == [("system", "Be kind."), ("user", "two")]


def test_no_history_sends_system_and_message_only_and_records_nothing(cell, server, magics) -> None:
    assert cell("%%chat -s\nBe kind.").ok
    assert cell("%%chat\none").ok
    assert cell("%%chat --no-history\naside").ok
    assert contents(server.bodies[-1]) == [("system", "Be kind."), ("user", "aside")]
    assert len(magics.conversations["default"].turns) == 1


def test_format_text_shows_plain_text_only(cell) -> None:
    run = cell("%%chat -f text\n**bold**")
    assert run.ok
    assert set(run.outputs[-1]) == {"text/plain"}
    assert run.outputs[-1]["text/plain"].startswith("Echo: **bold**")


def test_format_code_puts_the_first_code_block_in_the_next_cell(cell, server, shell) -> None:
    server.script(
        text="Here:\n```python\nimport pandas as pd\ndf = pd.DataFrame()\n```\nand\n```\nother\n```"
    )
    assert cell("%%chat -f code\nwrite code").ok
    assert shell.rl_next_input == "import pandas as pd\ndf = pd.DataFrame()"


def test_out_stores_the_reply_object_in_the_namespace(cell, shell) -> None:
    assert cell("%%chat -o answer\nhello").ok
    answer = shell.user_ns["answer"]
    assert str(answer) == "Echo: hello"
    assert answer.usage["completion_tokens"] == 2 and answer.finish_reason == "stop"


def test_resolvable_fields_are_substituted_and_everything_else_is_left_as_written(
    cell, server, shell
) -> None:
    assert cell("x = 41\nclass P: name = 'Ada'\np = P()").ok
    assert cell("x + 1").ok
    body = (
        "x={x} name={p.name} in={In[1]} out={Out[2]} missing={nope} attr={p.nope}\n"
        'json={"a": {"b": 1}} code=def f(): return {k: v for k, v in d.items()}\n'
        'fstring=f"{x!r:>10}" doubled={{x}} empty={} index={In[99]}'
    )
    assert cell("%%chat\n" + body).ok
    sent = server.bodies[-1]["messages"][-1]["content"]
    assert sent.startswith(
        "x=41 name=Ada in=x = 41\nclass P: name = 'Ada'\np = P() out=42 missing={nope} attr={p.nope}\n"
    )
    assert 'json={"a": {"b": 1}} code=def f(): return {k: v for k, v in d.items()}\n' in sent
    assert sent.endswith('fstring=f"{x!r:>10}" doubled={{x}} empty={} index={In[99]}')


def test_raw_turns_substitution_off(cell, server, shell) -> None:
    shell.user_ns["x"] = 1
    assert cell("%%chat --raw\nvalue {x}").ok
    assert server.bodies[-1]["messages"][-1]["content"] == "value {x}"


@pytest.mark.parametrize("body", ["", "   \n\t\n"])
def test_an_empty_cell_is_a_usage_error_and_sends_nothing(cell, server, body) -> None:
    run = cell("%%chat\n" + body)
    # IPython itself refuses a cell magic with no body; nbchat refuses whitespace
    assert type(run.error) is UsageError
    assert re.search("empty cell|cell body is empty", str(run.error))
    assert server.requests == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("--bogus", "unrecognized arguments: --bogus"),
        ("-t hot", "invalid float value: 'hot'"),
        ("-t 5", "temperature must be a number from 0 to 2 (got 5.0)"),
        ("--top-p 2", "top_p must be a number from 0 to 1"),
        ("-n 0", "n must be an integer from 1 to 128"),
        ("--logprobs 21", "logprobs must be an integer from 0 to 20"),
        ("--max-tokens 0", "max_tokens must be an integer ≥ 1"),
        ("-f fancy", "invalid choice: 'fancy'"),
        ('--stop "unclosed', "cannot parse options"),
    ],
)
def test_bad_options_are_one_line_usage_errors_and_nothing_is_sent(
    cell, server, magics, options, message
) -> None:
    assert cell("%%chat\nbefore").ok
    history = magics.conversations["default"].messages()
    run = cell(f"%%chat {options}\nhello")
    assert type(run.error) is UsageError
    assert message in str(run.error) and "\n" not in str(run.error)
    assert len(server.requests) == 1, "nothing was sent after the good cell"
    assert magics.conversations["default"].messages() == history


def test_the_reply_carries_metadata_but_no_key(cell) -> None:
    from conftest import FAKE_KEY

    run = cell("%%chat -t 0.2 --seed 1\nhello")
    meta = run.metadata
    assert meta["conversation"] == "default" and meta["model"] == "gpt-4o-mini"
    assert meta["params"] == {"model": "gpt-4o-mini", "temperature": 0.2, "seed": 1, "stream": True}
    assert meta["usage"]["prompt_tokens"] > 0 and meta["finish_reason"] == "stop"
    assert isinstance(meta["latency"], float)
    assert FAKE_KEY[3:7] not in repr(run.io.outputs[-1].metadata)


def test_all_n_choices_are_shown_and_choice_one_continues(cell, server) -> None:
    run = cell("%%chat -n 3\npick a colour")
    assert run.ok
    md = run.markdown
    assert md.index("**Choice 1**") < md.index("**Choice 2**") < md.index("**Choice 3**")
    assert "Echo: pick a colour (choice 3)" in md
    assert cell("%%chat\nwhy?").ok
    assert server.bodies[-1]["messages"][1] == {"role": "assistant", "content": "Echo: pick a colour"}


def test_max_tokens_truncation_is_reported(cell) -> None:
    run = cell("%%chat --max-tokens 2\none two three four five")
    assert run.metadata["finish_reason"] == "length"
    assert run.markdown.split("\n")[0] == "Echo: one", "two tokens: the echo's first word"
    assert "cut off at max_tokens" in run.markdown


def test_stop_sequence_cuts_the_reply(cell) -> None:
    run = cell("%%chat --stop three\none two three four")
    assert run.markdown.split("\n\n<sub>")[0] == "Echo: one two "


def test_footer_shows_model_tokens_cost_and_latency(cell) -> None:
    run = cell("%%chat\nhello there")
    assert "<sub>" in run.markdown  # small, under the reply
    footer = run.io.outputs[-1].data["text/plain"].split("\n\n— ")[1]
    assert re.fullmatch(
        # the price table is named when it is genai-prices' (installed with nbchat[prices])
        r"gpt-4o-mini · \d+ prompt \+ \d+ completion tokens · (<)?\$\d\.\d{5}( \(genai-prices\))? · \d+\.\d\d s",
        footer,
    ), footer


def test_unknown_model_shows_tokens_without_cost_and_missing_usage_says_so(cell, server) -> None:
    run = cell("%%chat -m llama3.1:8b\nhello")
    assert "llama3.1:8b · " in run.markdown and "$" not in run.markdown
    server.script(usage=False)
    run = cell("%%chat\nhello")
    assert "usage not reported" in run.markdown


def test_a_waiting_indicator_comes_first_then_the_reply_streams_in_place(cell, server) -> None:
    words = [f"w{i} " for i in range(12)]
    server.script(chunks=words, chunk_delay=0.06, delay=0.6)
    run = cell("%%chat\nstream please")
    outputs = run.io.outputs
    assert outputs[0].data["text/plain"].startswith("⏳ gpt-4o-mini · waiting")
    assert any(re.search(r"waiting \d\.\d s", o.data.get("text/plain", "")) for o in outputs[1:])
    texts = [o.data["text/markdown"] for o in outputs if "text/markdown" in o.data]
    assert len(texts) >= 3, "the reply should be updated several times while streaming"
    partial = [t for t in texts if "<sub>" not in t]
    assert partial and all("".join(words).startswith(t) for t in partial)
    assert [len(t) for t in partial] == sorted(len(t) for t in partial)
    assert texts[-1].startswith("".join(words))
