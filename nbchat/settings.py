"""Every nbchat setting, declared once as a trait, and how a line of text sets them."""

from __future__ import annotations

import ast
import functools
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from traitlets import (
    All,
    Bool,
    Dict,
    Enum,
    Float,
    Int,
    List,
    TraitError,
    TraitType,
    Unicode,
    default,
    observe,
    validate,
)
from traitlets.config import Configurable

from .errors import BadSetting
from .mcpconfig import ServersTrait
from .secret import SecretTrait, credentials, redact_foreign
from .values import URL, HeadersTrait, ModelName, NonEmptyText, PricesTrait, SettingError

# Connection settings whose default comes from the environment, as in the openai SDK.
ENV_VARS = {
    "base_url": "OPENAI_BASE_URL",
    "organization": "OPENAI_ORG_ID",
    "project": "OPENAI_PROJECT_ID",
    "api_key": "OPENAI_API_KEY",
    "azure_endpoint": "AZURE_OPENAI_ENDPOINT",
    "api_version": "OPENAI_API_VERSION",
    "cache": "NBCHAT_CACHE",
    "cache_path": "NBCHAT_CACHE_PATH",
}
CACHE_MODES = ("replay", "refresh", "off", "only")
_TOOL_NAME = re.compile(r"[A-Za-z_][\w.-]*")


def ask_again(mode: str) -> str:
    """The cache mode of a request that asks the model again (``--no-cache``, a retry): its
    answer replaces the stored one — except under ``off`` (nothing stored) and ``only``
    (strict replay: nothing is ever sent, so a retry replays too)."""
    return mode if mode in ("off", "only") else "refresh"


UNSET_WORDS = {"unset", "none", "null"}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
# Names by class (subclasses such as ChatMagics may add traits), computed once each.
_SETTING_NAMES: dict[type, tuple[str, ...]] = {}
_REQUEST_NAMES: dict[type, tuple[str, ...]] = {}


def _num(x: float) -> str:
    return f"{x:g}"


def _signed(x: float) -> str:
    return _num(x).replace("-", "−")  # a minus sign, so "−2–2" reads as a range


def _sampling(trait: TraitType[Any, Any], **tags: Any) -> TraitType[Any, Any]:
    """A request parameter: unset (None) means "not sent, the server's default applies".

    Its help gets the trait's bounds appended (``%config``, ``%%chat?`` and the panel show
    them); ``%%chat`` gets an option for it (``short="-t"`` adds a short form, ``metavar``
    names the value) and the panel a control (``api_default=`` is what the API does when
    the parameter is not sent, shown while unset; ``panel=False`` leaves it off). Tag a
    setting ``cell=True`` instead of ``request=True`` for a per-cell option that is not a
    request parameter.
    """
    trait.help = with_bounds(trait.help.rstrip("."), trait)
    return trait.tag(config=True, request=True, **tags)


def with_bounds(text: str, trait: TraitType[Any, Any]) -> str:
    """``text`` plus the trait's range, as in "Sampling temperature (0–2)."."""
    low, high = getattr(trait, "min", None), getattr(trait, "max", None)
    if isinstance(trait, List):
        high = trait._maxlen if trait._maxlen < sys.maxsize else None
        bounds = f"up to {high}" if high else ""
    elif low is not None and high is not None:
        bounds = f"{_signed(low)}–{_signed(high)}"
    elif low is not None:
        bounds = f"≥ {_signed(low)}"
    elif high is not None:
        bounds = f"≤ {_signed(high)}"
    else:
        bounds = ""
    return f"{text} ({bounds})." if bounds else f"{text}."


