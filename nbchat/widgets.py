"""The slider panel (settings <-> controls) and the chat view, with ipywidgets."""

from __future__ import annotations

import functools
import html
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import ipywidgets as W
from IPython.display import display
from traitlets import Bool, Enum, Float, Int, List

from .chat import Reply, ReplyStream
from .errors import NbChatError
from .events import ToolEvent
from .markdown import protect_dollars
from .options import setting_options
from .render import View, bundle, consume, logprob_html, tool_head
from .tools import ToolCall, message_text


def panel_settings(cls: type[Any]) -> list[str]:
    """The settings with a control: each %%chat setting option (model has its own control),
    unless its trait is tagged ``panel=False``."""
    return [
        o.setting
        for o in setting_options(cls)
        if o.setting not in (None, "model") and getattr(cls, o.setting).metadata.get("panel", True)
    ]


LABEL_WIDTH = "11em"  # every row's name in one column
CONTROL_WIDTH = "30em"  # wide enough that a slider's track is usable
# chat views by their box's widget model id, for code that has only the displayed output
VIEWS: weakref.WeakValueDictionary[str, ChatView] = weakref.WeakValueDictionary()
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
UNSET = "API default"  # what an unset control says: nothing is sent, the server decides

# A widget is shown with a Markdown copy of what it says as a separate output, because
# JupyterLab (and Notebook 7) render a trusted widget output with the widget renderer,
# which never falls back to another mimetype: reopened without widget state it says
# "model not found" however readable the rest of the bundle is. The two style rules keep
# one of the pair visible: while the widget is live (it carries LIVE_CSS) the copy is
# hidden; where it is not, the copy (it carries COPY_CSS) hides the widget renderer's
# placeholder ("Error displaying widget: model not found", "Loading widget..."), the one
# output there without a data-mime-type. (A :has() inside a :has() is invalid CSS.)
LIVE_CSS = (
    "<style>.jp-OutputArea:has(.nbchat-live) > .jp-OutputArea-child:has(style.nbchat-copy)"
    " {display: none} .nbchat-unset .widget-readout {opacity: 0.5}</style>"
)
COPY_CSS = (
    '<style class="nbchat-copy">.jp-OutputArea:not(:has(.nbchat-live)):has(style.nbchat-copy)'
    " > .jp-OutputArea-child:has(> .jp-OutputArea-output:not([data-mime-type]))"
    " {display: none}</style>"
)


def copy_bundle(markdown: str, plain: str) -> dict[str, str]:
    """A widget's Markdown copy (see COPY_CSS)."""
    return {"text/markdown": f"{markdown}\n\n{COPY_CSS}\n", "text/plain": plain}


def show_with_copy(box: W.Box, markdown: str, plain: str) -> Any:
    """Display ``box`` and then its Markdown copy; returns the copy's display handle."""
    box.add_class("nbchat-live")
    box.children = (*box.children, W.HTML(LIVE_CSS, layout=W.Layout(display="none")))
    # viewers without the widget renderer (nbconvert, GitHub) show text/plain, not a VBox repr
    display({WIDGET_VIEW: box._repr_mimebundle_()[WIDGET_VIEW], "text/plain": ""}, raw=True)
    return display(copy_bundle(markdown, plain), raw=True, display_id=True)


def shown_view(outputs: Iterable[Mapping[str, Any]]) -> ChatView:
    """The chat view among a cell's displayed outputs (their data bundles); the last one."""
    ids = [o[WIDGET_VIEW]["model_id"] for o in outputs if WIDGET_VIEW in o]
    return VIEWS[ids[-1]]


