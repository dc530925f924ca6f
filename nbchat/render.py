"""What the user sees: one display handle per reply, throttled updates, the footer."""

from __future__ import annotations

import contextvars
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from IPython.display import DisplayHandle, display

from .chat import Reply, ReplyStream, Request
from .context import summary
from .errors import StreamInterrupted
from .events import TextDelta, ToolEvent
from .images import ImageReply, ImageStream
from .markdown import escape_dollars, keep_lines, protect_dollars
from .tools import ToolCall
from .transports.images import sniff
from .usage import GENAI_PRICES, Ledger, cost, format_cost, reasoning_tokens

TICK = 0.25  # seconds between waiting-indicator refreshes
# a grey hairline: seen on a light and on a dark background (Markdown keeps no CSS variables)
TOKEN_EDGE = "box-shadow: inset -1px 0 0 rgba(128, 128, 128, 0.6)"
# a tool call's block: framed, and apart from the reply below it
TOOL_FRAME = (
    "border: 1px solid rgba(128, 128, 128, 0.5); border-radius: 4px; padding: 2px 8px; margin: 0 0 10px 0"
)


class Throttle:
    """Allows a full re-render only while everything sent so far stays within a small
    multiple of the current size: a long reply costs linear bytes, not quadratic."""

    def __init__(self, interval: float = 0.05, factor: float = 6.0, slack: int = 4096) -> None:
        self.interval, self.factor, self.slack = interval, factor, slack
        self.sent = 0
        self.last = 0.0

    def ready(self, size: int, now: float) -> bool:
        return now - self.last >= self.interval and self.sent + size <= self.factor * size + self.slack

    def note(self, size: int, now: float) -> None:
        self.sent += size
        self.last = now


def footer(reply: Reply) -> str:
    parts = [reply.model or "?"]
    usage = reply.usage or {}
    mark = "≈" if reply.estimated else ""
    if reply.estimated:
        parts.append("usage not reported")
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    reasoning = reasoning_tokens(usage)
    # OpenAI reports 0 for every non-reasoning model: say it only when it means something
    shown = reasoning is not None and (reasoning > 0 or {"reasoning_effort", "reasoning"} & set(reply.params))
    thought = f" ({reasoning} reasoning)" if shown else ""
    parts.append(f"{mark}{prompt} prompt + {mark}{completion} completion tokens{thought}")
    if reply.cost is not None and not reply.replayed:  # a replay costs nothing: it says what it saved
        by = f" ({GENAI_PRICES})" if reply.priced_by == GENAI_PRICES else ""  # else: %chatconfig says
        parts.append(mark + format_cost(reply.cost) + by)
    parts.append(replayed(reply) if reply.replayed else f"{reply.latency:.2f} s")
    if reply.left_out:
        parts.append(f"{reply.left_out} earlier messages left out (max_context_tokens)")
    if reply.finish_reason == "length":
        parts.append("cut off at max_tokens")
    if reply.interrupted:
        parts.append("interrupted")
    elif not any(c["content"] for c in reply.choices):
        parts.append("empty reply: the server sent no text")
    parts.extend(reply.notes)
    if reply.context:
        parts.append(summary(reply.context))
    return " · ".join(parts)


