"""%%chat --dry-run for the legacy Completions API and for images: the exact body the same
cell sends, and nothing is sent."""

from __future__ import annotations

import json

from nbchat.testing.images import png


def dry_body(run) -> dict:
    shown = run.markdown
    return json.loads(shown.split("```json\n", 1)[1].split("\n```", 1)[0])


def test_dry_run_of_a_completion_is_the_body_the_cell_then_sends(cell, server) -> None:
    assert cell("name = 'world'").ok
    line = "--completion --max-tokens 5 --echo --logprobs 2 --stop END"
    run = cell(f"%%chat {line} --dry-run\nHello {{name}}")
    assert run.ok, run.error
    assert server.requests == []
    assert "completions request" in run.markdown and "nothing sent" in run.markdown
    body = dry_body(run)
    assert body["prompt"] == "Hello world"
    assert cell(f"%%chat {line}\nHello {{name}}").ok
    (sent,) = [r.body for r in server.requests if r.path.endswith("/v1/completions")]
    assert body == sent


def test_dry_run_of_an_image_is_the_body_the_cell_then_sends(cell, server) -> None:
    line = "-f image --size 1536x1024 --quality low --output-format webp"
    run = cell(f"%%chat {line} --dry-run\nA lighthouse at dusk")
    assert run.ok, run.error
    assert server.requests == []
    body = dry_body(run)
    assert body["prompt"] == "A lighthouse at dusk" and body["output_format"] == "webp"
    assert cell(f"%%chat {line}\nA lighthouse at dusk").ok
    (sent,) = [r.body for r in server.requests if r.path.endswith("/images/generations")]
    assert body == sent


def test_dry_run_of_an_image_edit_names_the_picture_and_sends_nothing(cell, server, magics, tmp_path) -> None:
    (tmp_path / "photo.png").write_bytes(png(32, 32, b"photo"))
    run = cell(f"%%chat -f image --image {tmp_path / 'photo.png'} --dry-run\nMake it night")
    assert run.ok, run.error
    assert dry_body(run)["prompt"] == "Make it night"
    assert "photo.png (image/png" in run.markdown and "multipart" in run.markdown
    assert server.requests == [] and not magics.conversations


def test_dry_run_keeps_refusing_what_the_cell_would_refuse(cell, server) -> None:
    from IPython.core.error import UsageError

    for line in ("-f image -m dall-e-3 -n 2", "--completion --new"):
        run = cell(f"%%chat {line} --dry-run\nhello")
        assert type(run.error) is UsageError, line
    assert server.requests == []