class Control:
    """One setting's control, linked both ways to its trait. While the setting is unset
    (``None``: not sent) the control says so: a slider rests on the API's own default, a
    number box is empty, a dropdown reads "API default", and the status says "unset"."""

    def __init__(self, settings: Any, name: str, widget: W.ValueWidget) -> None:
        self.settings, self.name, self.widget = settings, name, widget
        self.status = W.HTML(layout=W.Layout(width="6em"))
        label = W.HTML(f"<span title='{html.escape(getattr(type(settings), name).help)}'>{name}</span>")
        label.layout = W.Layout(width=LABEL_WIDTH)
        # unsets this one setting (the panel's "Unset all" does every one); shown while it is set
        self.clear = W.Button(
            icon="times",
            tooltip=f"Unset {name}: send nothing, the server's default applies",
            layout=W.Layout(width="2.2em", padding="0", margin="0 0 0 6px"),
        )
        self.clear.on_click(lambda _: self._unset())
        nullable = getattr(type(settings), name).allow_none
        row = [label, widget, *([self.clear] if nullable else []), self.status]
        self.box = W.HBox(row, layout=W.Layout(align_items="center"))
        self.box.add_class("nbchat-row")
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
            if self.name == "stop":
                self.widget.value = stop_text(value or [])
            elif isinstance(self.widget, W.Text) and self.name != "model":
                self.widget.value = "" if value is None else str(value)  # a number box
            elif isinstance(self.widget, W.Dropdown) and self.name != "model":
                self.widget.value = "" if value is None else value  # "" is the API default option
            else:
                shown = getattr(type(self.settings), self.name).metadata.get("api_default")
                if value is not None or shown is not None:
                    self.widget.value = shown if value is None else value
        unset = value is None
        self.box.remove_class("nbchat-unset")
        if unset:
            self.box.add_class("nbchat-unset")
        self.status.value = (
            "<i title='not sent: the server applies its own default'>unset</i>" if unset else ""
        )
        self.clear.layout.visibility = "hidden" if unset else "visible"

    def _unset(self) -> None:
        with self.settings.setting_from("sliders"):
            setattr(self.settings, self.name, None)

    def _from_trait(self, change: dict[str, Any]) -> None:
        self._show(change["new"])

    def _from_widget(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        value = change["new"]
        try:
            if self.name == "stop":
                value = stop_list(value)
            elif isinstance(self.widget, W.Text) and self.name != "model":
                value = number(value, getattr(getattr(type(self.settings), self.name), "min", None))
            elif isinstance(self.widget, W.Dropdown) and value == "":
                value = None
            with self.settings.setting_from("sliders"):
                setattr(self.settings, self.name, value)
        except (ValueError, TypeError) as e:  # shown beside the control; the setting is unchanged
            self.status.value = (
                f"<span style='color: var(--jp-error-color1, #c62828)'>{html.escape(str(e))}</span>"
            )

    def unlink(self) -> None:
        self.settings.unobserve(self._from_trait, self.name)


def number(text: str, low: int | None) -> int | None:
    """What a number box says, as the setting; empty unsets."""
    text = text.strip().replace("_", "").replace(",", "")
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError("not a whole number") from None
    if low is not None and value < low:
        raise ValueError(f"must be ≥ {low}")
    return value


def stop_text(stop: list[str]) -> str:
    """The stop list as the user types it: comma-separated, or JSON when a sequence has a comma."""
    import json

    return json.dumps(stop) if any("," in s for s in stop) else ", ".join(stop)


def stop_list(text: str) -> list[str] | None:
    """What the stop box says, as the setting: ``### , END`` or ``["a,b", "c"]``; empty unsets."""
    import json

    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"not a JSON list: {e.msg}") from None
        if not isinstance(value, list):
            raise ValueError("not a JSON list")
        return [str(v) for v in value] or None
    return [part.strip() for part in text.split(",") if part.strip()] or None


def control_widget(settings: Any, name: str) -> W.ValueWidget:
    """A widget built from the trait's type, bounds and help; its name is the row's label."""
    trait = getattr(type(settings), name)
    common: dict[str, Any] = {"tooltip": trait.help, "layout": W.Layout(width=CONTROL_WIDTH)}
    if isinstance(trait, Bool):
        return W.Checkbox(value=bool(getattr(settings, name)), indent=False, tooltip=trait.help)
    if isinstance(trait, List):
        # a text box that takes Enter: each sequence as typed, comma-separated
        return W.Text(
            placeholder=f"{UNSET} (none) · type ###, END then Enter", continuous_update=False, **common
        )
    if isinstance(trait, Enum):
        options = [(str(v), v) for v in trait.values or ()]
        return W.Dropdown(options=[(UNSET, ""), *options] if trait.allow_none else options, **common)
    low, high = getattr(trait, "min", None), getattr(trait, "max", None)
    if isinstance(trait, Float):
        return W.FloatSlider(
            min=low, max=high, step=0.05, readout_format=".2f", continuous_update=False, **common
        )
    if isinstance(trait, Int) and low is not None and high is not None:
        return W.IntSlider(min=low, max=high, continuous_update=False, **common)
    # no upper bound (max_tokens, seed): a number box, usable across the whole range, and
    # empty while unset (an IntText cannot be empty: it would show a number nobody chose)
    hint = f"{UNSET} · a whole number{f' ≥ {low}' if low is not None else ''}, then Enter"
    return W.Text(placeholder=hint, continuous_update=False, **common)


