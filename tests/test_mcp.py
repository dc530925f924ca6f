"""MCP servers as tools: real servers written with the official SDK (the example that ships
with the stand-in), over stdio and over streamable HTTP behind a token, driven from a real
InteractiveShell while the stand-in model is scripted to call their tools."""

from __future__ import annotations

import _thread
import builtins
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cell, make_shell
from IPython.core.error import StdinNotImplementedError, UsageError

pytest.importorskip("mcp")

from nbchat import mcp
from nbchat.errors import StreamInterrupted
from nbchat.testing import mcp_example

EXAMPLE = mcp_example.__file__
# random-looking, so that any 8-character run of them found anywhere is a leak
STDIO_SECRET = "tok-Kx7Qm2Vr9Lp4Wz8Nb3"
HTTP_SECRET = "Jd5Rt8Yq1Xc6Hv0Bm4Ns"
ADD_SCHEMA = {
    "properties": {"a": {"title": "A", "type": "number"}, "b": {"title": "B", "type": "number"}},
    "required": ["a", "b"],
    "type": "object",
    "title": "addArguments",
}


def calls(*specs: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": name, "arguments": args} for name, args in specs]


def stdio_entry(**extra: Any) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": [EXAMPLE, "--faults"],
        "env": {"EXAMPLE_TOKEN": STDIO_SECRET},
    } | extra


