"""The Responses API: api=responses sends the whole history as input items with store:
false; output text and reasoning summaries stream (the summary in a collapsible Thinking
block above the reply); usage and cost; parameters that API lacks are usage errors."""

from __future__ import annotations

import pytest
from conftest import said
from IPython.core.error import UsageError
from terminal import IPython

from nbchat import Chat
from nbchat.content import image_part
from nbchat.transports.responses import Unsupported


def responses_bodies(server) -> list[dict]:
    return [r.body for r in server.requests if r.path.endswith("/v1/responses")]


@pytest.fixture
def responses_api(magics) -> None:
    magics.api = "responses"


def test_the_whole_history_goes_as_input_items_with_store_false(cell, server, magics, responses_api) -> None:
    assert cell("%%chat -s\nBe terse.").ok
    assert cell("%%chat\nfirst").ok
    assert cell("%%chat\nsecond").ok
    body = responses_bodies(server)[-1]
    assert body["store"] is False and body["stream"] is True and "messages" not in body
    assert body["input"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Echo: first"},
        {"role": "user", "content": "second"},
    ]
    assert server.bodies == [], "nothing went to /chat/completions"
    assert [m["content"] for m in magics.conversations["default"].messages()][-2:] == [
        "second",
        "Echo: second",
    ]


def test_a_reasoning_summary_streams_into_a_thinking_block_above_the_reply(
    cell, server, responses_api
) -> None:
    server.script(chunk_delay=0.06)
    run = cell("%%chat -m o4-mini\nWhy is the sky blue?")
    assert run.ok, run.error
    body = responses_bodies(server)[-1]
    assert body["reasoning"] == {"summary": "auto"}
    shown = [str(o.get("text/markdown", "")) for o in run.outputs]
    thinking = [t for t in shown if t.startswith("<details open><summary>Thinking…</summary>")]
    assert thinking and all("Echo:" not in t for t in thinking), "the summary shows while the model thinks"
    final = run.markdown
    assert final.startswith("<details><summary>Thinking</summary>"), "folded once the reply is there"
    assert final.index("</details>") < final.index("Echo: Why is the sky blue?")
    assert "> **Reading the message**" in final
    assert "(64 reasoning)" in final and "$" in final, "usage with reasoning tokens and a cost"


def test_usage_and_cost_are_reported_in_chat_terms(cell, server, magics, responses_api) -> None:
    run = cell("%%chat\nhello")
    usage = run.metadata["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] == 2
    assert f"{usage['prompt_tokens']} prompt + 2 completion tokens" in run.markdown
    assert "reasoning" not in run.markdown and "<details" not in run.markdown
    assert magics.ledger.models["gpt-4o-mini"]["requests"] == 1


def test_settings_map_to_the_responses_parameters(cell, server, responses_api) -> None:
    assert cell("%%chat -t 0.4 --top-p 0.9 --max-tokens 50 --logprobs 2 --verbosity low\nhi").ok
    body = responses_bodies(server)[-1]
    assert (body["temperature"], body["top_p"], body["max_output_tokens"]) == (0.4, 0.9, 50)
    assert (body["top_logprobs"], body["include"]) == (2, ["message.output_text.logprobs"])
    assert body["text"] == {"verbosity": "low"} and "reasoning" not in body
    assert cell("%%chat -m gpt-5 --reasoning-effort high -t 0.4\nhi").ok
    body = responses_bodies(server)[-1]
    assert body["reasoning"] == {"effort": "high", "summary": "auto"} and "temperature" not in body


def test_no_summary_is_asked_for_when_reasoning_summary_is_unset(cell, server, responses_api) -> None:
    assert cell("%chatconfig reasoning_summary=unset").ok
    run = cell("%%chat -m o3\nhi")
    assert "reasoning" not in responses_bodies(server)[-1] and "<details" not in run.markdown


def test_a_reply_cut_at_max_tokens_says_so(cell, server, responses_api) -> None:
    run = cell("%%chat --max-tokens 2\none two three four")
    assert run.ok and "cut off at max_tokens" in run.markdown and run.metadata["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ("-n 2", "has no n;"),
        ("--stop '###'", "has no stop;"),
        ("--seed 1 --presence-penalty 1", "has no presence_penalty, seed;"),
        ("--frequency-penalty 0.5", "has no frequency_penalty;"),
    ],
)
def test_parameters_the_responses_api_lacks_are_refused_by_name(
    cell, server, magics, responses_api, options, named
) -> None:
    assert cell("%%chat\nkeep me").ok
    before = magics.conversations["default"].messages()
    run = cell(f"%%chat --new {options}\nhi")
    assert type(run.error) is UsageError and named in str(run.error)
    assert len(responses_bodies(server)) == 1, "nothing sent"
    assert magics.conversations["default"].messages() == before, "--new was not applied"