def replayed(reply: Reply) -> str:
    """``replayed · asked <when> · saved $<cost>`` for a reply answered from the cache."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(reply.asked)) if reply.asked else "earlier"
    saved = format_cost(reply.cost) if reply.cost is not None else "a request (price unknown)"
    return f"replayed · asked {when} · saved {saved}"


def body_text(texts: list[str], markdown: bool) -> str:
    """The reply's text; with several choices, each under its number. As Markdown, dollar
    signs that are not math are escaped (Jupyter would typeset "$3 and $4" as LaTeX)."""
    if markdown:
        texts = [protect_dollars(t) for t in texts]
    if len(texts) <= 1:
        return "".join(texts)  # one reply, or none (a footer painted on its own)
    label = "**Choice {}**" if markdown else "--- choice {} ---"
    pick = "`%chat pick K`" if markdown else "%chat pick K"
    which = f"Choice 1 continues the conversation; {pick} keeps choice K instead."
    shown = "\n\n".join(f"{label.format(i + 1)}\n\n{t}" for i, t in enumerate(texts))
    return f"{shown}\n\n{f'*{which}*' if markdown else which}"


def bundle(
    texts: list[str],
    fmt: str,
    foot: str | None = None,
    calls: list[ToolCall] | None = None,
    thinking: str = "",
) -> dict[str, str]:
    """Tool calls, the reply (all its choices) and the footer, as Markdown and as plain text."""
    body = body_text(texts, markdown=False)
    gap = "\n\n" if body else ""
    head = tool_head(calls or [], "text") + ("\n\n" if calls else "")
    if thinking:
        head = f"Thinking:\n{thinking}\n\n{head}"
    plain = head + body + (f"{gap}— {foot}" if foot else "")
    if fmt == "text":
        return {"text/plain": plain}
    head = tool_head(calls or [], "markdown") + ("\n\n" if calls else "")
    if thinking:
        head = thinking_block(protect_dollars(thinking), still=not any(texts) and not calls) + head
    # small and muted: it is about the reply, not part of it
    small = f'{gap}<sub><span style="opacity: 0.65">{escape_dollars(foot)}</span></sub>' if foot else ""
    markdown = head + body_text(texts, markdown=True) + small
    return {"text/markdown": markdown, "text/plain": plain}


def tool_head(calls: list[ToolCall], fmt: str) -> str:
    """The tool calls above a reply, each round's own text (what the model wrote along with
    its calls) above its blocks; ``fmt`` is ``markdown``, ``text`` or ``html`` (a widget)."""
    import html

    out = []
    for call in calls:
        said = call.said.strip()
        if said and fmt == "markdown":
            # blank lines around it: Markdown between the HTML blocks, not inside one
            out.append(f"\n\n{protect_dollars(said)}\n\n")
        elif said and fmt == "html":
            out.append(f'<div class="nbchat-said" style="white-space: pre-wrap">{html.escape(said)}</div>')
        elif said:
            out.append(said + "\n")
        out.append(tool_block(call, markdown=fmt != "text") + ("\n" if fmt != "html" else ""))
    return "".join(out).strip("\n") if fmt != "html" else "".join(out)


def tool_block(call: ToolCall, markdown: bool) -> str:
    """One tool call above the reply: a collapsible block (name, arguments, time; the
    result inside) in Jupyter, a line and the result's first lines in plain text."""
    import html

    if not markdown:
        lines = (call.result or "").splitlines()
        shown = [f"    {line}" for line in lines[:6]] + (["    …"] if len(lines) > 6 else [])
        return "\n".join([f"→ {call.shown} · {call.status}", *shown])
    # one line: a blank line would end the HTML block in Markdown and show the rest as text
    # and a $ as an entity: Jupyter reads Markdown's $…$ as math, raw HTML included
    result = html.escape(call.result or "").replace("\n", "&#10;").replace("$", "&#36;")
    name = html.escape(call.shown).replace("$", "&#36;")
    # an image in the result (an MCP tool's) is the user's to see; the model reads its description
    images = "".join(
        f'<img src="data:{html.escape(i["mime"])};base64,{html.escape(i["data"])}" alt="image from {name}">'
        for i in call.images
        if i.get("mime", "").startswith("image/")
    )
    # "tool" in words: the 🔧 alone vanishes where no emoji font is installed
    return (
        f'<details class="nbchat-tool" style="{TOOL_FRAME}"><summary>🔧 tool <code>{name}</code> · '
        f"{call.status}</summary><pre>{result}</pre>{images}</details>"
    )


def thinking_block(summary: str, still: bool) -> str:
    """The reasoning summary, collapsible above the reply; open while the model is still
    thinking, folded once the reply begins."""
    head = "<details open><summary>Thinking…</summary>" if still else "<details><summary>Thinking</summary>"
    quoted = "\n".join(f"> {line}" if line else ">" for line in summary.splitlines())
    return f"{head}\n\n{quoted}\n\n</details>\n\n"


def thinking_of(stream: ReplyStream) -> str:
    return "\n\n".join(stream.completion.reasoning)


