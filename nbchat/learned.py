"""What servers refused, learned per server and model for the session: a refusal is
recognised by its words (whatever the status code), and a request is rewritten without
what was refused. Plain data: no IPython, no network."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .content import describe

# the kinds of refusal, each asked again in its own way (a content part never is)
PARAM = "param"  # a parameter: left out
MAX_TOKENS = "max_tokens"  # max_tokens: sent as max_completion_tokens (a reasoning model)
JSON_SCHEMA = "json_schema"  # the json_schema response format: json_object, schema in the system message
STREAM_OPTIONS = "stream_options"  # the usage chunk: left out (usage is estimated)
TOOLS = "tools"  # function tools on Chat Completions: the Responses API instead
PART = "part"  # an image or file: never dropped (the question would change)

# words a server uses when it refuses a parameter it was sent
_REFUSING = re.compile(
    r"not supported|unsupported|unrecogni[sz]ed|unknown (?:parameter|field|argument|name)"
    r"|not (?:allowed|permitted)|does(?: not|n't) (?:support|accept|take)|extra (?:inputs|fields|forbidden)"
    r"|only the default|not available|invalid (?:parameter|argument|field)|cannot be used"
    r"|is not valid for|should be|not a valid",
    re.I,
)
# words of a value out of range: the parameter is taken, the value is wrong (the user fixes it)
_RANGE = re.compile(r"too (?:large|small|long|high|low)|at (?:most|least)|must be|exceeds|out of range", re.I)
_RESPONSES = re.compile(r"/v1/responses|responses api|responses endpoint", re.I)
_PART_WORDS = re.compile(
    r"image|\bfiles?\b|vision|multi-?modal|content type|mmproj|input_file|pdf|audio", re.I
)
_PART_PATH = re.compile(r"messages\.?\[?(\d+)\]?\.content\.?\[?(\d+)\]?")
# what is never learned as a parameter: the request itself, and what has its own refusal
_NOT_PARAMS = (
    "model",
    "messages",
    "input",
    "stream",
    "tools",
    "tool_choice",
    "response_format",
    "stream_options",
)
# a setting's name on each wire API, where the Responses API names it otherwise
_RESPONSES_NAMES = {"max_tokens": "max_output_tokens", "logprobs": "top_logprobs"}
_NESTED = {"reasoning_effort": ("reasoning", "effort"), "verbosity": ("text", "verbosity")}


@dataclass(frozen=True)
class Refusal:
    """One thing a server refused: its kind, what it was (a parameter's name, a part's
    description) and the server's words."""

    kind: str
    name: str = ""
    said: str = ""
    message: int = 0  # a refused part's message, counted from 1

    @property
    def what(self) -> str:
        return {
            PARAM: self.name,
            MAX_TOKENS: "max_tokens",
            JSON_SCHEMA: "the json_schema response format",
            STREAM_OPTIONS: "stream_options",
            TOOLS: "function tools on Chat Completions",
        }.get(self.kind, f"the {self.name} {self.part} in message {self.message}")

    @property
    def instead(self) -> str:
        """How the request is asked once more (and from then on)."""
        return {
            PARAM: f"without {self.name}",
            MAX_TOKENS: "with max_completion_tokens",
            JSON_SCHEMA: "with json_object and the schema in the system message",
            STREAM_OPTIONS: "without stream_options",
            TOOLS: "through the Responses API",
        }.get(self.kind, "")

    @property
    def part(self) -> str:
        return "image" if self.name.startswith("[image") else "file"


def recognise(body: Mapping[str, Any], said: str, param: Any = None, api: str = "chat") -> Refusal | None:
    """The refusal ``said`` (the server's words, with the ``param`` its error names) is of
    something ``body`` sent; ``None`` when it is another failure."""
    param = param if isinstance(param, str) else ""
    words = f"{param} {said}"
    part = _part(body, said, param)
    if part is not None:
        return part
    if api == "chat" and body.get("tools") and _RESPONSES.search(said):
        return Refusal(TOOLS, said=said)
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        if re.search(r"json_schema|response_format|json_object", words):
            return Refusal(JSON_SCHEMA, said=said)
    if "stream_options" in body and re.search(r"stream_options|include_usage", words):
        return Refusal(STREAM_OPTIONS, said=said)
    if not _REFUSING.search(said) and (not param or _RANGE.search(said)):
        return None
    for key in _sent(body):
        if key == param or _names(said, key):
            name = _setting(key)
            if name == "max_tokens" and "max_completion_tokens" in said:
                return Refusal(MAX_TOKENS, "max_tokens", said)
            return Refusal(PARAM, name, said)
    return None


def _names(said: str, key: str) -> bool:
    """``said`` names the parameter ``key``: quoted, or (a name no sentence uses otherwise:
    ``max_tokens``, ``temperature``) as a word of its own."""
    if re.search(rf"['\"`]{re.escape(key)}['\"`]", said):
        return True
    if re.search(
        rf"(?:argument|parameter|field|param)s?(?: supplied)?:?\s+{re.escape(key)}(?!\w)", said, re.I
    ):
        return True
    distinct = "_" in key or "." in key or len(key) >= 8
    return distinct and re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", said) is not None


def _sent(body: Mapping[str, Any]) -> list[str]:
    """The parameters of ``body`` a refusal may name, nested ones as ``reasoning.effort``."""
    keys = [k for k in body if k not in _NOT_PARAMS]
    for outer, inner in _NESTED.values():
        value = body.get(outer)
        if isinstance(value, Mapping) and inner in value:
            keys.insert(0, f"{outer}.{inner}")
    return keys


