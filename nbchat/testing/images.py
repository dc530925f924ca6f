"""The stand-in's Images API: ``/v1/images/generations`` and ``/v1/images/edits`` (multipart)
answer with a deterministic striped PNG made with the standard library (zlib and struct),
at 1/16 of the asked size, coloured by the prompt; streamed with partial images when asked."""

from __future__ import annotations

import base64
import hashlib
import struct
import time
import zlib
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any

from . import wire
from .text import count_tokens
from .wire import Handler

SCALE = 16  # the stand-in draws 1024×1024 as 64×64: tests and demos stay fast
# output tokens of a GPT image model per image: quality -> (square, portrait or landscape)
OUTPUT_TOKENS = {"low": (272, 408), "medium": (1056, 1584), "high": (4160, 6240)}
PICTURE_TOKENS = 194  # input tokens the stand-in counts for a picture to edit


def png(width: int, height: int, seed: bytes, drawn: float = 1.0) -> bytes:
    """A ``width``×``height`` RGB PNG in diagonal stripes of the seed's colour; rows below
    ``drawn`` (a fraction) are left grey, as a partial image."""
    ink = bytes(seed[:3])
    paper = bytes(255 - c for c in ink)
    grey = b"\xe6\xe6\xe6"
    rows = []
    for y in range(height):
        if y >= drawn * height:
            rows.append(b"\x00" + grey * width)
            continue
        rows.append(b"\x00" + b"".join(ink if ((x + y) // 8) % 2 else paper for x in range(width)))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


# output_format jpeg and webp: one fixed 64×64 picture each (made once with an image
# library; the standard library has no JPEG or WebP encoder), so a client sees those types
FIXED = {
    "jpeg": base64.b64decode(
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1R"
        "V19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
        "Y2NjY2NjY2NjY2NjY2P/wAARCABAAEADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAA"
        "AgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6"
        "Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXG"
        "x8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREA"
        "AgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5"
        "OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPE"
        "xcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDIooor1DgCiiigAooooAKKKKACiiigAooo"
        "oAKKKKACiiigAooooAKKKKACiiigAooooAKKKKACiiigAooooAKKKKAP/9k="
    ),
    "webp": base64.b64decode("UklGRiQAAABXRUJQVlA4TBcAAAAvP8APAAdQraIUtP8BICH8f69F9D/1AwA="),
}


def dimensions(size: Any) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in str(size).split("x"))
    except ValueError:
        width, height = 1024, 1024  # "auto", or none asked
    return max(1, width // SCALE), max(1, height // SCALE)


def form_fields(handler: Handler, raw: bytes) -> dict[str, Any] | None:
    """A multipart form's fields; a file becomes {"filename", "type", "bytes", "sha256"}."""
    kind = handler.headers.get("Content-Type") or ""
    if not kind.startswith("multipart/form-data"):
        handler._record(None)
        wire.bad_request(handler, "images/edits takes multipart/form-data", "image")
        return None
    message = BytesParser(policy=email_policy).parsebytes(
        b"Content-Type: " + kind.encode() + b"\r\n\r\n" + raw
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename():
            fields[str(name)] = {
                "filename": part.get_filename(),
                "type": part.get_content_type(),
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        else:
            fields[str(name)] = data.decode()
    handler._record(fields)
    return fields


def generations(handler: Handler, raw: bytes) -> None:
    body = wire.body_of(handler, raw)
    if body is not None:
        answer(handler, body, "image_generation", b"")


def edits(handler: Handler, raw: bytes) -> None:
    fields = form_fields(handler, raw)
    if fields is None:
        return
    picture = fields.get("image")
    if not isinstance(picture, dict):
        return wire.bad_request(handler, "an image file is required", "image")
    for name in ("n", "partial_images"):
        if name in fields:
            fields[name] = int(fields[name])
    fields["stream"] = fields.get("stream") in ("true", "True", True)
    answer(handler, fields, "image_edit", picture["sha256"].encode())


def answer(handler: Handler, body: dict[str, Any], events: str, picture: bytes) -> None:
    prompt, model = body.get("prompt"), str(body.get("model") or "dall-e-2")
    if not isinstance(prompt, str) or not prompt:
        return wire.bad_request(handler, "'prompt' is required", "prompt")
    script = wire.scripted(handler)
    if script is None:
        return
    n = int(body.get("n") or 1)
    width, height = dimensions(body.get("size"))
    seed = hashlib.sha256(prompt.encode() + picture).digest()
    kind = str(body.get("output_format") or "png")
    images = [png(width, height, seed[k:]) if kind == "png" else FIXED[kind] for k in range(n)]
    gpt_image = model.startswith("gpt-image")
    quality = str(body.get("quality") or "medium")
    per_image = OUTPUT_TOKENS.get(quality, OUTPUT_TOKENS["medium"])[0 if width == height else 1]
    text_tokens = count_tokens(prompt)
    picture_tokens = PICTURE_TOKENS if picture else 0
    usage = {
        "input_tokens": text_tokens + picture_tokens,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": picture_tokens},
        "output_tokens": per_image * n,
        "total_tokens": text_tokens + picture_tokens + per_image * n,
    }
    data = []
    for image in images:
        item: dict[str, Any] = {"b64_json": base64.b64encode(image).decode()}
        if model == "dall-e-3":
            item["revised_prompt"] = f"A striped stand-in picture for: {prompt}"
        data.append(item)
    if not body.get("stream"):
        reply: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt_image and script.usage:
            reply |= {"usage": usage, "output_format": kind, "quality": quality, "size": body.get("size")}
        return handler._json(200, reply)
    partials = int(body.get("partial_images") or 0)
    common = {"created_at": int(time.time()), "size": body.get("size") or "auto", "quality": quality}
    common |= {"background": "opaque", "output_format": kind}
    content = [
        wire.sse(
            {
                "type": f"{events}.partial_image",
                "partial_image_index": k,
                "b64_json": base64.b64encode(
                    partial(kind, width, height, seed, (k + 1) / (partials + 1))
                ).decode(),
            }
            | common,
            event=f"{events}.partial_image",
        )
        for k in range(partials)
    ]
    done = {"type": f"{events}.completed", "b64_json": data[0]["b64_json"]} | common
    if script.usage:
        done["usage"] = usage
    closing = [wire.sse(done, event=f"{events}.completed")]
    error = {"error": {"message": "scripted error event", "type": "server_error"}}
    wire.stream(handler, script, [], content, closing, lambda: wire.sse(error))


def partial(kind: str, width: int, height: int, seed: bytes, drawn: float) -> bytes:
    """A partial image in the asked type (the fixed picture, for JPEG and WebP)."""
    return png(width, height, seed, drawn) if kind == "png" else FIXED[kind]