def logprob_html(entries: list[dict[str, Any]]) -> str:
    """Each token shaded by how unsure the model was; hovering shows the alternatives."""
    import html
    import math

    spans = []
    scoring = any(e.get("prompt") for e in entries)
    for k, entry in enumerate(entries):
        if scoring and not entry.get("prompt") and entries[k - 1].get("prompt"):
            spans.append('<span class="nbchat-boundary" title="the completion starts here">▸</span>')
        alternatives = ", ".join(
            f"{alt.get('token', '')!r} {math.exp(float(alt.get('logprob', 0.0))):.0%}"
            for alt in entry.get("top_logprobs") or []
        )
        if entry.get("logprob") is None:  # a prompt's first token: nothing came before it
            title, shade = "no probability (the first token)", "transparent"
        else:
            p = math.exp(float(entry["logprob"]))
            title = f"p = {p:.1%}" + (f" · top: {alternatives}" if alternatives else "")
            shade = f"rgba(255, 140, 0, {0.8 * (1 - p):.2f})"
        spans.append(
            # a hairline after each token: its boundaries show, also where the shade is faint
            f'<span class="nbchat-token" style="background-color: {shade}; {TOKEN_EDGE}" '
            f'title="{html.escape(title)}">'
            f"{html.escape(str(entry.get('token', '')))}</span>"
        )
    what = "prompt scoring: each prompt token shaded by how unexpected it was · " if scoring else ""
    return (
        '<div class="nbchat-logprobs tex2jax_ignore" style="white-space: pre-wrap; line-height: 1.6">'
        + "".join(spans)
        + f'</div><div style="font-size: smaller; opacity: 0.7">{what}shade = uncertainty · hover a token '
        "for its probability and the top alternatives</div>"
    )


def logprob_text(entries: list[dict[str, Any]]) -> str:
    """The terminal's log-prob view: each token with its probability and, with
    ``--logprobs K``, its top K alternatives, one token per line."""
    import math

    lines = []
    scoring = any(e.get("prompt") for e in entries)
    for k, entry in enumerate(entries):
        if k == 0 or entry.get("prompt") != entries[k - 1].get("prompt"):
            if entry.get("prompt"):
                lines.append("prompt (scored):")
            else:  # the completion after a scored prompt; a reply's tokens otherwise
                lines.append("completion:" if scoring else "token probabilities:")
        value = entry.get("logprob")
        p = "     —" if value is None else f"{math.exp(float(value)):6.1%}"
        others = [
            f"{alt.get('token', '')!r} {math.exp(float(alt.get('logprob', 0.0))):.0%}"
            for alt in entry.get("top_logprobs") or []
            if alt.get("token") != entry.get("token")
        ]
        line = f"  {p}  {str(entry.get('token', ''))!r}"
        lines.append(f"{line}   (also: {', '.join(others)})" if others else line)
    return "\n".join(lines)


def show_logprobs(reply: Reply) -> None:
    """``--logprobs K``: the reply again, token by token, below it."""
    if not reply.logprobs:
        return
    display({"text/html": logprob_html(reply.logprobs), "text/plain": logprob_text(reply.logprobs)}, raw=True)


def metadata(reply: Reply, conversation: str) -> dict[str, Any]:
    return {
        "nbchat": {
            "conversation": conversation,
            "model": reply.model,
            "params": reply.params,
            "usage": reply.usage,
            "finish_reason": reply.finish_reason,
            "latency": round(reply.latency, 4),
            "left_out": reply.left_out,
            "interrupted": reply.interrupted,
            "usage_estimated": reply.estimated,
            "notes": reply.notes,
            "replayed": reply.replayed,
            "exchange": reply.exchange,
            "context": reply.context,
            "tool_calls": [
                {k: getattr(c, k) for k in ("name", "arguments", "seconds", "error", "refused")}
                for c in reply.tool_calls
            ],
        }
    }


class Waiting:
    """Shows "model · waiting 1.2 s" until the first event, through ``paint(text)``.

    One long-lived ticker thread serves every request: starting a thread per request
    would cost more than the rest of nbchat's work on a warm request. ``paint`` runs under
    the ticker's lock, so once ``stop()`` returns it never runs again for this request.
    """

    _lock = threading.Lock()
    _wake = threading.Condition(_lock)
    _current: Waiting | None = None
    _thread: threading.Thread | None = None

    def __init__(self, paint: Callable[[str], None], model: str) -> None:
        self.paint, self.model = paint, model
        self.start = time.perf_counter()
        self.done = False
        # a copied context keeps the kernel's output routed to this cell
        self.context = contextvars.copy_context()
        with self._wake:
            Waiting._current = self
            if Waiting._thread is None or not Waiting._thread.is_alive():
                Waiting._thread = threading.Thread(target=Waiting._tick, name="nbchat-waiting", daemon=True)
                Waiting._thread.start()
            self._wake.notify()

    def text(self) -> str:
        return f"⏳ {self.model} · waiting {time.perf_counter() - self.start:.1f} s"

    def _refresh(self) -> None:
        self.paint(self.text())

    @classmethod
    def _tick(cls) -> None:
        with cls._wake:
            while True:
                while cls._current is None:
                    cls._wake.wait()
                current = cls._current
                cls._wake.wait(TICK)
                if cls._current is current and not current.done:
                    current.context.run(current._refresh)

    def stop(self) -> None:
        if not self.done:
            with self._wake:
                self.done = True
                if Waiting._current is self:
                    Waiting._current = None