@pytest.fixture(scope="module")
def remote() -> Iterator[str]:
    """The example server over streamable HTTP; every request needs ``HTTP_SECRET``."""
    env = {**os.environ, "MCP_EXAMPLE_TOKEN": HTTP_SECRET}
    process = subprocess.Popen(
        [sys.executable, EXAMPLE, "--http", "--faults"], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module", autouse=True)
def servers_stop_at_the_end() -> Iterator[None]:
    yield
    mcp.stop_all()


@pytest.fixture
def servers_file(tmp_path: Path, remote: str) -> Path:
    path = tmp_path / "servers.json"
    table = {
        "demo": stdio_entry(),
        "remote": {"url": remote, "headers": {"Authorization": f"Bearer {HTTP_SECRET}"}},
    }
    path.write_text(json.dumps({"mcpServers": table}))
    return path


@pytest.fixture
def cell(shell, servers_file: Path) -> Cell:
    run = Cell(shell)
    assert run(f"%chatconfig mcp_servers={servers_file}").ok
    return run


def tool_messages(body: dict[str, Any]) -> list[str]:
    """The results this request answers (the tool messages at its end)."""
    from nbchat.testing.tool_calls import tool_results

    return tool_results(body["messages"]) or []


# -- a call and its result -------------------------------------------------------------------


def test_a_stdio_servers_tool_is_called_and_its_result_is_in_the_next_request(cell, server) -> None:
    server.script(tool_calls=calls(("demo__add", {"a": 2, "b": 3})))
    run = cell("%%chat --tools demo.add\nWhat is 2 + 3?")
    assert run.ok, run.error
    first, second = server.bodies
    (offered,) = first["tools"]
    # the server's inputSchema as it is (nbchat's own schemas have no titles)
    assert offered == {
        "type": "function",
        "function": {"name": "demo__add", "description": "Add two numbers.", "parameters": ADD_SCHEMA},
    }
    asked, answered = second["messages"][-2:]
    assert asked["tool_calls"][0]["function"] == {"name": "demo__add", "arguments": '{"a": 2, "b": 3}'}
    assert answered == {"role": "tool", "tool_call_id": asked["tool_calls"][0]["id"], "content": "5.0"}
    assert "Echo: 5.0" in run.markdown


def test_a_remote_server_over_streamable_http_with_a_token(cell, server) -> None:
    server.script(tool_calls=calls(("remote__word_count", {"text": "one two three"})))
    run = cell("%%chat --tools remote\nCount the words of: one two three")
    assert run.ok, run.error
    names = [t["function"]["name"] for t in server.bodies[0]["tools"]]
    assert names[:5] == [
        "remote__add",
        "remote__word_count",
        "remote__remember",
        "remote__notes",
        "remote__chart",
    ]
    assert json.loads(tool_messages(server.bodies[1])[0]) == {"words": 3, "characters": 13}


def test_mcp_tools_mix_with_python_tools_and_the_tools_setting(cell, server) -> None:
    assert cell("def lookup(key: str) -> str:\n    return key.upper()").ok
    assert cell("%chatconfig tools=lookup,demo.notes tool_approval=auto").ok
    server.script(tool_calls=calls(("lookup", {"key": "a"}), ("demo__add", {"a": 1, "b": 1})))
    assert cell("%%chat --tools demo.add,variables\ngo").ok
    names = [t["function"]["name"] for t in server.bodies[0]["tools"]]
    assert names == ["lookup", "variables", "demo__notes", "demo__add"]
    assert tool_messages(server.bodies[1]) == ["A", "2.0"]


def test_an_image_is_shown_in_the_block_and_described_to_the_model(cell, server) -> None:
    server.script(tool_calls=calls(("demo__chart", {"values": [1, 2, 3]})))
    run = cell("%%chat --tools demo.chart\nDraw 1, 2, 3")
    assert run.ok, run.error
    (said,) = tool_messages(server.bodies[1])
    assert said.startswith("[an image (image/png, 24×32 pixels, ") and "shown to the user" in said
    assert '<img src="data:image/png;base64,iVBORw0KGgo' in run.markdown
    assert "base64" not in json.dumps(server.bodies[1])


def test_is_error_is_the_tools_error_result(cell, server) -> None:
    server.script(tool_calls=calls(("demo__fail", {"message": "no such table"})))
    run = cell("%%chat --tools demo.fail\ngo")
    assert run.ok, run.error
    assert tool_messages(server.bodies[1]) == ["Error executing tool fail: no such table"]
    assert "error · " in run.markdown


# -- approval ----------------------------------------------------------------------------------


def test_approval_is_asked_for_a_tool_that_changes_things_and_not_for_a_read_only_one(
    cell, server, monkeypatch
) -> None:
    prompts: list[str] = []
    monkeypatch.setattr(builtins, "input", lambda prompt="": prompts.append(prompt) or "n")
    server.script(tool_calls=calls(("demo__add", {"a": 1, "b": 2}), ("demo__remember", {"note": "milk"})))
    assert cell("%%chat --tools demo\ngo").ok
    assert prompts == ["Run demo__remember(note='milk')? [y/N/a(ll)] "]  # add is read-only
    assert tool_messages(server.bodies[1]) == [
        "3.0",
        "Not run: the user declined this call, so it did not run.",
    ]


def test_without_stdin_an_unapproved_call_is_refused(cell, server, monkeypatch) -> None:
    def no_stdin(prompt: str = "") -> str:
        raise StdinNotImplementedError(
            "raw_input was called, but this frontend does not support input requests."
        )

    monkeypatch.setattr(builtins, "input", no_stdin)
    server.script(tool_calls=calls(("demo__remember", {"note": "eggs"})))
    assert cell("%%chat --tools demo.remember\ngo").ok
    assert tool_messages(server.bodies[1]) == [
        "Not run: the user could not be asked to approve this call (no input available), so it did not run."
    ]


# -- failures ------------------------------------------------------------------------------------


def test_a_call_past_mcp_timeout_gets_an_error_result_and_the_turn_goes_on(cell, server, magics) -> None:
    assert cell("%%chat --tools demo.add\nwarm up").ok  # started within the default timeout
    assert cell("%chatconfig mcp_timeout=1").ok
    server.script(tool_calls=calls(("demo__sleep", {"seconds": 4})))
    started = time.monotonic()
    run = cell("%%chat --tools demo.sleep\nwait")
    assert run.ok, run.error
    assert time.monotonic() - started < 4
    assert tool_messages(server.bodies[-1]) == [
        "Error: MCP server 'demo' did not answer sleep within 1 s (mcp_timeout), so the call was cancelled"
    ]
    turn = magics.conversations["default"].turns[-1]
    assert [m["role"] for m in turn.messages] == ["user", "assistant", "tool", "assistant"]
    mcp.stop_all()  # the server is still asleep in that call


def test_a_server_that_dies_mid_call_gives_an_error_result_and_starts_again(cell, server, magics) -> None:
    server.script(tool_calls=calls(("demo__crash", {})))
    run = cell("%%chat --tools demo.crash\ngo")
    assert run.ok, run.error
    (result,) = tool_messages(server.bodies[-1])
    assert result.startswith("Error: MCP server 'demo' (")
    assert "failed: it stopped during a call to crash" in result
    assert "its last lines: " in result and "example server: crashing on purpose" in result
    assert "failed: it stopped during a call to crash" in cell("%chat mcp").markdown
    server.script(tool_calls=calls(("demo__add", {"a": 1, "b": 1})))
    assert cell("%%chat --tools demo.add\nagain").ok
    assert tool_messages(server.bodies[-1]) == ["2.0"]
    assert (
        "| demo | stdio: " in cell("%chat mcp").markdown
        and "| running | demo__add," in cell("%chat mcp").markdown
    )


def test_ctrl_c_during_a_call_ends_the_turn_and_records_nothing(cell, server, magics) -> None:
    assert cell("%%chat --tools demo.add\nwarm up").ok
    before = [list(t.messages) for t in magics.conversations["default"].turns]
    sent = len(server.bodies)
    server.script(tool_calls=calls(("demo__sleep", {"seconds": 30})))
    timer = threading.Timer(1.5, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    run = cell("%%chat --tools demo.sleep\nwait")
    timer.join()
    assert isinstance(run.error, StreamInterrupted)  # what any interrupted cell shows
    assert str(run.error) == "interrupted: nothing arrived and nothing was recorded"
    assert time.monotonic() - started < 10
    assert [t.messages for t in magics.conversations["default"].turns] == before
    assert len(server.bodies) == sent + 1  # no call went out without its result
    mcp.stop_all()


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (
            {"command": "no-such-mcp-server-command"},
            "could not start: command 'no-such-mcp-server-command' was not found",
        ),
        (
            {
                "command": sys.executable,
                "args": ["-c", "import sys; print('bad config: no root', file=sys.stderr); sys.exit(2)"],
            },
            "could not start: it exited before it was ready; its last lines: bad config: no root",
        ),
        ({"url": "http://127.0.0.1:1/mcp"}, "could not start: cannot connect to http://127.0.0.1:1/mcp"),
    ],
    ids=["command-missing", "exits-at-once", "bad-url"],
)
def test_a_server_that_cannot_start_is_a_one_line_error_naming_it(
    shell, server, tmp_path, entry: dict[str, Any], words: str
) -> None:
    cell = Cell(shell)
    (tmp_path / "s.json").write_text(json.dumps({"mcpServers": {"broken": entry}}))
    assert cell(f"%chatconfig mcp_servers={tmp_path / 's.json'}").ok
    assert cell("%%chat\nbefore").ok
    run = cell("%%chat --tools broken\ngo")
    assert not run.ok
    message = run.error._render_traceback_()  # type: ignore[union-attr]
    assert len(message) == 1 and "\n" not in message[0]
    assert message[0].startswith("nbchat: MCP server 'broken' (") and words in message[0]
    assert len(server.bodies) == 1  # nothing was sent
    assert "failed: " in cell("%chat mcp").markdown


