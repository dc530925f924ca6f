"""``ChatMagics``: the settings as traits, and ``%%chat``, ``%chat``, ``%chatconfig`` as glue."""

from __future__ import annotations

import argparse
import functools
import re
import shlex
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from IPython.core import magic
from IPython.core import magic_arguments as _magic_arguments
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, magics_class, no_var_expand
from IPython.core.magic_arguments import MagicArgumentParser

from . import lazy
from .conversation import Conversation
from .errors import Interrupted, NbChatError, RequestFailed
from .hidden import guarded, hide_in_config
from .notebook import Notebook
from .options import CELL_OPTIONS, CELL_OPTIONS_BY_DEST, Option, default_of, setting_options
from .secret import Secret, credentials, one_line, public_url, redact, redact_foreign
from .settings import Settings, ask_again, ini_credentials, parse_assignments, read_ini, split_config_line
from .tokens import estimate, estimate_text
from .usage import Ledger
from .values import bad_variable_name

if TYPE_CHECKING:
    from . import compareview, mapview, rebuild, render
    from .cache import Replayer
    from .chat import Chat, Reply, ReplyStream
    from .client import Transport
    from .schema import Schema
    from .tools import Workspace
else:  # loaded with the first cell that needs them: %load_ext only registers the magics
    compareview, mapview, rebuild, render = (
        lazy.module(f"nbchat.{name}") for name in ("compareview", "mapview", "rebuild", "render")
    )

# one %%chat option per setting a cell may override, generated from the traits
SETTING_OPTIONS = setting_options(Settings)
_CODE_BLOCK = re.compile(r"```[^\n`]*\n(.*?)```", re.S)
# %chat request [-c NAME] TEXT [-c NAME]: the text is everything else, as written
_REQUEST_LINE = re.compile(
    r"\s*(?:(?:-c|--conversation)\s+(?P<before>\S+))?\s*(?P<text>.*?)"
    r"(?:\s+(?:-c|--conversation)\s+(?P<after>\S+))?\s*",
    re.S,
)
# how %chat history marks a reply that did not end on its own
TRUNCATED = {"length": "cut off at max_tokens", "interrupted": "interrupted (partial reply)"}
_CONFIG_CHOICES = "--reset, --key, --forget-key, --sliders, --ini PATH or name=value pairs"
_EXAMPLE = {"path": "conversation.json", "choice": "2"}

# %chat's options other than -c, and for each verb: how many words it takes after its
# name, and which options (-c is "conversation")
OPTIONS = ("keep_system", "purpose", "org", "days")
VERB_TAKES: dict[str, tuple[int, tuple[str, ...]]] = {
    "history": (0, ("conversation",)),
    "reset": (0, ("conversation", "keep_system")),
    "undo": (0, ("conversation",)),
    "retry": (0, ("conversation",)),
    "pick": (1, ("conversation",)),
    "list": (0, ()),
    "save": (1, ("conversation",)),
    "load": (1, ("conversation",)),
    "export": (1, ("conversation",)),
    "usage": (0, ("org", "days")),
    "models": (0, ()),
    "files": (3, ("purpose",)),
    "cache": (1, ()),
    "rebuild": (1, ()),
    "mcp": (1, ()),
}
# verbs that act on a conversation that must already exist (-c typo → an error, not a new one)
READS_A_CONVERSATION = {"history", "reset", "undo", "retry", "pick", "save", "export"}


_Magic = TypeVar("_Magic", bound=Callable[..., None])


# IPython's magic_arguments decorators carry no annotations, and its cell_magic("name")
# is typed so that it returns Never; these typed twins keep each magic's own signature.
def cell_magic(name: str) -> Callable[[_Magic], _Magic]:
    return cast(Callable[[_Magic], _Magic], magic.cell_magic(name))


def line_magic(name: str) -> Callable[[_Magic], _Magic]:
    return cast(Callable[[_Magic], _Magic], magic.line_magic(name))


def magic_arguments(name: str | None = None) -> Callable[[_Magic], _Magic]:
    """IPython's ``magic_arguments``, but the parser and its help are built when first used."""

    def decorate(func: _Magic) -> _Magic:
        return cast(_Magic, HelpOnDemand(func, name))

    return decorate