class View:
    """How one view paints a reply; :func:`consume` decides when.

    ``waiting(text)`` shows the indicator (and is called again as time passes);
    ``started()`` comes with the first event; ``on_<kind>(event)`` takes each event (see
    ``nbchat.events``; a view skips kinds it has no method for; a method that returns
    true asks for a redraw now, past the throttle); ``paint(stream)`` redraws all that
    arrived, as often as the throttle allows; the reply ends in exactly one of
    ``finish(reply, foot, interrupted)`` or ``fail(error)``.
    """

    def waiting(self, text: str) -> None:
        pass

    def started(self) -> None:
        pass

    def paint(self, stream: ReplyStream) -> None:
        pass

    def finish(self, reply: Reply, foot: str | None, interrupted: bool) -> None:
        pass

    def fail(self, error: BaseException) -> None:
        pass


def consume(stream: ReplyStream, view: View) -> Reply:
    """Read ``stream`` into ``view``: the one loop behind every view.

    Owns the waiting indicator (always stopped, whatever ends the reply), the throttle,
    the footer, and the interrupt: a kernel interrupt closes the stream, keeps the
    partial reply on screen with an *(interrupted)* mark, records it only under
    ``keep_partial``, and fails the cell with one line. Errors fail the cell with the
    history unchanged.
    """
    settings = stream.chat.settings
    waiting = Waiting(view.waiting, stream.request.body["model"])
    throttle, size, started = Throttle(), 0, False
    try:
        for event in stream.events():
            if not started:
                waiting.stop()
                view.started()
                started = True
            take = getattr(view, f"on_{event.kind}", None)
            urgent = bool(take(event)) if take is not None else False
            size += getattr(event, "size", 1)
            now = time.perf_counter()
            if urgent or throttle.ready(size, now):
                view.paint(stream)
                throttle.note(size, now)
    except KeyboardInterrupt:
        waiting.stop()
        partial = stream.finish(interrupted=True)
        view.finish(
            partial, footer(partial) if not isinstance(partial, ImageReply) else None, interrupted=True
        )
        raise StreamInterrupted(f"interrupted: {stream.kept()}") from None
    except BaseException as error:
        waiting.stop()
        view.fail(error)
        raise
    finally:
        waiting.stop()
    reply = stream.reply
    assert reply is not None
    view.finish(reply, footer(reply) if settings.show_usage else None, interrupted=False)
    return reply


class MarkdownView(View):
    """``-f markdown`` / ``-f text``: one display handle, updated in place.

    A tool call that runs may ask its question and print below the handle: what follows it
    (the next call, the reply) goes into a new handle below that, so the question and the
    tool's output stay with its block, above the reply. A replay runs nothing: one handle.
    """

    def __init__(self, fmt: str, conversation: str, model: str) -> None:
        self.fmt, self.conversation, self.model = fmt, conversation, model
        self.calls: list[ToolCall] = []  # the tool calls this handle shows, finished or running
        self.live = True  # tools run (a replay's calls are only shown)
        self.watch = Printed()  # what the running call prints goes below this handle
        self.ran = False  # a call asked or printed below this handle: what follows goes below that
        self.handle = display({"text/plain": f"⏳ {model} · waiting"}, raw=True, display_id=True)

    def waiting(self, text: str) -> None:
        self.handle.update({"text/plain": text}, raw=True)

    def on_replayed(self, event: Any) -> None:
        self.live = False

    def on_tool_call(self, event: ToolEvent) -> bool:
        if not event.done:
            self._below_what_ran()
            if self.live:
                self.watch.start()
        else:
            printed = self.watch.stop()
            self.ran = self.ran or (self.live and (event.call.asked or printed))
        if event.call not in self.calls:
            self.calls.append(event.call)
        return True  # shown before it runs (it may ask for approval)

    def on_text(self, event: TextDelta) -> None:
        self._below_what_ran()

    def _below_what_ran(self) -> None:
        if self.ran:
            self.ran, self.calls = False, []
            self.handle = display({"text/plain": f"⏳ {self.model} · waiting"}, raw=True, display_id=True)

    def on_reasoning(self, event: Any) -> None:
        pass  # painted from the stream's summary so far, with the rest

    def paint(self, stream: ReplyStream) -> None:
        texts, thinking = stream.texts, thinking_of(stream)
        self.handle.update(bundle(texts, self.fmt, calls=self.calls, thinking=thinking), raw=True)

    def finish(self, reply: Reply, foot: str | None, interrupted: bool) -> None:
        self.watch.stop()  # an interrupt may end a call before its "done"
        texts = reply_texts(reply)
        if interrupted:
            texts[0] += "\n\n(interrupted)" if self.fmt == "text" else "\n\n*(interrupted)*"
        calls, meta = self.calls, metadata(reply, self.conversation)
        if reply.logprobs and not interrupted:
            if self.fmt == "text" and not calls and len(texts) == 1:
                # verbatim text and its shading are the same text: shown once, shaded
                shaded = {
                    "text/html": logprob_html(reply.logprobs),
                    "text/plain": logprob_text(reply.logprobs),
                }
                self.handle.update(shaded, raw=True, metadata=None if foot else meta)
            else:
                # reply, then its shading, then the footer, which carries the metadata as it
                # does when it closes the reply's own output
                self.handle.update(
                    bundle(texts, self.fmt, calls=calls, thinking=reply.reasoning),
                    raw=True,
                    metadata=None if foot else meta,
                )
                show_logprobs(reply)
            if foot:  # small and muted, as under every reply
                display(bundle([], "markdown", foot), raw=True, metadata=meta)
            return
        self.handle.update(bundle(texts, self.fmt, foot, calls, reply.reasoning), raw=True, metadata=meta)

    def fail(self, error: BaseException) -> None:
        self.watch.stop()
        self.handle.update({"text/plain": ""}, raw=True)


