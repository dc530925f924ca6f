"""%chat history | reset | undo | list, and unknown verbs."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError


def test_history_is_a_readable_transcript_with_tokens(cell) -> None:
    assert cell("%%chat -s\nBe brief.").ok
    assert cell("%%chat\nWhat is pandas?").ok
    md = cell("%chat history").markdown
    assert md.index("**system**") < md.index("**user**") < md.index("**assistant**")
    assert "Be brief." in md and "What is pandas?" in md and "Echo: What is pandas?" in md
    assert "**assistant** · 4 tokens" in md  # the server's completion_tokens
    assert "**user** · ≈" in md  # estimated where the server reports none per message
    assert cell("%%chat\nHi").ok
    md = cell("%chat history").markdown
    assert "**user** · ≈1 token\n\nHi" in md and "1 tokens" not in md


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
    run = cell("%chat undo")
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


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("reset work", "%chat reset does not take 'work'; name a conversation with -c NAME"),
        ("history work", "%chat history does not take 'work'; name a conversation with -c NAME"),
        ("retry now", "%chat retry does not take 'now'; name a conversation with -c NAME"),
        ("pick 2 3", "%chat pick does not take '3'"),
        ("list -c work", "%chat list does not take -c"),
        ("history --keep-system", "%chat history does not take --keep-system"),
        ("usage --days 3", "--days goes with --org: %chat usage --org --days N"),
        ("export -c typo out.md", "there is no conversation 'typo' (conversations: default, work)"),
        ("reset -c typo", "there is no conversation 'typo' (conversations: default, work)"),
    ],
)
def test_what_a_verb_does_not_take_is_refused_and_nothing_changes(cell, server, line, message) -> None:
    assert cell("%%chat\nhi").ok and cell("%%chat -c work\nhello").ok
    before = [r.body for r in server.requests]
    run = cell(f"%chat {line}")
    assert type(run.error) is UsageError and str(run.error) == message
    from nbchat.magics import INSTANCES

    conversations = INSTANCES[cell.shell].conversations
    assert sorted(conversations) == ["default", "work"] and all(
        len(c.turns) == 1 for c in conversations.values()
    )
    assert [r.body for r in server.requests] == before


def test_a_verb_reads_the_default_conversation_before_anything_was_said(cell) -> None:
    run = cell("%chat history -c default")
    assert run.ok and "empty conversation" in run.text
