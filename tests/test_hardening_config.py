"""Credentials through IPython's own routes: a config file's key, headers and URL password
are never shown by the config objects, %config or %chatconfig; a bad `%config ChatMagics.x
= value` is one line that never repeats the value; a defect's traceback (also with %xmode
Verbose, which lists every frame's locals, the SDK's and the HTTP stack's included) shows no
credential."""

from __future__ import annotations

import json

import pytest
from conftest import FAKE_KEY, Cell, make_shell
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from nbchat.magics import INSTANCES

BEARER = "tok-Rb7Xk2Pq9Lm4Vz8Nc3Hd6Jw1"
API_KEY_HEADER = "azk-Yt5Qe8Wm2Ls7Kd9Bn3Xc6Pr"
PASSWORD = "pw-Gv4Jn7Rz2Tq8Mb5Lx9Hc3Ks"
SECRETS = [FAKE_KEY, BEARER, API_KEY_HEADER, PASSWORD]


def leaks(text: str) -> set[str]:
    """Every 8-character run of any secret's secret part found in ``text``."""
    found = set()
    for secret in SECRETS:
        body = secret.split("-", 1)[-1]
        found |= {body[i : i + 8] for i in range(len(body) - 7) if body[i : i + 8] in text}
    return found


def everything(run) -> str:
    parts = [run.io.stdout, run.io.stderr, str(run.error or ""), repr(run.result.result)]
    for output in run.io.outputs:
        parts.append(json.dumps(output.data, default=str) + json.dumps(output.metadata or {}, default=str))
    return "\n".join(parts)


@pytest.fixture
def configured(server, monkeypatch):
    """A shell whose config file holds every kind of credential, and its cell runner."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    config = Config()
    config.ChatMagics.api_key = FAKE_KEY
    config.ChatMagics.default_headers = {"Authorization": f"Bearer {BEARER}", "api-key": API_KEY_HEADER}
    config.ChatMagics.base_url = server.url.replace("http://", f"http://alice:{PASSWORD}@")
    config.ChatMagics.max_retries = 0
    shell = make_shell(config)
    yield shell, Cell(shell)
    InteractiveShell.clear_instance()


def test_config_file_credentials_are_never_shown_by_ipythons_config_objects(configured, server) -> None:
    shell, cell = configured
    magics = INSTANCES[shell]
    shell.user_ns["magics"] = magics
    seen = repr(magics.config) + repr(shell.config) + str(shell.config)
    for code in (
        "get_ipython().config",
        "print(get_ipython().config)",
        "magics.config",
        "get_ipython().config.ChatMagics",
        "%config ChatMagics",
        "%config ChatMagics.api_key",
        "%config ChatMagics.default_headers",
        "%config ChatMagics.base_url",
        "%chatconfig",
    ):
        run = cell(code)
        assert run.ok, (code, run.error)
        seen += everything(run)
    assert "alice" in seen and "api-key" in seen  # the listings really ran
    assert leaks(seen) == set()
    assert cell("%%chat\nhi").ok  # and the hidden values still work
    headers = {k.lower(): v for k, v in server.requests[-1].headers.items()}
    assert headers["api-key"] == API_KEY_HEADER and headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("temperature = hot", "not a Python value (NameError)"),
        ("temperature = 5", "should not be greater than 2.0"),
        (f"api_key = {FAKE_KEY}", "not a Python value (NameError)"),
        (f"default_headers = {{'Authorization': Bearer {BEARER}}}", "not a Python value (SyntaxError)"),
        (f"temperature = '{BEARER}'", "expected a float"),
        (f"max_retries = '{FAKE_KEY}'", "expected an int"),
        (f"api_key = b'{FAKE_KEY}'", "must be a string"),
        (f"base_url = 'http://alice:{PASSWORD}@exa mple/v1'", "must be an http(s) URL"),
        ("no_such_setting = 1", "ChatMagics has no setting 'no_such_setting'"),
    ],
    ids=[
        "name",
        "range",
        "bare-key",
        "syntax",
        "key-as-float",
        "key-as-int",
        "bytes-key",
        "bad-url",
        "unknown",
    ],
)
def test_a_bad_config_line_is_one_line_that_never_repeats_a_credential(configured, line, said) -> None:
    shell, cell = configured
    magics = INSTANCES[shell]
    before = magics.trait_values()
    for mode in ("Context", "Verbose"):
        assert cell(f"%xmode {mode}").ok
        run = cell(f"%config ChatMagics.{line}")
        assert type(run.error) is UsageError, run.error
        text = everything(run)
        assert said in str(run.error) and "\n" not in str(run.error)
        assert "Traceback" not in text
        assert leaks(text) == set(), text
    assert magics.trait_values() == before


def test_a_good_config_line_sets_the_setting_and_hides_a_key(configured, server) -> None:
    shell, cell = configured
    magics = INSTANCES[shell]
    new_key = "sk-" + "Hq3Wz8Np5Lr2Xv7Ct4Bm9"
    SECRETS.append(new_key)
    try:
        assert cell("%config ChatMagics.temperature = 0.25").ok
        assert cell(f"%config ChatMagics.api_key = '{new_key}'").ok
        assert magics.temperature == 0.25
        seen = repr(magics.config) + repr(shell.config) + everything(cell("get_ipython().config"))
        assert "0.25" in seen and leaks(seen) == set()
    finally:
        SECRETS.remove(new_key)


def test_other_config_lines_still_reach_ipython_and_unloading_restores_config(configured) -> None:
    shell, cell = configured
    run = cell("%config")
    assert run.ok and "ChatMagics" in run.io.stdout
    assert cell("%config HistoryManager").ok
    assert cell("%config InteractiveShell.autoindent = False").ok and shell.autoindent is False
    run = cell("%config InteractiveShell.autoindent = nonsense_name")  # IPython's own handling
    assert type(run.error) is NameError
    assert cell("%reload_ext nbchat").ok
    assert type(cell("%config ChatMagics.temperature = hot").error) is UsageError  # wrapped once
    assert cell("%unload_ext nbchat").ok
    assert getattr(shell.magics_manager.magics["line"]["config"], "nbchat_original", None) is None


@pytest.mark.parametrize("where", ["write", "read", "client"])
def test_a_defects_verbose_traceback_shows_no_credential(configured, monkeypatch, where) -> None:
    """A defect below the SDK (in nbchat's wall-clock socket layer) or in building the
    client: the frames list the request's headers, URL and the key as locals."""
    import openai

    from nbchat import wallclock

    shell, cell = configured

    def defect(*args, **kwargs):
        raise RuntimeError("a defect of nbchat's own")

    if where == "client":
        monkeypatch.setattr(openai.OpenAI, "__init__", defect)
    else:
        monkeypatch.setattr(wallclock._Stream, where, defect)
    assert cell("%xmode Verbose").ok
    run = cell("%%chat\nhi")
    assert type(run.error) is RuntimeError  # a defect surfaces as itself
    text = everything(run)
    assert "a defect of nbchat" in text and "self" in text  # the verbose traceback was shown
    assert leaks(text) == set()
    # the Python API in a cell too
    shell.user_ns["settings"] = {"api_key": FAKE_KEY, "base_url": INSTANCES[shell].base_url}
    run = cell("from nbchat import Chat\nChat(**settings).send('hi')")
    assert type(run.error) is RuntimeError and leaks(everything(run)) == set()
