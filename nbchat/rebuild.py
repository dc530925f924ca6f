"""Rebuilt history: what each reply's metadata keeps of its exchange, and the conversations
rebuilt from a saved notebook's outputs. No IPython."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .conversation import Conversation, Message, Turn, read_json, tool_problem, turn_problem, valid_message
from .errors import NbChatError

HINT_MAX_BYTES = 20_000_000  # the hint reads the notebook before the first request of a kernel
NOT_FOUND = (
    "cannot tell which notebook this kernel runs (neither JPY_SESSION_NAME nor VS Code's "
    "__vsc_ipynb_file__ is set); name it: %chat rebuild analysis.ipynb"
)


def exchange_of(conversation: Conversation, turn: Turn | None, sent: list[Message]) -> dict[str, Any]:
    """The record that lets a later kernel put a turn back where it was (or, without a turn,
    repeat a change of the conversation: a system prompt, a reset, an undo).

    ``position`` is the turn's index and ``length`` the conversation's size right after:
    together they replay re-runs (a turn replaced in place), resets and undos (a shorter
    conversation). Only the turn's own messages are kept, not the whole history sent with
    it (that would grow a notebook quadratically); ``history`` says how many earlier
    messages went with the request."""
    record: dict[str, Any] = {
        "conversation": conversation.name,
        "length": len(conversation.turns),
        "system": conversation.system,
    }
    if turn is not None:
        record |= {
            "position": next(i for i, t in enumerate(conversation.turns) if t is turn),
            "cell_id": turn.cell_id,
            "messages": turn.messages,
            "choices": turn.choices,
            "model": turn.model,
            "usage": turn.usage,
            "finish_reason": turn.finish_reason,
            "history": max(len(sent) - 1, 0),
        }
    return record


def metadata(conversation: Conversation, turn: Turn | None = None) -> dict[str, Any]:
    """Output metadata for a change of ``conversation`` that sends nothing."""
    return {"nbchat": {"exchange": exchange_of(conversation, turn, [])}}


def records(notebook: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every exchange record in a notebook, in the order the kernel made them (execution
    count; notebook order for cells that have none)."""
    found: list[tuple[tuple[int, int, int, int], dict[str, Any]]] = []
    cells = notebook.get("cells") if isinstance(notebook, Mapping) else None
    for c, cell in enumerate(cells if isinstance(cells, list) else []):
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "code":
            continue
        count = cell.get("execution_count")
        order = (0, count, c) if isinstance(count, int) else (1, 0, c)
        for o, output in enumerate(cell.get("outputs") or []):
            record = _record_in(output)
            if record is not None:
                found.append(((*order, o), record))
    return [record for _, record in sorted(found, key=lambda item: item[0])]


def _record_in(output: Any) -> dict[str, Any] | None:
    meta = output.get("metadata") if isinstance(output, Mapping) else None
    nbchat = meta.get("nbchat") if isinstance(meta, Mapping) else None
    record = nbchat.get("exchange") if isinstance(nbchat, Mapping) else None
    if not isinstance(record, dict) or not isinstance(record.get("conversation"), str):
        return None
    if not isinstance(record.get("length"), int):
        return None
    messages = record.get("messages")
    # the same checks as a conversation file's: nothing rebuilt can break %chat history,
    # the next request or the next save
    if messages is not None and not (
        isinstance(messages, list)
        and messages
        and type(record.get("position")) is int
        and record["position"] >= 0
        and all(valid_message(m) for m in messages)
        and turn_problem(record) is None
        and tool_problem(messages) is None
    ):
        return None
    return record


def rebuild(found: list[dict[str, Any]]) -> dict[str, Conversation]:
    """The conversations as the kernel that made ``found`` (see :func:`records`) had them."""
    conversations: dict[str, Conversation] = {}
    slots: dict[str, dict[int, Turn]] = {}
    for record in found:
        name = record["conversation"]
        conversation = conversations.setdefault(name, Conversation(name))
        turns = slots.setdefault(name, {})
        system = record.get("system")
        conversation.system = system if isinstance(system, str) else None
        if record.get("messages") is not None:
            turns[record["position"]] = Turn(
                [dict(m) for m in record["messages"]],
                cell_id=record.get("cell_id"),
                model=record.get("model"),
                usage=record.get("usage"),
                choices=list(record.get("choices") or []),
                finish_reason=record.get("finish_reason"),
            )
        for position in [p for p in turns if p >= record["length"]]:
            del turns[position]
    for name, conversation in conversations.items():
        conversation.turns = [slots[name][p] for p in sorted(slots[name])]
    return conversations


def _above(notebook: dict[str, Any], cell_id: str | None, source: str) -> dict[str, Any]:
    """The notebook's cells above the running cell (found by its id, else its text); all of
    them when it is not in the saved file (a new cell, a notebook not saved since)."""
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        return notebook
    for index, cell in enumerate(cells):
        if not isinstance(cell, Mapping):
            continue
        text = cell.get("source")
        text = "".join(text) if isinstance(text, list) else text
        if (cell_id and cell.get("id") == cell_id) or (not cell_id and source and text == source):
            return {**notebook, "cells": cells[:index]}
    return notebook


def read_notebook(path: str | os.PathLike[str]) -> dict[str, Any]:
    source = Path(path).expanduser()
    data = read_json(source, "notebook", "a notebook")
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NbChatError(f"{str(source)!r} is not a notebook (no cells)")
    return data


def own_notebook(user_ns: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Path | None:
    """The notebook this kernel runs, if the frontend said: VS Code puts its path in the
    namespace; jupyter_server starts the kernel with ``JPY_SESSION_NAME`` (an absolute
    path, or a path relative to the server's root for older clients: the kernel's working
    directory is the notebook's folder, so its base name is tried there too)."""
    environ = os.environ if environ is None else environ
    for candidate in (user_ns.get("__vsc_ipynb_file__"), environ.get("JPY_SESSION_NAME")):
        if not isinstance(candidate, str) or not candidate.endswith(".ipynb"):
            continue
        path = Path(candidate).expanduser()
        for option in (path, Path.cwd() / path.name):
            if option.is_file():
                return option
    return None


def hint(user_ns: Mapping[str, Any], cell_id: str | None = None, source: str = "") -> str | None:
    """Once per fresh kernel: if its notebook holds replies that the running cell would not
    see, say how to restore them. Cells above the running one only: under Run All they have
    just run again (or are about to), and the hint would be noise."""
    path = own_notebook(user_ns)
    if path is None:
        return None
    try:
        if path.stat().st_size > HINT_MAX_BYTES:
            return None  # not worth parsing on a request's path; %chat rebuild still reads it
        found = records(_above(read_notebook(path), cell_id, source))
    except (NbChatError, OSError):
        return None
    if not any(r.get("messages") for r in found):
        return None
    names = sorted({r["conversation"] for r in found})
    return (
        f"This notebook holds earlier nbchat replies ({', '.join(names)}); "
        "`%chat rebuild` restores those conversations in this kernel."
    )
