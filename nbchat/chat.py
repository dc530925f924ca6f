"""The Python API: a conversation plus settings plus a transport. No IPython."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .cache import Entry, NotInCache, Replayer, key_of, restore, snapshot
from .client import Completion, Transport, request_body
from .connection import resolve
from .content import Content, is_valid
from .context import Limits, compose
from .conversation import Conversation, Message, Turn
from .errors import BadSetting, EmptyMessage, NbChatError, RequestFailed
from .events import Event, ReasoningDelta, Replayed, TextDelta, ToolEvent
from .host import HOST
from .learned import JSON_SCHEMA, MAX_TOKENS, PART, TOOLS, Refusal, without
from .rebuild import exchange_of
from .schema import Schema, request_with, to_schema
from .secret import credentials, redact_foreign
from .settings import Settings, ask_again, unknown_setting
from .tokens import estimate_messages, estimate_text
from .tools import Approval, Deferred, Tool, ToolCall, ToolError, Workspace, as_tool, run_call
from .usage import Ledger, cost, priced_by

# settings a single call may change besides the request parameters (each is read per call)
PER_CALL = frozenset({"schema", "tools", "stream", "api", "cache", "tool_approval", "max_tool_steps"})


@dataclass
class Reply:
    """A complete reply. ``str(reply)`` is its text (choice 1)."""

    text: str
    choices: list[dict[str, Any]]
    usage: dict[str, int] | None
    finish_reason: str | None
    model: str | None
    latency: float
    params: dict[str, Any] = field(default_factory=dict)
    left_out: int = 0
    logprobs: list[dict[str, Any]] | None = None
    cost: float | None = None
    interrupted: bool = False
    estimated: bool = False  # the server reported no usage: ``usage`` is nbchat's estimate
    notes: list[str] = field(default_factory=list)  # what the server did not do as asked
    replayed: bool = False  # answered from the reply cache: nothing was sent
    asked: float | None = None  # when a replayed reply was first asked (epoch seconds)
    exchange: dict[str, Any] | None = None  # what rebuilds this turn (see nbchat.rebuild)
    context: list[dict[str, Any]] = field(default_factory=list)  # the receipt of the message
    data: Any = None  # with a schema: the parsed reply (a dict, or an instance of the schema's class)
    tool_calls: list[ToolCall] = field(default_factory=list)  # every call of the turn, in order
    reasoning: str = ""  # the reasoning summary (Responses API), shown as *Thinking*
    priced_by: str | None = None  # the price table the cost comes from (prices, genai-prices, built-in)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        """``<Reply gpt-4o-mini: 'The start of the text…' · 13 + 7 tokens>``: a reply in a
        list or a map's results reads as what it says, not as a dump of its fields."""
        start = " ".join(self.text.split())
        start = start[:60] + "…" if len(start) > 60 else start
        parts = [f"<Reply {self.model or '?'}: {start!r}"]
        if self.usage:
            parts.append(
                f"{self.usage.get('prompt_tokens', 0)} + {self.usage.get('completion_tokens', 0)} tokens"
            )
        if len(self.choices) > 1:
            parts.append(f"{len(self.choices)} choices")
        parts += [flag for flag, on in (("replayed", self.replayed), ("interrupted", self.interrupted)) if on]
        return " · ".join(parts) + ">"

    def _repr_markdown_(self) -> str:
        return self.text


# what a request sends as content rather than as parameters, per wire API
_CONTENT = ("messages", "stream_options", "prompt", "input", "instructions")


@dataclass
class Request:
    """What the next exchange sends: the dry run of ``%chat request`` shows exactly this."""

    body: dict[str, Any]
    left_out: int
    cell_id: str | None
    record: bool
    slot: int | None = None  # the turn this exchange replaces (re-run cell, retry)
    cache: str | None = None  # the reply cache's mode for this request (None: the setting)
    dropped: list[str] = field(default_factory=list)  # set, but rejected by this model
    api: str = "chat"  # the wire API: chat, or a module of nbchat.transports
    sent: list[Message] = field(default_factory=list)  # as messages, when the body has none
    context: list[dict[str, Any]] = field(default_factory=list)  # the receipt: what was put in
    schema: Schema | None = None  # structured output: the reply must match it
    tools: dict[str, Tool] = field(default_factory=dict)  # offered to the model
    later: list[Deferred] = field(default_factory=list)  # offered too, described when sent (MCP)
    approval: str = "ask"
    max_tool_steps: int = 8
    over_budget: str = ""  # the context budget is exceeded even with every earlier turn left out
    overrides: dict[str, Any] = field(default_factory=dict)  # the per-call options, as given
    learned: list[tuple[Refusal, str]] = field(default_factory=list)  # asked otherwise, as refused before

    @property
    def recipe(self) -> dict[str, Any]:
        """What ``Chat.retry`` needs to send this turn's request again as it was made: the
        per-call options (tools, approval, schema, sampling) and the message's receipt."""
        return {"overrides": dict(self.overrides), "context": list(self.context)}

    @property
    def asked_otherwise(self) -> list[str]:
        """What this request leaves out or asks otherwise than set, for its model: the
        footer says it, and so does the dry run."""
        model, out = self.body.get("model"), []
        if self.learned:
            out.append(f"as {model} refused before: {', '.join(note for _, note in self.learned)}")
        if self.dropped:
            out.append(f"not sent to {model}: {', '.join(self.dropped)}")
        return out

    @property
    def keyed(self) -> dict[str, Any]:
        """The body as the reply cache knows it: tools not yet described (an MCP server's)
        stand there by name, so looking a reply up starts no server."""
        if not self.later:
            return self.body
        return self.body | {"tools": [*self.body.get("tools", ()), *({"later": d.key} for d in self.later)]}

    def describe_later(self) -> None:
        """Describe the tools offered by name only (start their servers): just before the
        request goes out, never for a replay."""
        for deferred in self.later:
            for tool in deferred.load():
                if tool.name in self.tools:
                    raise ToolError(f"two tools offered are named {tool.name!r}; offer one of them")
                self.tools[tool.name] = tool
        self.later = []
        if self.tools:
            self.body["tools"] = [tool.spec for tool in self.tools.values()]
            if self.api == "responses":
                from .transports.responses import function_tools

                self.body["tools"] = function_tools(self.body["tools"])

    @property
    def messages(self) -> list[Message]:
        messages: list[Message] = self.body["messages"] if "messages" in self.body else self.sent
        return messages

    @property
    def params(self) -> dict[str, Any]:
        return {k: v for k, v in self.body.items() if k not in _CONTENT}

    @property
    def estimated_tokens(self) -> int:
        return estimate_messages(self.messages)


