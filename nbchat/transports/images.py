"""The Images API: ``/v1/images/generations`` (a prompt) and ``/v1/images/edits`` (a prompt
and a picture, multipart), whole or streamed with partial images."""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import NbChatError, RequestFailed
from ..events import Chunk, ImageDone, ImagePartial, StreamEnd, Whole
from ..secret import one_line
from .shape import IMAGE_COUNTS, Events, clean_usage, kind, malformed, reported, text_of, valid_text

# What each model family takes (OpenAI's documented values); other servers' models are
# sent what the user asked, unchecked.
_GPT_IMAGE = {
    "size": ("auto", "1024x1024", "1536x1024", "1024x1536"),
    "quality": ("auto", "low", "medium", "high"),
    "n": 10,
    "edits": True,
}
MODELS: dict[str, dict[str, Any]] = {
    "dall-e-3": {
        "size": ("1024x1024", "1792x1024", "1024x1792"),
        "quality": ("standard", "hd"),
        "n": 1,
        "edits": False,
    },
    "dall-e-2": {
        "size": ("256x256", "512x512", "1024x1024"),
        "quality": ("standard",),
        "n": 10,
        "edits": True,
    },
}
PARTIAL_IMAGES = 2  # partial images asked for when streaming (0–3 allowed)


# the first bytes of each image type a server may send: trusted over any name or field
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}
PICTURE_EXTENSIONS = {ext: mime for mime, ext in EXTENSIONS.items()} | {".jpeg": "image/jpeg"}


