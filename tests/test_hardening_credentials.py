"""Every credential, not only api_key: an Authorization or api-key header, a password in
base_url and the admin key are never listed, logged, quoted in an error or shown in a
traceback (also with %xmode Verbose); a substituted {os.environ} loses them before it is
sent, recorded, saved or exported."""

from __future__ import annotations

import json
import logging
import re

from conftest import FAKE_KEY

from nbchat.secret import credentials, source

BEARER = "tok-Ux7Rq2Lm9Vb4Nc8Zp3Kd6Wj1Ht5"
API_KEY_HEADER = "azk-Qe4Ty8Pm2Xs7Lb9Vn3Rc6Jd1Gh"
PASSWORD = "pw-Hn5Kc8Rt2Vq7Bz4Lm9Xs3Dj6Fy"
ADMIN_KEY = "sk-admin-" + "Wm3Zr8Kt5Lq2Vx9Nb4Hc7Pj6Dy"  # split: a fake key, not a committed secret
SECRETS = [FAKE_KEY, BEARER, API_KEY_HEADER, PASSWORD, ADMIN_KEY]


def leaks(text: str) -> set[str]:
    """Every 8-character run of any secret's secret part found in ``text``."""
    found = set()
    for secret in SECRETS:
        body = secret.split("-", 2)[-1] if secret.startswith("sk-admin-") else secret.split("-", 1)[-1]
        found |= {body[i : i + 8] for i in range(len(body) - 7) if body[i : i + 8] in text}
    return found


def credentialed(magics, server) -> str:
    """Give the magics every kind of credential; return the base_url with its password."""
    host = server.url.removeprefix("http://")
    url = f"http://alice:{PASSWORD}@{host}"
    magics.base_url = url
    magics.default_headers = {
        "Authorization": f"Bearer {BEARER}",
        "api-key": API_KEY_HEADER,
        "X-Team": "data",
    }
    return url


def everything(run) -> str:
    parts = [run.io.stdout, run.io.stderr, str(run.error or "")]
    for output in run.io.outputs:
        parts.append(json.dumps(output.data, default=str) + json.dumps(output.metadata or {}, default=str))
    return "\n".join(parts)


def test_header_and_url_credentials_are_never_listed(cell, server, magics, shell, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    credentialed(magics, server)
    shell.user_ns["magics"] = magics
    seen = ""
    for code in (
        "%chatconfig",
        "%config ChatMagics",
        "%config ChatMagics.default_headers",
        "%config ChatMagics.base_url",
        "magics.default_headers",
        "magics.base_url",
        "magics.trait_values()",
    ):
        run = cell(code)
        assert run.ok, (code, run.error)
        seen += everything(run) + repr(run.result.result)
    assert "X-Team" in seen and "alice" in seen  # the listing really ran
    assert leaks(seen) == set()


def test_credentials_never_reach_the_logs_even_at_debug(cell, server, magics, caplog, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    for name in ("openai", "httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    credentialed(magics, server)
    assert cell("%%chat\nhello").ok
    server.script(status=500, error=f"bad header Bearer {BEARER} and {API_KEY_HEADER}")
    magics.max_retries = 1
    cell("%%chat\nfails")
    records = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request" in records  # logging was on
    assert server.requests[-1].headers["api-key"] == API_KEY_HEADER  # the headers were used
    assert leaks(records) == set()


def test_credentials_are_never_quoted_in_an_error(cell, server, magics, tmp_path) -> None:
    url = credentialed(magics, server)
    runs = []
    server.script(status=400, error=f"header was Bearer {BEARER}; api-key {API_KEY_HEADER}; url {url}")
    runs.append(cell("%%chat\nhi"))
    magics.max_retries = 0
    magics.base_url = url.replace(str(server.port), "9")  # nothing listens: cannot reach …
    runs.append(cell("%%chat\nhi"))
    runs.append(cell(f"%chatconfig base_url='http://alice:{PASSWORD}@exa mple/v1'"))
    runs.append(cell(f"%chatconfig default_headers={{'Authorization': 'Bearer {BEARER}', 'Bad Name': 1}}"))
    ini = tmp_path / "config.ini"
    ini.write_text(
        f"[OpenAI]\nAPI_SECRET_KEY = {FAKE_KEY}\nbase_url = http://bob:{PASSWORD}@host/v1\n"
        f"default_headers = {{'api-key': '{API_KEY_HEADER}'}}\ntemperature = {FAKE_KEY}\n"
    )
    runs.append(cell(f"%chatconfig --ini {ini}"))
    assert all(not r.ok for r in runs)
    text = "\n".join(everything(r) for r in runs)
    assert "cannot reach http://alice:[redacted]@" in text and "temperature" in text
    assert leaks(text) == set()


def test_no_traceback_shows_a_credential_also_with_xmode_verbose(cell, server, magics, monkeypatch) -> None:
    credentialed(magics, server)
    assert cell("%xmode Verbose").ok
    magics.max_retries = 0
    server.script(status=401, error="no")
    runs = [cell("%%chat\nhi")]
    from nbchat.client import Completion

    def broken(self, choice, key):  # a defect surfaces with its traceback and locals
        raise RuntimeError("defect")

    monkeypatch.setattr(Completion, "take_choice", broken)
    runs.append(cell("%%chat\nhi"))
    assert type(runs[-1].error) is RuntimeError
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    etype, value, tb = type(runs[-1].error), runs[-1].error, runs[-1].error.__traceback__
    shown = "\n".join(shell.InteractiveTB.structured_traceback(etype, value, tb))
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert "RuntimeError: defect" in plain and "body = {'model'" in plain, (
        "a verbose traceback, locals and all"
    )
    text = "\n".join(everything(r) for r in runs) + shown
    assert leaks(text) == set()


def test_a_substituted_environment_loses_every_credential_before_it_is_sent_recorded_saved_or_exported(
    cell, server, magics, shell, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("MY_HOME_DIR", "/home/alice-notebooks")
    credentialed(magics, server)
    assert cell("import os\nenv = dict(os.environ)").ok
    assert cell("%%chat\nWhat is set here? {env}").ok
    assert cell("%%chat -s\nYou know {os.environ}").ok
    assert cell("%%chat\nand again {env}").ok
    for name in ("c.json", "c.md", "c.jsonl"):
        verb = "save" if name.endswith(".json") else "export"
        assert cell(f"%chat {verb} {tmp_path / name}").ok
    sent = json.dumps([r.body for r in server.requests], default=str)
    assert "/home/alice-notebooks" in sent  # the environment really went out
    history = json.dumps(magics.conversations["default"].messages())
    files = "\n".join(p.read_text() for p in tmp_path.iterdir())
    assert leaks(sent + history + files) == set()


def test_a_new_kind_of_credential_is_one_registered_source(magics) -> None:
    from nbchat import secret

    @source
    def _extra(settings: object) -> list[str]:
        return ["newkind-Zx8Cv2Bn7Mq4Lw9Kj3"]

    try:
        assert "newkind-Zx8Cv2Bn7Mq4Lw9Kj3" in credentials(magics)
        assert secret.redact("say newkind-Zx8Cv2Bn7Mq4Lw9Kj3", credentials(magics)) == "say [redacted]"
    finally:
        secret.SOURCES.remove(_extra)
