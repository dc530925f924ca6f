"""Per-request cost against history length, nbchat vs the raw SDK, and memory per 1,000
messages. nbchat's cost should grow no faster than the request body does.

    python benchmarks/long_sessions.py
"""

from __future__ import annotations

import json
import tracemalloc

import openai
from bench import best  # the same median-of-warm-runs timer as the main benchmark

from nbchat import Chat
from nbchat.conversation import Conversation, Turn
from nbchat.testing.server import StandInServer


def history(n: int) -> list[dict[str, str]]:
    out = []
    for i in range(n // 2):
        out += [
            {"role": "user", "content": f"question {i}: how does the model handle outliers in column {i}?"},
            {
                "role": "assistant",
                "content": f"answer {i}: robust scaling keeps the outliers from dominating.",
            },
        ]
    return out


def main() -> None:
    with StandInServer() as server:
        raw = openai.OpenAI(base_url=server.url, api_key="sk-bench")
        print(
            f"{'messages':>8} {'body KB':>8} {'nbchat ms':>10} {'raw SDK ms':>11} {'ratio':>6} {'nbchat µs/msg':>14}"
        )
        for n in (0, 100, 1000, 5000):
            past = history(n)
            chat = Chat(base_url=server.url, api_key="sk-bench", cache="off")  # measure requests
            for i in range(0, n, 2):
                chat.conversation.turns.append(Turn(past[i : i + 2]))
            ask = [*past, {"role": "user", "content": "next"}]

            def ours(chat: Chat = chat) -> None:
                chat.send("next", stream=False)
                chat.conversation.undo()

            def theirs_(ask: list[dict[str, str]] = ask) -> None:
                raw.chat.completions.create(model="gpt-4o-mini", messages=ask)

            mine = best(ours, 7)
            theirs = best(theirs_, 7)
            size = len(json.dumps({"model": "gpt-4o-mini", "messages": ask})) / 1024
            per = mine / max(n, 1) * 1e6
            print(
                f"{n:>8} {size:>8.0f} {mine * 1e3:>10.2f} {theirs * 1e3:>11.2f} {mine / theirs:>6.2f} {per:>14.1f}"
            )

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    conv = Conversation()
    past = history(1000)
    for i in range(0, 1000, 2):
        conv.turns.append(
            Turn([dict(m) for m in past[i : i + 2]], usage={"prompt_tokens": 1, "completion_tokens": 1})
        )
    used = tracemalloc.get_traced_memory()[0] - base
    text = sum(len(m["content"]) for m in past)
    print(f"\nmemory per 1,000 messages: {used / 1024:.0f} KiB ({text / 1024:.0f} KiB of it is message text)")


if __name__ == "__main__":
    main()
