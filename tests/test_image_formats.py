"""Images whatever their type: output_format jpeg/webp is sent, and what comes back is
shown, saved and represented by its own bytes' type (magic numbers, not names); an
interrupt says which pictures were shown."""

from __future__ import annotations

import base64
import os
import signal
import threading

import pytest
from conftest import Cell, Run
from IPython.core.error import UsageError

from nbchat import NbChatError
from nbchat.testing.server import StandInServer
from nbchat.transports.images import sniff

JPEG, WEBP, PNG = b"\xff\xd8\xff", b"RIFF", b"\x89PNG\r\n\x1a\n"


def shown(run, mime: str) -> list[bytes]:
    return [base64.b64decode(o[mime]) for o in run.outputs if mime in o]


@pytest.mark.parametrize(
    ("fmt", "mime", "magic"), [("jpeg", "image/jpeg", JPEG), ("webp", "image/webp", WEBP)]
)
def test_output_format_is_sent_and_the_image_shows_as_its_own_type(
    cell, server, shell, fmt, mime, magic
) -> None:
    run = cell(f"%%chat -f image --output-format {fmt} -o pic\nA lighthouse")
    assert run.ok, run.error
    request = [r for r in server.requests if "/images/" in r.path][-1]
    assert request.body["output_format"] == fmt
    pictures = shown(run, mime)
    assert pictures and all(p.startswith(magic) for p in pictures)
    assert not shown(run, "image/png")[-1:] or fmt != "png"
    pic = shell.user_ns["pic"]
    assert pic.images[0].mime == mime and pic.images[0].data.startswith(magic)
    assert fmt.upper() in repr(pic.images[0])


def test_a_jpeg_has_repr_jpeg_not_png_and_png_says_what_it_is(cell, shell) -> None:
    assert cell("%%chat -f image --output-format jpeg -o pic\nA lighthouse").ok
    pic = shell.user_ns["pic"]
    assert pic._repr_jpeg_() == pic.images[0].data and pic._repr_png_() is None
    with pytest.raises(NbChatError, match="JPEG, not PNG"):
        _ = pic.png
    formatted, _ = shell.display_formatter.format(pic)
    assert "image/jpeg" in formatted and "image/png" not in formatted


def test_a_webp_shows_through_its_mimebundle(cell, shell) -> None:
    assert cell("%%chat -f image --output-format webp -o pic\nA lighthouse").ok
    formatted, _ = shell.display_formatter.format(shell.user_ns["pic"])
    assert base64.b64decode(formatted["image/webp"]).startswith(WEBP)


def test_save_adds_the_right_extension_and_refuses_a_wrong_one(cell, shell, tmp_path) -> None:
    assert cell("%%chat -f image --output-format jpeg -o pic\nA lighthouse").ok
    pic = shell.user_ns["pic"]
    assert pic.save(tmp_path / "shot") == [str(tmp_path / "shot.jpg")]
    assert (tmp_path / "shot.jpg").read_bytes().startswith(JPEG)
    assert pic.save(tmp_path / "shot.jpeg") == [str(tmp_path / "shot.jpeg")]
    with pytest.raises(NbChatError, match=r"this image is JPEG; save it as \.jpg"):
        pic.save(tmp_path / "shot.png")
    assert not (tmp_path / "shot.png").exists()


def test_the_type_comes_from_the_bytes_not_from_what_was_asked(cell, server, shell, monkeypatch) -> None:
    # a server that sends JPEG although PNG was asked (or nothing said)
    from nbchat.testing import images as stand_in

    monkeypatch.setattr(stand_in, "png", lambda *a, **k: stand_in.FIXED["jpeg"])
    run = cell("%%chat -f image --no-stream -o pic\nA lighthouse")
    assert run.ok, run.error
    assert shown(run, "image/jpeg") and not shown(run, "image/png")
    assert shell.user_ns["pic"].images[0].mime == "image/jpeg"


def test_sniff_reads_magic_numbers() -> None:
    from nbchat.testing.images import FIXED, png

    assert sniff(png(4, 4, b"abc")) == "image/png"
    assert sniff(FIXED["jpeg"]) == "image/jpeg" and sniff(FIXED["webp"]) == "image/webp"
    assert sniff(b"GIF89a....") == "image/gif" and sniff(b"not an image") is None


def test_dall_e_takes_no_output_format_and_size_needs_the_image_format(cell, server) -> None:
    run = cell("%%chat -f image -m dall-e-3 --output-format webp\nA lighthouse")
    assert type(run.error) is UsageError and "PNG only" in str(run.error)
    run = cell("%%chat --output-format jpeg\nhello")
    assert type(run.error) is UsageError and "-f image" in str(run.error)
    assert server.requests == []


def interrupted_image_cell(cell: Cell, server: StandInServer, stall_at: int) -> Run:
    """An image cell interrupted (a real SIGINT) while the server stalls after ``stall_at`` events."""
    server.script(stall_at=stall_at, stall=10)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        return cell("%%chat -f image\nA lighthouse")
    finally:
        timer.cancel()


def test_an_interrupt_after_a_partial_image_says_it_was_shown(cell, server) -> None:
    run = interrupted_image_cell(cell, server, stall_at=1)
    assert not run.ok
    said = str(run.error)
    assert "1 partial image shown above; no image was finished" in said and "nothing arrived" not in said
    assert shown(run, "image/png"), "the partial image is on screen"


def test_an_interrupt_before_any_image_says_nothing_arrived(cell, server) -> None:
    run = interrupted_image_cell(cell, server, stall_at=0)
    assert not run.ok and str(run.error) == "interrupted: nothing arrived"
