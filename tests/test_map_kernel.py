"""A kernel interrupt during %%chat --map: in-flight requests are cancelled, completed ones are
kept in -o, the kernel goes on, and a re-run asks only for the rest."""

from __future__ import annotations

import time

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager
from kernels import reply_to, send

from nbchat.testing.server import StandInServer

pytestmark = pytest.mark.kernel


def value_of(kc: BlockingKernelClient, expression: str) -> str:
    for _ in range(20):
        reply = reply_to(kc, send(kc, "", expressions={"x": expression}))
        # right after a failed cell the kernel aborts what arrives until it has caught up
        if reply["status"] != "aborted":
            return str(reply["user_expressions"]["x"]["data"]["text/plain"])
        time.sleep(0.05)
    raise AssertionError("the kernel aborted every request after the failed cell")


def test_an_interrupt_cancels_the_requests_in_flight_and_keeps_the_completed_ones(
    kernel_manager: tuple[KernelManager, BlockingKernelClient], server: StandInServer
) -> None:
    km, kc = kernel_manager
    setup = '%load_ext nbchat\nitems = [f"i{i}" for i in range(8)]'
    assert reply_to(kc, send(kc, setup))["status"] == "ok"
    server.script(times=2)
    server.script(delay=40.0, times=50)
    msg_id = send(kc, "%%chat --map items --concurrency 2 -o out\n{item}")
    deadline = time.monotonic() + 30
    while len(server.bodies) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(server.bodies) == 4, "two answered, two waiting"
    time.sleep(0.2)
    interrupted = time.monotonic()
    km.interrupt_kernel()
    reply = reply_to(kc, msg_id)
    assert time.monotonic() - interrupted < 15, "the 40 s requests were cancelled, not awaited"
    assert reply["status"] == "error"
    assert reply["traceback"][0].startswith("nbchat: interrupted: 2 of 8 completed and are kept")
    assert (
        value_of(kc, "[i for i, r in enumerate(out) if r is not None].__len__(), len(out.errors)") == "(2, 6)"
    )
    time.sleep(0.3)
    assert len(server.bodies) == 4, "nothing new started after the interrupt"
    server.scripts.clear()
    assert reply_to(kc, send(kc, "%%chat --map items --concurrency 2 -o out\n{item}"))["status"] == "ok"
    assert len(server.bodies) == 4 + 6, "the re-run asked only for the six that did not complete"
    assert value_of(kc, "[str(r) for r in out] == [f'Echo: i{i}' for i in range(8)]") == "True"
