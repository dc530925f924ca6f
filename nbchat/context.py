"""What the model sees besides the typed text: values, images, files, errors and earlier
cells as text or content parts, and the receipt that lists each piece.

pandas, matplotlib and PIL are never imported here: objects are recognised by what they
can do (duck typing), so nbchat costs nothing for users who do not have them.
"""

from __future__ import annotations

import codecs
import io
import mimetypes
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .content import Content, Part, data_url, file_part, image_part, image_size, join
from .errors import NbChatError
from .secret import scrub
from .tokens import estimate_text, fit_prefix, part_tokens

DETAILS = ("low", "high", "auto")
TABLE_ROWS = 5  # first and last rows shown of a long table
SMALL_TABLE = 20  # a table this short is shown whole


class ContextError(NbChatError):
    """A value, path or URL that cannot become part of a message (the user's to fix)."""


@dataclass
class Limits:
    """How much one piece of context may take: the settings ``context_tokens`` and
    ``image_max_side``, and the cell's ``--detail``."""

    context_tokens: int = 2000
    image_max_side: int = 1024
    detail: str | None = None
    secrets: tuple[str, ...] = ()  # removed from any text that comes from the namespace


@dataclass
class Piece:
    """One line of the receipt: what was added, where from, and what it costs."""

    what: str  # "df", "Err[4]", "photo.png", "cell [3]"
    kind: str  # "DataFrame 100000×5", "image/png 1024×768", "error", "text"
    source: str  # "{df}", "--image", "--file", "--context"
    tokens: int
    note: str = ""  # "cut to 2000 tokens", "scaled from 2000×2000", …

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Rendered:
    """A value made ready for a message: text or one content part, with its receipt line."""

    piece: str | Part
    kind: str
    tokens: int
    note: str = ""


# -- values -> text or parts ------------------------------------------------------------


def render(value: Any, limits: Limits, name: str = "value") -> Rendered:
    """Render ``value`` the way a person would paste it into a chat."""
    if _is_table(value):
        return _table(value, limits, name)
    if _is_series(value):
        return _series(value, limits, name)
    image = image_bytes(value, limits.image_max_side)
    if image is not None:
        return _image_rendered(*image, limits=limits)
    url = _linked_image(value)
    if url is not None:  # IPython.display.Image(url=…) without the bytes: the server fetches it
        part = image_part(url, limits.detail)
        return Rendered(part, "image URL", part_tokens(part), "size unknown: 1024×1024 assumed")
    try:
        text = str(value)
    except Exception as e:
        failure = f"{type(e).__name__}: {_said(e)}"
        raise ContextError(f"{{{name}}} cannot be shown as text: str() raised {failure}") from None
    text, note = cut(scrub_text(text, limits), limits.context_tokens)
    return Rendered(text, type(value).__name__, estimate_text(text), note)


def scrub_text(text: str, limits: Limits) -> str:
    return scrub(text, *limits.secrets) if limits.secrets else text


def cut(text: str, budget: int) -> tuple[str, str]:
    """``text`` cut to about ``budget`` tokens, and a note saying what was left out."""
    if len(text) <= budget:  # every token covers at least one character
        return text, ""
    # no token is longer than ~64 characters: only that much of a huge string is looked at
    low = fit_prefix(text[: budget * 64], budget)
    if low == len(text):
        return text, ""
    low = fit_prefix(text[:low], max(budget - 25, 1))  # room for the note
    left = len(text) - low
    note = f"cut to {budget} tokens (context_tokens): {left:,} more characters left out"
    return f"{text[:low]}\n… ({note})", note


def _is_table(value: Any) -> bool:
    return _pandas_like(value, 2, "columns", "dtypes")


def _is_series(value: Any) -> bool:
    return _pandas_like(value, 1, "dtype", "index")


def _pandas_like(value: Any, dimensions: int, *names: str) -> bool:
    """Shaped like a pandas object of ``dimensions`` with ``head``, ``tail`` and ``names``
    (duck-typed: nbchat never imports pandas)."""
    shape = getattr(value, "shape", None)
    return (
        isinstance(shape, tuple)
        and len(shape) == dimensions
        and all(hasattr(value, name) for name in ("head", "tail", *names))
    )


