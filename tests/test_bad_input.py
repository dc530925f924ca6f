"""Every kind of bad input is a clear usage error (or a correct send); nothing changes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

BAD_SETTINGS = [
    ("model", "unset"),
    ("temperature", "-0.1"),
    ("temperature", "2.5"),
    ("temperature", "hot"),
    ("temperature", "True"),
    ("top_p", "1.5"),
    ("top_p", "[1]"),
    ("max_tokens", "0"),
    ("max_tokens", "1.5"),
    ("max_tokens", "'ten'"),
    ("frequency_penalty", "-3"),
    ("presence_penalty", "2.01"),
    ("stop", '["a","b","c","d","e"]'),
    ("stop", "[1, 2]"),
    ("stop", "[]"),
    ("n", "0"),
    ("n", "129"),
    ("seed", "1.5"),
    ("seed", "'x'"),
    ("logprobs", "21"),
    ("logprobs", "-1"),
    ("stream", "maybe"),
    ("stream", "2"),
    ("system_prompt", "[1]"),
    ("timeout", "0"),
    ("timeout", "soon"),
    ("max_retries", "-1"),
    ("max_retries", "many"),
    ("output", "html"),
    ("show_usage", "sometimes"),
    ("rerun", "overwrite"),
    ("keep_partial", "perhaps"),
    ("max_context_tokens", "0"),
    ("prices", "[1, 2]"),
    ("prices", "cheap"),
    ("organization", "[1]"),
    ("base_url", "{1: 2}"),
]


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS)
def test_every_setting_refuses_out_of_range_and_wrong_type_values(cell, magics, server, name, value) -> None:
    before = magics.trait_values()
    run = cell(f"%chatconfig {name}={value}")
    assert type(run.error) is UsageError
    assert str(run.error).startswith(name) and "\n" not in str(run.error)
    assert magics.trait_values() == before and server.requests == []


BAD_OPTIONS = [
    "-m",
    "-t",
    "-t 1e999",
    "-t nan",
    "--top-p -1",
    "--max-tokens x",
    "--frequency-penalty 9",
    "--presence-penalty -9",
    "--stop",
    "-n -1",
    "--seed 1.5",
    "--logprobs x",
    "-c",
    '-c ""',
    "-o",
    "-o 1x",
    "-o a.b",
    "--role wizard",
    "-f",
    "--format widgetry",
    "--no-such-option",
    "positional",
    "--new=1",
    "'unclosed",
]


@pytest.mark.parametrize("options", BAD_OPTIONS)
def test_every_cell_option_refuses_bad_values(cell, magics, server, options) -> None:
    run = cell(f"%%chat {options}\nhello")
    assert type(run.error) is UsageError, run.error
    assert "\n" not in str(run.error)
    assert server.requests == [] and not magics.conversations.get("default", None)


@pytest.mark.parametrize(
    "line",
    [
        "%chat",
        "%chat fly",
        "%chat pick",
        "%chat pick two",
        "%chat save",
        "%chat load a b",
        "%chat history --bogus",
        "%chat export",
        "%chat load /no/such/file.json",
    ],
)
def test_bad_chat_lines_are_usage_errors(cell, server, line) -> None:
    run = cell(line)
    assert type(run.error) is UsageError, run.error
    assert server.requests == []


def test_a_1_mb_cell_is_sent_whole(cell, server) -> None:
    big = ("data science " * 80_000)[:1_000_000].strip()
    server.script(text="received")
    run = cell("%%chat\n" + big)
    assert run.ok and run.markdown.startswith("received")
    assert server.bodies[-1]["messages"][-1]["content"] == big


def test_non_ascii_and_emoji_round_trip_through_request_display_and_files(
    cell, server, magics, tmp_path
) -> None:
    text = "Größe, 日本語, العربية, emoji 🐍📊 and a ZWJ family 👩‍👩‍👧"
    run = cell("%%chat\n" + text)
    assert server.bodies[-1]["messages"][-1]["content"] == text
    assert run.markdown.startswith("Echo: " + text)
    assert cell(f"%chat save {tmp_path / 'u.json'}").ok
    assert cell(f"%chat load {tmp_path / 'u.json'} -c again").ok
    assert magics.conversations["again"].messages() == magics.conversations["default"].messages()


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        '{"format": "nbchat.conversation", "version": 1, "messages": [',
        "\x00\x01binary",
        '{"format": "something-else"}',
    ],
)
def test_loading_a_missing_corrupt_truncated_or_foreign_file_changes_nothing(
    cell, magics, tmp_path, content
) -> None:
    assert cell("%%chat\nkeep").ok
    before = {name: c.messages() for name, c in magics.conversations.items()}
    path = tmp_path / "f.json"
    path.write_text(content)
    assert type(cell(f"%chat load {path}").error) is UsageError
    assert {name: c.messages() for name, c in magics.conversations.items()} == before


def test_an_unwritable_save_path_is_a_usage_error_and_leaves_no_file(cell, tmp_path) -> None:
    # (tests may run as root, for whom permissions do not stop a write: use a file as the folder)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert cell("%%chat\nhi").ok
    for target in (blocker / "c.json", tmp_path / "missing" / "c.json", "/proc/version"):
        run = cell(f"%chat save {target}")
        assert type(run.error) is UsageError and "cannot write" in str(run.error)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


TOKENS = [
    "-s",
    "--system",
    "--role",
    "user",
    "assistant",
    "-m",
    "-t",
    "0.5",
    "--top-p",
    "--max-tokens",
    "-n",
    "--seed",
    "--stop",
    '"###"',
    "'a b'",
    "--logprobs",
    "3",
    "--no-stream",
    "-c",
    "x",
    "--new",
    "--no-history",
    "-f",
    "code",
    "-o",
    "r",
    "--raw",
    "-5",
    "1e9",
    "nan",
    "--",
    "-",
    '"',
    "'",
    "\\",
    "{x}",
    "$y",
    "=",
    "temperature=3",
    "stop=[1]",
    "model=unset",
    "prices={'a': [1]}",
    "--reset",
    "--key",
    "history",
    "pick",
    "undo",
    "api_key=x",
]
LINES = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=6)), max_size=8).map(" ".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=LINES)
def test_random_magic_lines_raise_nothing_but_usage_error(magics, line: str) -> None:
    from nbchat.magics import split_line

    for parse in (
        magics.parse_cell_line,
        magics.parse_config_line,
        lambda text: magics.chat_line.parser.parse_args(split_line(text)),
    ):
        try:
            parse(line)
        except UsageError:
            pass
