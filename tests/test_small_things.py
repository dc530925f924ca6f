"""What a careful user notices: -n says which choice continues, %chat history marks cut-off
replies and estimates, an exceeded budget says so, a key can be forgotten, help names the
magics, terminal notes are plain text."""

from __future__ import annotations

import re

from IPython.core.error import UsageError


def test_n_output_says_which_choice_continues_and_how_to_pick_another(cell) -> None:
    run = cell("%%chat -n 2\nname a colour")
    assert "*Choice 1 continues the conversation; `%chat pick K` keeps choice K instead.*" in run.markdown
    plain = run.io.outputs[-1].data["text/plain"]
    assert "Choice 1 continues the conversation; %chat pick K keeps choice K instead." in plain


def test_history_marks_cut_off_and_interrupted_replies_and_every_estimate(cell, server) -> None:
    assert cell("%%chat -s\nYou are terse.").ok
    server.script(text="a reply that was cut", finish_reason="length")
    assert cell("%%chat --max-tokens 5\ntell me everything").ok
    history = cell("%chat history").markdown
    assert "**system** · ≈" in history, "the system prompt's count is an estimate too"
    assert re.search(r"\*\*assistant\*\* · \d+ tokens · cut off at max_tokens", history)
    assert re.search(r"\*\*user\*\* · ≈\d+ tokens\n", history)


def test_a_context_budget_still_exceeded_after_leaving_turns_out_says_so(cell, server) -> None:
    assert cell("%chatconfig max_context_tokens=5").ok
    run = cell("%%chat\n" + "a long question with many words in it " * 5)
    assert run.ok
    assert re.search(r"still ≈\d+ tokens, over max_context_tokens=5", run.markdown)
    dry = cell("%%chat --dry-run\nanother long question with many words in it and more")
    assert "over max_context_tokens=5" in dry.text


def test_forget_key_removes_a_key_set_with_key_and_unset_explains(cell, magics, monkeypatch) -> None:
    from nbchat.secret import Secret

    with magics.setting_from("%chatconfig --key"):
        magics.api_key = Secret("sk-typed-in-by-hand-123456")
    run = cell("%chatconfig --forget-key")
    assert run.ok and magics.api_key is None
    assert "OPENAI_API_KEY from the environment applies again" in run.text
    again = cell("%chatconfig --forget-key")
    assert type(again.error) is UsageError and "nothing to forget" in str(again.error)
    unset = cell("%chatconfig api_key=unset")
    assert type(unset.error) is UsageError and "--forget-key" in str(unset.error)
    assert "saved in the notebook" not in str(unset.error)


def test_help_names_the_magics_not_their_methods(shell) -> None:
    cell_help = shell.magics_manager.magics["cell"]["chat"].__doc__
    line_help = shell.magics_manager.magics["line"]["chat"].__doc__
    assert cell_help.startswith("::\n\n  %%chat ") and "chat_cell" not in cell_help
    assert line_help.startswith("::\n\n  %chat ") and "chat_line" not in line_help


def test_notes_in_a_terminal_are_plain_text() -> None:
    from nbchat.render import plain

    assert plain("System prompt of *default* set; saved to `c.json`.") == (
        "System prompt of default set; saved to c.json."
    )
