"""%chat history | reset | undo | list, and unknown verbs."""

from __future__ import annotations

from IPython.core.error import UsageError


def test_history_is_a_readable_transcript_with_tokens(cell) -> None:
    assert cell("%%chat -s\nBe brief.").ok
    assert cell("%%chat\nWhat is pandas?").ok
    md = cell("%chat history").markdown
    assert md.index("**system**") < md.index("**user**") < md.index("**assistant**")
    assert "Be brief." in md and "What is pandas?" in md and "Echo: What is pandas?" in md
    assert "**assistant** · 4 tokens" in md  # the server's completion_tokens
    assert "**user** · ≈" in md  # estimated where the server reports none per message


def test_reset_empties_and_keep_system_keeps_the_prompt(cell, server) -> None:
    assert cell("%%chat -s\nBe brief.").ok
    assert cell("%%chat\none").ok
    assert cell("%chat reset --keep-system").ok
    assert cell("%%chat\ntwo").ok
    assert [m["role"] for m in server.bodies[-1]["messages"]] == ["system", "user"]
    assert cell("%chat reset").ok
    assert cell("%%chat\nthree").ok
    assert [m["role"] for m in server.bodies[-1]["messages"]] == ["user"]


def test_undo_removes_the_last_exchange(cell, server) -> None:
    assert cell("%%chat\none").ok
    assert cell("%%chat\ntwo").ok
    assert cell("%chat undo").ok
    assert cell("%%chat\nthree").ok
    assert [m["content"] for m in server.bodies[-1]["messages"]] == ["one", "Echo: one", "three"]


def test_undo_on_an_empty_conversation_is_a_usage_error(cell) -> None:
    run = cell("%chat undo -c nothing")
    assert type(run.error) is UsageError and "nothing to undo" in str(run.error)


def test_list_shows_each_conversation_with_messages_tokens_and_model(cell) -> None:
    assert cell("%%chat\none").ok
    assert cell("%%chat -c other -m gpt-4o\ntwo").ok
    table = cell("%chat list").outputs[-1]["text/plain"].splitlines()
    assert table[0].split() == ["conversation", "messages", "tokens", "model"]
    assert table[2].split()[:2] == ["default", "2"] and table[2].split()[-1] == "gpt-4o-mini"
    assert table[3].split()[:2] == ["other", "2"] and table[3].split()[-1] == "gpt-4o"


def test_unknown_or_missing_verb_lists_the_verbs_and_sends_nothing(cell, server) -> None:
    for line in ("%chat frobnicate", "%chat"):
        run = cell(line)
        assert type(run.error) is UsageError
        assert "history" in str(run.error) and "undo" in str(run.error)
    assert server.requests == []