class ReplyStream:
    """A reply being received. Iterating yields text deltas of choice 1; ``events()``
    yields every event (see ``nbchat.events``). The exchange joins the conversation only
    once the reply is complete."""

    def __init__(self, chat: Chat, request: Request, user: Message) -> None:
        self.chat, self.request, self.user = chat, request, user
        self.completion = Completion()
        self.reply: Reply | None = None
        self.recorded = False  # the exchange joined the conversation
        self._started = False
        self._cache_key: str | None = None
        # a tool turn: its earlier rounds (each a request, and the messages it sent), the
        # messages they added between the user's message and the reply, and every call
        self.rounds: list[tuple[Completion, list[Message]]] = []
        self.added: list[Message] = []
        self.calls: list[ToolCall] = []
        self.stopped: str | None = None
        self.calling = False  # the last reply's tool calls are running
        self.approval = Approval(request.approval, chat.ask)
        self.refused: Refusal | None = None  # what the server refused, asked once more without
        self.outputs: dict[int, list[dict[str, Any]]] = {}  # Responses API: a tool round's output items

    @property
    def texts(self) -> list[str]:
        """The text of each choice as a view shows it so far: while a reply's tool calls run,
        its text belongs above them (``ToolCall.said``), not in the reply being awaited."""
        texts = self.completion.texts
        return [""] * len(texts) if self.calling else texts

    def __iter__(self) -> Iterator[str]:
        for event in self.events():
            if isinstance(event, TextDelta) and event.choice == 0:
                yield event.text

    def events(self) -> Iterator[Event]:
        """Every event of the reply, in order: the text of every choice (``TextDelta``) and a
        ``ToolEvent`` before and after each tool call (see ``nbchat.events``)."""
        yield from self._events()

    def _events(self) -> Iterator[Event]:
        if self._started:
            raise NbChatError("this reply was already read")
        self._started = True
        settings, body = self.chat.settings, self.request.body
        mode = self._mode()
        entry, problem = (
            self.chat.replayer.lookup(mode, settings.cache_path, self._key(), self.request.cell_id)
            if mode != "off"
            else (None, None)
        )
        if entry is not None:
            yield from self._replay(entry)
            return
        if mode == "only":
            raise NotInCache(not_cached(self.user, problem, credentials(settings)))
        self.request.describe_later()
        self.within_budget(body, "this request")
        try:
            yield from self.chat.transport.run(settings, body, self.completion, self.request.api)
        except RequestFailed as e:
            refusal = e.refusal
            # an image or file is never left out (the question would change); what was
            # shown already cannot be taken back
            if refusal is None or refusal.kind == PART or self.completion.first_token is not None:
                raise
            yield from self._once_more(refusal)
        while self.request.tools and self.completion.calls and self.stopped is None:
            yield from self._tool_round()
        self.reply = self.finish(problem=problem)

    def within_budget(self, body: dict[str, Any], what: str) -> None:
        """Refuse (``OverBudget``: nothing is sent) a request that would go over ``budget``."""
        settings = self.chat.settings
        if settings.budget is not None:
            from .budget import check, cost_of

            model = str(body.get("model"))
            # this turn's earlier rounds join the ledger when the turn ends: they count now
            spent = self.chat.ledger.spent + sum(
                cost(c.model or model, c.usage or estimate_usage(m, c.texts), settings.prices) or 0.0
                for c, m in self.rounds
            )
            check(settings, spent, cost_of(body, settings.prices), what, model, resolve(settings).url)

    def _once_more(self, refusal: Refusal) -> Iterator[Event]:
        """The server refused something the request sent: remember it for this server and
        model, and ask once more as every later request will be made (without it, or
        otherwise); the footer says so. A second failure names what was refused."""
        request, chat = self.request, self.chat
        chat.transport.learned.add(server_of(chat.settings), str(request.body.get("model")), refusal)
        if request.api == "completions":
            without(request.body, [refusal], request.api)
        else:
            content = self.user["content"]
            again, _ = chat.prepare(
                content if content is not None else "",
                cell_id=request.cell_id,
                history=request.record,
                slot=request.slot,
                context=request.context,
                **request.overrides | ({"cache": request.cache} if request.cache else {}),
            )
            again.learned = [(r, note) for r, note in again.learned if r != refusal]
            self.request = again
        self.refused = refusal
        self.completion = Completion()
        self.request.describe_later()
        self.within_budget(self.request.body, "this request, asked once more")
        try:
            yield from chat.transport.run(chat.settings, self.request.body, self.completion, self.request.api)
        except RequestFailed as e:
            if e.refusal is not None:
                chat.transport.learned.add(
                    server_of(chat.settings), str(self.request.body.get("model")), e.refusal
                )
            said = refusal.said.rstrip(".")
            raise RequestFailed(
                f"the server refused {refusal.what} ({said}); asked once more {refusal.instead}, "
                f"and that failed too: {e}",
                status=e.status,
            ) from None

    def _mode(self) -> str:
        return self.request.cache or self.chat.settings.cache

    def kept(self) -> str:
        """After an interrupt: what the user has of the reply, in a few words."""
        if not (self.reply.text if self.reply is not None else ""):
            return "nothing arrived and nothing was recorded"
        if self.recorded:
            return "the partial reply is shown above and kept in history"
        if self.calls and self.request.record:
            return "shown above; a tool turn is recorded whole or not at all, so nothing was recorded"
        if self.request.record:
            return "the partial reply is shown above, not kept in history (keep_partial is off)"
        return "the partial reply is shown above"

    def _tool_round(self) -> Iterator[Event]:
        """Run the calls the last reply asked for, then ask again with their results.

        Each call is answered (by its result, its error, or why it did not run), so the
        history never holds a call without its result.
        """
        calls = self.completion.calls.calls()
        if len(self.rounds) >= self.request.max_tool_steps:
            rounds = len(self.rounds)
            self.stopped = (
                f"stopped after {rounds} round{'' if rounds == 1 else 's'} of tool calls (max_tool_steps); "
                f"the model's last {_calls(len(calls))} did not run"
            )
            return
        asked: Message = {
            "role": "assistant",
            "content": self.completion.texts[0] or None,
            "tool_calls": [call.message for call in calls],
        }
        answers = []
        if calls:
            # the text written with the calls is shown above them from now on, not as the reply
            calls[0].said = self.completion.texts[0]
            self.calling = True
        for call in calls:
            call.asking = self.approval.asks(self.request.tools.get(call.name))  # shown as waiting
            yield ToolEvent(call, done=False)
            run_call(call, self.request.tools, self.approval, self.chat.workspace.limits)
            call.asking = False
            self.calls.append(call)
            answers.append(call.answer)
            yield ToolEvent(call, done=True)
        self.rounds.append((self.completion, [*self.request.messages, *self.added]))
        self.added += [asked, *answers]
        self.completion = Completion()
        self.calling = False
        if self.request.api == "responses":
            from .transports.responses import input_items

            # each reply's own output items (its encrypted reasoning with its calls) go back as they came
            if self.rounds[-1][0].output:
                self.outputs[id(asked)] = self.rounds[-1][0].output
            body = self.request.body | {
                "input": [*self.request.body["input"], *input_items(self.added, self.outputs)]
            }
        else:
            body = self.request.body | {"messages": [*self.request.messages, *self.added]}
        self.within_budget(body, f"tool round {len(self.rounds)} (the request with the calls' results)")
        yield from self.chat.transport.run(self.chat.settings, body, self.completion, self.request.api)

    def _replay(self, entry: Entry) -> Iterator[Event]:
        """A reply from the cache: the events a live reply had, at once, through the same
        consumer (the reasoning summary, the tool calls, the whole text of each choice)."""
        restore(self.completion, entry.reply)
        yield Replayed(entry.asked)
        for part in self.completion.reasoning:
            yield ReasoningDelta(part)
        yield from self._replayed_calls()
        for index, text in enumerate(self.completion.texts):
            if text:
                yield TextDelta(index, text)
        self.reply = self.finish(replayed=entry)

    def _replayed_calls(self) -> Iterator[Event]:
        """A tool turn from the cache: its calls are shown with their stored results, not
        run again."""
        turn = self.completion.tool_turn
        if isinstance(turn, dict):
            self.added = list(turn.get("messages") or [])
            known = {f.name for f in fields(ToolCall)}
            self.calls = [
                ToolCall(**{k: v for k, v in c.items() if k in known}) for c in turn.get("calls") or []
            ]
            for call in self.calls:
                yield ToolEvent(call, done=True)

    def _key(self) -> str:
        """The cache key: the body, the server and the wire API it was sent to (taken before
        the request goes out; a long history makes it worth computing once)."""
        if self._cache_key is not None:
            return self._cache_key
        self._cache_key = key_of(self.request.keyed, f"{server_of(self.chat.settings)}/{self.request.api}")
        return self._cache_key

    def finish(
        self, interrupted: bool = False, replayed: Entry | None = None, problem: str | None = None
    ) -> Reply:
        """Build the reply from what arrived; record it unless it was cut off (or
        ``keep_partial`` allows that)."""
        done = self.completion
        texts = done.texts
        model = done.model or self.request.body["model"]
        usage = done.usage or estimate_usage([*self.request.messages, *self.added], texts)
        total = self._count_rounds(model, usage, replayed)
        reply = self._reply(model, total, interrupted, replayed)
        prices = self.chat.settings.prices
        if replayed is not None:
            self.chat.ledger.replay(model, total, reply.cost)
        else:
            self.chat.ledger.add(model, usage, cost(model, usage, prices))
        if self.request.schema is not None and not interrupted:
            # a mismatch records and caches nothing
            reply.data = self.request.schema.parse_reply(reply.text, reply.finish_reason, self.request.body)
        # a tool turn is recorded whole or not at all: a part of one could hold calls
        # whose results never came back; an interrupt before the first token leaves nothing
        partial_ok = (
            self.chat.settings.keep_partial and any(texts) and not (self.rounds or self.completion.calls)
        )
        if self.request.record and (not interrupted or partial_ok):
            self._record(reply, total, interrupted)
        if self.rounds and not interrupted:
            # cached with the turn's reply, so a replay shows the calls without running them
            done.tool_turn = {
                "messages": self.added,
                "calls": [asdict(c) for c in self.calls],
                "usage": total,
            }
        if not interrupted:
            self._cache(reply, replayed, problem)
        self.reply = reply
        return reply

    def _count_rounds(self, model: str, usage: dict[str, Any], replayed: Entry | None) -> dict[str, Any]:
        """A tool turn made several requests: each earlier one counts in the ledger, and the
        turn's usage (which the footer shows) is their sum with the last one's."""
        prices = self.chat.settings.prices
        for earlier, sent in self.rounds:
            counts = earlier.usage or estimate_usage(sent, earlier.texts)
            self.chat.ledger.add(earlier.model or model, counts, cost(earlier.model or model, counts, prices))
        total = sum_usage([earlier.usage or estimate_usage(m, earlier.texts) for earlier, m in self.rounds])
        total = sum_usage([total, usage]) if self.rounds else usage
        turn = self.completion.tool_turn
        if replayed is not None and isinstance(turn, dict) and turn.get("usage"):
            total = turn["usage"]
        return total

    def _reply(self, model: str, total: dict[str, Any], interrupted: bool, replayed: Entry | None) -> Reply:
        """The reply, from what arrived."""
        done = self.completion
        texts = done.texts
        return Reply(
            text=texts[0],
            choices=[{"index": i, "role": "assistant", "content": t} for i, t in enumerate(texts)],
            usage=total,
            finish_reason=done.finish.get(0),
            model=model,
            # the server's time, summed over a tool turn's requests: not the time the tools
            # ran or a person took to approve them
            latency=sum(c.latency for c in [*(earlier for earlier, _ in self.rounds), done]),
            params=self.request.params,
            left_out=self.request.left_out,
            logprobs=done.logprobs.get(0),
            cost=cost(model, total, self.chat.settings.prices),
            priced_by=priced_by(model, self.chat.settings.prices),
            interrupted=interrupted,
            estimated=done.usage is None or any(e.usage is None for e, _ in self.rounds),
            notes=notes(self.request, done, self.refused) + tool_notes(self, replayed is not None),
            tool_calls=self.calls,
            replayed=replayed is not None,
            asked=replayed.asked if replayed is not None else None,
            context=self.request.context,
            reasoning="\n\n".join(done.reasoning),
        )

    def _record(self, reply: Reply, total: dict[str, Any], interrupted: bool) -> None:
        """The exchange joins the conversation (in the slot of the turn it replaces)."""
        done = self.completion
        texts = done.texts
        turn = Turn(
            [self.user, *self.added, {"role": "assistant", "content": reply.text}],
            cell_id=self.request.cell_id,
            model=reply.model,
            usage=total if done.usage and all(e.usage for e, _ in self.rounds) else None,
            choices=texts if len(texts) > 1 else [],
            finish_reason=reply.finish_reason if not interrupted else "interrupted",
            recipe=self.request.recipe,
            output=done.output if not interrupted else None,
        )
        self.chat.conversation.record(turn, self.request.slot)
        self.recorded = True
        reply.exchange = exchange_of(self.chat.conversation, turn, self.request.messages)

    def _cache(self, reply: Reply, replayed: Entry | None, problem: str | None) -> None:
        """Store a new answer (or count a replay); remember that this cell was answered."""
        settings, replayer = self.chat.settings, self.chat.replayer
        if replayed is not None:
            replayer.replayed(settings.cache_path, self._key(), reply.cost)
        elif (
            self._mode() != "off"
            and (self.completion.finish or self.completion.done)
            and not not_replayable(self.calls, reply)
        ):
            stored = snapshot(self.completion)
            key = self._key()
            problem = (
                replayer.store(self._mode(), settings.cache_path, key, stored, reply.model, reply.cost)
                or problem
            )
        if problem:
            reply.notes.append(problem)
        if self.request.cell_id is not None:
            replayer.answered.add(self.request.cell_id)


