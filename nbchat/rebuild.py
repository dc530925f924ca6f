"""Rebuilt history: what each reply's metadata keeps of its exchange, and the conversations
rebuilt from a saved notebook's outputs. No IPython."""

from __future__ import annotations

from typing import Any

from .conversation import Conversation, Message, Turn


def exchange_of(conversation: Conversation, turn: Turn, sent: list[Message]) -> dict[str, Any]:
    """The record of one turn that lets a later kernel put it back where it was.

    ``position`` is the turn's index and ``length`` the conversation's size right after
    it: together they replay re-runs (a turn replaced in place) and resets (a shorter
    conversation). Only the turn's own messages are kept, not the whole history sent
    with it (that would grow a notebook quadratically); ``history`` says how many earlier
    messages went with the request."""
    position = next(i for i, t in enumerate(conversation.turns) if t is turn)
    return {
        "conversation": conversation.name,
        "position": position,
        "length": len(conversation.turns),
        "cell_id": turn.cell_id,
        "system": conversation.system,
        "messages": turn.messages,
        "choices": turn.choices,
        "model": turn.model,
        "usage": turn.usage,
        "finish_reason": turn.finish_reason,
        "history": max(len(sent) - 1, 0),
    }
