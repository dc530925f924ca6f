"""%chat retry, pick, save/load, export, usage, models, request; context budget; costs."""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError

from nbchat.conversation import Conversation
from nbchat.usage import PRICES, PRICES_TAKEN, cost


def said(body) -> list[str]:
    return [m["content"] for m in body["messages"]]


def test_retry_regenerates_the_last_reply_with_current_settings(cell, server, magics) -> None:
    assert cell("%%chat\none").ok
    assert cell("%%chat\ntwo").ok
    assert cell("%chatconfig temperature=1.2").ok
    server.script(text="a better answer")
    run = cell("%chat retry")
    assert run.ok and run.markdown.startswith("a better answer")
    assert said(server.bodies[-1]) == ["one", "Echo: one", "two"]
    assert server.bodies[-1]["temperature"] == 1.2
    assert [m["content"] for m in magics.conversations["default"].messages()] == [
        "one",
        "Echo: one",
        "two",
        "a better answer",
    ]


def test_retry_with_nothing_to_retry_is_a_usage_error(cell, server) -> None:
    assert type(cell("%chat retry").error) is UsageError and server.requests == []


def test_pick_keeps_another_choice(cell, server) -> None:
    assert cell("%%chat -n 3\ncolour?").ok
    assert cell("%chat pick 3").ok
    assert cell("%%chat\nwhy?").ok
    assert said(server.bodies[-1])[1] == "Echo: colour? (choice 3)"
    for bad in ("%chat pick 4", "%chat pick x", "%chat pick"):
        assert type(cell(bad).error) is UsageError


def test_pick_after_a_single_choice_reply_is_a_usage_error(cell) -> None:
    assert cell("%%chat\nhi").ok
    assert "single choice" in str(cell("%chat pick 2").error)


def test_save_and_load_round_trip_and_continue(cell, server, magics, tmp_path) -> None:
    path = tmp_path / "conv.json"
    assert cell("%%chat -s\nBe brief.").ok
    assert cell("%%chat\none").ok
    assert cell(f"%chat save {path}").ok
    data = json.loads(path.read_text())
    assert data["format"] == "nbchat.conversation" and data["version"] == 2
    assert data["messages"][0] == {"role": "system", "content": "Be brief."}
    assert cell(f"%chat load {path} -c restored").ok
    assert cell("%%chat -c restored\ntwo").ok
    assert said(server.bodies[-1]) == ["Be brief.", "one", "Echo: one", "two"]
    assert magics.conversations["restored"].turns[0].usage["completion_tokens"] == 2


def test_save_is_atomic_and_leaves_no_temporary_files(cell, tmp_path) -> None:
    assert cell("%%chat\none").ok
    assert cell(f"%chat save {tmp_path / 'c.json'}").ok
    assert cell(f"%chat save {tmp_path / 'c.json'}").ok
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        (
            '{"format": "nbchat.conversation", "version": 1, "messages": [{"role": "user", "content": "x"}], "turns": [{"size": 1}]',
            "is not valid JSON",
        ),
        ('{"messages": []}', "the list of messages is empty"),
        ("[1, 2, 3]", "not a list of OpenAI messages: message 1 is malformed"),
        ('{"name": "x"}', "not an nbchat conversation file"),
        (
            '{"format": "nbchat.conversation", "version": 99, "messages": [], "turns": []}',
            "unsupported conversation file version",
        ),
        (
            '{"format": "nbchat.conversation", "version": 1, "messages": [{"role": "wizard", "content": "x"}], "turns": []}',
            "malformed message",
        ),
        (
            '{"format": "nbchat.conversation", "version": 1, "messages": [{"role": "user", "content": "x"}], "turns": [{"size": 5}]}',
            "do not match",
        ),
    ],
)
def test_a_corrupt_truncated_or_foreign_file_is_rejected_and_nothing_changes(
    cell, magics, tmp_path, content, message
) -> None:
    assert cell("%%chat\nkeep me").ok
    before = magics.conversations["default"].messages()
    path = tmp_path / "bad.json"
    path.write_text(content)
    run = cell(f"%chat load {path}")
    assert type(run.error) is UsageError and message in str(run.error)
    assert magics.conversations["default"].messages() == before


def test_load_takes_its_own_jsonl_export_and_a_plain_openai_message_list(cell, magics, tmp_path) -> None:
    assert cell("%%chat -s\nYou are terse.").ok
    assert cell("%%chat\nFirst").ok
    assert cell("%%chat\nSecond").ok
    assert cell(f"%chat export {tmp_path / 'talk.jsonl'}").ok
    messages = magics.conversations["default"].messages()
    assert cell(f"%chat load {tmp_path / 'talk.jsonl'} -c again").ok
    assert magics.conversations["again"].messages() == messages
    assert len(magics.conversations["again"].turns) == 2
    plain = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    loaded = cell(f"%chat load {tmp_path / 'plain.json'} -c plain")
    assert loaded.ok and "Loaded 1 turns into *plain*" in loaded.markdown
    assert magics.conversations["plain"].messages() == plain
    (tmp_path / "body.json").write_text(json.dumps({"model": "gpt-4o-mini", "messages": plain}))
    assert cell(f"%chat load {tmp_path / 'body.json'} -c body").ok
    assert magics.conversations["body"].messages() == plain
    (tmp_path / "two.jsonl").write_text(
        json.dumps({"messages": plain}) + "\n" + json.dumps({"messages": plain})
    )
    two = cell(f"%chat load {tmp_path / 'two.jsonl'} -c two")
    assert type(two.error) is UsageError and "holds 2 examples" in str(two.error)
    assert "two" not in magics.conversations


