"""Conversations: messages grouped into turns, the system prompt, trimming, save/load."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .content import is_valid, text_of
from .errors import NbChatError
from .tokens import estimate_messages

Message = dict[str, Any]
FORMAT = "nbchat.conversation"
# 2: content may be a list of parts (images, files) and a turn any number of messages
VERSION = 2
READS = (1, 2)
ROLES = ("system", "user", "assistant", "tool")


@dataclass
class Turn:
    """One exchange or a primed assistant message.

    An exchange starts with the user's message and ends with the reply; in between it may
    hold any number of messages (a tool call and its result), so a turn is recorded,
    replaced, undone and left out of a request as a whole.
    """

    messages: list[Message]
    cell_id: str | None = None
    model: str | None = None
    usage: dict[str, int] | None = None
    choices: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    # how the turn's request was made (per-call options, the message's receipt), so that
    # ``retry`` sends it again as the cell did; this session only, never saved
    recipe: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    # the reply as the Responses API returned it (encrypted reasoning, then the message), sent
    # in its place to a reasoning model on later turns; this session only, never saved
    output: list[dict[str, Any]] | None = field(default=None, compare=False, repr=False)

    @property
    def reply(self) -> str | None:
        last = self.messages[-1] if self.messages else None
        return text_of(last["content"]) if last and last["role"] == "assistant" else None


class Conversation:
    """The history of one named conversation. Pure data: no IPython, no network."""

    def __init__(self, name: str = "default", system: str | None = None) -> None:
        self.name = name
        self.system = system
        self.turns: list[Turn] = []

    def __repr__(self) -> str:
        return f"<Conversation {self.name!r}: {len(self.turns)} turns>"

    # -- reading ----------------------------------------------------------------------

    def messages(self, upto: int | None = None, system: str | None = None) -> list[Message]:
        """The history in OpenAI format; with ``upto``, only the turns before that index."""
        prompt = self.system if self.system is not None else system
        out: list[Message] = [{"role": "system", "content": prompt}] if prompt else []
        for turn in self.turns[:upto]:
            out.extend(turn.messages)
        return out

    def slot_of(self, cell_id: str | None) -> int | None:
        """The index of the turn a cell recorded earlier (a re-run replaces it)."""
        if cell_id is not None:
            for i, turn in enumerate(self.turns):
                if turn.cell_id == cell_id:
                    return i
        return None

    def window(self, messages: list[Message], budget: int | None) -> tuple[list[Message], int]:
        """Leave out the oldest turns until the estimate fits ``budget``.

        The system prompt and the new (last) message always stay. Returns the messages to
        send and how many earlier messages were left out (never deleted from history).
        """
        if budget is None or estimate_messages(messages) <= budget:
            return messages, 0
        head = messages[:1] if messages and messages[0]["role"] == "system" else []
        body, last = messages[len(head) : -1], messages[-1:]
        dropped = 0
        while body and estimate_messages(head + body + last) > budget:
            # drop whole exchanges (up to the next user message), so a reply or a tool
            # result is never sent without the question it belongs to
            cut = 1
            while cut < len(body) and body[cut]["role"] != "user":
                cut += 1
            body, dropped = body[cut:], dropped + cut
        return head + body + last, dropped

    # -- changing ---------------------------------------------------------------------

    def record(self, turn: Turn, slot: int | None = None) -> None:
        """Add a completed turn, or put it in place of turn ``slot`` (re-run, retry)."""
        if slot is not None and slot < len(self.turns):
            self.turns[slot] = turn
        else:
            self.turns.append(turn)

    def undo(self) -> Turn:
        if not self.turns:
            raise NbChatError(f"conversation {self.name!r} has nothing to undo")
        return self.turns.pop()

    def clear(self, keep_system: bool) -> None:
        self.turns.clear()
        if not keep_system:
            self.system = None

    def pick(self, k: int) -> None:
        """Keep choice ``k`` (1-based) of the last reply as the one in history."""
        turn = self.turns[-1] if self.turns else None
        if turn is None or len(turn.choices) < 2:
            raise NbChatError("the last reply has a single choice; ask with -n 2 or more")
        if not 1 <= k <= len(turn.choices):
            raise NbChatError(f"choose 1 to {len(turn.choices)} (got {k})")
        turn.messages[-1] = {"role": "assistant", "content": turn.choices[k - 1]}

    # -- files ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "messages": self.messages(),
            "turns": [
                {
                    f.name: getattr(t, f.name)
                    for f in fields(t)
                    if f.name not in ("messages", "recipe", "output")
                }
                | {"size": len(t.messages)}
                for t in self.turns
            ],
        }

    @classmethod
    def from_dict(cls, data: Any, name: str | None = None) -> Conversation:
        """Rebuild a saved conversation; anything malformed raises ``NbChatError``."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise NbChatError("not an nbchat conversation file (no 'format': 'nbchat.conversation')")
        if data.get("version") not in READS:
            raise NbChatError(f"unsupported conversation file version {data.get('version')!r}")
        messages, turns = data.get("messages"), data.get("turns")
        if not isinstance(messages, list) or not isinstance(turns, list):
            raise NbChatError("conversation file is missing its messages or turns")
        for i, m in enumerate(messages):
            if not valid_message(m):
                raise NbChatError(f"conversation file has a malformed message: message {i + 1}")
            if not _text(json.dumps(m, ensure_ascii=False)):
                raise NbChatError(f"conversation file's message {i + 1} has text that is not valid Unicode")
        saved_name = data.get("name")
        if saved_name is not None and not _text(saved_name):
            raise NbChatError("conversation file's name is not text")
        conv = cls(name or saved_name or "default")
        if messages and messages[0]["role"] == "system":
            conv.system = text_of(messages.pop(0)["content"])
        pos = 0
        for k, meta in enumerate(turns):
            size = meta.get("size") if isinstance(meta, dict) else None
            if type(size) is not int or size < 1 or pos + size > len(messages):
                raise NbChatError("conversation file's turns do not match its messages")
            problem = turn_problem(meta) or tool_problem(messages[pos : pos + size])
            if problem:
                raise NbChatError(f"conversation file's turn {k + 1}: {problem}")
            fields = {k: meta.get(k) for k in ("cell_id", "model", "usage", "finish_reason")}
            conv.turns.append(
                Turn(messages[pos : pos + size], choices=list(meta.get("choices") or []), **fields)
            )
            pos += size
        if pos != len(messages):
            raise NbChatError("conversation file's turns do not match its messages")
        return conv

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_atomically(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1))

    def export(self, path: str | os.PathLike[str]) -> Path:
        """``.md``: a readable transcript; ``.jsonl``: OpenAI's chat fine-tuning format."""
        suffix = Path(path).suffix.lower()
        if suffix == ".md":
            from .markdown import keep_lines
            from .tools import message_text  # the tool machinery loads with the first export, not with nbchat

            parts = [f"# {self.name}"]
            for m in self.messages():
                # the model writes Markdown; people and tools write plain text, kept line for line
                text = message_text(m) if m["role"] == "assistant" else keep_lines(message_text(m))
                parts.append(f"**{m['role']}**\n\n{text}")
            return write_atomically(path, "\n\n".join(parts) + "\n")
        if suffix == ".jsonl":
            example = {"messages": self.messages()}
            return write_atomically(path, json.dumps(example, ensure_ascii=False) + "\n")
        raise NbChatError(f"export writes .md or .jsonl, not {suffix or 'a file without extension'!r}")

    @classmethod
    def load(cls, path: str | os.PathLike[str], name: str | None = None) -> Conversation:
        """A file written by ``save``; also nbchat's own ``.jsonl`` export (OpenAI's fine-tuning
        format, one example) and a plain OpenAI message list (``[{"role", "content"}, …]``,
        or a request body's ``{"messages": […]}``)."""
        source = Path(path).expanduser()
        if source.suffix.lower() == ".jsonl":
            data = _one_example(source)
        else:
            data = read_json(source, "file", "a conversation file")
        try:
            if isinstance(data, dict) and "format" not in data and isinstance(data.get("messages"), list):
                data = data["messages"]
            if isinstance(data, list):
                return cls.from_messages(data, name or source.stem)
            return cls.from_dict(data, name)
        except RecursionError:
            raise NbChatError(f"{str(source)!r} is nested too deeply to be a conversation file") from None

    @classmethod
    def from_messages(cls, messages: list[Any], name: str = "default") -> Conversation:
        """A conversation from OpenAI messages: a leading system message is its system
        prompt; each user message starts a turn that holds what follows it."""
        if not messages:
            raise NbChatError("not a conversation: the list of messages is empty")
        for i, m in enumerate(messages):
            if not valid_message(m) or not _text(json.dumps(m, ensure_ascii=False)):
                raise NbChatError(f"not a list of OpenAI messages: message {i + 1} is malformed")
        conv = cls(name)
        rest = list(messages)
        if rest and rest[0]["role"] == "system":
            conv.system = text_of(rest.pop(0)["content"])
        for m in rest:
            if m["role"] == "system":
                raise NbChatError("a system message after the first cannot be loaded: nbchat keeps one")
            if m["role"] == "user" or not conv.turns:
                conv.turns.append(Turn([]))
            conv.turns[-1].messages.append(dict(m))
        for k, turn in enumerate(conv.turns):
            problem = tool_problem(turn.messages)
            if problem:
                raise NbChatError(f"not a list of OpenAI messages: turn {k + 1} has {problem}")
        return conv