def test_refused_credentials_name_the_server_and_the_status(shell, server, remote, tmp_path) -> None:
    cell = Cell(shell)
    wrong = {
        "mcpServers": {"remote": {"url": remote, "headers": {"Authorization": "Bearer Wq3Zt6Lm9Pk2Rv5Xy8"}}}
    }
    (tmp_path / "s.json").write_text(json.dumps(wrong))
    assert cell(f"%chatconfig mcp_servers={tmp_path / 's.json'}").ok
    run = cell("%%chat --tools remote\ngo")
    assert not run.ok
    assert str(run.error).startswith(
        f"MCP server 'remote' ({remote}) could not start: {remote} answered 401 Unauthorized"
    )
    assert "Wq3Zt6Lm9Pk2Rv5Xy8" not in str(run.error) and server.bodies == []


# -- the SDK is optional; configuration mistakes ------------------------------------------------


def test_naming_a_server_without_the_sdk_is_a_usage_error_naming_the_extra(tmp_path) -> None:
    servers = tmp_path / "s.json"
    servers.write_text(json.dumps({"mcpServers": {"demo": stdio_entry()}}))
    code = f"""
import sys
class NoMcp:
    def find_spec(self, name, path=None, target=None):
        if name == "mcp" or name.startswith("mcp."):
            raise ModuleNotFoundError("No module named 'mcp'")
sys.meta_path.insert(0, NoMcp())
from IPython.core.interactiveshell import InteractiveShell
sh = InteractiveShell.instance()
sh.run_line_magic("load_ext", "nbchat")
sh.run_line_magic("chatconfig", "mcp_servers={servers}")
try:
    sh.run_cell_magic("chat", "--tools demo", "hi")
except Exception as e:
    print(type(e).__name__, e)
print("mcp" in sys.modules)
"""
    env = {**os.environ, "OPENAI_API_KEY": "sk-unused", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.splitlines()[1:] == [
        "UsageError MCP server 'demo' needs the mcp package: pip install 'nbchat[mcp]'",
        "False",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("missing.json", "mcp_servers: no such file: 'missing.json'"),
        (
            '{"mcpServers": {"x": {"args": []}}}',
            "server 'x' needs either command (a local server) or url (remote)",
        ),
        ('{"mcpServers": {"x": {"url": "ftp://h"}}}', "url of server 'x' must be an http(s) URL"),
        (
            '{"mcpServers": {"x": {"command": "a", "port": 1}}}',
            "server 'x' has no field 'port' (it takes args, command, cwd, env)",
        ),
    ],
)
def test_a_bad_mcp_servers_value_is_a_usage_error(shell, value: str, message: str) -> None:
    run = Cell(shell)(f"%chatconfig mcp_servers={value}")
    assert type(run.error) is UsageError and message in str(run.error)