class Settings(Configurable):
    """Every setting of ``%chatconfig``. ``ChatMagics`` inherits them; :class:`nbchat.Chat` owns one."""

    # where the user of these settings puts a key (ChatMagics says it in a notebook's words)
    key_hint: ClassVar[str] = "pass Chat(api_key=...)"
    key_env_where: ClassVar[str] = "Python starts from"

    model = _sampling(ModelName("gpt-4o-mini", help="Model id sent with each request"), short="-m")
    temperature = _sampling(
        Float(None, allow_none=True, min=0.0, max=2.0, help="Sampling temperature"),
        short="-t",
        api_default=1.0,
    )
    top_p = _sampling(
        Float(None, allow_none=True, min=0.0, max=1.0, help="Nucleus sampling mass"), api_default=1.0
    )
    max_tokens = _sampling(Int(None, allow_none=True, min=1, help="Most tokens the reply may have"))
    frequency_penalty = _sampling(
        Float(None, allow_none=True, min=-2.0, max=2.0, help="Frequency penalty"), api_default=0.0
    )
    presence_penalty = _sampling(
        Float(None, allow_none=True, min=-2.0, max=2.0, help="Presence penalty"), api_default=0.0
    )
    stop = _sampling(
        List(
            NonEmptyText(),
            default_value=None,
            allow_none=True,
            minlen=1,
            maxlen=4,
            help="Strings where the reply stops",
        ),
        api_default=[],
    )
    n = _sampling(
        Int(
            None,
            allow_none=True,
            min=1,
            max=128,
            help="Choices to generate; choice 1 continues the conversation",
        ),
        api_default=1,
    )
    seed = _sampling(Int(None, allow_none=True, help="Seed for best-effort determinism"))
    logprobs = _sampling(
        Int(
            None,
            allow_none=True,
            min=0,
            max=20,
            help="Ask for token log-probabilities with this many top alternatives",
        ),
        metavar="K",
        panel=False,  # a way of looking at a reply (--logprobs shows it), not a sampling knob
    )
    reasoning_effort = _sampling(
        Enum(
            ["none", "minimal", "low", "medium", "high", "xhigh"],
            None,
            allow_none=True,
            help="How much a reasoning model thinks before it answers (reasoning models only).",
        ),
        api_default="medium",
    )
    verbosity = _sampling(
        Enum(["low", "medium", "high"], None, allow_none=True, help="How long the answer is (GPT-5 models)."),
        api_default="medium",
    )
    stream = Bool(True, help="Stream the reply as it is generated.").tag(config=True, cell=True)
    api = Enum(
        ["chat", "responses"],
        "chat",
        help="Wire API for %%chat: chat (Chat Completions) or responses (the Responses API, nothing stored).",
    ).tag(config=True)
    reasoning_summary = Enum(
        ["auto", "concise", "detailed"],
        "auto",
        allow_none=True,
        help="api=responses: ask reasoning models for a summary of their thinking (unset: none).",
    ).tag(config=True)
    image_model = Unicode("gpt-image-1", help="Model for %%chat -f image (generations and edits).").tag(
        config=True
    )
    completion_model = Unicode(
        "gpt-3.5-turbo-instruct", help="Model for %%chat --completion (the legacy Completions API)."
    ).tag(config=True)

    system_prompt = Unicode(
        None, allow_none=True, help="System prompt for conversations that have none of their own."
    ).tag(config=True)
    base_url = URL(
        None, allow_none=True, help="Server URL (OpenAI-compatible), e.g. http://localhost:11434/v1."
    ).tag(config=True)
    api_key = SecretTrait(help="API key. Prefer OPENAI_API_KEY or %chatconfig --key; never shown.").tag(
        config=True
    )
    organization = Unicode(None, allow_none=True, help="OpenAI organization id.").tag(config=True)
    project = Unicode(None, allow_none=True, help="OpenAI project id.").tag(config=True)
    azure_endpoint = URL(
        None,
        allow_none=True,
        help="Azure OpenAI endpoint, e.g. https://myres.openai.azure.com (selects Azure).",
    ).tag(config=True)
    azure_deployment = Unicode(
        None, allow_none=True, help="Azure OpenAI deployment name (default: the model setting)."
    ).tag(config=True)
    api_version = Unicode(None, allow_none=True, help="Azure OpenAI api-version, e.g. 2024-10-21.").tag(
        config=True
    )
    default_headers = HeadersTrait(
        {}, help='Extra HTTP headers sent with every request, e.g. {"X-Team": "data"}.'
    ).tag(config=True)
    timeout = Float(
        None,
        allow_none=True,
        min=0.1,
        max=86400.0,
        help="Seconds to wait for the first token and between tokens (default: 600)",
    ).tag(config=True)
    max_retries = Int(2, min=0, max=20, help="Retries for connection errors, 408/409/429 and 5xx.").tag(
        config=True
    )

    output = Enum(["markdown", "text", "widget"], "markdown", help="How replies are shown.").tag(config=True)
    show_usage = Bool(True, help="Show the footer with tokens, cost and latency.").tag(config=True)
    rerun = Enum(
        ["replace", "append"],
        "replace",
        help="Re-running a %%chat cell replaces its earlier exchange, or appends a new one.",
    ).tag(config=True)
    keep_partial = Bool(False, help="Keep the part of a reply that arrived before a kernel interrupt.").tag(
        config=True
    )
    max_context_tokens = Int(
        None,
        allow_none=True,
        min=1,
        help="Leave the oldest turns out of a request whose estimate exceeds this.",
    ).tag(config=True)
    context_tokens = Int(
        2000,
        min=50,
        help="Most tokens one substituted value ({df}, {Err}, an earlier cell) may take; longer is cut.",
    ).tag(config=True)
    image_max_side = Int(
        1024, min=64, max=8192, help="Images are scaled so their longer side is at most this many pixels."
    ).tag(config=True)
    # as %%chat options, --tools adds to the setting's tools for that cell
    tools = List(
        Unicode(),
        [],
        help="Functions of yours the model may call, by name (built-ins: variables, describe, python); "
        "an MCP server's name offers its tools, NAME.TOOL one of them.",
    ).tag(config=True, cell=True, panel=False, metavar="NAME[,NAME…]")
    tool_approval = Enum(
        ["ask", "auto"], "ask", help="ask: confirm each tool call with a prompt; auto: run calls unasked."
    ).tag(config=True, cell=True, panel=False)
    max_tool_steps = Int(
        8, min=1, max=100, help="Most rounds of tool calls in one cell before nbchat stops the loop."
    ).tag(config=True, cell=True, panel=False)
    mcp_servers = ServersTrait(
        help='MCP servers whose tools --tools NAME offers: a JSON file, or a dict like {"mcpServers": '
        '{"fs": {"command": "npx", "args": [...]}}} (env values and headers are kept hidden).'
    ).tag(config=True, panel=False)
    mcp_timeout = Float(
        60.0, min=0.1, max=86400.0, help="Seconds an MCP server may take to start or to answer one call."
    ).tag(config=True, panel=False)
    confirm_cost = Float(
        1.0, min=0.0, help="A map or batch estimated to cost more than this (USD) asks before it starts."
    ).tag(config=True)
    budget = Float(
        None,
        allow_none=True,
        min=0.0,
        help="Most this kernel may spend (USD): each request is checked before it is sent (unset: no limit).",
    ).tag(config=True)
    prices = PricesTrait(
        {},
        help='Per-model USD per million tokens, e.g. {"my-model": [0.5, 1.5]} (input, output).',
    ).tag(config=True)

    cache = Enum(
        CACHE_MODES,
        "replay",
        help="Reply cache: replay answers a request seen before from the cache (nothing is sent); "
        "refresh always asks and stores; off neither reads nor writes; only replays and never sends "
        "(CI: a request not in the cache fails the cell).",
    ).tag(config=True)
    cache_path = Unicode(
        help="The reply cache's SQLite file (default: $NBCHAT_CACHE_PATH, "
        "else $XDG_CACHE_HOME/nbchat/replies.sqlite3, else ~/.cache/nbchat/replies.sqlite3)."
    ).tag(config=True)

    @default("cache")
    def _cache_from_env(self) -> str:
        # lets CI (or a test suite) choose without touching config files
        value = os.environ.get("NBCHAT_CACHE", "").strip().lower()
        return value if value in CACHE_MODES else "replay"

    @default("cache_path")
    def _cache_path_from_env(self) -> str:
        explicit = os.environ.get("NBCHAT_CACHE_PATH")
        if explicit:
            return explicit
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "nbchat", "replies.sqlite3")

    @default("base_url")
    def _base_url_from_env(self) -> str | None:
        return _env_url("OPENAI_BASE_URL")

    @default("azure_endpoint")
    def _azure_endpoint_from_env(self) -> str | None:
        return _env_url("AZURE_OPENAI_ENDPOINT")

    @default("api_version")
    def _api_version_from_env(self) -> str | None:
        return os.environ.get("OPENAI_API_VERSION") or None

    @default("organization")
    def _organization_from_env(self) -> str | None:
        return os.environ.get("OPENAI_ORG_ID") or None

    @default("project")
    def _project_from_env(self) -> str | None:
        return os.environ.get("OPENAI_PROJECT_ID") or None

    @validate("tools")
    def _tool_names(self, proposal: Mapping[str, Any]) -> list[str]:
        """``tools=lookup,describe`` and ``tools=["lookup"]`` both give a list of names."""
        names = [n.strip() for entry in proposal["value"] for n in str(entry).split(",") if n.strip()]
        # an MCP server's name may hold - and ., and NAME.TOOL names one of its tools
        bad = next((n for n in names if not _TOOL_NAME.fullmatch(n)), None)
        if bad is not None:
            raise TraitError(f"{bad!r} is not a function name (nor an MCP server's NAME or NAME.TOOL)")
        return names

    # Where each value came from, for `%chatconfig`. Config is applied inside
    # Configurable.__init__, before any __init__ of ours runs, hence the lazy dicts.
    @observe(All)
    def _note_origin(self, change: Mapping[str, Any]) -> None:
        origins = self.__dict__.setdefault("_origins", {})
        origins[change["name"]] = self.__dict__.get("_source", "config")

    @contextmanager
    def setting_from(self, source: str) -> Any:
        """Attribute the changes made in this block to ``source`` (e.g. ``%chatconfig``)."""
        previous = self.__dict__.get("_source", "config")
        self.__dict__["_source"] = source
        try:
            yield
        finally:
            self.__dict__["_source"] = previous

    def origin(self, name: str) -> str:
        origins = self.__dict__.get("_origins", {})
        if name in origins:
            return str(origins[name])
        env = ENV_VARS.get(name)
        if env and os.environ.get(env):
            return f"env {env}"
        return "default"

    def setting_names(self) -> list[str]:
        cls = type(self)
        if cls not in _SETTING_NAMES:
            _SETTING_NAMES[cls] = tuple(sorted(self.class_trait_names(config=True)))
        return list(_SETTING_NAMES[cls])

    def request_values(self) -> dict[str, Any]:
        """The request parameters as set now (``None`` = unset, not sent)."""
        cls = type(self)
        if cls not in _REQUEST_NAMES:  # looking traits up by tag costs more than a warm request's rest
            _REQUEST_NAMES[cls] = tuple(self.class_trait_names(request=True))
        return {name: getattr(self, name) for name in _REQUEST_NAMES[cls]}

    # -- validation shared by %chatconfig, per-cell options and Chat(**kw) ------------

    def check(self, name: str, value: Any) -> Any:
        """Coerce and validate one value for setting ``name``; raise ``BadSetting`` (a ``ValueError``)."""
        # the class attribute is the trait itself (cheaper than self.traits())
        trait = getattr(type(self), name) if name in self.setting_names() else None
        if trait is None:
            raise BadSetting(unknown_setting(name, self.setting_names()))
        value = coerce(trait, value)
        try:
            return trait.validate(self, value) if value is not None else _none_ok(trait, name)
        except SettingError as e:
            raise BadSetting(str(e)) from None
        except TraitError:
            shown = redact_foreign(repr(value), credentials(self))
            raise BadSetting(f"{name} must be {describe(trait)} (got {shown})") from None

    def checked(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Validate several values; the first bad one raises, naming the setting."""
        return {name: self.check(name, value) for name, value in values.items()}

    def apply(self, values: Mapping[str, Any], source: str) -> None:
        """Set several values at once: all of them, or (on a bad one) none."""
        checked = self.checked(values)
        with self.setting_from(source), self.hold_trait_notifications():
            for name, value in checked.items():
                setattr(self, name, value)

    def reset(self, keep: Iterable[str] = ("api_key",)) -> None:
        """Restore the built-in (and environment) defaults, except the names in ``keep``."""
        names = [name for name in self.setting_names() if name not in keep]
        defaults = self.trait_defaults(*names)
        assert isinstance(defaults, dict)  # several names give a dict
        with self.setting_from("default"), self.hold_trait_notifications():
            for name in names:
                setattr(self, name, defaults[name])
        origins = self.__dict__.setdefault("_origins", {})
        for name in names:
            origins.pop(name, None)


def _env_url(variable: str) -> str | None:
    """A URL setting's default from the environment. It is held as found (a bad one must
    not make every use of the settings fail); the transport checks it before a request."""
    from .values import FromEnvironment

    value = (os.environ.get(variable) or "").strip()
    return FromEnvironment(value) if value else None


def _none_ok(trait: TraitType[Any, Any], name: str) -> Any:
    if isinstance(trait, List) and not trait.allow_none:
        return trait.default()  # a list setting unset is its empty default (tools=unset: none)
    if not trait.allow_none:
        raise BadSetting(f"{name} cannot be unset; it must be {describe(trait)}")
    return None


def coerce(trait: TraitType[Any, Any], value: Any) -> Any:
    """Turn what a user typed (already literal-parsed) into the trait's type."""
    if isinstance(trait, Enum) and value in (trait.values or ()):
        return value  # reasoning_effort=none is a value of its own, not "unset"
    if isinstance(value, str) and value.strip().lower() in UNSET_WORDS:
        return None
    if isinstance(trait, Bool) and isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    if isinstance(trait, List) and isinstance(value, str):
        return [value]
    if isinstance(trait, List) and isinstance(value, tuple):
        return list(value)
    if isinstance(trait, Unicode) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(trait, (Float, Int)) and isinstance(value, bool):
        return "not a number"  # bool is an int; refuse it rather than send 1
    if isinstance(value, float) and not math.isfinite(value):
        return "not a finite number"  # nan slips past min/max checks and breaks JSON
    if isinstance(trait, Int) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def describe(trait: TraitType[Any, Any]) -> str:
    """The valid values of a trait, for error messages."""
    if isinstance(trait, (URL, HeadersTrait, ModelName, PricesTrait)):
        return str(trait.info_text)
    if isinstance(trait, Enum):
        return "one of " + ", ".join(map(str, trait.values or ()))
    if isinstance(trait, Bool):
        return "true or false"
    if isinstance(trait, (Int, Float)):
        kind = "an integer" if isinstance(trait, Int) else "a number"
        low, high = getattr(trait, "min", None), getattr(trait, "max", None)
        if low is not None and high is not None:
            return f"{kind} from {_num(low)} to {_num(high)}"
        if low is not None:
            return f"{kind} ≥ {_num(low)}"
        return kind
    if isinstance(trait, List) and trait.name == "tools":
        return "function names, e.g. lookup,describe"
    if isinstance(trait, List):
        return "a string or a list of up to 4 strings, none empty"
    if isinstance(trait, Dict):
        return 'a dict like {"model": [input_usd, output_usd]}'
    return "a string"


