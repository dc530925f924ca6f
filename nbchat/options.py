"""The options of a ``%%chat`` line: one per per-cell setting, generated from its trait,
and the options that belong to the cell itself. No IPython (the magics turn these into
their parser)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from traitlets import Bool, Enum, Float, HasTraits, Int, List, TraitType, Unicode

from .settings import literal


@dataclass(frozen=True)
class Option:
    """One command-line option: its names and ``argparse.add_argument`` keywords.
    ``setting`` names the setting it overrides for one cell (``None``: a cell option)."""

    names: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    setting: str | None = None


def option(*names: str, **kwargs: Any) -> Option:
    return Option(names, kwargs)


def setting_options(cls: type[HasTraits]) -> list[Option]:
    """An option for each setting a cell may override, in declaration order.

    Which settings: those tagged ``request=True`` (sent with the request) or
    ``cell=True`` (a per-cell override that is not a request parameter, like ``stream``).
    The option is ``--the-name`` (``-n`` for a one-letter name), plus the trait's
    ``short`` tag; its type, choices and help (with the bounds) come from the trait.
    """
    options = []
    for name, trait in _declared(cls):
        tags = trait.metadata
        if not (tags.get("request") or tags.get("cell")):
            continue
        names = [f"-{name}"] if len(name) == 1 else [f"--{name.replace('_', '-')}"]
        if tags.get("short"):
            names.insert(0, str(tags["short"]))
        kwargs = {"dest": name, "help": trait.help, **_parse_as(trait)}
        if kwargs.get("action") == "append":
            kwargs["help"] = f"{trait.help.rstrip('.')}; repeat the option for each."
        if tags.get("metavar"):
            kwargs["metavar"] = tags["metavar"]
        options.append(Option(tuple(names), kwargs, setting=name))
    return options


def _declared(cls: type[HasTraits]) -> list[tuple[str, TraitType[Any, Any]]]:
    seen: dict[str, TraitType[Any, Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, TraitType):
                seen[name] = value
    return list(seen.items())


def _parse_as(trait: TraitType[Any, Any]) -> dict[str, Any]:
    """How argparse reads a value for ``trait``; the setting's own check validates it after."""
    if isinstance(trait, Bool):
        return {"action": argparse.BooleanOptionalAction}
    if isinstance(trait, Enum):
        return {"choices": list(trait.values or ())}
    if isinstance(trait, List):
        return {"action": "append", "metavar": "TEXT"}
    if isinstance(trait, Int):
        return {"type": int, "metavar": "N"}
    if isinstance(trait, Float):
        return {"type": float, "metavar": "X"}
    if isinstance(trait, Unicode):
        return {}
    return {"type": literal}  # dicts and anything newer: a Python/JSON literal, or the text


# The options of %%chat that are not settings.
#
# To add one: append an ``option(...)`` here (its ``dest`` becomes an attribute of the
# parsed arguments), then read it in ``ChatMagics.chat_cell`` (or hand it on to
# ``Chat.stream``). A new *setting* needs no entry: tag its trait ``request=True`` (a
# request parameter) or ``cell=True`` (a per-cell override only) and the option appears,
# with its type, bounds and help, in the parser and in ``%%chat?``.
CELL_OPTIONS: list[Option] = [
    option("-s", "--system", action="store_true", help="Make the cell the system prompt (nothing is sent)."),
    option(
        "--role",
        choices=["user", "system", "assistant"],
        help="Add the cell with this role; assistant adds an example reply without a request.",
    ),
    option("-c", "--conversation", default="default", help="Conversation name (default: default)."),
    option("--new", action="store_true", help="Start the conversation over (keeps its system prompt)."),
    option(
        "--no-history", action="store_true", help="Send only the system prompt and this cell; record nothing."
    ),
    option(
        "-f",
        "--format",
        choices=["markdown", "text", "code", "widget", "image"],
        help="Reply view: code also puts the first code block in the next cell; widget is the chat view.",
    ),
    option("-o", "--out", metavar="NAME", help="Also store the reply in the variable NAME."),
    option("--raw", action="store_true", help="Send {name} fields as written (no substitution)."),
    option(
        "--dry-run",
        action="store_true",
        help="Show the exact request this cell would send; send nothing, record nothing.",
    ),
    option("--no-cache", action="store_true", help="Ask the model even if the reply cache has an answer."),
    option(
        "--completion",
        action="store_true",
        help="Send the cell as a raw prompt to the legacy Completions API (completion_model; no history).",
    ),
    option("--echo", action="store_true", help="--completion: return the prompt too (to score it)."),
    option(
        "--size", help="-f image: image size, e.g. 1024x1024, 1536x1024 (gpt-image-1), 1792x1024 (dall-e-3)."
    ),
    option("--quality", help="-f image: low, medium, high, auto (gpt-image-1); standard, hd (dall-e-3)."),
    option(
        "--output-format",
        choices=["png", "jpeg", "webp"],
        help="-f image: the image's file type (GPT image models; default png).",
    ),
    option(
        "--context",
        type=int,
        metavar="N",
        help="Add the previous N executed cells (source, output, error) as notebook context.",
    ),
    option("--image", action="append", metavar="PATH_OR_URL", help="Attach an image (repeatable)."),
    option("--file", action="append", metavar="PATH", help="Attach a file, e.g. a PDF (repeatable)."),
    option("--detail", choices=["low", "high", "auto"], help="Image detail (low: 85 tokens an image)."),
    option(
        "--schema",
        metavar="SPEC",
        help="Structured reply: 'label, score float, tags list[str]', JSON Schema, or a variable "
        "holding a dict, dataclass or pydantic class.",
    ),
    option("--map", metavar="NAME", help="Send the cell once per item of the list/Series/DataFrame NAME."),
    option("--concurrency", type=int, default=8, help="--map: most requests at once (default 8)."),
    option("--batch", action="store_true", help="--map: run through the Batch API (half price, ≤ 24 h)."),
    option(
        "--strict",
        action="store_true",
        help="--map: fail the cell if any item failed (after -o gets the results).",
    ),
    option(
        "--compare",
        metavar="A,B",
        help="--map: ask each item of each model (names, or Chat variables) and compare the answers.",
    ),
    option("--truth", metavar="COLUMN", help="--compare: the column holding the true labels (accuracy)."),
]


def default_of(opt: Option) -> Any:
    """An option's value when the user did not give it."""
    return opt.kwargs.get("default", False if opt.kwargs.get("action") == "store_true" else None)


CELL_OPTIONS_BY_DEST = {o.names[-1].lstrip("-").replace("-", "_"): o for o in CELL_OPTIONS}