# -- credentials, replay, lifetime --------------------------------------------------------------


def test_no_credential_anywhere(cell, server, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(builtins, "input", lambda prompt="": "y")
    assert cell(f"%chatconfig cache=replay cache_path={tmp_path / 'cache.sqlite3'}").ok
    server.script(
        tool_calls=calls(("demo__show_env", {"name": "EXAMPLE_TOKEN"}), ("remote__add", {"a": 1, "b": 2}))
    )
    runs = [
        cell("%%chat --tools demo.show_env,remote.add\nShow the token"),
        cell("%chatconfig"),
        cell("%config ChatMagics"),
        cell("%chat mcp"),
        cell("%chat mcp demo"),
        cell("%chat history"),
        cell("%%chat --tools demo --dry-run\nagain"),
        cell(f"%chat save {tmp_path / 'saved.json'}"),
        cell(f"%chat export {tmp_path / 'exported.md'}"),
        cell(f"%chat export {tmp_path / 'exported.jsonl'}"),
    ]
    assert all(r.ok for r in runs), [r.error for r in runs]
    assert "[redacted]" in tool_messages(server.bodies[1])[0]
    seen = "".join(r.text + json.dumps(r.outputs, default=str) + json.dumps(r.metadata) for r in runs)
    seen += json.dumps([r.body for r in server.requests]) + json.dumps(
        [dict(r.headers) for r in server.requests]
    )
    files = [tmp_path / n for n in ("saved.json", "exported.md", "exported.jsonl", "cache.sqlite3")]
    seen += "".join(f.read_bytes().decode("latin-1") for f in files)
    for secret in (STDIO_SECRET, HTTP_SECRET):
        for start in range(len(secret) - 7):
            assert secret[start : start + 8] not in seen


def test_a_replayed_turn_starts_no_server_and_calls_nothing(
    env, server, servers_file, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("NBCHAT_CACHE", "replay")
    monkeypatch.setenv("NBCHAT_CACHE_PATH", str(tmp_path / "replies.sqlite3"))
    mcp.stop_all()
    question = "%%chat --tools demo.add,demo.remember\nAdd 2 and 2, then remember it"
    for kernel in range(2):  # two fresh kernels sharing the cache file
        server.script(tool_calls=calls(("demo__add", {"a": 2, "b": 2}), ("demo__remember", {"note": "4"})))
        cell = Cell(make_shell())
        assert cell(f"%chatconfig mcp_servers={servers_file} tool_approval=auto").ok
        run = cell(question, cell_id="q")
        assert run.ok, run.error
        assert "<pre>4.0</pre>" in run.markdown and "<pre>noted (" in run.markdown
        if kernel == 0:
            assert len(server.bodies) == 2
            mcp.stop_all()
    assert len(server.bodies) == 2  # the second kernel sent nothing
    assert run.metadata["replayed"] is True
    assert mcp._SERVERS == {}  # and started nothing
    assert (
        "| demo | stdio: " in cell("%chat mcp").markdown and "| not started |" in cell("%chat mcp").markdown
    )


def test_unload_ext_stops_the_servers_process(cell, server) -> None:
    server.script(tool_calls=calls(("demo__pid", {})))
    assert cell("%%chat --tools demo.pid\nyour pid?").ok
    pid = int(tool_messages(server.bodies[-1])[0])
    os.kill(pid, 0)  # it runs
    assert cell("%unload_ext nbchat").ok
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for good; only the SDK's reaper has not collected it yet
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# -- Python, dry runs, names --------------------------------------------------------------------


def test_chat_offers_a_servers_tools_by_name_in_python(env, server) -> None:
    from nbchat import Chat

    chat = Chat(mcp_servers={"mcpServers": {"demo": stdio_entry()}}, tools=["demo.word_count"], namespace={})
    server.script(tool_calls=calls(("demo__word_count", {"text": "a b"})))
    reply = chat.send("count")
    assert [t["function"]["name"] for t in server.bodies[0]["tools"]] == ["demo__word_count"]
    assert json.loads(reply.tool_calls[0].result) == {"words": 2, "characters": 3}


def test_a_dry_run_shows_the_servers_tools_as_they_would_be_sent(cell, server) -> None:
    run = cell("%%chat --tools demo.add --dry-run\nhi")
    assert run.ok, run.error
    body = json.loads(run.markdown.split("```json\n", 1)[1].split("\n```", 1)[0])
    assert body["tools"][0]["function"]["parameters"] == ADD_SCHEMA
    assert server.bodies == []


def test_a_tool_the_server_does_not_have_is_named_and_nothing_is_sent(cell, server) -> None:
    run = cell("%%chat --tools demo.nope\nhi")
    assert not run.ok
    assert str(run.error).startswith("MCP server 'demo' has no tool 'nope' (its tools: add, word_count, ")
    assert server.bodies == []


def test_model_names_follow_openais_rules() -> None:
    assert mcp.model_name("my.server", "read/file") == "my_server__read_file"
    long = [mcp.model_name("s" * 40, "t" * 40 + suffix) for suffix in ("a", "b")]
    assert all(len(n) == 64 and n.replace("_", "").isalnum() for n in long) and long[0] != long[1]


def test_every_env_value_and_header_is_hidden_but_only_secret_looking_ones_are_redacted(shell) -> None:
    from nbchat.magics import INSTANCES
    from nbchat.secret import credentials

    table = {
        "a": {"command": "x", "env": {"LOG_LEVEL": "debug", "GITHUB_TOKEN": "ghp_Qx7Lm2Vr9Kp4Wz8N"}},
        "b": {"url": "http://h/mcp", "headers": {"Accept": "application/json", "X-Api-Key": "Ab12Cd34"}},
    }
    run = Cell(shell)(f"%chatconfig mcp_servers={json.dumps({'mcpServers': table})}")
    assert run.ok, run.error
    shown = Cell(shell)("%chatconfig").markdown
    assert "debug" not in shown and "application/json" not in shown and shown.count("<secret: set>") == 4
    held = credentials(INSTANCES[shell])
    assert "ghp_Qx7Lm2Vr9Kp4Wz8N" in held and "Ab12Cd34" in held
    assert "debug" not in held and "application/json" not in held


def test_load_ext_and_declaring_servers_import_neither_the_sdk_nor_the_mcp_engine(tmp_path) -> None:
    servers = tmp_path / "s.json"
    servers.write_text(json.dumps({"mcpServers": {"demo": stdio_entry()}}))
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\n"
        "sh.run_line_magic('load_ext', 'nbchat')\n"
        f"sh.run_line_magic('chatconfig', 'mcp_servers={servers}')\n"
        "print(sorted(m for m in ('mcp', 'nbchat.mcp') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"


def test_a_remote_server_that_goes_away_mid_call_gives_an_error_result(shell, server, tmp_path) -> None:
    process = subprocess.Popen(
        [sys.executable, EXAMPLE, "--http", "--faults"], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    try:
        (tmp_path / "s.json").write_text(json.dumps({"mcpServers": {"gone": {"url": url}}}))
        cell = Cell(shell)
        assert cell(f"%chatconfig mcp_servers={tmp_path / 's.json'} tool_approval=auto").ok
        assert cell("%chat mcp gone").ok  # started
        server.script(tool_calls=calls(("gone__sleep", {"seconds": 30})))
        timer = threading.Timer(1.5, process.kill)
        timer.start()
        run = cell("%%chat --tools gone.sleep\nwait")
        timer.join()
        assert run.ok, run.error
        assert tool_messages(server.bodies[-1]) == [
            f"Error: MCP server 'gone' ({url}) failed: it stopped during a call to sleep; "
            "it is started again when next used"
        ]
        assert "| failed: it stopped during a call to sleep |" in cell("%chat mcp").markdown
    finally:
        process.kill()
        process.wait(10)


def test_a_local_server_runs_in_its_cwd_relative_to_the_file_that_declares_it(
    shell, server, tmp_path
) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "s.json").write_text(json.dumps({"mcpServers": {"here": stdio_entry(cwd="work")}}))
    cell = Cell(shell)
    assert cell(f"%chatconfig mcp_servers={tmp_path / 's.json'}").ok
    server.script(tool_calls=calls(("here__where", {})))
    assert cell("%%chat --tools here.where\nwhere are you?").ok
    assert tool_messages(server.bodies[-1]) == [str(tmp_path / "work")]