class Printed:
    """Whether anything was printed (stdout or stderr) between ``start`` and ``stop``."""

    def __init__(self) -> None:
        self.saved: tuple[Any, Any] | None = None
        self.wrote = False

    def start(self) -> None:
        if self.saved is None:
            self.saved, self.wrote = (sys.stdout, sys.stderr), False
            sys.stdout, sys.stderr = _Noting(sys.stdout, self), _Noting(sys.stderr, self)

    def stop(self) -> bool:
        if self.saved is not None:
            sys.stdout, sys.stderr = self.saved
            self.saved = None
        return self.wrote


class _Noting:
    """A stream that notes (on ``printed``) that something was written through it."""

    def __init__(self, inner: Any, printed: Printed) -> None:
        self.inner, self.printed = inner, printed

    def write(self, text: str) -> Any:
        self.printed.wrote = self.printed.wrote or bool(text)
        return self.inner.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TerminalView(View):
    """Terminal IPython: deltas printed as they come, plain text, then the footer.

    The waiting indicator is drawn only on a real terminal (a pipe or a log file gets no
    carriage returns) and erased when the reply starts.
    """

    ERASE = "\r\x1b[K"

    def __init__(self, single: bool, out: Any = None) -> None:
        self.out = out or sys.stdout
        self.single = single
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.indicator = False  # the waiting line is on screen
        self.open_line = False  # the cursor is after text, not at a line start
        self.thinking = False  # the last thing printed is the reasoning summary

    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self.open_line = not text.endswith("\n")

    def _erase(self) -> None:
        if self.indicator:
            self.out.write(self.ERASE)
            self.out.flush()
            self.indicator = False

    def waiting(self, text: str) -> None:
        if self.tty:
            self.out.write(self.ERASE + text)
            self.out.flush()
            self.indicator = True

    def started(self) -> None:
        self._erase()

    def on_reasoning(self, event: Any) -> None:
        # the reasoning summary, before the reply
        self._erase()
        self._write(event.text if self.thinking else f"Thinking: {event.text}")
        self.thinking = True

    def on_text(self, event: TextDelta) -> None:
        if self.single and event.choice == 0:
            self._write(f"\n\n{event.text}" if self.thinking else event.text)
            self.thinking = False

    def on_tool_call(self, event: ToolEvent) -> None:
        if event.done:
            self._erase()
            self._write(("\n" if self.open_line else "") + tool_block(event.call, markdown=False) + "\n")

    def finish(self, reply: Reply, foot: str | None, interrupted: bool) -> None:
        self._erase()
        if not self.single:
            self._write(body_text(reply_texts(reply), markdown=False) + "\n")
        if interrupted:
            self._write(("\n" if self.open_line else "") + "(interrupted)\n")
        if reply.logprobs and not interrupted:
            self._write(("\n" if self.open_line else "") + logprob_text(reply.logprobs) + "\n")
        if foot:
            self._write(("\n" if self.open_line else "") + f"— {foot}\n")
        elif self.open_line:
            self._write("\n")

    def fail(self, error: BaseException) -> None:
        # the error message starts on its own line, not glued to the partial text
        self._erase()
        if self.open_line:
            self._write("\n")


