"""Chat.compare against the raw SDK: 3 models × 1,000 items, 50 ms of stand-in latency per
request, at most 16 requests at once to the one server (nbchat vs AsyncOpenAI +
asyncio.gather of the same 3,000 requests under a semaphore of 16).

    python benchmarks/compare.py [--items 1000] [--models 3] [--latency 0.05] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import openai

from nbchat import Chat
from nbchat.testing.server import StandInServer

MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "o3-mini"]


def items(n: int) -> list[str]:
    return [f"review {i}: the battery lasts two days and the screen is sharp" for i in range(n)]


def run_nbchat(server: StandInServer, n: int, models: list[str], concurrency: int) -> float:
    chat = Chat(base_url=server.url, api_key="sk-bench", cache="off", confirm_cost=1e9)
    started = time.perf_counter()
    grid = chat.compare(items(n), "Label: {item}", models=models, concurrency=concurrency, progress=None)
    elapsed = time.perf_counter() - started
    assert not grid.errors and len(grid) == n and all(row[models[-1]] for row in grid)
    return elapsed


def run_gather(server: StandInServer, n: int, models: list[str], concurrency: int) -> float:
    async def go() -> float:
        client = openai.AsyncOpenAI(base_url=server.url, api_key="sk-bench", max_retries=0)
        gate = asyncio.Semaphore(concurrency)

        async def one(model: str, text: str) -> str:
            async with gate:
                reply = await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": f"Label: {text}"}]
                )
                return reply.choices[0].message.content or ""

        started = time.perf_counter()
        # interleaved as the grid sends them: item by item, each model in turn
        out = await asyncio.gather(*(one(m, t) for t in items(n) for m in models))
        elapsed = time.perf_counter() - started
        assert len(out) == n * len(models)
        await client.close()
        return elapsed

    return asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs of each")
    args = parser.parse_args()
    n, c, models = args.items, args.concurrency, MODELS[: args.models]
    with StandInServer() as server:
        server.script(delay=args.latency, times=10**9)
        run_nbchat(server, 50, models, c)  # warm both paths: imports, connections, the loop thread
        run_gather(server, 50, models, c)
        ours, gather, cpu = [], [], {"nbchat": 0.0, "gather": 0.0}
        for _ in range(args.rounds):  # alternated, so a busy moment of the machine hits both
            started = time.process_time()
            ours.append(run_nbchat(server, n, models, c))
            middle = time.process_time()
            gather.append(run_gather(server, n, models, c))
            cpu["nbchat"] += middle - started
            cpu["gather"] += time.process_time() - middle
    requests = n * len(models)
    ideal = requests * args.latency / c
    print(
        f"{len(models)} models × {n} items = {requests} requests · {args.latency * 1000:.0f} ms latency "
        f"each · concurrency {c} (ideal {ideal:.2f} s)"
    )
    print(f"{'nbchat Chat.compare':<34} {min(ours):8.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ours)})")
    print(
        f"{'AsyncOpenAI + gather + semaphore':<34} {min(gather):8.2f} s  (runs: {', '.join(f'{t:.2f}' for t in gather)})"
    )
    print(
        f"nbchat / raw gather (best of {args.rounds} each): {min(ours) / min(gather):.3f}×  (target ≤ 1.10×)"
    )
    # this process's CPU (the stand-in server runs in it too): on a loaded machine wall times move
    # by tens of percent from run to run, the work done much less
    each = {k: v / args.rounds for k, v in cpu.items()}
    print(f"CPU seconds per run: nbchat {each['nbchat']:.2f}, raw gather {each['gather']:.2f}")


if __name__ == "__main__":
    main()
