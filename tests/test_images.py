"""Images: %%chat -f image sends the cell as a prompt to /v1/images/generations (with
--image PATH, a multipart edit); images show inline, partial ones replaced as they stream;
-o gives an object with .png, _repr_png_ and .save; the footer has usage and cost; options a
model does not take are usage errors and nothing is sent."""

from __future__ import annotations

import base64
import hashlib
import os
import time

import pytest
from IPython.core.error import UsageError
from terminal import IPython

from nbchat import Chat, images
from nbchat.testing.images import png

PNG = b"\x89PNG\r\n\x1a\n"


def image_requests(server) -> list:
    return [r for r in server.requests if "/images/" in r.path]


def shown_pngs(run) -> list[bytes]:
    return [base64.b64decode(o["image/png"]) for o in run.outputs if "image/png" in o]


def test_the_cell_is_the_prompt_and_the_image_shows_inline_with_its_partials(cell, server, magics) -> None:
    run = cell("%%chat -f image\nA lighthouse at dusk")
    assert run.ok, run.error
    (request,) = image_requests(server)
    assert request.path.endswith("/v1/images/generations")
    assert request.body == {
        "model": "gpt-image-1",
        "prompt": "A lighthouse at dusk",
        "stream": True,
        "partial_images": 2,
    }
    pictures = shown_pngs(run)
    assert len(pictures) == 3 and all(p.startswith(PNG) for p in pictures), "two partials, then the image"
    assert len(set(pictures)) == 3, "each partial is drawn further"
    labels = [o["text/plain"] for o in run.outputs if "image/png" in o]
    assert labels == ["<image 1 (partial)>", "<image 1 (partial)>", "<image 1>"]
    assert not any(c.turns for c in magics.conversations.values()), "no conversation records an image"
    assert server.bodies == [], "no chat request"


def test_the_footer_has_image_tokens_and_their_cost(cell, server) -> None:
    run = cell("%%chat -f image --quality high\nA lighthouse at dusk")
    usage = run.metadata["usage"]
    assert usage["output_tokens"] == 4160
    text_in = usage["input_tokens_details"]["text_tokens"]
    expected = (text_in * 5.00 + 4160 * 40.00) / 1e6
    assert (
        f"gpt-image-1 · 1 image · {usage['input_tokens']} prompt + 4160 image tokens · ${expected:.4f}"
        in run.text
    )


def test_size_quality_and_n_are_sent_and_each_image_is_shown(cell, server) -> None:
    run = cell("%%chat -f image -n 2 --size 1536x1024 --quality low\nTwo boats")
    assert run.ok, run.error
    body = image_requests(server)[-1].body
    assert (body["n"], body["size"], body["quality"]) == (2, "1536x1024", "low")
    assert "stream" not in body, "several images arrive whole"
    pictures = shown_pngs(run)
    assert len(pictures) == 2 and pictures[0] != pictures[1]
    assert "2 images 1536x1024" in run.text and "816 image tokens" in run.text


def test_out_gives_png_bytes_repr_png_and_save(cell, shell, tmp_path) -> None:
    assert cell("%%chat -f image -o pic\nA lighthouse at dusk").ok
    pic = shell.user_ns["pic"]
    assert pic.png.startswith(PNG) and pic._repr_png_() == pic.png
    assert pic.images[0].size == (64, 64)
    saved = pic.save(tmp_path / "lighthouse.png")
    assert saved == [str(tmp_path / "lighthouse.png")]
    assert (tmp_path / "lighthouse.png").read_bytes() == pic.png
    assert cell("%%chat -f image -n 2 -o two\nboats").ok
    names = shell.user_ns["two"].save(tmp_path / "boat.png")
    assert [os.path.basename(n) for n in names] == ["boat.png", "boat-2.png"]


def test_image_path_sends_a_multipart_edit(cell, server, tmp_path) -> None:
    source = png(32, 32, hashlib.sha256(b"source").digest())
    (tmp_path / "cat.png").write_bytes(source)
    run = cell(f"%%chat -f image --image {tmp_path / 'cat.png'}\nGive the cat a hat")
    assert run.ok, run.error
    (request,) = image_requests(server)
    assert request.path.endswith("/v1/images/edits")
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    fields = request.body
    assert fields["prompt"] == "Give the cat a hat" and fields["model"] == "gpt-image-1"
    assert fields["image"] == {
        "filename": "cat.png",
        "type": "image/png",
        "bytes": len(source),
        "sha256": hashlib.sha256(source).hexdigest(),
    }
    assert shown_pngs(run)[-1].startswith(PNG)
    assert "194" in str(run.metadata["usage"]["input_tokens_details"]), "the picture's input tokens"


