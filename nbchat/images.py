"""Images from a prompt (or a prompt and a picture): the request, and what comes back."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .cache import NotInCache
from .chat import Reply, ReplyStream, Request
from .content import image_size
from .errors import NbChatError
from .transports.images import EXTENSIONS, PICTURE_EXTENSIONS, Picture, request_body, sniff, what_came
from .usage import image_cost


@dataclass(eq=False)
class Image:
    """One picture: ``.data`` is its bytes and ``.mime`` their type (read from the bytes,
    not from what was asked); ``.png`` the bytes of a PNG. It shows itself in a notebook."""

    data: bytes
    revised_prompt: str | None = None

    @property
    def mime(self) -> str | None:
        return sniff(self.data)

    @property
    def png(self) -> bytes:
        if self.mime != "image/png":
            raise NbChatError(f"this image is {self._kind}, not PNG: its bytes are .data")
        return self.data

    @property
    def size(self) -> tuple[int, int] | None:
        return image_size(self.data)

    @property
    def _kind(self) -> str:
        return (self.mime or "image/unknown").split("/")[1].upper()

    def _repr_png_(self) -> bytes | None:
        return self.data if self.mime == "image/png" else None

    def _repr_jpeg_(self) -> bytes | None:
        return self.data if self.mime == "image/jpeg" else None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """WebP and GIF, which IPython has no ``_repr_*_`` for (PNG and JPEG come from those)."""
        import base64

        if self.mime in ("image/webp", "image/gif"):
            return {self.mime: base64.b64encode(self.data).decode("ascii")}
        return {}

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the image to ``path``; returns the path written. A path without an
        extension gets the image's own (``.png``, ``.jpg``, ``.webp``); a picture extension
        that names another type is refused, as the file would lie about its contents."""
        if self.mime is None:  # nbchat's replies never hold such bytes; an Image made by hand may
            raise NbChatError(f"not saved: these bytes are no image ({what_came(self.data)})")
        target = os.fspath(os.path.expanduser(path))
        own = EXTENSIONS.get(self.mime or "", "")
        ext = os.path.splitext(target)[1].lower()
        if not ext:
            target += own
        elif own and ext in PICTURE_EXTENSIONS and PICTURE_EXTENSIONS[ext] != self.mime:
            raise NbChatError(f"{os.fspath(path)}: this image is {self._kind}; save it as {own}")
        with open(target, "wb") as f:
            f.write(self.data)
        return target

    def __repr__(self) -> str:
        size = self.size
        shown = f"{size[0]}×{size[1]}" if size else "?"
        return f"<Image {shown} {self._kind}, {len(self.data):,} bytes>"


@dataclass(eq=False)
class ImageReply(Reply):
    """What ``%%chat -f image`` made: ``.images`` (each with ``.data``); ``.png``, the reprs and
    ``.save`` act on the first one (``.save`` numbers the files when there are several).
    ``.text`` is the prompt the model revised, where it says (DALL·E 3)."""

    images: list[Image] = field(default_factory=list)

    @property
    def png(self) -> bytes:
        return self.images[0].png

    def _repr_png_(self) -> bytes | None:
        return self.images[0]._repr_png_() if self.images else None

    def _repr_jpeg_(self) -> bytes | None:
        return self.images[0]._repr_jpeg_() if self.images else None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.images[0]._repr_mimebundle_() if self.images else {}

    def _repr_markdown_(self) -> str | None:  # type: ignore[override]  # the picture, not text
        return None

    def save(self, path: str | os.PathLike[str]) -> list[str]:
        """Save the image to ``path`` (``name-2.png``, ``name-3.png``… for the others)."""
        root, ext = os.path.splitext(os.fspath(path))
        return [image.save(path if k == 0 else f"{root}-{k + 1}{ext}") for k, image in enumerate(self.images)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, k: int) -> Image:
        return self.images[k]

    def __repr__(self) -> str:
        return f"<ImageReply {self.model}: {len(self.images)} image(s)>"