def valid_message(m: Any) -> bool:
    """A message a conversation file may hold (OpenAI's format)."""
    if not isinstance(m, dict) or m.get("role") not in ROLES:
        return False
    if m.get("content") is None:  # an assistant message that only calls tools
        return m["role"] == "assistant" and bool(m.get("tool_calls"))
    return is_valid(m["content"])


def _one_example(source: Path) -> Any:
    """The messages of a ``.jsonl`` file that holds one example (what ``export`` writes)."""
    try:
        lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        raise NbChatError(f"no such file: {str(source)!r}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise NbChatError(f"cannot read {str(source)!r}: {e}") from None
    if len(lines) != 1:
        raise NbChatError(f"{str(source)!r} holds {len(lines)} examples; a conversation is one line")
    try:
        example = json.loads(lines[0])
    except json.JSONDecodeError as e:
        raise NbChatError(f"{str(source)!r} is not valid JSON lines ({e.msg})") from None
    if not isinstance(example, dict) or not isinstance(example.get("messages"), list):
        raise NbChatError(f"{str(source)!r} is not a fine-tuning example (no 'messages' list)")
    return example["messages"]


def read_json(path: str | os.PathLike[str], noun: str, kind: str) -> Any:
    """The JSON in the file at ``path`` (a ``noun`` the user named, meant to be ``kind``);
    any failure to read or parse it is one clear line."""
    source = Path(path).expanduser()
    try:
        return json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NbChatError(f"no such {noun}: {str(source)!r}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise NbChatError(f"cannot read {str(source)!r}: {e}") from None
    except json.JSONDecodeError as e:
        raise NbChatError(f"{str(source)!r} is not valid JSON ({e.msg}, line {e.lineno})") from None
    except RecursionError:
        raise NbChatError(f"{str(source)!r} is nested too deeply to be {kind}") from None


def write_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write via a temporary file, flushed and fsynced, then renamed over the target:
    a crash or any failure leaves the old file as it was and no temporary file."""
    target = Path(path).expanduser()
    tmp: str | None = None
    try:
        data = text.encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        tmp = None
        _sync_directory(target.parent)
    except (OSError, UnicodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise NbChatError(f"cannot write {str(target)!r}: {reason}; the file was not changed") from None
    finally:
        if tmp is not None and os.path.exists(tmp):  # any failure, KeyboardInterrupt included
            os.unlink(tmp)
    return target


def _sync_directory(folder: Path) -> None:
    """Make the rename itself durable (POSIX; elsewhere a directory cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _text(value: Any) -> bool:
    """A string that can be written back out (no lone surrogate from a ``\\ud83d`` escape)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def tool_problem(messages: list[Message]) -> str | None:
    """What is wrong with the tool records of one turn's messages, or ``None``. A request
    carrying a call without its result, a result without its call, or calls that are not
    a list is refused by the server, so every later request of the conversation would fail."""
    waiting: set[str] = set()  # calls made and not yet answered
    for m in messages:
        if m["role"] == "tool":
            call = m.get("tool_call_id")
            if not isinstance(call, str) or call not in waiting:
                return "a tool result with no call before it"
            waiting.discard(call)
            continue
        if waiting:
            return "a tool call never answered"
        calls = m.get("tool_calls")
        if calls is None:
            continue
        if m["role"] != "assistant" or not isinstance(calls, list) or not calls:
            return "'tool_calls' is not a list of calls"
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not (
                isinstance(function, dict)
                and _text(call.get("id"))
                and _text(function.get("name"))
                and _text(function.get("arguments"))
            ):
                return "'tool_calls' is not a list of calls"
            if call["id"] in waiting:
                return "two tool calls with one id"
            waiting.add(call["id"])
    return "a tool call never answered" if waiting else None


def turn_problem(meta: dict[str, Any]) -> str | None:
    """What is wrong with a turn's metadata, or ``None``: each field has its type, so
    nothing loaded can break ``%chat history``, ``pick`` or the next save."""
    for key in ("cell_id", "model", "finish_reason"):
        if meta.get(key) is not None and not _text(meta[key]):
            return f"{key!r} is not text"
    usage = meta.get("usage")
    if usage is not None and not (isinstance(usage, dict) and all(_text(k) for k in usage)):
        return "'usage' is not a table of token counts"
    if usage is not None and not all(_count(v) for k, v in usage.items() if k.endswith("_tokens")):
        return "'usage' is not a table of token counts"
    choices = meta.get("choices")
    if choices is not None and not (isinstance(choices, list) and all(_text(c) for c in choices)):
        return "'choices' is not a list of texts"
    return None


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0