def not_replayable(calls: list[ToolCall], reply: Reply) -> bool:
    """A turn in which a person declined a call (or could not be asked), or a call was
    interrupted, is not cached: a replay must not repeat a decision made once; it asks again.
    The footer says so."""
    if not any(c.declined or c.interrupted for c in calls):
        return False
    why = "declined or could not be asked" if any(c.declined for c in calls) else "interrupted"
    reply.notes.append(f"not kept in the reply cache: a tool call was {why}, so a replay asks again")
    return True


def not_cached(user: Message, problem: str | None, secrets: list[str]) -> str:
    """``cache=only``'s error for a request the cache does not hold, naming the cell by the
    start of its message (a notebook run by papermill or nbclient has no cell numbers)."""
    text = user.get("content")
    if isinstance(text, list):
        text = " ".join(str(p.get("text", "")) for p in text if isinstance(p, dict))
    start = " ".join(str(text or "").split())
    start = redact_foreign(start if len(start) <= 60 else start[:59] + "…", secrets)
    if problem:
        return f"not in the reply cache: {problem}; cache=only sends nothing ({start!r})"
    return (
        f"not in the reply cache: this cell changed since it was made ({start!r}); "
        "cache=only sends nothing. Run it once with cache=replay to store its reply"
    )


def server_of(settings: Settings) -> str:
    """The server a request goes to (an Azure deployment is a server of its own): what is
    learned of it, and the reply cache, are kept by it."""
    url = resolve(settings).url
    if settings.azure_endpoint:
        url = f"{url}/openai/deployments/{settings.azure_deployment or ''}"
    return url