def _rows_text(frame: Any) -> str:
    to_string = getattr(frame, "to_string", None)
    if to_string is not None:
        try:
            return str(to_string(max_cols=30, max_colwidth=40))
        except TypeError:  # a Series, or a table library whose to_string takes other options
            try:
                return str(to_string())
            except TypeError:
                pass
    return str(frame)


def _table(value: Any, limits: Limits, name: str) -> Rendered:
    rows, ncols = value.shape
    try:
        dtypes = list(value.dtypes.items())
    except AttributeError:  # polars: dtypes is a list next to columns
        dtypes = list(zip(value.columns, value.dtypes, strict=False))
    shown = dtypes[:60]
    columns = ", ".join(f"{c} ({t})" for c, t in shown)
    if len(dtypes) > len(shown):
        columns += f", … and {len(dtypes) - len(shown)} more columns"
    head = f"DataFrame {name}: {count(rows, 'row')} × {count(ncols, 'column')}\ncolumns: {columns}\n"
    return _with_rows(value, rows, head, f"DataFrame {rows}×{ncols}", limits)


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _series(value: Any, limits: Limits, name: str) -> Rendered:
    (rows,) = value.shape
    label = getattr(value, "name", None)
    called = f" ({label})" if label is not None and str(label) != name else ""
    head = f"Series {name}{called}: {count(rows, 'value')}, dtype {value.dtype}\n"
    return _with_rows(value, rows, head, f"Series {rows}", limits)


def _with_rows(value: Any, rows: int, head: str, kind: str, limits: Limits) -> Rendered:
    """The header, then the first and last rows: as many as fit in ``context_tokens``."""
    if rows <= SMALL_TABLE:
        text = head + _rows_text(value)
        note = ""
    else:
        n = TABLE_ROWS
        while True:
            text = (
                f"{head}first {n} rows:\n{_rows_text(value.head(n))}\n"
                f"last {n} rows:\n{_rows_text(value.tail(n))}\n"
                f"({rows - 2 * n:,} rows in between not shown)"
            )
            if n == 1 or estimate_text(text) <= limits.context_tokens:
                break
            n = max(1, n // 2)
        note = f"first and last {n} of {rows:,} rows"
    text, cut_note = cut(scrub_text(text, limits), limits.context_tokens)
    return Rendered(text, kind, estimate_text(text), "; ".join(n for n in (note, cut_note) if n))


# -- images -----------------------------------------------------------------------------


def image_bytes(value: Any, max_side: int) -> tuple[str, bytes, str] | None:
    """``(mime, bytes, note)`` if ``value`` is an image, scaled so its longer side is at
    most ``max_side`` where the object can scale itself; ``None`` otherwise."""
    if hasattr(value, "savefig") and hasattr(value, "get_size_inches"):
        return _figure(value, max_side)
    owner = getattr(value, "figure", None)  # an Axes, a seaborn grid: send the whole figure
    if owner is not None and hasattr(owner, "savefig") and hasattr(owner, "get_size_inches"):
        return _figure(owner, max_side)
    if hasattr(value, "thumbnail") and hasattr(value, "save") and hasattr(value, "mode"):
        return _pil(value, max_side)
    for mime, data in _representations(value):
        return fit(mime, data, max_side)
    return None


def _linked_image(value: Any) -> str | None:
    url = getattr(value, "url", None)
    kind = type(value).__name__
    if kind == "Image" and isinstance(url, str) and url.startswith(("http://", "https://")):
        return url if not getattr(value, "data", None) else None
    return None


def _figure(fig: Any, max_side: int) -> tuple[str, bytes, str]:
    """A matplotlib figure rendered at a resolution that fits ``max_side`` (no resampling)."""
    width, height = (float(x) for x in fig.get_size_inches())
    dpi = float(fig.dpi)
    note = ""
    if max(width, height) * dpi > max_side:
        note = f"rendered at {max_side} px (was {round(width * dpi)}×{round(height * dpi)})"
        dpi = max_side / max(width, height)
    buffer = io.BytesIO()
    try:  # zlib level 3: a third faster than the default 6 for ~10% more bytes
        fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 3})
    except TypeError:  # a savefig without pil_kwargs
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
    return "image/png", buffer.getvalue(), note