def _setting(key: str) -> str:
    """A body's parameter as the setting that sends it (the name %chatconfig uses)."""
    if key == "top_logprobs":
        return "logprobs"
    if key in ("max_output_tokens", "max_completion_tokens"):
        return "max_tokens"
    for name, (outer, inner) in _NESTED.items():
        if key in (f"{outer}.{inner}", outer):
            return name
    return key


def _part(body: Mapping[str, Any], said: str, param: str) -> Refusal | None:
    """A refused image or file: the part the error's ``param`` names, else one its words
    name by type, else the first (when the words speak of images or files at all)."""
    messages = body.get("messages") or body.get("input") or []
    found = [
        (i, j, part)
        for i, m in enumerate(messages if isinstance(messages, list) else [])
        if isinstance(m, Mapping) and isinstance(m.get("content"), list)
        for j, part in enumerate(m["content"])
        if isinstance(part, Mapping) and part.get("type") not in ("text", "input_text", "output_text")
    ]
    if not found:
        return None
    named = _PART_PATH.search(param)
    if not named and not _PART_WORDS.search(said):
        return None
    picked = next((f for f in found if named and (f[0], f[1]) == (int(named[1]), int(named[2]))), None)
    i, _, part = picked or next((f for f in found if str(f[2].get("type")) in said), found[0])
    return Refusal(PART, describe(_as_chat_part(part)), said, i + 1)


def _as_chat_part(part: Mapping[str, Any]) -> Mapping[str, Any]:
    """A Responses input part as the chat part ``describe`` reads."""
    if part.get("type") == "input_image":
        return {"type": "image_url", "image_url": {"url": part.get("image_url", "")}}
    if part.get("type") == "input_file":
        return {"type": "file", "file": {k: v for k, v in part.items() if k != "type"}}
    return part


def part_message(refusal: Refusal, status: int | None) -> str:
    """The cell's failure when a server refuses an image or file: the part, the server's
    words, what to do."""
    what, said = refusal.part, refusal.said.rstrip(".")
    code = f"{status}: " if status else ""
    return (
        f"{code}the server rejected the {refusal.name} {what} in message {refusal.message} ({said}). "
        f"This model or server may not take {what}s: use a model that does, or send the cell without "
        f"--{what} and without {{fields}} that hold {what}s."
    )


def first_part(body: Mapping[str, Any]) -> str | None:
    """For a stream that ended before any reply (some servers just close it when a model
    cannot read an image): the first image or file the request carried, and what to do."""
    refusal = _part(body, "image", "")
    if refusal is None:
        return None
    what = refusal.part
    return (
        f"The request carried the {refusal.name} {what} in message {refusal.message}, which this model "
        f"or server may not take: use a model that does, or send the cell without --{what}"
    )


def without(
    body: dict[str, Any], refusals: Iterable[Refusal], api: str = "chat"
) -> list[tuple[Refusal, str]]:
    """Rewrite ``body`` in place without what was refused (the parameters it leaves out,
    ``max_completion_tokens`` for ``max_tokens``, no ``stream_options``); return each
    refusal that changed it, with how in a few words. A schema and tools are asked for
    otherwise by their owners."""
    done = []
    for refusal in refusals:
        if refusal.kind == PARAM and _drop(body, refusal.name, api):
            done.append((refusal, f"{refusal.name} not sent"))
        elif refusal.kind == MAX_TOKENS and api == "chat" and "max_tokens" in body:
            body["max_completion_tokens"] = body.pop("max_tokens")
            done.append((refusal, "max_completion_tokens for max_tokens"))
        elif refusal.kind == STREAM_OPTIONS and body.pop("stream_options", None) is not None:
            done.append((refusal, "no stream_options"))
    return done


def _drop(body: dict[str, Any], name: str, api: str) -> bool:
    if api == "responses" and name in _NESTED:
        outer, inner = _NESTED[name]
        nested = body.get(outer)
        if not isinstance(nested, dict) or inner not in nested:
            return False
        body[outer] = {k: v for k, v in nested.items() if k != inner}
        if not body[outer]:
            del body[outer]
        return True
    key = _RESPONSES_NAMES.get(name, name) if api == "responses" else name
    if key == "max_tokens" and "max_completion_tokens" in body:
        key = "max_completion_tokens"
    if key not in body:
        return False
    del body[key]
    if name == "logprobs":
        body.pop("top_logprobs", None)
        if api == "responses" and isinstance(body.get("include"), list):
            body["include"] = [i for i in body["include"] if "logprobs" not in i]
    return True


class Learned:
    """The session's memory of refusals, by server and model (``%chatconfig`` lists it,
    ``%chatconfig --reset`` forgets it)."""

    def __init__(self) -> None:
        self._by: dict[tuple[str, str], dict[tuple[str, str], Refusal]] = {}

    def add(self, server: str, model: str, refusal: Refusal) -> None:
        if refusal.kind != PART:  # a part is refused every time: nothing to ask otherwise
            self._by.setdefault((server, model), {})[(refusal.kind, refusal.name)] = refusal

    def of(self, server: str, model: str) -> list[Refusal]:
        return list(self._by.get((server, model), {}).values())

    def has(self, server: str, model: str, kind: str) -> bool:
        return any(r.kind == kind for r in self.of(server, model))

    def rows(self) -> list[tuple[str, str, Refusal]]:
        return [(server, model, r) for (server, model), found in self._by.items() for r in found.values()]

    def forget(self) -> int:
        count = len(self.rows())
        self._by.clear()
        return count

    def __bool__(self) -> bool:
        return bool(self._by)