def unknown_setting(name: str, names: list[str]) -> str:
    import difflib

    # "system" means system_prompt, not the closer-spelled "stream": a setting the name
    # starts (or is a word of) wins over one that is merely spelled alike
    words = [n for n in names if name and (n.startswith(name) or name in n.split("_"))]
    close = words[:1] or difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]}?" if close else ""
    return f"unknown setting {name!r}.{hint} Settings: {', '.join(names)}"


# `name=value` where value is quoted, bracketed, braced or a bare word.
_QUOTED = r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"""


def _bracketed(depth: int) -> str:
    """``{…}`` or ``[…]`` nested up to ``depth`` levels, quotes respected: a greedy
    ``\\{.*\\}`` would swallow the next ``name={…}`` on the line."""
    inner = r"[^\[\]{}\"']" if depth == 0 else rf"[^\[\]{{}}\"']|{_bracketed(depth - 1)}"
    return rf"\{{(?:{inner}|{_QUOTED})*\}}|\[(?:{inner}|{_QUOTED})*\]"


# a value: quoted, bracketed, a bare word -- or nothing at all when the line ends or the
# next name=value follows (`model=` is a blank model, refused by its setting)
_VALUE = rf"(?:(?=\s*$|\s+[A-Za-z_]\w*\s*=|\s+--)|\s*(?:{_QUOTED}|{_bracketed(3)}|\S+))"


# compiled when first used: these patterns take longer to compile than the rest of
# %load_ext takes altogether
@functools.cache
def _assignment() -> re.Pattern[str]:
    return re.compile(rf"""\s*([A-Za-z_]\w*)\s*=({_VALUE})""")


# a name=value pair as above, or any other word (quoted or not)
@functools.cache
def _config_word() -> re.Pattern[str]:
    return re.compile(
        rf"""\s*(?:(?P<assignment>[A-Za-z_]\w*\s*={_VALUE})"""
        r"""|(?P<word>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\S+))"""
    )


def split_config_line(line: str) -> list[str]:
    """The words of a ``%chatconfig`` line: each ``name=value`` whole and as written (its
    value is read as a Python literal later), other words shell-like, without their quotes."""
    import shlex

    words: list[str] = []
    pos = 0
    while line[pos:].strip():
        match = _config_word().match(line, pos)
        assert match is not None  # \S+ matches whatever is left
        if match["assignment"]:
            words.append(match["assignment"])
        else:
            words.extend(shlex.split(match["word"]))
        pos = match.end()
    return words


def parse_assignments(line: str) -> dict[str, Any]:
    """``temperature=0.2 stop="###" stop=["a","b"]`` -> values (raises ``ValueError``)."""
    values: dict[str, Any] = {}
    pos = 0
    line = line.strip()
    while pos < len(line):
        match = _assignment().match(line, pos)
        if not match:
            bad = line[pos:].split()[0]
            raise ValueError(f"expected name=value, got {bad!r}")
        name, raw = match.groups()
        if name in values:  # which one was meant? refuse rather than let the last one win
            raise ValueError(f"{name} is given twice; give it once")
        values[name] = literal(raw.strip())
        pos = match.end()
        while pos < len(line) and line[pos].isspace():
            pos += 1
    return values


def literal(raw: str) -> Any:
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


INI_ALIASES = {"api_secret_key": "api_key", "openai_api_key": "api_key"}


def read_ini(path: str) -> dict[str, Any]:
    """The ``[OpenAI]`` section of a classic ``config.ini``: ``API_SECRET_KEY``, ``MODEL``
    and any setting by its name (raises ``ValueError``)."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        raise ValueError(f"no such file: {path!r}") from None
    except (OSError, UnicodeDecodeError, configparser.Error) as e:
        raise ValueError(f"cannot read {path!r} as an INI file: {type(e).__name__}") from None
    section = next((name for name in parser.sections() if name.lower() == "openai"), None)
    if section is None:
        raise ValueError(f"{path!r} has no [OpenAI] section")
    values: dict[str, Any] = {}
    for key, raw in parser.items(section):
        name = INI_ALIASES.get(key.lower(), key.lower())
        values[name] = raw.strip() if name == "api_key" else literal(raw.strip())
    return values


def ini_credentials(values: Mapping[str, Any]) -> list[str]:
    """The credentials among values read from an INI file (not set yet, still secrets)."""
    from types import SimpleNamespace

    from .secret import SOURCES, Secret

    fields = dict(values)
    key = fields.get("api_key")
    fields["api_key"] = Secret(key) if isinstance(key, str) else None
    if not isinstance(fields.get("default_headers"), dict):
        fields["default_headers"] = {}
    for name in ("base_url", "azure_endpoint"):
        if not isinstance(fields.get(name), str):
            fields[name] = None
    view = SimpleNamespace(**fields)
    return [s for fn in SOURCES for s in fn(view) if s]