def _pil(img: Any, max_side: int) -> tuple[str, bytes, str]:
    note = ""
    if max(img.size) > max_side:
        before = img.size
        img = img.copy()
        img.thumbnail((max_side, max_side))
        note = f"scaled from {before[0]}×{before[1]}"
    jpeg = str(getattr(img, "format", "") or "").upper() == "JPEG" and img.mode in ("RGB", "L")
    buffer = io.BytesIO()
    if jpeg:
        img.save(buffer, format="JPEG", quality=90)
        return "image/jpeg", buffer.getvalue(), note
    if img.mode not in ("1", "L", "LA", "I", "P", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.mode else "RGB")
    img.save(buffer, format="PNG")
    return "image/png", buffer.getvalue(), note


def _representations(value: Any) -> Iterable[tuple[str, bytes]]:
    """``image/png`` or ``image/jpeg`` from IPython's display protocol."""
    import base64

    def as_bytes(data: Any) -> bytes | None:
        if isinstance(data, tuple):  # (data, metadata)
            data = data[0]
        if isinstance(data, bytes):
            return data
        if isinstance(data, str):
            try:
                return base64.b64decode(data)
            except ValueError:
                return None
        return None

    bundle_method = getattr(value, "_repr_mimebundle_", None)
    if callable(bundle_method) and not isinstance(value, type):
        try:
            bundle = bundle_method(include=["image/png", "image/jpeg"], exclude=[])
        except Exception:
            bundle = None
        if isinstance(bundle, tuple):
            bundle = bundle[0]
        if isinstance(bundle, dict):
            for mime in ("image/png", "image/jpeg"):
                data = as_bytes(bundle.get(mime))
                if data:
                    yield mime, data
    for mime, attr in (("image/png", "_repr_png_"), ("image/jpeg", "_repr_jpeg_")):
        method = getattr(value, attr, None)
        if callable(method) and not isinstance(value, type):
            try:
                data = as_bytes(method())
            except Exception:
                data = None
            if data:
                yield mime, data


def fit(mime: str, data: bytes, max_side: int) -> tuple[str, bytes, str]:
    """Encoded image bytes scaled to ``max_side``. nbchat never imports PIL: it scales
    with PIL only when the user's session has already imported it, and otherwise sends
    the image as it is and says so in the receipt."""
    size = image_size(data)
    if size is None or max(size) <= max_side:
        return mime, data, ""
    pil = sys.modules.get("PIL.Image")
    if pil is None:
        return mime, data, f"not scaled ({size[0]}×{size[1]}; nbchat scales bytes only once PIL is imported)"
    try:
        img = pil.open(io.BytesIO(data))
        img.load()
    except Exception:
        return mime, data, f"not scaled ({size[0]}×{size[1]}; PIL could not read it)"
    return _pil(img, max_side)


def _image_rendered(mime: str, data: bytes, note: str, limits: Limits) -> Rendered:
    part = image_part(data_url(mime, data), limits.detail)
    size = image_size(data)
    kind = f"{mime} {size[0]}×{size[1]}" if size else mime
    return Rendered(part, kind, part_tokens(part), note)


# -- attachments ------------------------------------------------------------------------


def attach_image(where: str, limits: Limits) -> tuple[Part, Piece]:
    """``--image PATH_OR_URL``: a URL goes as it is, a file is read and scaled."""
    if where.startswith(("http://", "https://", "data:")):
        part = image_part(where, limits.detail)
        note = "size unknown: 1024×1024 assumed"
        return part, Piece(where[:60], "image URL", "--image", part_tokens(part), note)
    data = _read(where, "--image")
    mime = _image_mime(data) or mimetypes.guess_type(where)[0] or ""
    if not mime.startswith("image/"):
        raise ContextError(f"--image {where}: not a PNG, JPEG, GIF or WebP image")
    rendered = _image_rendered(*fit(mime, data, limits.image_max_side), limits=limits)
    assert isinstance(rendered.piece, dict)
    return rendered.piece, Piece(Path(where).name, rendered.kind, "--image", rendered.tokens, rendered.note)