def model_widget(settings: Any, models: list[str]) -> W.ValueWidget:
    """A dropdown of the server's models when it lists them; free text otherwise."""
    trait = type(settings).model
    common = {"tooltip": trait.help, "layout": W.Layout(width=CONTROL_WIDTH)}
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
        # what a notebook saved without widget state shows in the panel's place
        plain = "nbchat's settings panel: run %chatconfig --sliders in a live kernel to use it"
        show_with_copy(self.box, f"*{plain}*", plain)


# A tint of each role's colour over whatever the theme's background is, and the theme's own
# text colour: legible in JupyterLab's light and dark themes alike (an opaque light blue
# under the dark theme's white text was not)
TEXT = "color: var(--jp-content-font-color1, inherit)"
ROLE_STYLE = {
    role: f"background: rgba({tint}); border-left: 3px solid {edge}; {TEXT}{extra}"
    for role, tint, edge, extra in [
        ("user", "30, 136, 229, 0.14", "#1e88e5", ""),
        ("assistant", "128, 128, 128, 0.12", "#9e9e9e", ""),
        ("system", "249, 168, 37, 0.16", "#f9a825", "; font-style: italic"),
        ("tool", "142, 36, 170, 0.14", "#8e24aa", "; font-family: monospace"),
    ]
}


CAPTION = "font-size: smaller; opacity: 0.7"  # a message's role, above it


def bubble(role: str, text: str) -> str:
    """One message, styled by its role. ``tex2jax_ignore``: a $ in a message is not math."""
    style = ROLE_STYLE.get(role, ROLE_STYLE["assistant"])
    body = html.escape(text).replace("\n", "<br>")
    return (
        f'<div class="nbchat-msg nbchat-{html.escape(role)} tex2jax_ignore" style="{style}; '
        f'padding: 4px 8px; margin: 4px 0; border-radius: 4px">'
        f'<div style="{CAPTION}">{html.escape(role)}</div>{body}</div>'
    )


def transcript_html(messages: list[dict[str, Any]]) -> str:
    rows = [bubble(m["role"], message_text(m)) for m in messages]
    return "".join(rows) or "<i>(empty conversation)</i>"


def markdown_output(markdown: str, plain: str) -> W.Output:
    """A reply rendered by the frontend's own Markdown renderer (as the Markdown view is)."""
    out = W.Output()
    show_markdown(out, markdown, plain)
    return out


def show_markdown(out: W.Output, markdown: str | None, plain: str) -> None:
    data = {"text/plain": plain} if markdown is None else {"text/markdown": markdown, "text/plain": plain}
    out.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)


def output_text(out: W.Output) -> str:
    """What an output widget shows as Markdown (or plain text)."""
    return "".join(
        str(o.get("data", {}).get("text/markdown", o.get("data", {}).get("text/plain", "")))
        for o in out.outputs
    )