def show_stream(stream: ReplyStream, fmt: str, conversation: str, terminal: bool) -> Reply:
    """Render ``stream`` as it arrives; the cell fails (history unchanged) on errors."""
    if terminal:
        return consume(stream, TerminalView(single=stream.request.body.get("n", 1) == 1))
    return consume(stream, MarkdownView(fmt, conversation, stream.request.body["model"]))


def image_footer(reply: ImageReply) -> str:
    """``gpt-image-1 · 1 image 1024x1024 · 13 prompt + 1056 image tokens · $0.04 · 3.2 s``."""
    count = len(reply.images)
    parts = [
        reply.model or "?",
        f"{count} image{'s' if count != 1 else ''} {reply.params.get('size') or ''}".rstrip(),
    ]
    if reply.usage:
        prompt, drawn = reply.usage.get("input_tokens", 0), reply.usage.get("output_tokens", 0)
        parts.append(f"{prompt} prompt + {drawn} image tokens")
    parts.append(format_cost(reply.cost) if reply.cost is not None else "price unknown")
    parts.append(f"{reply.latency:.2f} s")
    if reply.interrupted:
        parts.append("interrupted")
    return " · ".join(parts)


def image_bundle(data: bytes, label: str) -> dict[str, str]:
    """An image as its own type says it is (PNG, JPEG, WebP), whatever was asked for."""
    import base64

    return {sniff(data) or "image/png": base64.b64encode(data).decode("ascii"), "text/plain": label}


class ImageView(View):
    """``-f image``: each image in its own output, a partial image replaced in place by the
    next, then the footer (which carries the metadata)."""

    def __init__(self, model: str) -> None:
        self.handles: dict[int, DisplayHandle] = {}
        self.first = display({"text/plain": f"⏳ {model} · drawing"}, raw=True, display_id=True)

    def waiting(self, text: str) -> None:
        self.first.update({"text/plain": text}, raw=True)

    def on_image_partial(self, event: Any) -> bool:
        self._show(event.number, event.png, f"<image {event.number + 1} (partial)>")
        return False

    def on_image(self, event: Any) -> bool:
        self._show(event.number, event.png, f"<image {event.number + 1}>")
        return False

    def _show(self, number: int, png: bytes, label: str) -> None:
        handle = self.handles.get(number) or (self.first if number == 0 else None)
        if handle is None:
            self.handles[number] = display(image_bundle(png, label), raw=True, display_id=True)
        else:
            handle.update(image_bundle(png, label), raw=True)
            self.handles[number] = handle

    def finish(self, reply: Reply, foot: str | None, interrupted: bool) -> None:
        assert isinstance(reply, ImageReply)
        shown: dict[str, Any] = {"model": reply.model, "params": reply.params, "usage": reply.usage}
        meta = {"nbchat": shown | {"images": len(reply), "latency": round(reply.latency, 4)}}
        _image_foot(image_footer(reply) if foot is not None or interrupted else "", False, meta)

    def fail(self, error: BaseException) -> None:
        if not self.handles:
            self.first.update({"text/plain": ""}, raw=True)


class TerminalImageView(View):
    """A terminal shows no pictures: a line per image (keep them with ``-o NAME``)."""

    def on_image(self, event: Any) -> None:
        kind = (sniff(event.png) or "image/?").split("/")[1].upper()
        print(f"[image {event.number + 1}: {_pixels(event.png)} {kind}, {len(event.png):,} bytes]")

    def finish(self, reply: Reply, foot: str | None, interrupted: bool) -> None:
        assert isinstance(reply, ImageReply)
        if foot is not None or interrupted:
            _image_foot(image_footer(reply), True, None)


def show_images(stream: ImageStream, terminal: bool) -> ImageReply:
    """``-f image`` through the one stream consumer."""
    view = TerminalImageView() if terminal else ImageView(stream.body["model"])
    reply = consume(stream, view)
    assert isinstance(reply, ImageReply)
    return reply


def _image_foot(foot: str, terminal: bool, meta: dict[str, Any] | None) -> None:
    """The footer under the images; it carries the metadata, so it is shown even when empty."""
    if terminal:
        if foot:
            print(f"— {foot}")
        return
    display(
        {"text/markdown": f"<sub>{foot}</sub>" if foot else "", "text/plain": foot}, raw=True, metadata=meta
    )


