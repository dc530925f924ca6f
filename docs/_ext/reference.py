"""The reference pages, generated from the declarations nbchat itself reads: the settings'
traits (what ``%config ChatMagics`` and ``%chatconfig`` show), the parsers ``magic_arguments``
builds (what ``%%chat?`` prints) and the ``%chat`` verb table. Nothing here restates a
default, a range or a help text: each comes from its one declaration."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any

from nbchat.magics import ChatMagics, parser_of
from nbchat.settings import ENV_VARS

MAGICS = {
    "chat-cell": ("%%chat", "chat_cell", "The options of a `%%chat` cell."),
    "chat-line": ("%chat", "chat_line", "The options of the `%chat` line magic (see the verbs below)."),
    "chatconfig": ("%chatconfig", "chatconfig", "The options of `%chatconfig`."),
}


def _cell(text: Any) -> str:
    """A table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def settings() -> dict[str, dict[str, str]]:
    """Every setting: its help (bounds included), default and environment variable."""
    rows = {}
    for name, trait in sorted(ChatMagics.class_traits(config=True).items()):
        value = trait.default_value_repr()
        default = "unset" if value in ("None", "''") else f"`{value}`"
        if name in ENV_VARS:
            default = f"`${ENV_VARS[name]}`, else {default}"
        rows[name] = {"help": trait.help or "", "default": default, "type": type(trait).__name__}
    return rows


def options(magic: str) -> dict[str, dict[str, str]]:
    """Every option of one magic's parser, by its longest name."""
    parser: argparse.ArgumentParser = parser_of(getattr(ChatMagics, MAGICS[magic][1]))
    rows = {}
    for action in parser._actions:  # argparse offers no public iterator over its actions
        if isinstance(action, argparse._HelpAction):
            continue
        names = action.option_strings or [action.dest]
        value = action.metavar or (("{" + ",".join(map(str, action.choices)) + "}") if action.choices else "")
        if action.nargs == 0:
            value = ""
        rows[max(names, key=len)] = {
            "names": ", ".join(f"`{n}`" for n in names),
            "value": f"`{value}`" if value else "",
            "help": action.help or "",
        }
    return rows


def verbs() -> dict[str, str]:
    """Every ``%chat`` verb and the first line of its handler's docstring."""
    return {
        name: (inspect.getdoc(handler) or "").split("\n\n")[0] for name, handler in ChatMagics.verbs.items()
    }


def settings_page() -> str:
    lines = [
        "# Settings reference",
        "",
        "Generated from the settings' declarations: each row is what `%config ChatMagics` and",
        "`%chatconfig` read. Set one with `%chatconfig NAME=VALUE`, `%config ChatMagics.NAME = VALUE`,",
        "`c.ChatMagics.NAME = VALUE` in `ipython_config.py`, or `Chat(NAME=VALUE)`; `NAME=unset` stops",
        "sending a request parameter. Every request parameter is also a `%%chat` option",
        "(see {doc}`magics`).",
        "",
        "| setting | default | meaning |",
        "|---|---|---|",
    ]
    for name, row in settings().items():
        lines.append(f"| `{name}` | {_cell(row['default'])} | {_cell(row['help'])} |")
    return "\n".join(lines) + "\n"


def magics_page() -> str:
    intro = "Generated from the parsers `%%chat?`, `%chat?` and `%chatconfig?` print."
    lines = ["# Magics reference", "", intro]
    for key, (title, _, intro) in MAGICS.items():
        lines += ["", f"## `{title}`", "", intro, "", "| option | value | meaning |", "|---|---|---|"]
        for row in options(key).values():
            lines.append(f"| {row['names']} | {_cell(row['value'])} | {_cell(row['help'])} |")
    lines += ["", "## `%chat` verbs", "", "`%chat VERB [args] [-c NAME]`", "", "| verb | does |", "|---|---|"]
    for name, help_ in verbs().items():
        lines.append(f"| `{name}` | {_cell(help_)} |")
    return "\n".join(lines) + "\n"


def write(folder: Path) -> None:
    """Write the reference pages into ``folder`` (only when their text changed, so Sphinx
    rebuilds nothing it need not)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {"settings.md": settings_page(), "magics.md": magics_page()}.items():
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def _setting_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any, *_: Any, **__: Any) -> Any:
    """``{setting}`NAME``` links the settings reference; ``{default}`NAME``` is NAME's default,
    read from its trait. An unknown NAME is an error, so no page names a setting that is gone."""
    from docutils import nodes
    from sphinx.addnodes import pending_xref

    traits = ChatMagics.class_traits(config=True)
    if text not in traits:
        message = inliner.reporter.error(f"no setting named {text!r}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    if name == "default":
        value = traits[text].default_value_repr()
        return [nodes.literal(rawtext, "unset" if value in ("None", "''") else value)], []
    target = "/reference/settings"
    link = pending_xref(rawtext, refdomain="std", reftype="doc", reftarget=target, refexplicit=True)
    link += nodes.literal(rawtext, text)
    return [link], []


def setup(app: Any) -> dict[str, Any]:
    app.add_role("setting", _setting_role)
    app.add_role("default", _setting_role)
    return {"parallel_read_safe": True}