def test_a_setting_the_api_lacks_is_refused_too_and_says_how_to_unset_it(cell, server, responses_api) -> None:
    assert cell("%chatconfig n=2").ok
    run = cell("%%chat\nhi")
    assert type(run.error) is UsageError and "%chatconfig n=unset" in str(run.error)
    assert responses_bodies(server) == []


def test_the_python_api_and_a_whole_reply(server) -> None:
    chat = Chat(base_url=server.url, api_key="sk-test", api="responses", model="o4-mini", stream=False)
    reply = chat.send("hello")
    assert reply.text == "Echo: hello" and reply.reasoning.startswith("**Reading the message**")
    assert reply.usage is not None and reply.usage["completion_tokens_details"] == {"reasoning_tokens": 64}
    assert "stream" not in responses_bodies(server)[-1]
    with pytest.raises(Unsupported, match="has no seed"):
        chat.send("again", seed=3)
    assert len(chat.conversation.turns) == 1


def test_content_parts_become_input_parts(server) -> None:
    chat = Chat(base_url=server.url, api_key="sk-test", api="responses")
    picture = image_part("https://example.com/cat.png", detail="low")
    reply = chat.send([{"type": "text", "text": "What is this? "}, picture])
    assert responses_bodies(server)[-1]["input"][-1]["content"] == [
        {"type": "input_text", "text": "What is this? "},
        {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"},
    ]
    assert reply.text == "Echo: What is this? [image https://example.com/cat.png]"
    chat.send("and now?")
    assert said(responses_bodies(server)[-1])[1] == "Echo: What is this? [image https://example.com/cat.png]"


def test_an_error_event_mid_stream_is_explained_and_nothing_recorded(
    cell, server, magics, responses_api
) -> None:
    server.script(text="a b c d", error_event_at=1)
    run = cell("%%chat\nhi")
    assert (
        not run.ok and "the server reported an error during the reply: scripted error event" in run.io.stdout
    )
    assert magics.conversations["default"].turns == []


def test_the_dry_run_shows_the_responses_body(cell, server, responses_api) -> None:
    run = cell("%chat request hello")
    assert '"input": [' in run.text and '"store": false' in run.text
    assert responses_bodies(server) == []


def test_a_terminal_prints_the_thinking_before_the_reply(ipython: IPython) -> None:
    code = (
        "get_ipython().run_line_magic('chatconfig', 'api=responses')\n"
        "get_ipython().run_cell_magic('chat', '-m o4-mini', 'hi')"
    )
    out = ipython.run(code)
    assert "Thinking: **Reading the message**" in out
    assert out.index("Thinking:") < out.index("\n\nEcho: hi") < out.index("(64 reasoning)")
    assert "<details" not in out


def test_the_widget_view_shows_the_thinking_block_too(cell, server, responses_api) -> None:
    from nbchat.widgets import output_text, shown_view

    run = cell("%%chat -f widget -m o4-mini\nWhy?")
    assert run.ok, run.error
    view = shown_view(run.outputs)
    thinking, reply = view.reply.children  # the Thinking block above the reply
    assert thinking.value.startswith("<details><summary>Thinking</summary>")
    assert "Reading the message" in thinking.value and "Echo: Why?" not in thinking.value
    assert "Echo: Why?" in output_text(reply)


def test_a_schema_with_the_responses_api_is_a_usage_error(cell, server, responses_api) -> None:
    run = cell("%%chat --schema 'label, score float'\nhi")
    assert type(run.error) is UsageError and "needs api=chat" in str(run.error)
    assert server.requests == []


@pytest.mark.parametrize("stream", ["", "--no-stream"])
def test_tools_with_the_responses_api_run_a_tool_turn(cell, server, magics, responses_api, stream) -> None:
    assert cell("sales = [1, 2, 3]").ok
    magics.tool_approval = "auto"
    run = cell(f"%%chat --tools describe {stream}\nPlease describe(name='sales')")
    assert run.ok, run.error
    call, answer = responses_bodies(server)
    assert call["tools"][0]["type"] == "function" and call["tools"][0]["name"] == "describe"
    assert [i.get("type") for i in answer["input"][-2:]] == ["function_call", "function_call_output"]
    assert answer["input"][-1]["output"] == "[1, 2, 3]" and "Echo: [1, 2, 3]" in run.markdown
    assert [m["role"] for m in magics.conversations["default"].turns[-1].messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]


def test_the_admin_key_is_removed_from_text_a_message_substitutes(cell, server, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-Wq4eRt7yUi0oPa3sDf6g")
    assert cell("import os\nadmin = os.environ['OPENAI_ADMIN_KEY']").ok
    assert cell("%%chat\nmy key is {admin} ok").ok
    sent_text = str(server.bodies[-1]["messages"][-1]["content"])
    assert sent_text.startswith("my key is ") and sent_text.endswith(" ok")
    assert "Wq4eRt7yUi0oPa3sDf6g" not in sent_text and "Wq4eRt7y" not in sent_text