class HelpOnDemand:
    """A magic whose argparse parser and help text (``%%chat?``) are built when first read.

    IPython's ``magic_arguments`` builds both at import, and formatting the help of ~50
    options was most of ``%load_ext``'s time. Read as a method it is bound like a function;
    ``__doc__`` and ``parser`` are built together from the ``argument`` decorators.
    """

    def __init__(self, func: Callable[..., Any], name: str | None) -> None:
        self._func = func
        if name is not None:
            func.argcmd_name = name  # type: ignore[attr-defined]  # IPython's own attribute
        # the decorators' marks (magic kind, no_var_expand, arguments) stay readable
        vars(self).update(vars(func))
        self.__name__, self.__qualname__ = func.__name__, func.__qualname__
        self.__module__, self.__wrapped__ = func.__module__, func

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        import types

        return self if obj is None else types.MethodType(self, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._func(*args, **kwargs)

    @functools.cached_property
    def parser(self) -> MagicArgumentParser:
        parser: MagicArgumentParser = _magic_arguments.construct_parser(self._func)
        return parser

    @property  # the help is the docstring, as magic_arguments makes it
    def __doc__(self) -> str | None:  # type: ignore[override]
        _ = self.parser  # sets the function's docstring to the full help
        return self._func.__doc__


def argument(*names: str, **options: Any) -> Callable[[_Magic], _Magic]:
    return cast(Callable[[_Magic], _Magic], _magic_arguments.argument(*names, **options))


def argument_group(title: str) -> Callable[[_Magic], _Magic]:
    return cast(Callable[[_Magic], _Magic], _magic_arguments.argument_group(title))


def with_options(name: str, cell: list[Option], settings: list[Option]) -> Callable[[_Magic], _Magic]:
    """``magic_arguments`` from lists of options: the parser, and the help of ``%%chat?``."""

    def decorate(func: _Magic) -> _Magic:
        decorators = [argument(*o.names, **o.kwargs) for o in cell]
        decorators.append(argument_group("settings for this cell only (see %chatconfig for all cells)"))
        decorators.extend(argument(*o.names, **o.kwargs) for o in settings)
        for decorator in reversed(decorators):  # the first one listed ends up first in the help
            func = decorator(func)
        return magic_arguments(name)(func)

    return decorate


def parser_of(magic: Any) -> MagicArgumentParser:
    """The parser ``magic_arguments`` built for ``magic`` (also behind ``%%chat?``)."""
    parser: MagicArgumentParser = magic.parser
    return parser


def split_line(line: str) -> list[str]:
    """Shell-like splitting, so ``--stop "###"`` arrives without its quotes."""
    try:
        return shlex.split(line)
    except ValueError as e:
        raise UsageError(f"cannot parse options {line!r}: {e}") from None


@magics_class
class ChatMagics(Magics, Settings):
    """Chat with OpenAI-compatible models from notebook cells."""

    key_hint = "run %chatconfig --key (a hidden prompt)"
    key_env_where = "Jupyter starts from"

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        hide_in_config(self.config, getattr(shell, "config", None))
        self.ledger = Ledger()
        self.hinted = False  # said (or found no need to say) that %chat rebuild can help
        self.conversations: dict[str, Conversation] = {}
        self.cell_id: str | None = None
        self.cell_source = ""  # the running cell's text: which cell, where there is no id
        self.queued: set[tuple[str, str]] = set()  # (cell, code) put into a next cell (-f code)
        self.notebook = Notebook(shell)

    # -- plumbing ---------------------------------------------------------------------

    def update_config(self, config: Any) -> None:
        """``%config`` and config files: their credentials are held hidden from then on."""
        super().update_config(config)
        hide_in_config(self.config, config)

    def check_tools(self, names: list[str], servers: Any = None) -> None:
        """``%chatconfig tools=…`` names functions that exist now (or MCP servers of
        ``servers``): a typo is refused when set, rather than accepted and then failing every
        later cell."""
        from .mcpconfig import server_of
        from .tools import BUILTIN_NAMES

        namespace = self.user_shell.user_ns
        for name in (n.strip() for entry in names for n in str(entry).split(",") if n.strip()):
            if server_of(name, servers) is not None:
                continue
            if name not in BUILTIN_NAMES and not callable(namespace.get(name)):
                what = "is not a function" if name in namespace else "is not defined"
                raise ValueError(
                    f"unknown tool {name!r}: {name} {what} (define it first; built-in tools: "
                    f"{', '.join(BUILTIN_NAMES)})"
                )

    def pre_run_cell(self, info: Any) -> None:
        """Remember the frontend's cell id: re-running a cell replaces its exchange."""
        self.cell_id = getattr(info, "cell_id", None) or None
        self.cell_source = str(getattr(info, "raw_cell", "") or "")

    @property
    def user_shell(self) -> InteractiveShell:
        """The shell these magics were registered with (always one, once loaded)."""
        assert self.shell is not None
        return self.shell

    @property
    def terminal(self) -> bool:
        return any(c.__name__ == "TerminalInteractiveShell" for c in type(self.shell).__mro__)

    @functools.cached_property
    def transport(self) -> Transport:
        from .client import Transport

        return Transport()

    @functools.cached_property
    def replayer(self) -> Replayer:
        """This kernel's answered cells, for the replay rule."""
        from .cache import Replayer

        return Replayer()

    def chat_for(self, name: str) -> Chat:
        from .chat import Chat

        conversation = self.conversations.setdefault(name, Conversation(name))
        chat = Chat(
            settings=self,
            conversation=conversation,
            transport=self.transport,
            ledger=self.ledger,
            replayer=self.replayer,
        )
        chat.workspace = self.workspace()
        return chat

    def workspace(self) -> Workspace:
        """Where tools are found and run: the user's namespace, with IPython's syntax."""
        from .tools import Workspace

        shell = self.user_shell
        return Workspace(shell.user_ns, shell.user_ns_hidden, shell.input_transformer_manager.transform_cell)

    def cell_text(self, cell: str, raw: bool) -> str:
        text = cell.strip()
        if not text:
            raise UsageError("empty cell: write your message below the %%chat line")
        try:
            # a substituted {os.environ} must not carry a credential into a request or file
            from .template import substitute

            return text if raw else redact(substitute(text, self.user_shell.user_ns), credentials(self))
        except NbChatError as e:  # a value whose str() raises
            raise UsageError(str(e)) from None

    # -- %%chat -----------------------------------------------------------------------

    @with_options("%chat", CELL_OPTIONS, SETTING_OPTIONS)
    @no_var_expand
    @cell_magic("chat")
    @guarded(settings_of=lambda magics: magics)
    def chat_cell(self, line: str, cell: str) -> None:
        """Send the cell to the model, with the conversation so far.

        Example::

            %%chat -t 0.2 --max-tokens 200
            Explain what {df.shape} tells me about my data.

        ``{name}``, ``{name.attr}``, ``{In[3]}`` and ``{Out[5]}`` are replaced when they
        exist in your namespace; other braces (code, JSON) are sent as written. A DataFrame
        is described (shape, dtypes, first and last rows), a figure or image is sent as an
        image; ``{Err}`` is the last error's traceback. ``--context 3`` adds the three cells
        run before; ``--image plot.png`` and ``--file report.pdf`` attach files.
        ``--schema "label, score float"`` asks for a structured reply (shown as a table; ``-o``'s
        ``.data``); ``--map df -o out`` sends the cell once per item or row (``{item}``,
        ``{column}``) and ``--batch`` sends those requests through the Batch API;
        ``--map df --compare gpt-4o-mini,gpt-4o,mychat --truth label -o grid`` asks each row of
        each model (or ``Chat`` variable) and compares their answers side by side.
        """
        args, overrides = self.parse_cell_line(line)
        kind = kind_of(args)
        self.check_kind(kind, args, overrides)
        (kind.dry_run if args.dry_run else kind.run)(self, args, overrides, cell)

    def send_cell(self, args: argparse.Namespace, overrides: dict[str, Any], cell: str) -> None:
        """A chat cell: the message, with the conversation so far; the reply is shown."""
        self.cell_text(cell, raw=True)  # an empty cell is refused before anything else
        chat = self.chat_for(args.conversation)
        if args.size or args.quality or args.output_format:
            raise UsageError("--size, --quality and --output-format are for images: add -f image")
        if args.echo:
            raise UsageError("--echo needs --completion (the chat APIs do not echo the prompt)")
        self.hint_rebuild()
        if self.api == "responses":
            self.check_responses(overrides, args)
        if args.new:
            chat.conversation.clear(keep_system=True)
        stream = self.cell_stream(chat, args, cell, overrides)
        fmt = args.format or self.output
        reply = self.show_reply(stream, fmt, args.conversation)
        if reply.data is not None:
            mapview.show_data(reply.data, self.terminal)
        self.deliver(reply, args.out, fmt == "code")

    def system_cell(self, args: argparse.Namespace, overrides: dict[str, Any], cell: str) -> None:
        """``-s``: the cell becomes the conversation's system prompt; nothing is sent."""
        text = self.cell_text(cell, args.raw)
        chat = self.chat_for(args.conversation)
        chat.conversation.system = text
        render.note(
            f"System prompt of *{args.conversation}* set ({len(text)} characters).",
            self.terminal,
            rebuild.metadata(chat.conversation),
        )

    def example_cell(self, args: argparse.Namespace, overrides: dict[str, Any], cell: str) -> None:
        """``--role assistant``: the cell is an example reply (few-shot); nothing is sent."""
        text = self.cell_text(cell, args.raw)
        chat = self.chat_for(args.conversation)
        turn = chat.prime(text, cell_id=self.cell_id)
        render.note(
            f"Example reply added to *{args.conversation}*.",
            self.terminal,
            rebuild.metadata(chat.conversation, turn),
        )

    def check_kind(self, kind: CellKind, args: argparse.Namespace, overrides: dict[str, Any]) -> None:
        """An option this kind of cell would ignore is a usage error, not silently dropped."""
        wrong = kind.out_of_place(args)
        if not kind.sends:
            by_setting = {o.setting: o.names[0] for o in SETTING_OPTIONS}
            wrong += [by_setting[name] for name in overrides if name in by_setting]
        if wrong and kind.takes is None:
            raise UsageError(f"{', '.join(wrong)} goes with --map NAME")
        if wrong:
            nothing_sent = "" if kind.sends else " (nothing is sent)"
            raise UsageError(f"{kind.asked} does not take {', '.join(wrong)}{nothing_sent}")
        if kind is CELL_KINDS["map"] and overrides.get("tools"):
            raise UsageError("--map does not take --tools: each item is one request, with no tool calls")
        if kind is CELL_KINDS["map"] and (overrides.get("n") or 1) > 1:
            raise UsageError("--map takes one reply per item: leave out -n")

    def check_responses(self, overrides: dict[str, Any], args: argparse.Namespace | None = None) -> None:
        """api=responses: parameters that API lacks, and tools and schemas (nbchat sends those
        to Chat Completions only), are a usage error, before anything changes."""
        from .transports import responses

        try:
            responses.check(self.request_values() | overrides)
        except responses.Unsupported as e:
            raise UsageError(str(e)) from None
        if args is not None and args.schema:
            raise UsageError("--schema needs api=chat (Chat Completions); %chatconfig api=chat")

    def image_cell(self, args: argparse.Namespace, overrides: dict[str, Any], cell: str) -> None:
        """``-f image``: the cell is the prompt; with ``--image PATH``, an edit of that picture."""
        text = self.cell_text(cell, raw=True)
        chat = self.chat_for(args.conversation)
        reply = render.show_images(self.image_stream(chat, text, args, overrides), self.terminal)
        if args.out:
            self.user_shell.user_ns[args.out] = reply

    def image_stream(self, chat: Chat, text: str, args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
        """The image request of a ``-f image`` cell, built but not sent (the cell and its
        ``--dry-run`` both come through here)."""
        from . import images
        from .transports.images import ImageOptionError

        lacking = [n for n in overrides if n not in ("model", "n", "stream")]
        if lacking or len(args.image or ()) > 1:
            named = [f"--{n.replace('_', '-')}" for n in lacking] or ["more than one --image"]
            raise UsageError(f"-f image does not take {', '.join(named)}")
        try:
            return images.start(
                chat,
                text,
                image=(args.image or [None])[0],
                model=overrides.get("model"),
                size=args.size,
                quality=args.quality,
                output_format=args.output_format,
                n=overrides.get("n"),
                stream=overrides.get("stream"),
            )
        except ImageOptionError as e:
            raise UsageError(str(e)) from None

    def complete_cell(self, args: argparse.Namespace, overrides: dict[str, Any], cell: str) -> None:
        """``--completion``: the cell as a raw prompt; the view is verbatim text by default."""
        text = self.cell_text(cell, args.raw)
        chat = self.chat_for(args.conversation)
        stream = self.completion_stream(chat, text, args, overrides)
        reply = self.show_reply(stream, args.format or "text", args.conversation)
        self.deliver(reply, args.out, args.format == "code")

    def completion_stream(
        self, chat: Chat, text: str, args: argparse.Namespace, overrides: dict[str, Any]
    ) -> ReplyStream:
        """The request of a ``--completion`` cell, built but not sent (also its ``--dry-run``)."""
        from .transports import completions

        lacking = [n for n in overrides if n not in (*completions.PARAMS, "model", "logprobs", "stream")]
        if lacking or args.system or args.role or args.new:
            named = [f"--{n.replace('_', '-')}" for n in lacking] + [
                flag for flag, on in (("-s", args.system), ("--role", args.role), ("--new", args.new)) if on
            ]
            raise UsageError(f"--completion does not take {', '.join(named)} (the Completions API has none)")
        return chat.complete(text, echo=args.echo, **overrides)

    def message(self, chat: Chat, args: argparse.Namespace, cell: str) -> tuple[Any, list[dict[str, Any]]]:
        """The cell's user message (fields, earlier cells, attachments) and its receipt."""
        if args.context is not None and args.context < 1:
            raise UsageError(f"--context takes a number of cells ≥ 1, not {args.context}")
        try:
            content, receipt = self.notebook.message(
                cell.strip(),
                chat.limits(args.detail),
                raw=args.raw,
                cells=args.context,
                images=args.image or (),
                files=args.file or (),
            )
        except NbChatError as e:
            raise UsageError(str(e)) from None
        return content, [piece.as_dict() for piece in receipt]

    def map_cell(self, args: argparse.Namespace, overrides: dict[str, Any], cell: str) -> None:
        """``--map NAME``: the cell is a template sent once per item; ``-o`` gets the results."""
        from .budget import OverBudget
        from .items import errors_of
        from .mapping import MapFailed, MapInterrupted

        if not args.map:
            raise UsageError("--batch needs --map NAME (the items to send)")
        namespace = self.user_shell.user_ns
        items, template = self.map_input(args, cell)
        if args.schema:
            overrides["schema"] = self.schema_of(args.schema)
        # --no-cache asks for every item again; otherwise a re-run continues from -o's results
        previous = namespace.get(args.out) if args.out and not args.no_cache else None
        chat = self.chat_for(args.conversation)
        try:
            results = chat.map(
                items,
                template,
                concurrency=args.concurrency,
                batch=args.batch,
                strict=args.strict,
                raw=True,  # checked above against the template as written (a variable may hold braces)
                previous=previous,
                label=args.map,
                progress=lambda state: mapview.ProgressView.for_shell(self.shell, state.total, state.label),
                **overrides,
            )
        except (MapInterrupted, OverBudget) as e:  # what completed is kept
            if args.out and e.results is not None:
                namespace[args.out] = e.results
            raise
        except MapFailed as e:  # the results are delivered, then the cell fails (Run All stops)
            mapview.show_errors(errors_of(e.results), self.terminal)
            if args.out:
                namespace[args.out] = e.results
            raise
        if args.batch:
            mapview.show_job(results, self.terminal)
        else:
            mapview.show_errors(errors_of(results), self.terminal)
        if args.out:
            namespace[args.out] = results
        elif not args.batch:
            mapview.show_results(results, self.terminal)

    def map_input(self, args: argparse.Namespace, cell: str) -> tuple[Any, str]:
        """A map's (or compare's) items, and its template with the namespace's fields filled."""
        from .items import Shape
        from .mapping import check_fields, fields_of
        from .template import substitute

        namespace = self.user_shell.user_ns
        if args.map not in namespace:
            raise UsageError(f"--map {args.map}: there is no variable {args.map!r}")
        if args.concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1 (got {args.concurrency})")
        template = cell.strip()
        if not template:
            raise UsageError("empty cell: write the template below the %%chat line, e.g. Label: {item}")
        try:
            shape = Shape.of(namespace[args.map])
        except NbChatError as e:
            raise UsageError(f"--map {args.map}: {e}") from None
        if not args.raw:  # the items' fields are filled per item, not from the namespace
            try:  # a {field} that is no column, item or variable would go verbatim to every item
                check_fields(template, shape.items, known=lambda name: name in namespace or name == "Err")
            except NbChatError as e:
                raise UsageError(f"{e} (--raw sends braces as written)") from None
            hidden = set(fields_of(shape.items[0])) if shape.items else {"item"}
            template = substitute(template, _Without(namespace, hidden | {"item"}))
        return (shape.original if shape.kind != "list" else shape.items), template

    def compare_cell(self, args: argparse.Namespace, overrides: dict[str, Any], cell: str) -> None:
        """``--map NAME --compare A,B``: each item asked of each model; ``-o`` gets the grid."""
        from .budget import OverBudget
        from .compare import plan
        from .mapping import MapFailed, MapInterrupted

        if not args.map:
            raise UsageError("--compare needs --map NAME (the items to ask each model)")
        if "model" in overrides:
            raise UsageError("--compare names the models: leave out --model")
        items, template = self.map_input(args, cell)
        if args.schema:
            overrides["schema"] = self.schema_of(args.schema)
        namespace, chat = self.user_shell.user_ns, self.chat_for(args.conversation)
        models = self.compare_models(args.compare)
        try:
            if args.dry_run:
                grid = plan(chat, items, template, models, truth=args.truth, raw=True, **overrides)
                return compareview.show_plan(grid, args.concurrency, self.terminal)
            results = chat.compare(
                items,
                template,
                models=models,
                truth=args.truth,
                concurrency=args.concurrency,
                strict=args.strict,
                raw=True,  # checked against the template as written (a variable may hold braces)
                previous=namespace.get(args.out) if args.out and not args.no_cache else None,
                label=args.map,
                progress=lambda state: mapview.ProgressView.for_shell(self.shell, state.total, state.label),
                **overrides,
            )
        except MapInterrupted as e:
            if args.out:
                namespace[args.out] = e.results
            raise
        except (MapFailed, OverBudget) as e:  # stopped early, over budget or --strict: shown, kept, failed
            if e.results is not None:
                if args.out:
                    namespace[args.out] = e.results
                compareview.show(e.results, items, self.terminal, kept=args.out)
            raise
        if args.out:
            namespace[args.out] = results
        compareview.show(results, items, self.terminal, kept=args.out)

    def compare_models(self, text: str) -> dict[str, Any]:
        """``--compare A,B``: each name a ``Chat`` variable (its server, model and system
        prompt) or else a model name on this server."""
        from .chat import Chat

        names = [n.strip() for n in text.split(",")]
        if not all(names):
            raise UsageError(f"--compare {text!r}: name each model once, separated by commas")
        if len(set(names)) < len(names):
            raise UsageError(f"--compare {text!r} names a model twice")
        namespace = self.user_shell.user_ns
        return {n: namespace[n] if isinstance(namespace.get(n), Chat) else n for n in names}

    def schema_of(self, spec: str) -> Schema:
        """``--schema``: a variable's value when SPEC names one, else SPEC's own text."""
        from .schema import SchemaError, to_schema

        value = self.user_shell.user_ns.get(spec, spec) if spec.isidentifier() else spec
        try:
            return to_schema(value)
        except SchemaError as e:
            raise UsageError(str(e)) from None

    def hint_rebuild(self) -> None:
        """The first request of a fresh kernel: if its notebook holds earlier replies, say once
        that ``%chat rebuild`` restores them."""
        if self.hinted:
            return
        self.hinted = True
        if not any(c.turns for c in self.conversations.values()):
            text = rebuild.hint(self.user_shell.user_ns, self.cell_id, self.cell_source)
            if text:
                render.note(text, self.terminal)

    def show_reply(self, stream: Any, fmt: str, conversation: str) -> Reply:
        """Stream the reply into the chosen view (a terminal has no widgets)."""
        if fmt == "widget" and not self.terminal:
            from .widgets import ChatView

            return ChatView(self, conversation).show(stream)
        return render.show_stream(
            stream, "text" if fmt == "text" else "markdown", conversation, self.terminal
        )

    def cell_stream(
        self, chat: Chat, args: argparse.Namespace, cell: str, overrides: dict[str, Any]
    ) -> ReplyStream:
        """The request a chat cell makes, built but not sent: a real send and ``--dry-run``
        both come through here, so the dry run shows exactly what would go out."""
        from .tools import ToolError

        if args.schema:
            overrides = overrides | {"schema": self.schema_of(args.schema)}
        content, receipt = self.message(chat, args, cell)
        try:
            return chat.stream(
                content, cell_id=self.cell_id, history=not args.no_history, context=receipt, **overrides
            )
        except ToolError as e:
            raise UsageError(str(e)) from None

    def dry_run(self, args: argparse.Namespace, cell: str, overrides: dict[str, Any]) -> None:
        """``%%chat --dry-run`` and ``%chat request``: the request the same cell would send;
        nothing is sent, recorded or created."""
        kind_of(args).dry_run(self, args, overrides, cell)

    def sends_nothing(self, args: argparse.Namespace, overrides: dict[str, Any], cell: str) -> None:
        """The dry run of a cell that sends nothing (a system prompt, an example reply)."""
        what = "sets the system prompt" if args.role != "assistant" else "adds an example reply"
        render.note(f"Dry run: this cell sends nothing; it {what}.", self.terminal)

    def map_dry_run(self, args: argparse.Namespace, overrides: dict[str, Any], cell: str) -> None:
        self.cell_text(cell, raw=True)  # an empty cell is refused as in a real send
        raise UsageError("--dry-run shows one request; --map sends one per item (try the template on one)")

    def built_dry_run(self, args: argparse.Namespace, overrides: dict[str, Any], cell: str) -> None:
        """A completion's or an image's request, through the builders the cell uses; the
        prompt as the cell would send it, and nothing is created."""
        from .chat import Chat

        self.cell_text(cell, raw=True)  # an empty cell is refused as in a real send
        text = self.cell_text(cell, args.raw or not args.completion)
        chat = Chat(settings=self, conversation=Conversation(args.conversation), transport=self.transport)
        build = self.completion_stream if args.completion else self.image_stream
        stream = build(chat, text, args, overrides)
        render.dry_run(stream.request, self.terminal, getattr(stream, "attached", ""))

    def chat_dry_run(self, args: argparse.Namespace, overrides: dict[str, Any], cell: str) -> None:
        """A chat cell's request, through the path a real send takes."""
        from .chat import Chat

        self.cell_text(cell, raw=True)  # an empty cell is refused as in a real send
        if self.api == "responses":
            self.check_responses(overrides, args)
        conversation = self.conversations.get(args.conversation) or Conversation(args.conversation)
        if args.new:  # as if started over, without starting over
            conversation = Conversation(args.conversation, system=conversation.system)
        chat = Chat(settings=self, conversation=conversation, transport=self.transport, ledger=self.ledger)
        chat.workspace = self.workspace()
        request = self.cell_stream(chat, args, cell, overrides).request
        request.describe_later()  # an MCP server's tools as they would be sent (it starts)
        render.dry_run(request, self.terminal)

    def parse_cell_line(self, line: str) -> tuple[argparse.Namespace, dict[str, Any]]:
        """``%%chat`` options -> (arguments, validated per-cell overrides); only ``UsageError``."""
        args = parser_of(self.chat_cell).parse_args(split_line(line))
        overrides = {
            option.setting: getattr(args, option.setting)
            for option in SETTING_OPTIONS
            if option.setting is not None and getattr(args, option.setting) is not None
        }
        if args.no_cache:  # ask again, and the new answer replaces the stored one
            overrides["cache"] = ask_again(self.cache)
        if not args.conversation.strip():
            raise UsageError("-c needs a conversation name")
        problem = (
            bad_variable_name(args.out, self.user_shell.user_ns_hidden) if args.out is not None else None
        )
        if problem:
            raise UsageError(f"-o {args.out!r} {problem}; choose another variable name")
        try:
            return args, self.checked(overrides)
        except ValueError as e:
            raise UsageError(str(e)) from None

    def deliver(self, reply: Reply, out: str | None, code: bool) -> None:
        if out:
            self.user_shell.user_ns[out] = reply
        if code:
            match = _CODE_BLOCK.search(reply.text)
            if match:
                self.queue_code(match.group(1).rstrip("\n"), reply.replayed)

    def queue_code(self, code: str, replayed: bool) -> None:
        """``-f code``: the reply's code as the next cell, once. The frontend inserts a new
        cell each time it is asked, so Run All would grow the notebook (and then run what it
        inserted): a replayed reply was queued when it was first made, and a re-run of the
        same cell does not queue code it has queued already."""
        key = (self.cell_id or self.cell_source, code)
        if replayed or key in self.queued:
            return
        self.queued.add(key)
        self.user_shell.set_next_input(code, replace=False)

    # -- %chat ------------------------------------------------------------------------

    @magic_arguments("chat")
    @argument(
        "verb",
        help="history, reset, undo, retry, pick, list, save, load, export, usage, models, request, "
        "cache, rebuild, files or mcp",
    )
    @argument("args", nargs="*", help="the verb's arguments")
    @argument("-c", "--conversation", help="Conversation name (default: default).")
    @argument("--keep-system", action="store_true", help="reset: keep the system prompt.")
    @argument("--purpose", help="files upload: the file's purpose (default user_data).")
    @argument("--org", action="store_true", help="usage: the organization's costs (needs OPENAI_ADMIN_KEY).")
    @argument("--days", type=int, help="usage --org: how many days back (default 7, at most 180).")
    @no_var_expand  # expanded below: request's text as a cell's, the rest as IPython would
    @line_magic("chat")
    @guarded(settings_of=lambda magics: magics)
    def chat_line(self, line: str) -> None:
        """Manage conversations: ``%chat VERB [args] [-c NAME]``.

        Verbs: ``history`` (transcript with tokens), ``reset [--keep-system]``,
        ``undo`` (remove the last exchange), ``retry`` (regenerate the last reply),
        ``pick K`` (keep choice K of the last ``-n`` reply), ``list`` (all conversations),
        ``save PATH`` / ``load PATH`` (JSON), ``export PATH`` (``.md`` or ``.jsonl``),
        ``usage`` (tokens and cost this session), ``models`` (the server's models),
        ``request [TEXT]`` (dry run: what the next ``%%chat`` would send),
        ``cache`` (the reply cache: entries, size, money saved) and ``cache clear``,
        ``rebuild [NOTEBOOK]`` (restore the conversations from a saved notebook's replies;
        default: this kernel's own notebook), ``files`` (the account's files; ``files upload
        PATH [--purpose P]``, ``files download ID PATH``, ``files delete ID``), ``mcp`` (the
        MCP servers of ``mcp_servers``: state and tools; ``mcp NAME`` starts NAME and lists its tools).

        Example: ``%chat history -c review``
        """
        args = self.parse_chat_line(line)
        try:
            self.verbs[args.verb](self, args)
        except RequestFailed:
            raise
        except NbChatError as e:
            raise UsageError(str(e)) from None

    def parse_chat_line(self, line: str) -> argparse.Namespace:
        """``%chat VERB …`` -> its arguments, the verb known and its arguments checked."""
        if not line.strip():
            raise UsageError(f"%chat needs a verb: {', '.join(self.verbs)}")
        if line.split()[0] == "request":  # its text is taken as written, not as shell words
            return argparse.Namespace(verb="request", text=line.strip()[len("request") :])
        # "export -c work out.md" and "export out.md -c work" alike
        args = parser_of(self.chat_line).parse_intermixed_args(split_line(self.expand(line)))
        if args.verb not in self.verbs:
            raise UsageError(f"unknown verb {args.verb!r}; verbs: {', '.join(self.verbs)}")
        self._check_verb_arguments(args)
        return args

    def expand(self, line: str) -> str:
        """IPython's ``$name`` / ``{name}`` expansion of a magic line (``%chat save {folder}/c.json``)."""
        from IPython.utils.text import DollarFormatter

        try:
            return DollarFormatter().vformat(line, args=[], kwargs=self.user_shell.user_ns)
        except Exception:  # as IPython does: a line that does not expand is used as written
            return line

    def _check_verb_arguments(self, args: argparse.Namespace) -> None:
        """What a verb does not take is an error, not ignored: ``%chat reset work`` must not
        reset *default*, nor ``%chat history typo`` show an empty conversation."""
        most, options = VERB_TAKES[args.verb]
        given = [f"--{o.replace('_', '-')}" for o in ("conversation", *OPTIONS) if getattr(args, o)]
        refused = [o for o in given if o[2:].replace("-", "_") not in options]
        if refused:
            flag = "-c" if refused[0] == "--conversation" else refused[0]
            raise UsageError(f"%chat {args.verb} does not take {flag}")
        if args.days is not None and not args.org:
            raise UsageError("--days goes with --org: %chat usage --org --days N")
        if len(args.args) > most:
            extra = " ".join(args.args[most:])
            hint = "; name a conversation with -c NAME" if "conversation" in options and not most else ""
            raise UsageError(f"%chat {args.verb} does not take {extra!r}{hint}")
        name = args.conversation
        if name is not None and not name.strip():
            raise UsageError("-c needs a conversation name")
        if args.verb in READS_A_CONVERSATION and name not in (None, "default", *self.conversations):
            known = ", ".join(sorted(self.conversations)) or "none yet"
            raise UsageError(f"there is no conversation {name!r} (conversations: {known})")
        args.conversation = name or "default"
        args.purpose = args.purpose or "user_data"
        args.days = 7 if args.days is None else args.days

    def _one_arg(self, args: argparse.Namespace, what: str) -> str:
        if len(args.args) != 1:
            raise UsageError(f"%chat {args.verb} takes one {what}, e.g. %chat {args.verb} {_EXAMPLE[what]}")
        return str(args.args[0])

    def _history(self, args: argparse.Namespace) -> None:
        """The conversation as a transcript, with tokens per message (≈ where estimated)."""
        from .tools import message_text

        chat = self.chat_for(args.conversation)
        entries = []
        for message in chat.messages[:1]:
            if message["role"] == "system":
                entries.append(message | {"tokens": f"≈{estimate_text(message['content'])}"})
        for turn in chat.conversation.turns:
            for message in turn.messages:
                tokens: Any = f"≈{estimate(message.get('content'))}"
                last = message is turn.messages[-1] and message["role"] == "assistant"
                if last and turn.usage:
                    tokens = turn.usage.get("completion_tokens") if not turn.choices else tokens
                mark = TRUNCATED.get(turn.finish_reason or "") if last else None
                entries.append(message | {"content": message_text(message), "tokens": tokens, "mark": mark})
        render.transcript(entries, self.terminal)

    def _reset(self, args: argparse.Namespace) -> None:
        """Empty the conversation (`--keep-system` keeps its system prompt)."""
        conversation = self.chat_for(args.conversation).conversation
        conversation.clear(keep_system=args.keep_system)
        kept = " (system prompt kept)" if args.keep_system else ""
        render.note(
            f"Conversation *{args.conversation}* reset{kept}.", self.terminal, rebuild.metadata(conversation)
        )

    def _undo(self, args: argparse.Namespace) -> None:
        """Remove the last exchange."""
        conversation = self.chat_for(args.conversation).conversation
        turn = conversation.undo()
        render.note(
            f"Removed the last exchange of *{args.conversation}* ({len(turn.messages)} messages).",
            self.terminal,
            rebuild.metadata(conversation),
        )

    def _list(self, args: argparse.Namespace) -> None:
        """The conversations, with their message count, token estimate and model."""
        rows = []
        for name, conv in sorted(self.conversations.items()):
            messages = conv.messages(system=self.system_prompt)
            tokens = sum(estimate(m.get("content")) for m in messages)
            model = next((t.model for t in reversed(conv.turns) if t.model), self.model)
            rows.append([name, len(messages), f"≈{tokens}", model])
        render.table(["conversation", "messages", "tokens", "model"], rows, self.terminal)

    def _retry(self, args: argparse.Namespace) -> None:
        """Ask for the last reply again with the current settings; the new reply replaces it."""
        reply = self.show_reply(self.chat_for(args.conversation).retry(), self.output, args.conversation)
        if reply.data is not None:  # a --schema cell's retry shows its table again
            mapview.show_data(reply.data, self.terminal)

    def _pick(self, args: argparse.Namespace) -> None:
        """`pick K`: keep choice K of the last `-n` reply in the history."""
        choice = self._one_arg(args, "choice")
        if not choice.isdigit():
            raise UsageError(f"pick takes a choice number, not {choice!r}")
        conversation = self.chat_for(args.conversation).conversation
        conversation.pick(int(choice))
        render.note(
            f"Choice {choice} is now the reply kept in *{args.conversation}*.",
            self.terminal,
            rebuild.metadata(conversation, conversation.turns[-1]),
        )

    def _save(self, args: argparse.Namespace) -> None:
        """`save PATH`: the conversation as JSON (messages in OpenAI format plus per-turn metadata)."""
        path = self.chat_for(args.conversation).conversation.save(self._one_arg(args, "path"))
        render.note(f"Saved *{args.conversation}* to `{path}`.", self.terminal)

    def _load(self, args: argparse.Namespace) -> None:
        """`load PATH`: a conversation saved by `save` (a corrupt or foreign file changes nothing)."""
        conversation = Conversation.load(self._one_arg(args, "path"), name=args.conversation)
        self.conversations[args.conversation] = conversation
        render.note(f"Loaded {len(conversation.turns)} turns into *{args.conversation}*.", self.terminal)

    def _export(self, args: argparse.Namespace) -> None:
        """`export PATH`: a `.md` transcript, or `.jsonl` in OpenAI's fine-tuning format."""
        path = self.chat_for(args.conversation).conversation.export(self._one_arg(args, "path"))
        render.note(f"Exported *{args.conversation}* to `{path}`.", self.terminal)

    def _usage(self, args: argparse.Namespace) -> None:
        """Requests, tokens and cost this session, per model (`--org [--days N]`: the organization's)."""
        if args.org:
            from .transports import organization

            costs = organization.fetch(self, args.days)
            return render.org_costs(costs, args.days, self.terminal)
        render.usage_table(self.ledger, self.prices, self.terminal, budget=self.budget)

    def _models(self, args: argparse.Namespace) -> None:
        """The models the server offers (`GET /models`)."""
        models = self.transport.models(self)
        render.table(["model"], [[m] for m in models], self.terminal)

    def _request(self, args: argparse.Namespace) -> None:
        """`request [TEXT]`: what the next `%%chat` would send (a dry run), TEXT taken as written."""
        """``%chat request [-c NAME] [TEXT]``: ``%%chat --dry-run`` with TEXT as the cell,
        taken as written (quotes, apostrophes) and substituted like a cell."""
        match = _REQUEST_LINE.fullmatch(args.text)
        assert match is not None  # every part of the pattern is optional
        name = match["before"] or match["after"] or "default"
        cell_args = parser_of(self.chat_cell).parse_args(["-c", name, "--dry-run"])
        self.dry_run(cell_args, match["text"] or "<your next message>", {})

    def _cache(self, args: argparse.Namespace) -> None:
        """The reply cache: its file, entries, size and savings; `cache clear` starts it afresh."""
        from .cache import CacheUnavailable, open_cache

        store = open_cache(self.cache_path)
        if args.args and args.args != ["clear"]:
            raise UsageError("%chat cache shows the reply cache; %chat cache clear empties it")
        try:
            if args.args == ["clear"]:
                cleared = store.clear()
                return render.note(f"Reply cache cleared: {cleared} replies removed.", self.terminal)
            render.cache_stats(self.cache_path, store.stats(), self.terminal)
        except CacheUnavailable as e:
            if args.args == ["clear"] and e.corrupt:
                return self._set_aside(store, str(e))
            # nbchat will not delete a file it cannot read: cache_path may name the wrong file
            way_out = (
                "%chat cache clear sets it aside (renamed, not deleted)" if e.corrupt else "Delete that file"
            )
            raise NbChatError(
                f"reply cache {self.cache_path} cannot be used ({e}); cells still work without it. "
                f"{way_out}, or %chatconfig cache_path=ANOTHER_FILE (or cache=off)"
            ) from None

    def _set_aside(self, store: Any, why: str) -> None:
        """``%chat cache clear`` on a file that is no reply cache: renamed, never deleted."""
        from .cache import CacheUnavailable

        try:
            aside = store.set_aside()
        except CacheUnavailable as e:
            raise NbChatError(
                f"reply cache {self.cache_path} cannot be used ({why}) nor renamed ({e})"
            ) from None
        render.note(
            f"Reply cache {self.cache_path} could not be read ({why}): kept as {aside}; "
            "a new, empty cache starts in its place.",
            self.terminal,
        )

    def _rebuild(self, args: argparse.Namespace) -> None:
        """`rebuild [NOTEBOOK]`: restore every conversation from a saved notebook's replies."""
        if len(args.args) > 1:
            raise UsageError("%chat rebuild takes at most one notebook, e.g. %chat rebuild analysis.ipynb")
        path = args.args[0] if args.args else rebuild.own_notebook(self.user_shell.user_ns)
        if path is None:
            raise NbChatError(rebuild.NOT_FOUND)
        restored = rebuild.rebuild(rebuild.records(rebuild.read_notebook(path)))
        if not restored:
            return render.note(f"`{path}` holds no nbchat replies; nothing changed.", self.terminal)
        self.conversations.update(restored)
        # this kernel now holds those cells' answers: re-running one asks for a new sample
        self.replayer.answered.update(t.cell_id for c in restored.values() for t in c.turns if t.cell_id)
        summary = ", ".join(f"*{name}* ({_turns(len(c.turns))})" for name, c in sorted(restored.items()))
        render.note(f"Rebuilt from `{path}`: {summary}.", self.terminal)

    def _files(self, args: argparse.Namespace) -> None:
        """The account's files; `files upload PATH`, `files download ID PATH`, `files delete ID`."""
        from . import files

        chat = self.chat_for(args.conversation)
        words = list(args.args)
        action, rest = (words[0], words[1:]) if words else ("list", [])
        arity = {"list": 0, "upload": 1, "download": 2, "delete": 1}
        if arity.get(action) != len(rest):
            raise UsageError("%chat files [list] | upload PATH [--purpose P] | download ID PATH | delete ID")
        if action == "list":
            rows = [
                [f["id"], f.get("filename"), f.get("purpose"), f.get("bytes")] for f in files.list_files(chat)
            ]
            return render.table(["id", "filename", "purpose", "bytes"], rows, self.terminal)
        if action == "upload":
            meta = files.upload(chat, rest[0], args.purpose)
            return render.note(
                f"Uploaded `{meta['filename']}` as `{meta['id']}` ({meta['purpose']}).", self.terminal
            )
        if action == "download":
            path = files.download(chat, rest[0], rest[1])
            return render.note(f"Downloaded `{rest[0]}` to `{path}`.", self.terminal)
        files.delete(chat, rest[0])
        render.note(f"Deleted `{rest[0]}`.", self.terminal)

    def _mcp(self, args: argparse.Namespace) -> None:
        """The MCP servers of `mcp_servers`, their state and tools; `mcp NAME` starts NAME and
        lists its tools (the name the model sees, whether a call is asked about)."""
        from . import mcp

        if not self.mcp_servers:
            return render.note(
                "No MCP servers: `%chatconfig mcp_servers=servers.json` (the mcpServers format "
                "other MCP clients use) declares them.",
                self.terminal,
            )
        if args.args:
            rows = mcp.tools_of(self, args.args[0])
            return render.table(
                ["tool (as the model sees it)", "approval", "description"], rows, self.terminal
            )
        render.table(["server", "what", "state", "tools"], mcp.listing(self), self.terminal)

    verbs: ClassVar[dict[str, Callable[[ChatMagics, argparse.Namespace], None]]] = {
        "history": _history,
        "reset": _reset,
        "undo": _undo,
        "retry": _retry,
        "pick": _pick,
        "list": _list,
        "save": _save,
        "load": _load,
        "export": _export,
        "usage": _usage,
        "models": _models,
        "request": _request,
        "files": _files,
        "cache": _cache,
        "rebuild": _rebuild,
        "mcp": _mcp,
    }

    # -- %chatconfig ------------------------------------------------------------------

    @magic_arguments("chatconfig")
    @argument("--reset", action="store_true", help="Restore the defaults (the API key stays).")
    @argument("--key", action="store_true", help="Ask for the API key with a hidden prompt.")
    @argument("--forget-key", action="store_true", help="Forget the key set with --key (or in config).")
    @argument("--sliders", action="store_true", help="Show the parameter panel, linked to these settings.")
    @argument(
        "--ini",
        metavar="PATH",
        help="Read the [OpenAI] section of a config.ini (API_SECRET_KEY, MODEL, any setting).",
    )
    @argument("assignments", nargs="*", help='name=value pairs, e.g. temperature=0.2 stop="###"')
    @no_var_expand
    @line_magic("chatconfig")
    @guarded(settings_of=lambda magics: magics)
    def chatconfig(self, line: str) -> None:
        """Show or change settings.

        ``%chatconfig`` shows every setting and where its value came from;
        ``%chatconfig --sliders`` shows a panel of controls linked to the settings;
        ``%chatconfig temperature=0.2 max_tokens=512 stop="###"`` sets several at once
        (all or none); ``name=unset`` stops sending a parameter; ``--reset`` restores the
        defaults; ``--key`` asks for the API key without echoing it; ``--ini config.ini``
        reads the ``[OpenAI]`` section of an INI file (``API_SECRET_KEY``, ``MODEL``, …).
        """
        args = self.parse_config_line(line)
        for flag, action in CONFIG_ACTIONS:  # at most one is given (the parser refuses more)
            if getattr(args, flag) not in (None, False):
                return action(self, args)
        if not args.assignments:
            return self.show_settings()
        self.assign(args.assignments)

    def restore_defaults(self, args: argparse.Namespace) -> None:
        """``--reset``: the defaults again (the key is kept); what servers refused is forgotten."""
        self.reset()
        forgot = self.transport.learned.forget()
        learned = f"; {_refusals(forgot)} learned from servers forgotten" if forgot else ""
        render.note(f"Settings restored to their defaults (the API key is kept){learned}.", self.terminal)

    def read_ini_file(self, args: argparse.Namespace) -> None:
        """``--ini PATH``: the ``[OpenAI]`` section of an INI file."""
        values = self.apply_or_refuse(lambda: read_ini(args.ini), source=f"ini {args.ini}")
        names = ", ".join(sorted(values)).replace("api_key", "api_key (not shown)")
        render.note(f"Read {len(values)} settings from the INI file: {names}.", self.terminal)

    def assign(self, assignments: list[str]) -> None:
        """``name=value …``: all set, or none."""
        values = self.apply_or_refuse(lambda: parse_assignments(" ".join(assignments)), "%chatconfig")
        shown = (f"{k}={'unset' if getattr(self, k) is None else repr(getattr(self, k))}" for k in values)
        render.note("Set " + ", ".join(shown), self.terminal)

    def parse_config_line(self, line: str) -> argparse.Namespace:
        """``%chatconfig`` line -> its parsed arguments (one action at most); only ``UsageError``."""
        try:
            words = split_config_line(line)
        except ValueError as e:
            raise UsageError(f"cannot parse {line.strip()!r}: {e}") from None
        args, unknown = parser_of(self.chatconfig).parse_known_args(words)
        if unknown:
            raise UsageError(f"unknown option {' '.join(unknown)}; use {_CONFIG_CHOICES}")
        actions = [
            args.reset,
            args.key,
            args.forget_key,
            args.sliders,
            args.ini is not None,
            bool(args.assignments),
        ]
        if sum(actions) > 1:
            raise UsageError(f"one thing at a time: {_CONFIG_CHOICES}")
        return args

    def apply_or_refuse(self, read: Callable[[], dict[str, Any]], source: str) -> dict[str, Any]:
        """Read values and apply them all, or none (a ``UsageError`` naming the problem)."""
        values: dict[str, Any] = {}
        try:
            values = read()
            if source == "%chatconfig" and str(values.get("api_key", "")).lower() in ("unset", "none"):
                raise UsageError(
                    "api_key=unset: to forget a key set with %chatconfig --key, run "
                    "%chatconfig --forget-key (a key in OPENAI_API_KEY stays: it comes from the environment)"
                )
            if source == "%chatconfig" and "api_key" in values:
                raise UsageError(
                    "refusing api_key in a cell: it would be saved in the notebook and IPython's "
                    "history. Set OPENAI_API_KEY before starting Jupyter, or run %chatconfig --key."
                )
            if source == "%chatconfig" and "tools" in values:
                servers = self.check("mcp_servers", values.get("mcp_servers", self.mcp_servers))
                self.check_tools(self.check("tools", values["tools"]), servers)
            self.apply(values, source=source)
        except ValueError as e:
            # the values' own credentials too: an INI file's key is not set yet, but secret
            raise UsageError(redact_foreign(str(e), credentials(self, ini_credentials(values)))) from None
        return values

    def show_sliders(self) -> None:
        if self.terminal:
            raise UsageError(
                "the slider panel needs Jupyter (JupyterLab, Notebook or VS Code); "
                "in a terminal, set values with %chatconfig name=value"
            )
        from .widgets import Panel

        try:
            models = self.transport.models(self)
        except NbChatError:
            models = []  # no model list: the panel offers free text
        Panel(self, models).show()

    def forget_key(self) -> None:
        import os

        if self.api_key is None:
            raise UsageError("no key was set with %chatconfig --key; nothing to forget")
        with self.setting_from("%chatconfig --forget-key"):
            self.api_key = None
        left = (
            " OPENAI_API_KEY from the environment applies again." if os.environ.get("OPENAI_API_KEY") else ""
        )
        render.note(f"API key forgotten for this session.{left}", self.terminal)

    def ask_key(self) -> None:
        import getpass

        try:
            key = getpass.getpass("API key (hidden): ").strip()
        except KeyboardInterrupt:
            raise Interrupted("no key entered (Ctrl-C); nothing changed") from None
        if not key:
            raise UsageError("no key entered; nothing changed")
        with self.setting_from("%chatconfig --key"):
            self.api_key = Secret(key)
        render.note("API key set for this session (not saved anywhere).", self.terminal)

    def show_settings(self) -> None:
        from .connection import resolve

        connection = resolve(self)
        render.note(
            f"Requests go to {connection.kind} at {public_url(connection.url)} ({connection.url_from}); "
            f"key: {connection.key_from}.",
            self.terminal,
        )
        from .usage import price_table

        render.note(f"Prices: {price_table(len(self.prices or {}))}.", self.terminal)
        rows = []
        for name in self.setting_names():
            value = getattr(self, name)
            if name == "api_key":  # the key requests use, wherever it came from; never its value
                rows.append([name, "set" if connection.key else "not set", connection.key_from])
            else:
                rows.append([name, "unset" if value is None else repr(value), self.origin(name)])
        render.table(["setting", "value", "from"], rows, self.terminal)
        self.show_learned()

    def show_learned(self) -> None:
        """What servers refused this session, and how nbchat now asks them."""
        learned = self.transport.learned.rows()
        if not learned:
            return
        render.note(
            f"Learned from {_refusals(len(learned))} this session (`%chatconfig --reset` forgets them):",
            self.terminal,
        )
        rows = [
            [public_url(server), model, r.what, r.instead, one_line(r.said, 100)]
            for server, model, r in learned
        ]
        render.table(["server", "model", "refused", "asked now", "the server said"], rows, self.terminal)


# -- the kinds of %%chat cell --------------------------------------------------------------

_Handler = Callable[
    [ChatMagics, argparse.Namespace, dict[str, Any], str], None
]  # (magics, args, overrides, cell)
_MAP_OPTIONS = frozenset(
    {"map", "batch", "concurrency", "strict", "schema", "conversation", "out", "raw", "no_cache"}
)


class CellKind:
    """One kind of ``%%chat`` cell: how the user asks for it, the cell options it takes (any
    other it would silently ignore, so it is refused by name), how it runs and how it
    dry-runs. ``takes=None``: every option but those that belong to another kind."""

    def __init__(
        self,
        asked: str,
        takes: frozenset[str] | None,
        run: _Handler,
        dry_run: _Handler,
        sends: bool = True,
    ) -> None:
        self.asked, self.takes, self.run, self.dry_run, self.sends = asked, takes, run, dry_run, sends

    def out_of_place(self, args: argparse.Namespace) -> list[str]:
        """The cell options given that this kind of cell would ignore, as the user wrote them."""
        takes = self.takes if self.takes is not None else frozenset(CELL_OPTIONS_BY_DEST) - set(ONLY_FOR)
        return [
            opt.names[0]
            for dest, opt in CELL_OPTIONS_BY_DEST.items()
            if dest not in takes and dest != "dry_run" and getattr(args, dest) != default_of(opt)
        ]


# Every kind, in the order %%chat recognises them (the first whose test holds is the cell's
# kind). A new kind is a row here and its two methods.
CELL_KINDS: dict[str, CellKind] = {
    "compare": CellKind(
        "--compare",
        _MAP_OPTIONS - {"batch"} | {"compare", "truth"},
        ChatMagics.compare_cell,
        ChatMagics.compare_cell,
    ),
    "map": CellKind("--map", _MAP_OPTIONS, ChatMagics.map_cell, ChatMagics.map_dry_run),
    "completion": CellKind(
        "--completion",
        frozenset({"completion", "echo", "format", "out", "raw", "no_cache"}),
        ChatMagics.complete_cell,
        ChatMagics.built_dry_run,
    ),
    "image": CellKind(
        "-f image",
        frozenset({"format", "image", "size", "quality", "output_format", "out", "raw", "no_cache"}),
        ChatMagics.image_cell,
        ChatMagics.built_dry_run,
    ),
    "system": CellKind(
        "-s",
        frozenset({"system", "role", "conversation", "raw"}),
        ChatMagics.system_cell,
        ChatMagics.sends_nothing,
        sends=False,
    ),
    "example": CellKind(
        "--role assistant",
        frozenset({"role", "conversation", "raw"}),
        ChatMagics.example_cell,
        ChatMagics.sends_nothing,
        sends=False,
    ),
    "chat": CellKind("%%chat", None, ChatMagics.send_cell, ChatMagics.chat_dry_run),
}
# options that only some kinds take (a chat cell refuses them, naming the kind they go with)
ONLY_FOR: dict[str, str] = {
    "concurrency": "--map",
    "batch": "--map",
    "strict": "--map",
    "compare": "--map",
    "truth": "--compare",
}


def kind_of(args: argparse.Namespace) -> CellKind:
    """The kind of cell the options ask for."""
    if args.compare:
        return CELL_KINDS["compare"]
    if args.map or args.batch:
        return CELL_KINDS["map"]
    if args.completion:
        return CELL_KINDS["completion"]
    if args.format == "image":
        return CELL_KINDS["image"]
    if args.system or args.role == "system":
        return CELL_KINDS["system"]
    return CELL_KINDS["example" if args.role == "assistant" else "chat"]


# %chatconfig's flags, each with what it does (no flag: the settings are shown, or set)
CONFIG_ACTIONS: list[tuple[str, Callable[[ChatMagics, argparse.Namespace], None]]] = [
    ("reset", ChatMagics.restore_defaults),
    ("forget_key", lambda magics, args: magics.forget_key()),
    ("key", lambda magics, args: magics.ask_key()),
    ("sliders", lambda magics, args: magics.show_sliders()),
    ("ini", ChatMagics.read_ini_file),
]


class _Without(dict[str, Any]):
    """The user's namespace minus some names (a map's fields are filled per item)."""

    def __init__(self, namespace: Any, hidden: set[str]) -> None:
        super().__init__()
        self.namespace, self.hidden = namespace, hidden

    def __getitem__(self, name: str) -> Any:
        if name in self.hidden:
            raise KeyError(name)
        return self.namespace[name]


# One ChatMagics per shell. It lives here, not in nbchat/__init__.py, because
# %reload_ext re-executes that module: conversations and settings must survive it.
INSTANCES: weakref.WeakKeyDictionary[Any, ChatMagics] = weakref.WeakKeyDictionary()


def _refusals(count: int) -> str:
    return f"{count} refusal" if count == 1 else f"{count} refusals"


def _turns(count: int) -> str:
    return f"{count} turn" if count == 1 else f"{count} turns"