def _pixels(png: bytes) -> str:
    from .content import image_size

    size = image_size(png)
    return f"{size[0]}×{size[1]}" if size else "?"


def reply_texts(reply: Reply) -> list[str]:
    return [c["content"] for c in reply.choices]


def plain(markdown: str) -> str:
    """A short Markdown note as a terminal shows it: no *emphasis* marks, no backticks."""
    import re

    return re.sub(r"\*([^*\n]+)\*", r"\1", markdown).replace("`", "")


def note(text: str, terminal: bool = False, metadata: dict[str, Any] | None = None) -> None:
    """A short confirmation line (system prompt set, conversation reset, …)."""
    if terminal:
        print(plain(text))
    else:
        display({"text/markdown": protect_dollars(text), "text/plain": text}, raw=True, metadata=metadata)


def table(headers: list[str], cells: Iterable[Iterable[Any]], terminal: bool = False) -> None:
    rows = [[str(c) for c in row] for row in cells]
    # A row is one line in both forms: a multi-line cell (a reply of several paragraphs in
    # a map's results) would otherwise end the Markdown table and misalign the plain one.
    flat = [[" ↵ ".join(c.splitlines()) for c in row] for row in rows]
    widths = [max([columns(h)] + [columns(r[i]) for r in flat]) for i, h in enumerate(headers)]
    plain = "\n".join(
        "  ".join(cell + " " * (widths[i] - columns(cell)) for i, cell in enumerate(row)).rstrip()
        for row in [headers, ["-" * w for w in widths], *flat]
    )
    md_rows = [headers, ["---"] * len(headers), *rows]
    # a table is never math: "$0.01 | $0.02" would otherwise typeset and break the rows
    markdown = "\n".join("| " + " | ".join(markdown_cell(c) for c in r) + " |" for r in md_rows)
    if terminal:
        print(plain)
    else:
        display({"text/markdown": markdown, "text/plain": plain}, raw=True)


def columns(text: str) -> int:
    """How many terminal columns ``text`` takes: a wide character (CJK, most emoji) two, a
    combining mark none, so a table's columns line up whatever its script."""
    import unicodedata

    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
    )


def markdown_cell(text: str) -> str:
    """One Markdown table cell: pipes escaped, line breaks as <br>, currency as written."""
    return "<br>".join(escape_dollars(line.replace("|", "\\|")) for line in text.splitlines())


def transcript(entries: Iterable[Mapping[str, Any]], terminal: bool = False) -> None:
    """``%chat history``: role, tokens and content of each message."""
    md, plain = [], []
    for e in entries:
        count = e.get("tokens")
        # "≈1 token", "4 tokens": the count may carry its ≈
        one = str(count).lstrip("≈") == "1"
        tokens = f" · {count} token{'' if one else 's'}" if count is not None else ""
        tokens += f" · {e['mark']}" if e.get("mark") else ""
        # the model writes Markdown; people and tools write plain text, kept line for line
        content = str(e["content"]) if e["role"] == "assistant" else keep_lines(str(e["content"]))
        md.append(f"**{e['role']}**{tokens}\n\n{protect_dollars(content)}")
        plain.append(f"[{e['role']}{tokens}]\n{e['content']}")
    if not md:
        md = plain = ["*(empty conversation)*"]
    if terminal:
        print("\n\n".join(plain))
    else:
        display({"text/markdown": "\n\n---\n\n".join(md), "text/plain": "\n\n".join(plain)}, raw=True)