def estimate_usage(messages: list[Message], texts: list[str]) -> dict[str, int]:
    """Offline token counts for servers that report none (llama.cpp's ignores stream_options)."""
    prompt = estimate_messages(messages)
    completion = sum(estimate_text(t) for t in texts)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def sum_usage(usages: list[dict[str, Any]]) -> dict[str, Any]:
    """The usage of several requests added up (nested counts too)."""
    total: dict[str, Any] = {}
    for usage in usages:
        for key, value in usage.items():
            if isinstance(value, dict):
                total[key] = sum_usage([total.get(key) or {}, value])
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    return total


def _calls(n: int) -> str:
    return f"{n} tool call" + ("" if n == 1 else "s")


def tool_notes(stream: ReplyStream, replayed: bool) -> list[str]:
    """What the footer says about a tool turn."""
    out = []
    if stream.rounds:
        out.append(f"{len(stream.rounds) + 1} requests ({_calls(len(stream.calls))})")
    if replayed and stream.calls:
        out.append(f"{_calls(len(stream.calls))} replayed from the cache, not run again")
    if stream.stopped:
        out.append(stream.stopped)
    return out


def notes(request: Request, done: Completion, refused: Refusal | None = None) -> list[str]:
    """What the server (or the model) did not do as asked, in a few words each."""
    out = []
    model = request.body["model"]
    if refused is not None:
        out.append(
            f"{model} refused {refused.what}: asked once more {refused.instead} (remembered for this session)"
        )
    out += request.asked_otherwise
    if request.over_budget:
        out.append(request.over_budget)
    asked = int(request.body.get("n") or 1)
    got = len([t for t in done.texts if t]) or 1
    if asked > 1 and got < asked:
        out.append(f"asked for {asked} choices, the server sent {got}")
    if request.body.get("logprobs") and not done.logprobs:
        out.append("the server sent no log-probabilities")
    return out


