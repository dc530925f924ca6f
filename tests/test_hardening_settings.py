"""Settings that would break the next request are refused when set, each error naming its
own setting; ``-o NAME`` refuses names that would break the shell; a variable whose
``str()`` raises is a one-line error naming it. Nothing is sent in any of these cases."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from nbchat import Chat
from nbchat.errors import BadSetting


def refused(cell, server, code: str) -> str:
    before = len(server.requests)
    run = cell(code)
    assert type(run.error) is UsageError, (code, run.error, run.io.stdout)
    assert len(server.requests) == before, code  # nothing sent
    message = str(run.error)
    assert "\n" not in message and "Traceback" not in run.io.stdout
    return message


@pytest.mark.parametrize(
    ("line", "setting"),
    [
        ("model=", "model"),
        ('model=""', "model"),
        ('model="   "', "model"),
        ("prices={'m': [1]}", "prices"),
        ("prices={'m': [1, -2]}", "prices"),
        ("prices={'m': ['a', 'b']}", "prices"),
        ("prices={'m': 3}", "prices"),
        ("prices={'m': [True, 1]}", "prices"),
        ("prices=[1, 2]", "prices"),
        ("default_headers={'X-Team': 5}", "default_headers"),
        ("default_headers={'X-Team': None}", "default_headers"),
        ("default_headers={'Bad Name': 'x'}", "default_headers"),
        ("default_headers={'X-A': 'line\\nbreak'}", "default_headers"),
        ("default_headers=['x']", "default_headers"),
        ("timeout=0", "timeout"),
        ("timeout=-1", "timeout"),
        ("timeout=1e12", "timeout"),
        ("timeout=inf", "timeout"),
        ("timeout=nan", "timeout"),
        ("base_url=not-a-url", "base_url"),
        ("base_url=ftp://example.com/v1", "base_url"),
        ("base_url=http://", "base_url"),
        ("base_url=http://host:port/v1", "base_url"),
        ('base_url="http://exa mple.com/v1"', "base_url"),
        ("azure_endpoint=myres.openai.azure.com", "azure_endpoint"),
    ],
)
def test_a_value_that_would_break_the_next_request_is_refused_naming_its_setting(
    cell, server, magics, line, setting
) -> None:
    before = getattr(magics, setting)
    message = refused(cell, server, f"%chatconfig {line}")
    assert message.startswith(setting), message
    others = {"model", "prices", "default_headers", "timeout", "base_url", "azure_endpoint"} - {setting}
    assert not any(message.startswith(o) for o in others)
    assert getattr(magics, setting) == before
    assert cell("%%chat\nstill works").ok


def test_a_blank_model_for_one_cell_is_refused(cell, server) -> None:
    assert refused(cell, server, '%%chat -m ""\nhi').startswith("model")
    assert refused(cell, server, "%%chat -m '  '\nhi").startswith("model")


def test_the_python_api_refuses_the_same_values(server) -> None:
    for options in ({"model": ""}, {"timeout": 0}, {"prices": {"m": [1]}}, {"base_url": "nope"}):
        with pytest.raises(BadSetting, match=next(iter(options))):
            Chat(**options)


def test_good_values_are_taken(cell, magics) -> None:
    assert cell("%chatconfig prices={'m': [0.5, 1.5]} default_headers={'X-Team': 'data'} timeout=30").ok
    assert magics.prices == {"m": [0.5, 1.5]} and magics.default_headers == {"X-Team": "data"}
    assert magics.timeout == 30


@pytest.mark.parametrize(
    "name",
    [
        "class",
        "def",
        "None",
        "In",
        "Out",
        "get_ipython",
        "__builtins__",
        "_i",
        "_ii3",
        "_oh",
        "_5",
        "_",
        "__",
        "exit",
    ],
)
def test_dash_o_refuses_names_that_would_break_the_shell_or_the_language(cell, server, shell, name) -> None:
    from nbchat.chat import Reply

    message = refused(cell, server, f"%%chat -o {name}\nhi")
    assert repr(name) in message
    assert not isinstance(shell.user_ns.get(name), Reply)


def test_dash_o_takes_an_ordinary_name(cell, shell) -> None:
    assert cell("%%chat -o answer\nhi").ok
    assert str(shell.user_ns["answer"]) == "Echo: hi"


def test_a_variable_whose_str_raises_is_a_one_line_error_naming_it(cell, server, shell) -> None:
    cell("class Bad:\n    def __str__(self):\n        raise RuntimeError('no\\ntext')\nbad = Bad()")
    message = refused(cell, server, "%%chat\nlook at {bad}")
    assert "{bad}" in message and "RuntimeError" in message
    message = refused(cell, server, "%%chat -s\nsystem {bad}")
    assert "{bad}" in message


def test_a_base_url_from_the_environment_that_is_not_a_url_is_one_line_and_can_be_fixed(
    server, monkeypatch
) -> None:
    from conftest import Cell, make_shell
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:11434/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    cell = Cell(make_shell())
    try:
        assert cell("%chatconfig").ok  # the listing still works
        run = cell("%%chat\nhi")
        assert run.io.stdout.strip() == (
            "nbchat: base_url (from OPENAI_BASE_URL) must be an http(s) URL, e.g. http://localhost:11434/v1: "
            "the scheme is not http or https in 'localhost:11434/v1'; fix OPENAI_BASE_URL, "
            "or set %chatconfig base_url=URL"
        )
        assert server.requests == []
        assert cell(f"%chatconfig base_url={server.url}").ok
        assert cell("%%chat\nhi").ok
    finally:
        InteractiveShell.clear_instance()