def usage_table(
    ledger: Ledger, prices: Mapping[str, Any], terminal: bool = False, budget: float | None = None
) -> None:
    """``%chat usage``: tokens and estimated cost per model, the total, and the budget."""
    rows, total, known, any_known = [], 0.0, True, False
    sums = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0}
    for model, row in sorted(ledger.models.items()):
        # each request priced as it was made (cached input at its price, reasoning as output)
        # (a model priced only later, by the prices setting, is priced from its totals)
        price = ledger.costs.get(model) if model not in ledger.unpriced else cost(model, row, prices)
        known = known and price is not None
        any_known = any_known or price is not None
        total += price or 0.0
        for key in sums:
            sums[key] += row[key]
        rows.append(
            [
                model,
                row["requests"],
                row["prompt_tokens"],
                row["completion_tokens"],
                format_cost(price) if price is not None else "unknown price",
            ]
        )
    for model, row in sorted(ledger.images.items()):  # image tokens count as completion tokens
        spent = None if model in ledger.image_costs_unknown else ledger.image_costs.get(model, 0.0)
        known, any_known, total = (
            known and spent is not None,
            any_known or spent is not None,
            total + (spent or 0),
        )
        sums["requests"] += row["requests"]
        sums["prompt_tokens"] += row["input_tokens"]
        sums["completion_tokens"] += row["output_tokens"]
        shown = format_cost(spent) if spent is not None else "unknown price"
        label = f"{model} ({row['images']} image{'s' if row['images'] != 1 else ''})"
        rows.append([label, row["requests"], row["input_tokens"], row["output_tokens"], shown])
    total_cost = (
        format_cost(total) + ("" if known else " (known prices only)") if any_known else "unknown price"
    )
    rows.append(["total", sums["requests"], sums["prompt_tokens"], sums["completion_tokens"], total_cost])
    for model, row in sorted(ledger.replays.items()):  # answered from the cache: not requests
        rows.append(
            [
                f"{model} (replayed)",
                f"none: {row['replies']} replayed",
                row["prompt_tokens"],
                row["completion_tokens"],
                "saved " + format_cost(cost(model, row, prices) or 0.0),
            ]
        )
    if ledger.replays:
        rows.append(["saved by replays", "", "", "", format_cost(ledger.saved)])
    if budget is not None:
        left = max(budget - ledger.spent, 0.0)
        rows.append(["budget", "", "", "", f"{format_cost(ledger.spent)} spent of {format_cost(budget)}"])
        rows.append(["left", "", "", "", format_cost(left)])
    table(["model", "requests", "prompt tokens", "completion tokens", "cost"], rows, terminal)


def org_costs(costs: list[Any], days: int, terminal: bool = False) -> None:
    """``%chat usage --org``: spend per day and project, with a bar chart in Jupyter."""
    from .transports.organization import bar_chart, table_rows

    title = f"Organization costs, last {days} day{'s' if days != 1 else ''} (UTC)"
    if terminal:
        print(title)
    else:
        svg = bar_chart(costs)
        display({"text/html": f"<div><b>{title}</b></div>{svg}", "text/plain": title}, raw=True)
    table(["day", "project", "cost"], table_rows(costs), terminal)


def cache_stats(path: str, stats: Any, terminal: bool = False) -> None:
    """``%chat cache``: where the reply cache is, how big, and what its replays saved."""
    size = f"{stats.size / 1e6:.2f} MB" if stats.size >= 100_000 else f"{stats.size / 1e3:.1f} kB"
    rows = [
        ["file", path],
        ["entries", stats.entries],
        ["size", size],
        ["replays", stats.replays],
        ["saved", format_cost(stats.saved)],
    ]
    table(["reply cache", ""], rows, terminal)


def dry_run(request: Request, terminal: bool = False, attached: str = "") -> None:
    """``%chat request``: the exact body the next cell would send; nothing is sent.
    ``attached`` names what goes with a body that is not JSON (an image edit's picture)."""
    import json

    from .content import shorten

    shown = json.dumps(shorten(request.body), ensure_ascii=False, indent=2)
    left = f" · {request.left_out} earlier messages left out (max_context_tokens)" if request.left_out else ""
    left += f" · {request.over_budget}" if request.over_budget else ""
    left += f" · {attached}" if attached else ""
    left += "".join(f" · {said}" for said in request.asked_otherwise)
    tokens = request.estimated_tokens
    if request.api in ("images", "completions"):  # one prompt, no messages
        summary = f"{request.api} request · a prompt of ≈{tokens} tokens{left} · nothing sent"
    else:
        summary = f"{len(request.messages)} messages · ≈{tokens} prompt tokens{left} · nothing sent"
    if terminal:
        print(f"{shown}\n{summary}")
    else:
        display(
            {"text/markdown": f"```json\n{shown}\n```\n\n{summary}", "text/plain": f"{shown}\n{summary}"},
            raw=True,
        )
    if request.context:
        receipt_table(request.context, terminal)


def receipt_table(receipt: list[dict[str, Any]], terminal: bool = False) -> None:
    """The context pieces of a message: what, where from, estimated tokens."""
    rows = [[p["what"], p["kind"], p["source"], f"≈{p['tokens']}", p.get("note") or ""] for p in receipt]
    rows.append(["total", "", "", f"≈{sum(int(p['tokens']) for p in receipt)}", ""])
    table(["context", "kind", "from", "tokens", "note"], rows, terminal)


__all__ = [
    "cache_stats",
    "dry_run",
    "logprob_html",
    "note",
    "show_logprobs",
    "show_stream",
    "table",
    "transcript",
    "usage_table",
]
