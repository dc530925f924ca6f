"""Public objects print as a short readable line (model, the start of the text, tokens), not
as a dump of every field: a ``Reply``, a map's results and their errors, a tool call."""

from __future__ import annotations

from nbchat import Chat


def test_a_reply_prints_its_model_the_start_of_its_text_and_its_tokens(env) -> None:
    reply = Chat(cache="off").send("Tell me about the weather in a long sentence that goes on and on")
    shown = repr(reply)
    assert shown.startswith(
        "<Reply gpt-4o-mini: 'Echo: Tell me about the weather in a long sentence that goes…'"
    )
    assert shown.endswith(" tokens>") and " + " in shown
    assert "choices=" not in shown and "usage=" not in shown and len(shown) < 120
    two = Chat(cache="off").send("Pick", n=2)
    assert repr(two) == "<Reply gpt-4o-mini: 'Echo: Pick' · 7 + 6 tokens · 2 choices>"


def test_map_results_print_as_short_replies_with_their_failures(env, server) -> None:
    server.script(status=400, error="bad item")  # the map's first request fails
    results = Chat(cache="off").map([f"item {k}" for k in range(12)], "{item}", concurrency=1)
    shown = repr(results)
    assert shown.startswith(
        "<MapResults of 12 · 1 failed (see .errors): [None, <Reply gpt-4o-mini: 'Echo: item 1'"
    )
    assert shown.endswith(", … 2 more]>")
    assert repr(results.errors[0]).startswith("<MapError #0: ")


def test_a_tool_call_prints_as_the_call_and_how_it_went(env) -> None:
    def twice(x: int) -> int:
        """Double x."""
        return 2 * x

    reply = Chat(cache="off", tool_approval="auto").send("call twice(x=2)", tools=[twice])
    assert [repr(c).split(" · ")[0] for c in reply.tool_calls] == ["<ToolCall twice(x=2)"]