def attach_file(where: str, limits: Limits) -> tuple[Part, Piece]:
    """``--file PATH``: a ``file`` content part (PDF, text, …) with the data inline."""
    data = _read(where, "--file")
    name = Path(where).name
    mime = mimetypes.guess_type(name)[0] or _sniff(data)
    if mime.startswith("text/") and limits.secrets:
        try:
            data = scrub_text(data.decode("utf-8"), limits).encode("utf-8")
        except UnicodeDecodeError:
            pass
    part = file_part(name, mime, data)
    return part, Piece(name, f"file {mime}", "--file", part_tokens(part), f"{len(data):,} bytes")


def _sniff(data: bytes) -> str:
    if data[:5] == b"%PDF-":
        return "application/pdf"
    try:  # final=False: a character cut at the 4,096th byte is not an error
        codecs.getincrementaldecoder("utf-8")().decode(data[:4096], final=False)
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


def _read(where: str, option: str) -> bytes:
    path = Path(os.path.expanduser(where))
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ContextError(f"{option} {where}: no such file") from None
    except IsADirectoryError:
        raise ContextError(f"{option} {where}: is a directory, not a file") from None
    except OSError as e:
        raise ContextError(f"{option} {where}: cannot read it ({e.strerror or e})") from None


def _image_mime(data: bytes) -> str | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:2] == b"\xff\xd8":
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


# -- errors and earlier cells -----------------------------------------------------------


@dataclass
class CellRecord:
    """One earlier executed cell, for ``--context N``."""

    count: int
    source: str
    out: Any = None
    has_out: bool = False
    error: str | None = None


def notebook_context(cells: Sequence[CellRecord], limits: Limits) -> tuple[list[str | Part], list[Piece]]:
    """The earlier cells as one block marked as notebook context (outputs rendered like
    ``{name}`` values: a DataFrame is described, a figure becomes an image)."""
    if not cells:
        return [], []
    pieces: list[str | Part] = [
        f"<notebook context: the {len(cells)} cell{'s' if len(cells) > 1 else ''} run before this message>\n"
    ]
    receipt = []
    for cell in cells:
        source, source_note = cut(scrub_text(cell.source, limits), limits.context_tokens)
        block: list[str | Part] = [f"[{cell.count}] In:\n{source}\n"]
        notes = [source_note] if source_note else []
        if cell.has_out:
            out = render(cell.out, limits, f"Out[{cell.count}]")
            block += [f"[{cell.count}] Out:\n", out.piece, "\n"]
            notes += [out.note] if out.note else []
        if cell.error:
            error, error_note = cut(scrub_text(cell.error, limits), limits.context_tokens)
            block.append(f"[{cell.count}] Error:\n{error}\n")
            notes += [error_note] if error_note else []
        pieces += block
        tokens = sum(estimate_text(p) if isinstance(p, str) else part_tokens(p) for p in block)
        kind = "cell" + (" + output" if cell.has_out else "") + (" + error" if cell.error else "")
        receipt.append(Piece(f"cell [{cell.count}]", kind, "--context", tokens, "; ".join(notes)))
    pieces.append("</notebook context>\n\n")
    return pieces, receipt


# -- putting a message together ---------------------------------------------------------


def compose(items: Iterable[Any], limits: Limits, source: str = "message") -> tuple[Content, list[Piece]]:
    """A message from text and objects in order (the Python API's ``chat.send([...])``):
    strings and content parts go as they are, anything else is rendered."""
    pieces: list[str | Part] = []
    receipt: list[Piece] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            pieces.append(item)
        elif isinstance(item, dict) and item.get("type") in ("text", "image_url", "file"):
            pieces.append(item)
        else:
            rendered = render(item, limits, f"item {i}")
            pieces.append(rendered.piece)
            receipt.append(Piece(f"item {i}", rendered.kind, source, rendered.tokens, rendered.note))
    return join(pieces), receipt


def summary(receipt: Sequence[Mapping[str, Any]]) -> str:
    """The footer's few words: what was attached."""
    if not receipt:
        return ""
    names = [str(p["what"]) for p in receipt]
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return f"context: {shown} (≈{sum(int(p['tokens']) for p in receipt):,} tokens)"


def _said(error: BaseException) -> str:
    """An exception's message as one short line (its ``str()`` may itself fail)."""
    from .secret import one_line

    try:
        return one_line(str(error), 200)
    except Exception:
        return "(its message cannot be shown either)"
