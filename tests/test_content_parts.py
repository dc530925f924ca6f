"""Content parts end to end: text-only messages stay strings; images and files travel as
parts through history, re-runs, the context budget, history views, save/load and export."""

from __future__ import annotations

import json

import pytest
from images import jpeg_header, pdf, png

from nbchat import Chat, Conversation
from nbchat.content import (
    data_url,
    describe,
    file_part,
    human_bytes,
    image_part,
    image_size,
    join,
    shorten,
    text_of,
)
from nbchat.tokens import estimate, estimate_messages, image_tokens


def photo(width: int = 640, height: int = 480) -> dict[str, object]:
    return image_part(data_url("image/png", png(width, height)))


@pytest.fixture
def chat(env):
    return Chat(model="gpt-4o-mini")


def test_text_alone_stays_a_string_and_parts_keep_their_place() -> None:
    assert join(["a", "b", ""]) == "ab"
    image = photo(4, 3)
    assert join(["look: ", image, " and ", "more"]) == [
        {"type": "text", "text": "look: "},
        image,
        {"type": "text", "text": " and more"},
    ]


def test_image_sizes_are_read_from_png_and_jpeg_headers() -> None:
    assert image_size(png(640, 480)) == (640, 480)
    assert image_size(jpeg_header(1920, 1080)) == (1920, 1080)
    assert image_size(b"not an image at all") is None


def test_image_tokens_follow_openais_tile_rule() -> None:
    # the worked examples in OpenAI's vision guide
    assert image_tokens(1024, 1024, "high") == 765
    assert image_tokens(2048, 4096, "high") == 1105
    assert image_tokens(4096, 8192, "low") == 85
    part = photo(1024, 1024)
    assert estimate([part]) == 765
    assert estimate([image_part(part["image_url"]["url"], "low")]) == 85


def test_the_server_sees_parts_and_its_echo_names_each_image_and_file(chat, server) -> None:
    content = join(["What is this? ", photo(), file_part("report.pdf", "application/pdf", pdf(2))])
    reply = chat.send(content)
    sent = server.bodies[-1]["messages"][-1]["content"]
    assert isinstance(sent, list) and [p["type"] for p in sent] == ["text", "image_url", "file"]
    assert sent[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert sent[2]["file"]["filename"] == "report.pdf"
    assert reply.text == "Echo: What is this? [image/png 640×480][file report.pdf]"
    assert chat.messages[0]["content"] == content  # history keeps the parts as sent


def test_text_only_messages_are_sent_as_plain_strings(chat, server) -> None:
    chat.send(join(["just ", "text"]))
    assert server.bodies[-1]["messages"][-1]["content"] == "just text"


def test_a_rerun_with_an_image_replaces_the_cells_earlier_exchange(chat, server) -> None:
    chat.send("before", cell_id="a")
    chat.send(join(["first look ", photo(8, 8)]), cell_id="b")
    chat.send(join(["second look ", photo(16, 16)]), cell_id="b")
    sent = [text_of(m["content"]) for m in server.bodies[-1]["messages"]]
    assert sent[:2] == ["before", "Echo: before"] and sent[2].startswith("second look [image/png 16×16")
    assert len(chat.conversation.turns) == 2
    assert chat.conversation.turns[1].reply == "Echo: second look [image/png 16×16]"


def test_the_context_budget_counts_image_tiles_and_leaves_out_old_turns(env, server) -> None:
    chat = Chat(model="gpt-4o-mini", max_context_tokens=700)
    chat.send(join(["big picture ", photo(1024, 1024)]))  # 765 tokens of image
    reply = chat.send("and now?")
    assert estimate_messages(chat.messages) > 700
    assert reply.left_out == 2
    assert [m["content"] for m in server.bodies[-1]["messages"]] == ["and now?"]


def test_history_shows_each_image_as_a_placeholder_with_its_size(cell, magics) -> None:
    magics.chat_for("default").send(join(["see ", photo(320, 200)]))
    run = cell("%chat history")
    assert run.ok
    assert "see [image/png 320×200," in run.markdown
    assert "base64" not in run.text + run.markdown
    assert (
        "≈" + str(estimate(magics.conversations["default"].turns[0].messages[0]["content"])) in run.markdown
    )


def test_save_writes_version_2_with_parts_and_load_brings_them_back(chat, server, tmp_path) -> None:
    content = join(["chart: ", photo(50, 40), file_part("notes.txt", "text/plain", b"some notes")])
    chat.send(content, cell_id="c1")
    path = tmp_path / "conv.json"
    chat.save(path)
    data = json.loads(path.read_text())
    assert data["version"] == 2 and data["messages"][0]["content"] == content
    again = Chat.load(path)
    assert again.messages == chat.messages
    again.send("next")
    assert server.bodies[-1]["messages"][0]["content"] == content


def test_a_version_1_file_still_loads(tmp_path) -> None:
    old = {
        "format": "nbchat.conversation",
        "version": 1,
        "name": "old",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
        ],
        "turns": [{"cell_id": None, "model": "m", "usage": None, "finish_reason": "stop", "size": 2}],
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    conv = Conversation.load(path)
    assert conv.system == "Be brief." and conv.turns[0].reply == "hello"


def test_a_file_with_a_malformed_part_is_rejected(tmp_path) -> None:
    bad = {
        "format": "nbchat.conversation",
        "version": 2,
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
        "turns": [{"size": 1}],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(Exception, match="malformed message"):
        Conversation.load(path)


def test_export_md_shows_placeholders_and_jsonl_keeps_the_parts(chat, server, tmp_path) -> None:
    image = photo(640, 480)
    chat.send(join(["look ", image]))
    md = chat.conversation.export(tmp_path / "t.md").read_text()
    size = human_bytes(len(png(640, 480)))
    assert f"look [image/png 640×480, {size}]" in md and "base64" not in md
    line = json.loads(chat.conversation.export(tmp_path / "t.jsonl").read_text())
    assert line["messages"][0]["content"][1] == image


def test_the_dry_run_shortens_data_urls_to_type_size_and_pixels(cell, magics) -> None:
    magics.chat_for("default").send(join(["see ", photo(300, 200)]))
    run = cell("%chat request what now")
    assert run.ok
    assert "data:image/png;base64,… (" in run.markdown and "300×200 px" in run.markdown
    assert len(run.markdown) < 2000


def test_shorten_leaves_short_strings_and_other_urls_alone() -> None:
    body = {"messages": [{"content": [image_part("https://example.com/cat.png")]}], "model": "m"}
    assert shorten(body) == body
    assert describe(image_part("https://example.com/cat.png")) == "[image https://example.com/cat.png]"