def test_dall_e_is_billed_per_image_and_asked_for_b64(cell, server) -> None:
    run = cell("%%chat -f image -m dall-e-3 --size 1792x1024 --quality hd\nA map")
    assert run.ok, run.error
    body = image_requests(server)[-1].body
    assert body["response_format"] == "b64_json" and "stream" not in body
    assert "dall-e-3 · 1 image 1792x1024 · $0.1200" in run.text


def test_the_image_model_setting_chooses_the_model(cell, server) -> None:
    assert cell("%chatconfig image_model=dall-e-2").ok
    assert cell("%%chat -f image -n 3 --size 256x256\nA dot").ok
    body = image_requests(server)[-1].body
    assert body["model"] == "dall-e-2" and body["n"] == 3
    (row,) = [
        line for line in cell("%chat usage").text.splitlines() if line.startswith("dall-e-2 (3 images)")
    ]
    assert row.split()[-1] == "$0.0480", "3 × $0.016, per image"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ("-m dall-e-3 -n 2", "-n 2: dall-e-3 makes only one image a request"),
        ("-n 11", "-n 11: gpt-image-1 makes at most 10 images a request"),
        ("--size 999x999", "--size 999x999: gpt-image-1 takes auto, 1024x1024, 1536x1024, 1024x1536"),
        ("-m dall-e-3 --quality low", "--quality low: dall-e-3 takes standard, hd"),
        ("-m dall-e-3 --image {png}", "--image: dall-e-3 cannot edit images"),
        ("--image /no/such.png", "--image /no/such.png: no such file"),
        ("-t 0.5", "-f image does not take --temperature"),
    ],
)
def test_options_the_model_does_not_take_are_usage_errors(cell, server, tmp_path, options, named) -> None:
    (tmp_path / "a.png").write_bytes(png(8, 8, b"abc"))
    run = cell(f"%%chat -f image {options.format(png=tmp_path / 'a.png')}\nA dot")
    assert type(run.error) is UsageError and named in str(run.error)
    assert image_requests(server) == []


def test_size_without_image_format_is_a_usage_error(cell, server) -> None:
    run = cell("%%chat --size 1024x1024\nhi")
    assert type(run.error) is UsageError and "-f image" in str(run.error)
    assert server.requests == []


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ({"status": 400, "error": "Your request was rejected by the safety system"}, "safety system"),
        ({"reset_after": 1}, "dropped in the middle of the reply"),
        ({"error_event_at": 1}, "the server reported an error during the reply: scripted error event"),
        ({"truncate_after": 1}, "the stream ended before the image was complete"),
    ],
)
def test_failures_are_explained_and_the_stream_closed(cell, server, script, message) -> None:
    server.script(**script)
    run = cell("%%chat -f image\nA lighthouse")
    assert not run.ok and run.io.stdout.startswith("nbchat: ") and message in run.io.stdout
    assert "Traceback" not in run.io.stdout + run.io.stderr
    # the client has closed the connection; the stand-in notices on its next write
    deadline = time.monotonic() + 15  # a loaded machine may schedule the server thread late
    while server.open_streams and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.open_streams == 0
    assert cell("%%chat -f image\nA lighthouse").ok


def test_the_python_api(server, tmp_path) -> None:
    chat = Chat(base_url=server.url, api_key="sk-test")
    stream = images.start(chat, "A tree", n=1, stream=False)
    kinds = [event.kind for event in stream.events()]
    assert kinds == ["image"] and stream.reply is not None
    assert stream.reply.png.startswith(PNG) and stream.reply.cost is not None


def test_a_terminal_prints_a_line_per_image_and_the_footer(ipython: IPython) -> None:
    code = "get_ipython().run_cell_magic('chat', '-f image -o pic', 'A tree')\nprint(len(pic.png) > 0)"
    out = ipython.run(code)
    assert "[image 1: 64×64 PNG" in out and "— gpt-image-1 · 1 image" in out
    assert out.endswith("\nTrue\n"), "-o kept the image"
