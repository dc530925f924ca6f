"""BatchJob.attach in a notebook uses the session's settings: the server and key that
%chatconfig set, as %%chat would, without changing them."""

from __future__ import annotations

from nbchat import Chat
from nbchat.secret import Secret

DEAD_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing answers there


def test_attach_without_a_chat_uses_the_server_and_key_chatconfig_set(
    cell, server, magics, monkeypatch
) -> None:
    job = Chat(base_url=server.url, api_key="sk-made", namespace={}).map(["p", "q"], "{item}", batch=True)
    monkeypatch.setenv("OPENAI_BASE_URL", DEAD_URL)
    monkeypatch.delenv("OPENAI_API_KEY")
    assert cell(f"%chatconfig base_url={server.url}").ok
    magics.api_key = Secret("sk-session-" + "key")  # as %chatconfig --key would keep it
    before = len(server.requests)
    cell.shell.user_ns["batch_id"] = job.id
    run = cell("from nbchat import BatchJob\nagain = BatchJob.attach(batch_id).wait(poll=0.05)")
    assert run.ok, run.error
    again = cell.shell.user_ns["again"]
    assert [str(r) for r in again.results()] == ["Echo: p", "Echo: q"]
    seen = server.requests[before:]
    assert seen and {r.headers.get("authorization") for r in seen} == {"Bearer sk-session-key"}


def test_attach_options_apply_to_that_job_only(cell, server, magics, monkeypatch) -> None:
    job = Chat(base_url=server.url, api_key="sk-made", namespace={}).map(["p"], "{item}", batch=True)
    monkeypatch.setenv("OPENAI_BASE_URL", DEAD_URL)
    assert cell(f"%chatconfig timeout=30 base_url={server.url}").ok
    cell.shell.user_ns["batch_id"] = job.id
    run = cell("from nbchat import BatchJob\nagain = BatchJob.attach(batch_id, timeout=5)")
    assert run.ok, run.error
    again = cell.shell.user_ns["again"]
    assert again.chat.settings.timeout == 5 and again.chat.settings.base_url == server.url
    assert magics.timeout == 30  # the session's own setting is unchanged


def test_attach_outside_ipython_builds_its_chat_from_the_options(server) -> None:
    from nbchat import BatchJob

    job = Chat(base_url=server.url, api_key="sk-made", namespace={}).map(["p"], "{item}", batch=True)
    again = BatchJob.attach(job.id, base_url=server.url, api_key="sk-made")
    assert again.id == job.id and again.chat.settings.base_url == server.url
