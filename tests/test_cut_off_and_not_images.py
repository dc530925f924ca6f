"""A structured reply cut off by the token limit says so and names max_tokens; bytes that are
no image (an HTML error page from an image endpoint) are never shown or saved as an image."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Cell
from rawserver import RawServer

from nbchat import Chat
from nbchat.errors import RequestFailed
from nbchat.images import Image
from nbchat.schema import Mismatch
from nbchat.testing.server import StandInServer

CUT = '{"label": "posi'


def test_a_schema_reply_cut_off_at_max_tokens_says_so_and_names_max_tokens(
    cell: Cell, server: StandInServer, magics: Any
) -> None:
    server.script(text=CUT, finish_reason="length")
    run = cell('%%chat --schema "label, score float" --max-tokens 5\nRate: great')
    assert not run.ok
    assert str(run.error).startswith(
        "the reply was cut off at max_tokens=5 before its JSON was complete, so it does not match the "
        "schema; raise max_tokens (e.g. --max-tokens 10)"
    ), run.error
    assert magics.conversations.get("default") is None or not magics.conversations["default"].turns
    # a reply that ended on its own but is not JSON still blames the JSON
    server.script(text="not json", finish_reason="stop")
    other = cell('%%chat --schema "label"\nRate: great')
    assert "cut off" not in str(other.error) and "not JSON" in str(other.error)


def test_a_cut_off_without_max_tokens_names_the_servers_limit_and_a_map_item_says_so_too(
    env: None, server: StandInServer
) -> None:
    chat = Chat(stream=False)
    server.script(text=CUT, finish_reason="length")
    with pytest.raises(
        Mismatch, match=r"cut off at the server's own max_tokens before its JSON was complete"
    ):
        chat.send("Rate: great", schema="label")
    server.script(text=CUT, finish_reason="length")
    results = Chat(max_tokens=4).map(["a", "b"], "Rate: {item}", schema="label", progress=None, concurrency=1)
    assert results[1] is not None
    assert results.errors[0].error.startswith("the reply was cut off at max_tokens=4")


def image_server(payload: bytes, content_type: str = "application/json") -> RawServer:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
    return RawServer(lambda conn: conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + payload))


PAGE = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@pytest.mark.parametrize(
    ("payload", "content_type", "said"),
    [
        (
            json.dumps({"data": [{"b64_json": base64.b64encode(PAGE).decode()}]}).encode(),
            "application/json",
            "the server sent an HTML page titled '502 Bad Gateway' (89 bytes) where an image should be",
        ),
        (
            json.dumps({"data": [{"b64_json": base64.b64encode(b'{"error": "quota"}').decode()}]}).encode(),
            "application/json",
            'the server sent JSON (18 bytes): {"error": "quota"} where an image should be',
        ),
        (
            json.dumps({"data": [{"b64_json": base64.b64encode(bytes(range(256))).decode()}]}).encode(),
            "application/json",
            "the server sent 256 bytes that are no image type nbchat knows (PNG, JPEG, WebP, GIF)",
        ),
        (
            PAGE,
            "text/html",
            "the server's reply is not an images response: it sent an HTML page titled '502 Bad",
        ),
    ],
    ids=["html-in-b64", "json-in-b64", "binary", "html-page"],
)
def test_bytes_that_are_no_image_are_a_clear_error_naming_what_came_back(
    cell: Cell, magics: Any, tmp_path: Path, payload: bytes, content_type: str, said: str
) -> None:
    with image_server(payload, content_type) as srv:
        magics.base_url, magics.max_retries = srv.url, 0
        run = cell("%%chat -f image -o picture --no-stream\nA lighthouse")
    assert not run.ok and said in str(run.error), run.error
    assert "picture" not in cell.shell.user_ns
    shown = [kind for data in run.outputs for kind in data if kind.startswith("image/")]
    assert shown == [], "nothing was shown as an image"
    assert list(tmp_path.iterdir()) == []


def test_an_image_made_by_hand_from_other_bytes_is_never_saved(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"not saved: these bytes are no image \(an HTML page titled '502"):
        Image(PAGE).save(tmp_path / "picture.png")
    assert list(tmp_path.iterdir()) == []
    assert Image(PAGE)._repr_png_() is None and Image(PAGE)._repr_mimebundle_() == {}


def test_the_python_api_raises_request_failed(env: None) -> None:
    with image_server(json.dumps({"data": [{"b64_json": base64.b64encode(PAGE).decode()}]}).encode()) as srv:
        chat = Chat(base_url=srv.url, max_retries=0)
        from nbchat import images

        stream = images.start(chat, "A lighthouse", stream=False)
        with pytest.raises(RequestFailed, match="HTML page titled '502 Bad Gateway'"):
            list(stream.events())