def _message(text: Any) -> Content | list[Any]:
    """What a call sends, as text or a list of pieces; nothing is an error."""
    if text is not None and not isinstance(text, (str, list)):
        # send(df), send(fig), send(42): one value, described as {value} would be (and
        # never stored as a non-string that a saved conversation could not load)
        text = [text]
    if not text or (isinstance(text, str) and not text.strip()):
        raise EmptyMessage("nothing to send: the message is empty")
    return text  # type: ignore[no-any-return]


def _one_choice_with_tools(values: dict[str, Any], offered: str) -> None:
    """Each choice could ask for its own calls, but only one reply can continue the turn:
    running choice 1's calls would silently drop what the others asked for."""
    if int(values.get("n") or 1) > 1:
        raise ToolError(
            f"n={values['n']} cannot be used with tools (offered: {offered}): a tool turn "
            "continues one reply; ask for one choice, or offer no tools"
        )


class Chat:
    """A conversation with a model::

        chat = Chat(model="gpt-4o-mini", system="You are terse.", temperature=0.2)
        reply = chat.send("Hello")
        for delta in chat.stream("More"):
            print(delta, end="")

    Any setting of ``%chatconfig`` is a keyword (``base_url``, ``api_key``, ``timeout``…).
    """

    def __init__(
        self,
        model: str | None = None,
        system: str | None = None,
        *,
        settings: Settings | None = None,
        conversation: Conversation | None = None,
        transport: Transport | None = None,
        ledger: Ledger | None = None,
        replayer: Replayer | None = None,
        tools: list[Any] | None = None,
        namespace: dict[str, Any] | None = None,
        ask: Callable[[str], str] | None = None,
        **options: Any,
    ) -> None:
        self.settings = settings if settings is not None else Settings()
        if model is not None:
            options["model"] = model
        # offered in every request; a name is looked up when a request is made
        self.tools = [t if isinstance(t, str) else as_tool(t) for t in tools or ()]
        # where tool names, ``describe`` and ``python`` look: the notebook's own namespace
        import __main__  # the script's or the kernel's user module

        self.workspace = Workspace(namespace if namespace is not None else vars(__main__))
        self.ask = ask  # how tool_approval=ask asks (default: input())
        self.settings.apply(options, source="Chat()")  # a bad value raises BadSetting
        self.conversation = conversation if conversation is not None else Conversation()
        if system is not None:
            self.conversation.system = system
        self.transport = transport if transport is not None else Transport()
        self.ledger = ledger if ledger is not None else Ledger()
        self.replayer = replayer if replayer is not None else Replayer()

    def __repr__(self) -> str:
        return f"<Chat {self.settings.model!r}, {len(self.conversation.turns)} turns>"

    @property
    def messages(self) -> list[Message]:
        return self.conversation.messages(system=self.settings.system_prompt)

    def prepare(
        self,
        text: Content | list[Any],
        *,
        cell_id: str | None = None,
        history: bool = True,
        slot: int | None = None,
        context: list[dict[str, Any]] | None = None,
        **overrides: Any,
    ) -> tuple[Request, Message]:
        """Build (without sending) the request for ``text`` with per-call ``overrides``.

        ``text`` may be a list of strings and objects (``["What is in", fig, "?"]``):
        DataFrames are described and figures and images become image parts. ``schema=SPEC``
        asks for structured output.
        """
        text = _message(text)
        self._refuse_per_call(overrides)
        given = {k: v for k, v in overrides.items() if k != "cache"}  # a retry chooses its own
        spec = overrides.pop("schema", None)
        if isinstance(text, list) and not is_valid(text):
            text, pieces = compose(text, self.limits())
            context = [*(context or []), *(p.as_dict() for p in pieces)]
        wanted = [*self.settings.tools, *self.tools, *(overrides.pop("tools", None) or ())]
        if wanted:
            self.workspace.limits = self.limits()
        tools, later = self.workspace.offer(wanted, self.tool_sources() if wanted else None)
        checked = self.settings.checked(overrides)
        values = self.settings.request_values() | checked
        if tools or later:
            _one_choice_with_tools(values, ", ".join(tools) or ", ".join(map(str, wanted)))
        stream = overrides.get("stream", self.settings.stream)
        if slot is None and self.settings.rerun == "replace":
            slot = self.conversation.slot_of(cell_id)
        user: Message = {"role": "user", "content": text}
        messages, left_out = self._window(user, slot, history)
        api = checked.get("api") or self.settings.api
        schema = to_schema(spec) if spec is not None else None
        body, dropped, api, learned = self._body(
            values, messages, bool(stream), schema, bool(tools or later), api
        )
        request = Request(
            body, left_out, cell_id, record=history, slot=slot, dropped=dropped, cache=checked.get("cache")
        )
        request.schema, request.api, request.learned = schema, api, learned
        request.context, request.overrides = list(context or []), given
        request.over_budget = self._over_budget(messages)
        if tools or later:
            self._offer(request, tools, later, checked)
        request.sent = messages
        return request, user

    def _over_budget(self, messages: list[Message]) -> str:
        """What the footer says when even the shortest history is over the context budget."""
        budget = self.settings.max_context_tokens
        if budget is not None and (estimate := estimate_messages(messages)) > budget:
            return f"still ≈{estimate} tokens, over max_context_tokens={budget}"
        return ""

    def _refuse_per_call(self, overrides: dict[str, Any]) -> None:
        """A setting a single call cannot change (or no setting at all) is an error: validating
        such a value and then ignoring it would silently send with the old one."""
        refused = sorted(set(overrides) - set(self.settings.request_values()) - PER_CALL)
        names = self.settings.setting_names()
        unknown = [name for name in refused if name not in names]
        if unknown:  # a typo (temprature=1) is not a setting at all: say so, and the nearest
            raise BadSetting(
                unknown_setting(unknown[0], sorted({*self.settings.request_values(), *PER_CALL}))
            )
        if refused:
            raise BadSetting(
                f"{', '.join(refused)} cannot be changed for one call; set it on the Chat "
                f"(chat.settings.{refused[0]} = …) or make another Chat"
            )

    def _window(self, user: Message, slot: int | None, history: bool) -> tuple[list[Message], int]:
        """The messages sent with ``user`` (the history before ``slot``, or only the system
        prompt), trimmed to the context budget, and how many were left out."""
        past = self.conversation.messages(upto=slot, system=self.settings.system_prompt)
        if not history:
            past = [m for m in past if m["role"] == "system"]
        return self.conversation.window([*past, user], self.settings.max_context_tokens)

    def _offer(
        self, request: Request, tools: dict[str, Tool], later: list[Deferred], checked: dict[str, Any]
    ) -> None:
        """Offer ``tools`` (and the servers' tools that come ``later``) with the request."""
        if tools:
            request.body["tools"] = [tool.spec for tool in tools.values()]
            if request.api == "responses":
                from .transports.responses import function_tools

                request.body["tools"] = function_tools(request.body["tools"])
        request.tools, request.later = tools, later
        request.approval = checked.get("tool_approval") or self.settings.tool_approval
        request.max_tool_steps = checked.get("max_tool_steps") or self.settings.max_tool_steps

    def tool_sources(self) -> Any:
        """Where tool names that are neither functions nor built-ins are looked up: the MCP
        servers of ``mcp_servers`` (the SDK is imported only when a server is used)."""
        if not self.settings.mcp_servers:
            return None
        from .mcp import sources_for

        return sources_for(self.settings)

    def _body(
        self,
        values: dict[str, Any],
        messages: list[Message],
        stream: bool,
        schema: Schema | None,
        tools: bool,
        api: str,
    ) -> tuple[dict[str, Any], list[str], str, list[tuple[Refusal, str]]]:
        """The request's body as this server takes it for this model: what it refused before
        is asked otherwise (tools through the Responses API, json_object for a schema, a
        parameter left out). Returns the body, the settings not sent, the API, and how it
        was asked otherwise."""
        before = self.transport.learned.of(server_of(self.settings), str(values.get("model")))
        kinds = {r.kind for r in before}
        learned: list[tuple[Refusal, str]] = []
        if api == "chat" and tools and TOOLS in kinds:
            api = "responses"
            learned += [(r, "tools through the Responses API") for r in before if r.kind == TOOLS]
        if api == "responses":
            body, dropped = self._responses_body(values, messages, stream, schema, learned)
        else:
            body, dropped = request_body(values, messages, stream=stream, reasons=MAX_TOKENS in kinds or None)
            learned += [(r, "sent as a reasoning model") for r in before if r.kind == MAX_TOKENS]
        learned += without(body, before, api)
        if schema is not None:
            request_with(body, schema, fallback=JSON_SCHEMA in kinds)
            fallback = "json_object with the schema in the system message"
            learned += [(r, fallback) for r in before if r.kind == JSON_SCHEMA]
        return body, dropped, api, learned

    def _responses_body(
        self,
        values: dict[str, Any],
        messages: list[Message],
        stream: bool,
        schema: Schema | None,
        learned: list[tuple[Refusal, str]],
    ) -> tuple[dict[str, Any], list[str]]:
        """The Responses API's body: for ``api=responses``, or for tools that this server's
        Chat Completions refused (then what that API lacks is left out, and named)."""
        from .transports import responses

        if schema is not None:
            raise responses.Unsupported("schemas need api=chat (Chat Completions)")
        lacking = [n for n in responses.LACKING if values.get(n) is not None] if learned else []
        values = {k: v for k, v in values.items() if k not in lacking}
        # each earlier reply that came with encrypted reasoning goes back as it came
        outputs = {id(t.messages[-1]): t.output for t in self.conversation.turns if t.output}
        body, dropped = responses.request_body(
            values, messages, stream=stream, summary=self.settings.reasoning_summary, outputs=outputs
        )
        return body, [*dropped, *lacking]

    def limits(self, detail: str | None = None) -> Limits:
        """How much context one value may take, from the settings; the key is kept out."""
        return Limits(
            self.settings.context_tokens,
            self.settings.image_max_side,
            detail,
            tuple(credentials(self.settings)),  # every credential: key, headers, URL password
        )

    def stream(self, text: Content | list[Any], **overrides: Any) -> ReplyStream:
        request, user = self.prepare(text, **overrides)
        return ReplyStream(self, request, user)

    def send(self, text: Content | list[Any], **overrides: Any) -> Reply:
        stream = self.stream(text, **overrides)
        for _ in stream.events():
            pass
        assert stream.reply is not None
        return stream.reply

    def complete(self, prompt: str, *, echo: bool = False, **overrides: Any) -> ReplyStream:
        """The legacy Completions API: ``prompt`` exactly as written, no history, no chat
        template; ``echo=True`` with ``logprobs=K`` scores the prompt's own tokens."""
        from .transports import completions

        checked = self.settings.checked(overrides)
        stream = checked.pop("stream", self.settings.stream)
        values = self.settings.request_values() | {"model": self.settings.completion_model} | checked
        body, ignored = completions.request_body(values, prompt, echo=echo, stream=bool(stream))
        user: Message = {"role": "user", "content": prompt}
        request = Request(body, 0, None, record=False, dropped=ignored, api="completions", sent=[user])
        return ReplyStream(self, request, user)

    def map(
        self,
        items: Any,
        template: str,
        *,
        schema: Any = None,
        concurrency: int = 8,
        batch: bool = False,
        strict: bool = False,
        **options: Any,
    ) -> Any:
        """Send ``template`` once per item, each as its own request (system prompt + the
        filled template; nothing joins the history)::

            labels = chat.map(df, "Sentiment of: {review}", schema="label, score float")

        ``{item}`` is the item; ``{column}`` a field of a dict or DataFrame row. A list gives
        a list (``.errors`` lists failed items, which are ``None``); a Series or DataFrame
        gives a Series (or, with ``schema``, a DataFrame with a column per field) with the
        same index and the errors in ``.attrs["errors"]``. At most ``concurrency`` requests
        run at once. ``batch=True`` sends them to the Batch API and returns a ``BatchJob``.

        Raises ``MapFailed`` (its ``.results`` holds the results) when every item failed, when
        a failure that would hit every item (401/403, 404, the same 4xx for the first items)
        stopped the map early with the rest not sent, or with ``strict=True`` when any item
        failed; ``MapInterrupted``, a ``KeyboardInterrupt``, on Ctrl-C. A ``{field}`` that is
        neither ``item`` nor a key of every item is an error before anything is sent
        (``raw=True`` sends such braces as written).
        Also: ``previous=`` (earlier results to continue from), ``progress=None`` (no bar),
        ``confirm=`` (asked instead of ``input()`` above ``confirm_cost``), and any setting
        as a per-request override.
        """
        run = HOST.submit_map if batch else HOST.map
        return run(self, items, template, schema=schema, concurrency=concurrency, strict=strict, **options)

    def compare(
        self,
        items: Any,
        template: str,
        *,
        models: Any,
        schema: Any = None,
        truth: Any = None,
        concurrency: int = 8,
        **options: Any,
    ) -> Any:
        """Ask each item of each model, one request each, as :meth:`map` does (nothing joins
        any history), and put the answers side by side::

            grid = chat.compare(df, "Sentiment of: {review}", models=["gpt-4o-mini", terse],
                                schema={"label": {"enum": ["pos", "neg"]}}, truth="gold")

        ``models``: model names on this chat's server (with its system prompt and settings)
        and ``Chat`` objects (their own server, model and system prompt), or a dict of
        column names to either. The result has one row per item and one column per model
        (``model.field`` per field with ``schema``): a DataFrame with the items' index when
        they are pandas, else a list of dicts. ``nbchat.compare.comparison_of(grid)`` gives
        each model's summary, agreement between each pair on the label fields (an enum, a
        bool or a number; Cohen's κ), and with ``truth`` (a column, or one label per item)
        accuracy and a confusion table per model. At most ``concurrency`` requests are in
        flight per server. Also: ``previous=``, ``progress=``, ``confirm=`` as for :meth:`map`.
        """
        return HOST.compare(
            self,
            items,
            template,
            models=models,
            schema=schema,
            truth=truth,
            concurrency=concurrency,
            **options,
        )

    def as_learned(self, request: Request) -> None:
        """Make a request prepared earlier (a map's item) as this server now takes it: what
        it refused since (of an earlier item, or a cell) is left out or asked otherwise."""
        before = self.transport.learned.of(server_of(self.settings), str(request.body.get("model")))
        without(request.body, before, request.api)
        fallback = request.schema is not None and any(r.kind == JSON_SCHEMA for r in before)
        if fallback and (request.body.get("response_format") or {}).get("type") == "json_schema":
            assert request.schema is not None
            request_with(request.body, request.schema, fallback=True)

    def learn(self, request: Request, refusal: Refusal) -> bool:
        """Remember ``refusal`` for this server and model; ``True`` when the request can be
        asked once more without what was refused (never without an image or file)."""
        if refusal.kind in (PART, TOOLS):
            return False
        self.transport.learned.add(server_of(self.settings), str(request.body.get("model")), refusal)
        return True

    def open(self, request: Request, user: Message) -> ReplyStream:
        """The stream of a request prepared earlier (``prepare``): a map's item, read whole
        or replayed from the cache."""
        return ReplyStream(self, request, user)

    def whole_reply(self, completion: Completion) -> Reply:
        """A reply that arrived whole outside a request of this Chat (a batch's output line):
        counted in the ledger, recorded in no conversation and no cache."""
        model = completion.model or "?"
        request = Request({"model": model, "messages": []}, 0, None, record=False, cache="off")
        stream = ReplyStream(self, request, {"role": "user", "content": ""})
        stream.completion = completion
        return stream.finish()

    def retry(self, **overrides: Any) -> ReplyStream:
        """Regenerate the last reply with the current settings; it replaces the old one.

        The request is the one the turn made, sent again: the same message (its images and
        files as they were attached), the same per-call options (a cell's ``--tools``,
        ``--tool-approval``, ``--schema``, ``-t``…; ``overrides`` change them) and the same
        receipt. A tool turn runs its tools again and is replaced whole.
        """
        turns = self.conversation.turns
        if not turns or turns[-1].messages[0]["role"] != "user":
            raise NbChatError("there is no exchange to retry")
        last = turns[-1]
        recipe = last.recipe or {}  # a loaded or rebuilt turn: only its message is known
        options = dict(recipe.get("overrides") or {}) | overrides
        # a retry asks the model again and its answer replaces the stored one
        options.setdefault("cache", ask_again(self.settings.cache))
        return self.stream(
            last.messages[0]["content"],
            cell_id=last.cell_id,
            slot=len(turns) - 1,
            context=recipe.get("context"),
            **options,
        )

    def prime(self, text: str, cell_id: str | None = None) -> Turn:
        """Add an example assistant reply (few-shot) without a request."""
        slot = self.conversation.slot_of(cell_id) if self.settings.rerun == "replace" else None
        turn = Turn([{"role": "assistant", "content": text}], cell_id=cell_id)
        self.conversation.record(turn, slot)
        return turn

    def save(self, path: str | os.PathLike[str]) -> None:
        self.conversation.save(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], **options: Any) -> Chat:
        return cls(conversation=Conversation.load(path), **options)
