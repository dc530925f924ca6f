"""Chat.map against the raw SDK: 1,000 items, 50 ms of stand-in latency per request, at
concurrency 16 (nbchat, without and with its progress line painted, vs AsyncOpenAI +
asyncio.gather under a semaphore of 16) and against a sequential loop; then memory per item
at three sizes.

    python benchmarks/map.py [--items 1000] [--latency 0.05] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
import tracemalloc

import openai

from nbchat import Chat
from nbchat.items import Progress
from nbchat.mapping import TICK
from nbchat.testing.server import StandInServer
from nbchat.textview import TextProgress

MODEL = "gpt-4o-mini"


def items(n: int) -> list[str]:
    return [f"review {i}: the battery lasts two days and the screen is sharp" for i in range(n)]


def run_nbchat(server: StandInServer, n: int, concurrency: int, progress: bool = False) -> float:
    """``progress``: the live line a terminal shows, painted each tick (to /dev/null)."""
    chat = Chat(base_url=server.url, api_key="sk-bench", cache="off", model=MODEL)
    with open(os.devnull, "w") as sink:
        view = (lambda state: TextProgress(sink, live=True)) if progress else None
        started = time.perf_counter()
        results = chat.map(items(n), "Label: {item}", concurrency=concurrency, progress=view)
    elapsed = time.perf_counter() - started
    assert not results.errors and len(results) == n
    return elapsed


def run_gather(server: StandInServer, n: int, concurrency: int) -> float:
    async def go() -> float:
        client = openai.AsyncOpenAI(base_url=server.url, api_key="sk-bench", max_retries=0)
        gate = asyncio.Semaphore(concurrency)

        async def one(text: str) -> str:
            async with gate:
                reply = await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": f"Label: {text}"}]
                )
                return reply.choices[0].message.content or ""

        started = time.perf_counter()
        out = await asyncio.gather(*(one(t) for t in items(n)))
        elapsed = time.perf_counter() - started
        assert len(out) == n
        await client.close()
        return elapsed

    return asyncio.run(go())


def run_sequential(server: StandInServer, n: int) -> float:
    client = openai.OpenAI(base_url=server.url, api_key="sk-bench", max_retries=0)
    started = time.perf_counter()
    for text in items(n):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"Label: {text}"}])
    return time.perf_counter() - started


def paint_cost(n: int = 20000) -> float:
    """Seconds one repaint of the live progress line takes (the caller's thread paints every tick)."""
    state = Progress(total=1000, label="reviews", estimate=0.01, cost=0.001)
    with open(os.devnull, "w") as sink:
        view = TextProgress(sink, live=True)
        started = time.perf_counter()
        for i in range(n):
            state.done, state.tokens = i % 1000, i * 11  # a new line each time: every call paints
            view.update(state)
        return (time.perf_counter() - started) / n


def peak_memory(server: StandInServer, n: int, concurrency: int) -> int:
    chat = Chat(base_url=server.url, api_key="sk-bench", cache="off", model=MODEL)
    gc.collect()
    tracemalloc.start()
    results = chat.map(items(n), "Label: {item}", concurrency=concurrency, progress=None)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(results) == n
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    n, c = args.items, args.concurrency
    with StandInServer() as server:
        server.script(delay=args.latency, times=10**9)
        run_nbchat(server, 50, c)  # warm both paths: imports, connections, the loop thread
        run_gather(server, 50, c)
        # interleaved, best of three each: the machine's load drifts between runs
        ours, painted, gather = [], [], []
        for _ in range(3):
            ours.append(run_nbchat(server, n, c))
            painted.append(run_nbchat(server, n, c, progress=True))
            gather.append(run_gather(server, n, c))
        ours, painted, gather = min(ours), min(painted), min(gather)
        sequential = run_sequential(server, n)
        ideal = n * args.latency / c
        print(
            f"{n} items · {args.latency * 1000:.0f} ms latency each · concurrency {c} (ideal {ideal:.2f} s)"
        )
        print(f"{'nbchat Chat.map':<34} {ours:8.2f} s")
        print(f"{'nbchat Chat.map, progress line on':<34} {painted:8.2f} s")
        print(f"{'AsyncOpenAI + gather + semaphore':<34} {gather:8.2f} s")
        print(f"{'sequential loop (sync SDK)':<34} {sequential:8.2f} s")
        print(f"nbchat / raw gather: {ours / gather:.3f}×  (target ≤ 1.10×)")
        print(f"nbchat with progress / raw gather: {painted / gather:.3f}×  (target ≤ 1.10×)")
        paint = paint_cost()
        print(
            f"one repaint of the progress line: {paint * 1e6:.0f} µs, every {TICK} s: {paint / TICK:.3%} of a core"
        )
        print(f"sequential / nbchat: {sequential / ours:.1f}×  (target ≥ 12×)")
        server.scripts.clear()
        server.script(delay=0.0, times=10**9)
        # linear growth: the bytes each further item adds stay about the same from size to size
        print(f"{'items':>6} {'peak KB':>9} {'added bytes/item':>17}")
        last = None
        for size in (n // 4, n // 2, n):
            peak = peak_memory(server, size, c)
            added = f"{(peak - last[1]) / (size - last[0]):>17.0f}" if last else f"{'':>17}"
            print(f"{size:>6} {peak / 1024:>9.0f} {added}")
            last = (size, peak)


if __name__ == "__main__":
    main()
