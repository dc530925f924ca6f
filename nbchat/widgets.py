"""The slider panel (settings <-> controls) and the chat view, with ipywidgets."""

from __future__ import annotations

import functools
import html
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ipywidgets as W
from IPython.display import display
from traitlets import Bool, Enum, Float, Int, List

from .chat import Reply, ReplyStream
from .errors import NbChatError
from .options import setting_options
from .render import View, consume, logprob_html, tool_block
from .tools import ToolCall, ToolEvent, message_text


def panel_settings(cls: type[Any]) -> list[str]:
    """The settings with a control: each %%chat setting option (model has its own control),
    unless its trait is tagged ``panel=False``."""
    return [
        o.setting
        for o in setting_options(cls)
        if o.setting not in (None, "model") and getattr(cls, o.setting).metadata.get("panel", True)
    ]


MAX_TOKENS_SLIDER = 32768  # the trait has no upper bound; a slider needs one
# chat views by their box's widget model id, for code that has only the displayed output
VIEWS: weakref.WeakValueDictionary[str, ChatView] = weakref.WeakValueDictionary()


class Control:
    """One setting's control, linked both ways to its trait. ``None`` (unset) shows the
    API's default, marked unset, until the user touches the control."""

    def __init__(self, settings: Any, name: str, widget: W.ValueWidget) -> None:
        self.settings, self.name, self.widget = settings, name, widget
        self.status = W.HTML(layout=W.Layout(width="6em"))
        self.box = W.HBox([widget, self.status])
        self._syncing = False
        widget.observe(self._from_widget, "value")
        settings.observe(self._from_trait, name)
        self._show(getattr(settings, name))

    @contextmanager
    def _sync(self) -> Iterator[None]:
        self._syncing = True
        try:
            yield
        finally:
            self._syncing = False

    def _show(self, value: Any) -> None:
        with self._sync():
            trait = getattr(type(self.settings), self.name)
            shown = trait.metadata.get("api_default") if value is None else value
            if shown is not None:
                self.widget.value = list(shown) if isinstance(shown, (list, tuple)) else shown
        self.status.value = "<i>unset</i>" if value is None else ""

    def _from_trait(self, change: dict[str, Any]) -> None:
        self._show(change["new"])

    def _from_widget(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        value = change["new"]
        if self.name == "stop":
            value = list(value)[:4] or None
        with self.settings.setting_from("sliders"):
            setattr(self.settings, self.name, value)

    def unlink(self) -> None:
        self.settings.unobserve(self._from_trait, self.name)


def control_widget(settings: Any, name: str) -> W.ValueWidget:
    """A widget built from the trait's type, bounds and help."""
    trait = getattr(type(settings), name)
    common = {"description": name, "tooltip": trait.help, "style": {"description_width": "11em"}}
    if isinstance(trait, Bool):
        return W.Checkbox(value=bool(getattr(settings, name)), indent=False, **common)
    if isinstance(trait, List):
        return W.TagsInput(
            value=[], allow_duplicates=False, tooltip=trait.help, layout=W.Layout(width="20em")
        )
    if isinstance(trait, Enum):
        return W.Dropdown(options=list(trait.values or ()), **common)
    low, high = getattr(trait, "min", None), getattr(trait, "max", None)
    if isinstance(trait, Float):
        return W.FloatSlider(
            min=low, max=high, step=0.05, readout_format=".2f", continuous_update=False, **common
        )
    if isinstance(trait, Int) and low is not None:
        top = high if high is not None else MAX_TOKENS_SLIDER
        return W.IntSlider(min=low, max=top, continuous_update=False, **common)
    return W.IntText(**common)


def model_widget(settings: Any, models: list[str]) -> W.ValueWidget:
    """A dropdown of the server's models when it lists them; free text otherwise."""
    trait = type(settings).model
    common = {"description": "model", "tooltip": trait.help, "style": {"description_width": "11em"}}
    if models:
        options = models if settings.model in models else [settings.model, *models]
        return W.Dropdown(options=options, value=settings.model, **common)
    return W.Text(value=settings.model, continuous_update=False, **common)


class Panel:
    """``%chatconfig --sliders``: one control per sampling setting, and a reset button."""

    def __init__(self, settings: Any, models: list[str]) -> None:
        self.settings = settings
        self.controls = {"model": Control(settings, "model", model_widget(settings, models))}
        for name in panel_settings(type(settings)):
            self.controls[name] = Control(settings, name, control_widget(settings, name))
        self.controls["stop"].box.children = (
            W.Label("stop", layout=W.Layout(width="11em")),
            *self.controls["stop"].box.children,
        )
        self.reset_button = W.Button(
            description="Unset all", tooltip="Stop sending these parameters (server defaults apply)"
        )
        self.reset_button.on_click(lambda _: self.unset_all())
        self.box = W.VBox([c.box for c in self.controls.values()] + [self.reset_button])
        self.box.add_class("nbchat-panel")

    def unset_all(self) -> None:
        with self.settings.setting_from("sliders"), self.settings.hold_trait_notifications():
            for name in panel_settings(type(self.settings)):
                if getattr(type(self.settings), name).allow_none:
                    setattr(self.settings, name, None)

    def show(self) -> None:
        display(self.box)


def transcript_html(messages: list[dict[str, Any]]) -> str:
    rows = []
    for m in messages:
        text = html.escape(message_text(m)).replace("\n", "<br>")
        rows.append(f'<div class="nbchat-msg nbchat-{m["role"]}"><b>{m["role"]}</b>: {text}</div>')
    return "".join(rows) or "<i>(empty conversation)</i>"


class ChatView(View):
    """``-f widget``: the transcript, the reply (choices as tabs), log-probs, usage, and a
    button that asks again with the panel's current settings."""

    def __init__(self, magics: Any, conversation: str) -> None:
        self.magics, self.conversation = magics, conversation
        self.transcript = W.HTML()
        self.reply = W.VBox()
        self.logprobs = W.HTML()
        self.usage = W.HTML()
        self.errors = W.Output()
        self.reask = W.Button(
            description="Re-ask with these settings", icon="refresh", layout=W.Layout(width="auto")
        )
        self.reask.on_click(self._guarded(self._reask))
        self.box = W.VBox(
            [
                W.Accordion(children=[self.transcript], titles=["Conversation so far"], selected_index=None),
                self.reply,
                self.logprobs,
                self.usage,
                self.reask,
                self.errors,
            ]
        )
        self.box.add_class("nbchat-view")
        VIEWS[self.box.model_id] = self

    def _guarded(self, action: Callable[[], None]) -> Callable[[Any], None]:
        """Button callbacks run when the kernel is idle; show their errors, never lose them."""

        def run(_: Any) -> None:
            self.errors.clear_output()
            try:
                action()
            except NbChatError as e:
                self.errors.append_stdout(f"nbchat: {e}\n")
            except Exception as e:  # a callback's traceback would otherwise go to the log
                self.errors.append_stdout(f"nbchat: {type(e).__name__}: {e}\n")

        return run

    def show(self, stream: ReplyStream) -> Reply:
        display(self.box)
        return self.run(stream)

    def run(self, stream: ReplyStream) -> Reply:
        self.transcript.value = transcript_html(stream.request.messages[:-1])
        self.live = W.HTML(f"<i>⏳ {html.escape(stream.request.body['model'])} · waiting…</i>")
        self.reply.children = (self.live,)
        self.logprobs.value = self.usage.value = ""
        self.calls: list[ToolCall] = []
        return consume(stream, self)

    # -- painting (the stream consumer decides when) -----------------------------------

    def waiting(self, text: str) -> None:
        self.live.value = f"<i>{html.escape(text)}</i>"

    def on_tool_call(self, event: ToolEvent) -> bool:
        if event.call not in self.calls:
            self.calls.append(event.call)
        return True  # shown before it runs (it may ask for approval)

    def paint(self, stream: ReplyStream) -> None:
        text, thinking = stream.completion.texts[0], "\n\n".join(stream.completion.reasoning)
        calls = "".join(tool_block(c, markdown=True) for c in self.calls)
        self.live.value = calls + _thinking_html(thinking, still=not text) + _text_html(text)

    def fail(self, error: BaseException) -> None:
        self.reply.children = ()

    def finish(self, reply: Reply, foot: str | None, interrupted: bool) -> None:
        texts = [c["content"] for c in reply.choices]
        if interrupted:
            texts[0] += "\n\n(interrupted)"
        calls = "".join(
            tool_block(c, markdown=True) for c in (self.calls if interrupted else reply.tool_calls)
        )
        if len(texts) > 1:
            pages = []
            for k, text in enumerate(texts, start=1):
                keep = W.Button(
                    description="Keep this one", tooltip=f"Keep choice {k} in the history (%chat pick {k})"
                )
                keep.on_click(self._guarded(functools.partial(self._keep, k)))
                pages.append(W.VBox([W.HTML(_text_html(text)), keep]))
            self.tabs = W.Tab(children=pages, titles=[f"Choice {k}" for k in range(1, len(texts) + 1)])
            self.reply.children = (W.HTML(calls), self.tabs) if calls else (self.tabs,)
        else:
            self.reply.children = (
                W.HTML(calls + _thinking_html(reply.reasoning, False) + _text_html(texts[0])),
            )
        self.logprobs.value = logprob_html(reply.logprobs) if reply.logprobs else ""
        self.usage.value = f"<small>{html.escape(foot)}</small>" if foot else ""

    def _keep(self, k: int) -> None:
        self.magics.chat_for(self.conversation).conversation.pick(k)
        for i, page in enumerate(self.tabs.children, start=1):
            page.children[1].description = "Kept ✓" if i == k else "Keep this one"

    def _reask(self) -> None:
        self.run(self.magics.chat_for(self.conversation).retry())


def _text_html(text: str) -> str:
    return f'<div class="nbchat-reply" style="white-space: pre-wrap">{html.escape(text)}</div>'


def _thinking_html(summary: str, still: bool) -> str:
    """A reasoning model's summary, collapsible above the reply (open while it thinks)."""
    if not summary:
        return ""
    head = "<details open><summary>Thinking…</summary>" if still else "<details><summary>Thinking</summary>"
    return f'{head}<div style="white-space: pre-wrap; opacity: 0.8">{html.escape(summary)}</div></details>'