def sniff(data: bytes) -> str | None:
    """The image type of ``data`` from its magic number (``image/png``…), or ``None``."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _MAGIC if data.startswith(magic)), None)


class ImageOptionError(NbChatError):
    """An option this image model does not take (a usage error in a cell)."""


def family(model: str) -> dict[str, Any] | None:
    if model.startswith("gpt-image") or model.startswith("chatgpt-image"):
        return _GPT_IMAGE
    return MODELS.get(model)


def is_gpt_image(model: str) -> bool:
    return family(model) is _GPT_IMAGE


@dataclass
class Picture:
    """A picture to edit: its file name, bytes and type."""

    name: str
    data: bytes
    mime: str

    @classmethod
    def read(cls, path: str) -> Picture:
        expanded = os.path.expanduser(path)
        try:
            with open(expanded, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise ImageOptionError(f"--image {path}: no such file") from None
        except OSError as e:
            raise ImageOptionError(f"--image {path}: cannot read it ({type(e).__name__})") from None
        mime = sniff(data) or mimetypes.guess_type(expanded)[0] or "image/png"
        return cls(os.path.basename(expanded), data, mime)


def request_body(
    model: str,
    prompt: str,
    *,
    size: str | None = None,
    quality: str | None = None,
    n: int | None = None,
    stream: bool = False,
    edit: bool = False,
    output_format: str | None = None,
) -> dict[str, Any]:
    """The body (fields of a multipart form for edits), checked against the model's
    documented options; raises :class:`ImageOptionError` naming the option."""
    if not prompt.strip():
        raise ImageOptionError("an image needs a prompt: write it below the %%chat line")
    spec = family(model)
    if n is not None and n < 1:
        raise ImageOptionError(f"-n must be at least 1 (got {n})")
    if spec is not None:
        if n is not None and n > spec["n"]:
            most = "only one image a request" if spec["n"] == 1 else f"at most {spec['n']} images a request"
            raise ImageOptionError(f"-n {n}: {model} makes {most}")
        for name, value in (("size", size), ("quality", quality)):
            if value is not None and value not in spec[name]:
                raise ImageOptionError(f"--{name} {value}: {model} takes {', '.join(spec[name])}")
        if edit and not spec["edits"]:
            raise ImageOptionError(f"--image: {model} cannot edit images; use gpt-image-1 or dall-e-2")
        if output_format not in (None, "png") and spec is not _GPT_IMAGE:
            raise ImageOptionError(
                f"--output-format {output_format}: {model} makes PNG only; use gpt-image-1"
            )
    body: dict[str, Any] = {"model": model, "prompt": prompt}
    if size is not None:
        body["size"] = size
    if quality is not None:
        body["quality"] = quality
    if n is not None:
        body["n"] = n
    if output_format is not None:
        body["output_format"] = output_format
    if spec is not None and spec is not _GPT_IMAGE:
        body["response_format"] = "b64_json"  # DALL·E sends URLs (that expire) unless asked
    if stream and spec is _GPT_IMAGE and (n or 1) == 1:
        body["stream"] = True
        body["partial_images"] = PARTIAL_IMAGES
    return body


def read(
    client: Any, body: dict[str, Any], stream_class: Any, picture: Picture | None = None
) -> Iterator[Chunk | Whole | StreamEnd]:
    """Send ``body`` (with ``picture``, an edit); yield each event of a streamed drawing and
    then its end, or the whole response. It keeps and changes nothing: :func:`fold` does."""
    path = "/images/edits" if picture is not None else "/images/generations"
    options: dict[str, Any] = {}
    files = None
    if picture is not None:
        files = [("image", (picture.name, picture.data, picture.mime))]
        options = {"headers": {"Content-Type": "multipart/form-data"}}
        # multipart fields are strings
        body = {k: str(v) if not isinstance(v, str) else v for k, v in body.items()}
    if not body.get("stream"):
        yield Whole(client.post(path, body=body, files=files, options=options, cast_to=object))
        return
    events = Events(client, path, body, stream_class, files=files, options=options)
    for event in events:
        yield Chunk(event)
    yield StreamEnd(events.done, int(body.get("n") or 1))


def fold(
    result: Any, event: Chunk | Whole | StreamEnd, body: dict[str, Any]
) -> Iterator[ImagePartial | ImageDone]:
    """Take one of :func:`read`'s events into ``result`` (``.images``, ``.revised``,
    ``.usage``); yield the partial and finished images a view paints."""
    if isinstance(event, Whole):
        yield from _fold_whole(result, event.data)
    elif isinstance(event, Chunk):
        yield from _fold_event(result, event.data)
    elif not result.images:
        raise RequestFailed("the stream ended before the image was complete; re-run the cell")


def _fold_whole(result: Any, data: Any) -> Iterator[ImageDone]:
    if isinstance(data, (str, bytes)):  # not JSON at all: a proxy's or a server's page
        raise RequestFailed(f"the server's reply is not an images response: it sent {what_came(data)}")
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise RequestFailed("the server's reply is not an images response")
    result.usage = clean_usage(data.get("usage"), IMAGE_COUNTS)
    for index, item in enumerate(data["data"]):
        if not isinstance(item, Mapping):
            raise malformed(f"an image is {kind(item)}, not an object")
        png = _decode(item)
        result.images.append(png)
        result.revised.append(valid_text(text_of(item.get("revised_prompt"), "a revised prompt")) or None)
        yield ImageDone(index, png)
    if not result.images:
        raise RequestFailed("the server sent no image")


def _fold_event(result: Any, event: Any) -> Iterator[ImagePartial | ImageDone]:
    """One event of a streamed drawing: a partial image, a finished one, or an error."""
    what = event.get("type")
    what = what if isinstance(what, str) else ""
    if what.endswith(".partial_image"):
        if result.first_token is None:
            result.first_token = time.perf_counter()
        result.partials += 1
        yield ImagePartial(0, _decode(event))
    elif what.endswith(".completed"):
        png = _decode(event)
        result.images.append(png)
        result.revised.append(None)
        result.usage = clean_usage(event.get("usage"), IMAGE_COUNTS) or result.usage
        yield ImageDone(len(result.images) - 1, png)
    elif what == "error":
        raise reported(event, "while drawing")


def _decode(item: Mapping[str, Any]) -> bytes:
    data = item.get("b64_json")
    if not isinstance(data, str):
        url = item.get("url")
        raise RequestFailed(
            f"the server sent an image URL ({one_line(str(url), 200)}) instead of the image"
            if url
            else "the server sent no image data"
        )
    try:
        picture = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestFailed("the server sent an image that is not valid base64") from None
    if sniff(picture) is None:  # never shown or saved as an image
        raise RequestFailed(
            f"the server sent {what_came(picture)} where an image should be; no image was made"
        )
    return picture


def what_came(data: bytes | str) -> str:
    """What some bytes that should have been an image are, in a few words: an HTML page (and
    its title), JSON, text, or unknown bytes."""
    text = data if isinstance(data, str) else data[:4000].decode("utf-8", "replace")
    size = f"{len(data):,} {'characters' if isinstance(data, str) else 'bytes'}"
    head = text.lstrip()[:200].lower()
    if head.startswith(("<!doctype html", "<html")) or "<body" in head or "<head" in head:
        match = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
        title = (
            f" titled {one_line(match.group(1).strip(), 80)!r}" if match and match.group(1).strip() else ""
        )
        return f"an HTML page{title} ({size})"
    if head.startswith(("{", "[")):
        return f"JSON ({size}): {one_line(text, 120)}"
    if text and all(c.isprintable() or c.isspace() for c in text[:200]):
        return f"text ({size}): {one_line(text, 120)}"
    return f"{size} that are no image type nbchat knows (PNG, JPEG, WebP, GIF)"