def test_load_of_a_missing_file_and_save_to_an_unwritable_place_are_usage_errors(cell, tmp_path) -> None:
    assert "no such file" in str(cell(f"%chat load {tmp_path / 'nope.json'}").error)
    assert "cannot write" in str(cell(f"%chat save {tmp_path / 'missing-dir' / 'c.json'}").error)


def test_export_markdown_and_fine_tuning_jsonl(cell, tmp_path) -> None:
    assert cell("%%chat -s\nBe brief.").ok
    assert cell("%%chat\none").ok
    assert cell(f"%chat export {tmp_path / 't.md'}").ok
    md = (tmp_path / "t.md").read_text()
    assert md.startswith("# default") and "**user**\n\none" in md and "**assistant**\n\nEcho: one" in md
    assert cell(f"%chat export {tmp_path / 't.jsonl'}").ok
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "one"},
                {"role": "assistant", "content": "Echo: one"},
            ]
        }
    ]
    assert "writes .md or .jsonl" in str(cell(f"%chat export {tmp_path / 't.txt'}").error)


def test_usage_sums_tokens_and_cost_per_model_and_in_total(cell) -> None:
    assert cell("%%chat\none").ok
    assert cell("%%chat\ntwo three").ok
    assert cell("%%chat -m llama3\nfour").ok
    plain = cell("%chat usage").outputs[-1]["text/plain"].splitlines()
    rows = {line.split()[0]: line.split() for line in plain[2:]}
    assert rows["gpt-4o-mini"][1] == "2" and rows["llama3"][1] == "1"
    assert rows["llama3"][-2:] == ["unknown", "price"]
    assert rows["total"][1] == "3"
    assert int(rows["total"][2]) == int(rows["gpt-4o-mini"][2]) + int(rows["llama3"][2])
    assert "(known prices only)" in plain[-1]


def test_models_lists_the_servers_models(cell) -> None:
    text = cell("%chat models").outputs[-1]["text/plain"]
    assert "nbchat-stand-in" in text and "gpt-4o-mini" in text


def test_request_is_a_dry_run_of_the_exact_body(cell, server) -> None:
    assert cell("%%chat\none").ok
    assert cell("%chatconfig temperature=0.5").ok
    count = len(server.requests)
    run = cell("%chat request what next")
    assert len(server.requests) == count
    shown = run.outputs[-1]["text/plain"]
    body = json.loads(shown[: shown.rindex("}") + 1])
    assert body["messages"][-1] == {"role": "user", "content": "what next"}
    assert body["temperature"] == 0.5 and body["stream"] is True
    assert "≈" in shown and "nothing sent" in shown
    assert cell("%%chat\nwhat next").ok
    sent = server.bodies[-1]
    assert sent == body


def test_context_budget_leaves_out_the_oldest_turns_but_keeps_them_in_history(cell, server, magics) -> None:
    assert cell("%%chat -s\nsystem stays").ok
    for i in range(6):
        assert cell(f"%%chat\nmessage number {i} " + "word " * 30).ok
    assert cell("%chatconfig max_context_tokens=120").ok
    run = cell("%%chat\nthe new message")
    body = server.bodies[-1]
    assert body["messages"][0]["content"] == "system stays"
    assert body["messages"][-1]["content"] == "the new message"
    assert body["messages"][1]["role"] == "user"
    left_out = run.metadata["left_out"]
    assert left_out > 0 and left_out % 2 == 0
    assert f"{left_out} earlier messages left out" in run.markdown
    assert len(magics.conversations["default"].turns) == 7


def test_the_budget_never_drops_the_system_prompt_or_the_new_message() -> None:
    conv = Conversation()
    messages = [{"role": "system", "content": "s " * 50}, {"role": "user", "content": "u " * 50}]
    kept, dropped = conv.window(messages, budget=1)
    assert kept == messages and dropped == 0


def test_prices_have_a_date_and_overrides_win() -> None:
    assert "20" in PRICES_TAKEN and PRICES["gpt-4o-mini"] == (0.15, 0.60)
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    assert cost("gpt-4o-mini-2024-07-18", usage) == pytest.approx(0.75)
    assert cost("my-model", usage) is None
    assert cost("my-model", usage, {"my-model": [1, 2]}) == pytest.approx(3.0)
    assert cost("gpt-4o-mini", usage, {"gpt-4o-mini": {"input": 0, "output": 1}}) == pytest.approx(1.0)


def test_prices_setting_changes_the_footer(cell) -> None:
    assert cell('%chatconfig prices={"llama3": [1000, 1000]}').ok
    run = cell("%%chat -m llama3\nhello")
    assert "llama3 · " in run.markdown and "$0.0" in run.text