class Drawing:
    """What an image request collects while it runs (the transport fills it)."""

    def __init__(self, picture: Picture | None) -> None:
        self.picture = picture
        self.images: list[bytes] = []
        self.revised: list[str | None] = []
        self.usage: dict[str, Any] | None = None
        self.started = time.perf_counter()
        self.first_token: float | None = None
        self.ended: float | None = None
        self.partials = 0  # partial images shown while drawing


class ImageStream(ReplyStream):
    """An image request being answered: ``events()`` yields partial and finished images
    (kinds ``image_partial`` and ``image``) for the one stream consumer; nothing joins a
    conversation."""

    def __init__(self, chat: Any, body: dict[str, Any], picture: Picture | None) -> None:
        request = Request(
            body, 0, None, record=False, api="images", sent=[{"role": "user", "content": body["prompt"]}]
        )
        super().__init__(chat, request, {"role": "user", "content": body["prompt"]})
        self.body = body
        self.drawing = Drawing(picture)
        self.reply: ImageReply | None = None

    def events(self) -> Iterator[Any]:
        if self._started:
            raise NbChatError("these images were already read")
        self._started = True
        if self.chat.settings.cache == "only":
            raise NotInCache("cache=only sends nothing, and image requests are not kept in the reply cache")
        settings = self.chat.settings
        if settings.budget is not None:
            from .budget import check, image_estimate
            from .connection import resolve

            model = str(self.body["model"])
            estimate = image_estimate(self.body, settings.prices)
            check(
                settings, self.chat.ledger.spent, estimate, "this image request", model, resolve(settings).url
            )
        yield from self.chat.transport.run(self.chat.settings, self.body, self.drawing, "images")
        self.reply = self.finish()

    def finish(
        self, interrupted: bool = False, replayed: Any = None, problem: str | None = None
    ) -> ImageReply:
        done = self.drawing
        model = str(self.body["model"])
        images = [Image(data, revised) for data, revised in zip(done.images, done.revised, strict=False)]
        price = image_cost(
            model,
            done.usage,
            len(images),
            self.body.get("size"),
            self.body.get("quality"),
            self.chat.settings.prices,
        )
        params = {
            k: v for k, v in self.body.items() if k not in ("prompt", "partial_images", "response_format")
        }
        latency = (done.ended or time.perf_counter()) - done.started
        reply = ImageReply(
            text=next((r for r in done.revised if r), ""),
            choices=[],
            usage=done.usage,
            finish_reason="stop" if images else None,
            model=model,
            latency=latency,
            params=params,
            cost=price,
            interrupted=interrupted,
            images=images,
        )
        self.chat.ledger.add_images(model, done.usage, len(images), price)
        self.reply = reply
        return reply

    def kept(self) -> str:
        """After an interrupt: which pictures the user saw (nothing joins a conversation)."""
        done, asked = self.drawing, int(self.body.get("n") or 1)
        if done.images:
            of = f" of {asked}" if asked > len(done.images) else ""
            return f"{len(done.images)}{of} finished image{'s' if len(done.images) != 1 else ''} shown above"
        if done.partials:
            many = "s" if done.partials != 1 else ""
            return f"{done.partials} partial image{many} shown above; no image was finished"
        return "nothing arrived"

    @property
    def attached(self) -> str:
        """What goes with the body of an edit (a multipart form): the picture."""
        picture = self.drawing.picture
        if picture is None:
            return ""
        size = f"{picture.mime}, {len(picture.data):,} bytes"
        return f"with the picture {picture.name} ({size}) as a multipart form"


def start(
    chat: Any,
    prompt: str,
    *,
    image: str | None = None,
    model: str | None = None,
    size: str | None = None,
    quality: str | None = None,
    output_format: str | None = None,
    n: int | None = None,
    stream: bool | None = None,
) -> ImageStream:
    """An image request for ``prompt`` (an edit of the picture at ``image``); nothing is
    sent until its events are read. Raises ``ImageOptionError`` for options the model
    does not take."""
    picture = Picture.read(image) if image else None
    settings = chat.settings
    body = request_body(
        model or settings.image_model,
        prompt,
        size=size,
        quality=quality,
        n=n,
        stream=settings.stream if stream is None else stream,
        edit=picture is not None,
        output_format=output_format,
    )
    return ImageStream(chat, body, picture)