class ChatView(View):
    """``-f widget``: the conversation so far, the question, the reply (choices as tabs,
    rendered as Markdown), log-probs of the selected choice, usage, and a button that asks
    again with the panel's current settings.

    A Markdown copy of the reply is displayed beside the widget (hidden while the widget
    lives), so a notebook saved without widget state still shows the reply.
    """

    def __init__(self, magics: Any, conversation: str) -> None:
        self.magics, self.conversation = magics, conversation
        self.transcript = W.HTML()
        self.question = W.HTML()
        self.reply = W.VBox()
        self.logprobs = W.HTML()
        self.usage = W.HTML()
        self.errors = W.Output()
        self.reask = W.Button(
            description="Re-ask with these settings", icon="refresh", layout=W.Layout(width="auto")
        )
        self.reask.on_click(self._guarded(self._reask))
        self.n = 1
        self.handle: Any = None
        self.stream: ReplyStream | None = None
        self.box = W.VBox(
            [
                W.Accordion(children=[self.transcript], titles=["Conversation so far"], selected_index=None),
                self.question,
                W.VBox(  # the reply, marked as the assistant's like the messages above it
                    [W.HTML(f"<div style='{CAPTION}'>assistant</div>"), self.reply],
                    layout=W.Layout(border_left="3px solid #9e9e9e", padding="0 0 0 8px", margin="4px 0"),
                ),
                self.logprobs,
                self.usage,
                W.HBox([self.reask]),  # as wide as its label, not the whole output
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
        self.handle = show_with_copy(self.box, "*(waiting for the reply)*", "(waiting)")
        return self.run(stream)

    def run(self, stream: ReplyStream) -> Reply:
        self.stream = stream
        messages = stream.request.messages
        self.transcript.value = transcript_html(messages[:-1])
        self.question.value = bubble(messages[-1]["role"], message_text(messages[-1]))
        self.live = W.Output()
        show_markdown(self.live, None, f"⏳ {stream.request.body['model']} · waiting…")
        self.reply.children = (self.live,)
        self.logprobs.value = self.usage.value = ""
        self.calls: list[ToolCall] = []
        # re-asking keeps this cell's number of choices (the view's tabs), whatever the panel says
        self.n = int(stream.request.body.get("n") or 1)
        choices = f" (n = {self.n}, as this cell)" if self.n > 1 else ""
        self.reask.description = f"Re-ask with these settings{choices}"
        return consume(stream, self)

    # -- painting (the stream consumer decides when) -----------------------------------

    def waiting(self, text: str) -> None:
        show_markdown(self.live, None, text)

    def on_tool_call(self, event: ToolEvent) -> bool:
        if event.call not in self.calls:
            self.calls.append(event.call)
        return True  # shown before it runs (it may ask for approval)

    def paint(self, stream: ReplyStream) -> None:
        text, thinking = stream.texts[0], "\n\n".join(stream.completion.reasoning)
        head = tool_head(self.calls, "html") + _thinking_html(thinking, not text)
        show_markdown(self.live, protect_dollars(text), text)
        self.reply.children = (W.HTML(head), self.live) if head else (self.live,)

    def fail(self, error: BaseException) -> None:
        self.reply.children = ()

    def finish(self, reply: Reply, foot: str | None, interrupted: bool) -> None:
        texts = [c["content"] for c in reply.choices]
        if interrupted:
            texts[0] += "\n\n*(interrupted)*"
        made = self.calls if interrupted else reply.tool_calls
        head = tool_head(made, "html") + _thinking_html(reply.reasoning, False)
        if len(texts) > 1:
            pages = []
            for k, text in enumerate(texts, start=1):
                keep = W.Button(
                    description="Keep this one", tooltip=f"Keep choice {k} in the history (%chat pick {k})"
                )
                keep.on_click(self._guarded(functools.partial(self._keep, k)))
                pages.append(W.VBox([markdown_output(protect_dollars(text), text), keep]))
            self.tabs = W.Tab(children=pages, titles=[f"Choice {k}" for k in range(1, len(texts) + 1)])
            self.tabs.observe(self._show_logprobs, "selected_index")
            main: W.Widget = self.tabs
        else:
            main = markdown_output(protect_dollars(texts[0]), texts[0])
        self.reply.children = (W.HTML(head), main) if head else (main,)
        self._show_logprobs()
        self.usage.value = (
            f'<div class="tex2jax_ignore" style="font-size: smaller; opacity: 0.7">{html.escape(foot)}</div>'
            if foot
            else ""
        )
        if self.handle is not None:
            copy = bundle(texts, "markdown", foot, made, reply.reasoning)
            self.handle.update(copy_bundle(copy["text/markdown"], copy["text/plain"]), raw=True)

    def _show_logprobs(self, change: Any = None) -> None:
        """The log-prob view of the selected choice."""
        tabs = getattr(self, "tabs", None)
        choice = (tabs.selected_index or 0) if tabs is not None and tabs in self.reply.children else 0
        entries = self.stream.completion.logprobs.get(choice) if self.stream is not None else None
        self.logprobs.value = logprob_html(entries) if entries else ""

    def _keep(self, k: int) -> None:
        self.magics.chat_for(self.conversation).conversation.pick(k)
        for i, page in enumerate(self.tabs.children, start=1):
            page.children[1].description = "Kept ✓" if i == k else "Keep this one"

    def _reask(self) -> None:
        keep = {"n": self.n} if self.n > 1 else {}
        self.run(self.magics.chat_for(self.conversation).retry(**keep))


def _thinking_html(summary: str, still: bool) -> str:
    """A reasoning model's summary, collapsible above the reply (open while it thinks)."""
    if not summary:
        return ""
    head = "<details open><summary>Thinking…</summary>" if still else "<details><summary>Thinking</summary>"
    return f'{head}<div style="white-space: pre-wrap; opacity: 0.8">{html.escape(summary)}</div></details>'
