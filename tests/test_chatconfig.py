"""%chatconfig, %config, ipython_config and the environment set the same traits."""

from __future__ import annotations

import pytest
from conftest import FAKE_KEY, Cell, make_shell
from IPython.core.error import UsageError
from traitlets.config import Config


def rows(run) -> dict[str, tuple[str, str]]:
    lines = run.outputs[-1]["text/plain"].splitlines()[2:]
    out = {}
    for line in lines:
        name, rest = line.split(None, 1)
        value, source = rest.rsplit("  ", 1)
        out[name] = (value.strip(), source.strip())
    return out


def test_show_lists_every_setting_with_its_origin_and_the_key_only_as_set(cell, magics) -> None:
    assert cell("%chatconfig temperature=0.2").ok
    table = rows(cell("%chatconfig"))
    assert set(table) == set(magics.setting_names())
    assert {
        "model",
        "temperature",
        "top_p",
        "max_tokens",
        "frequency_penalty",
        "presence_penalty",
        "stop",
        "n",
        "seed",
        "logprobs",
        "stream",
        "system_prompt",
        "base_url",
        "api_key",
        "organization",
        "project",
        "timeout",
        "max_retries",
        "output",
        "show_usage",
        "rerun",
        "keep_partial",
        "max_context_tokens",
        "prices",
    } <= set(table)
    assert table["temperature"] == ("0.2", "%chatconfig")
    assert table["api_key"] == ("set", "env OPENAI_API_KEY")
    assert table["base_url"][1] == "env OPENAI_BASE_URL"
    assert table["top_p"] == ("unset", "default")
    assert "Zq8v" not in cell("%chatconfig").text


def test_several_settings_at_once_reach_the_request(cell, server) -> None:
    run = cell('%chatconfig temperature=0.2 max_tokens=512 model=gpt-4o stop="###" seed=7 n=1')
    assert run.ok, run.error
    assert cell("%%chat\nhi").ok
    body = server.bodies[-1]
    assert {k: body[k] for k in ("temperature", "max_tokens", "model", "stop", "seed", "n")} == {
        "temperature": 0.2,
        "max_tokens": 512,
        "model": "gpt-4o",
        "stop": ["###"],
        "seed": 7,
        "n": 1,
    }


def test_stop_accepts_a_string_or_a_list(magics, cell) -> None:
    assert cell('%chatconfig stop=["a", "b c"]').ok
    assert magics.stop == ["a", "b c"]
    assert cell("%chatconfig stop='x'").ok
    assert magics.stop == ["x"]


def test_an_invalid_value_applies_nothing_and_names_the_setting_and_range(cell, magics) -> None:
    run = cell("%chatconfig max_tokens=100 temperature=3 top_p=0.5")
    assert type(run.error) is UsageError
    assert str(run.error) == "temperature must be a number from 0 to 2 (got 3)"
    assert magics.max_tokens is None and magics.top_p is None and magics.temperature is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("temprature=0.2", "unknown setting 'temprature'. Did you mean temperature?"),
        ("system='Be brief.'", "unknown setting 'system'. Did you mean system_prompt?"),
        ("retries=2", "unknown setting 'retries'. Did you mean max_retries?"),
        ("temperature=0.5 temperature=0.7", "temperature is given twice; give it once"),
        ("stop=", "stop must be a string or a list of up to 4 strings, none empty"),
        ('stop=["###", ""]', "stop must be a string or a list of up to 4 strings, none empty"),
        ("max_tokens=lots", "max_tokens must be an integer ≥ 1"),
        ("stream=maybe", "stream must be true or false"),
        ("output=html", "output must be one of markdown, text, widget"),
        ("n=0", "n must be an integer from 1 to 128"),
        ("temperature", "expected name=value"),
        ("model=unset", "model cannot be unset"),
        ("--frobnicate", "unknown option --frobnicate"),
    ],
)
def test_bad_assignments_are_usage_errors(cell, line, message) -> None:
    run = cell(f"%chatconfig {line}")
    assert type(run.error) is UsageError
    assert message in str(run.error)


def test_unset_stops_sending_a_parameter(cell, server) -> None:
    assert cell("%chatconfig temperature=0.4 seed=3").ok
    assert cell("%chatconfig temperature=unset seed=none").ok
    assert cell("%%chat\nhi").ok
    assert "temperature" not in server.bodies[-1] and "seed" not in server.bodies[-1]


def test_booleans_read_naturally(cell, server) -> None:
    assert cell("%chatconfig stream=false show_usage=off").ok
    run = cell("%%chat\nhi")
    assert "stream" not in server.bodies[-1]
    assert "<sub>" not in run.markdown


def test_reset_restores_the_defaults(cell, magics) -> None:
    assert cell("%chatconfig temperature=0.5 model=gpt-4o output=text").ok
    assert cell("%chatconfig --reset").ok
    assert (magics.temperature, magics.model, magics.output) == (None, "gpt-4o-mini", "markdown")
    assert magics.origin("temperature") == "default"
    assert magics.base_url is not None  # the environment's value is a default too


def test_api_key_in_a_cell_is_refused_and_points_to_safe_ways(cell, magics) -> None:
    run = cell("%chatconfig api_key=sk-abc123")
    assert type(run.error) is UsageError
    assert "OPENAI_API_KEY" in str(run.error) and "%chatconfig --key" in str(run.error)
    assert magics.api_key is None


def test_key_prompt_is_hidden_and_the_key_is_used_but_never_shown(cell, server, magics, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setattr("getpass.getpass", lambda prompt: "sk-typedSecretVm3Q9")
    run = cell("%chatconfig --key")
    assert run.ok and "sk-typed" not in run.text
    assert cell("%%chat\nhi").ok
    assert server.requests[-1].headers["authorization"] == "Bearer sk-typedSecretVm3Q9"
    assert rows(cell("%chatconfig"))["api_key"] == ("set", "%chatconfig --key")
    shown = cell("%config ChatMagics").text
    assert "api_key" in shown and "typedSecret" not in shown
    assert "typedSecret" not in repr(magics.api_key) and "typedSecret" not in str(magics.api_key)


def test_config_magic_sets_the_same_traits(cell, server) -> None:
    assert cell("%config ChatMagics.temperature = 0.3").ok
    assert cell("%%chat\nhi").ok
    assert server.bodies[-1]["temperature"] == 0.3
    assert rows(cell("%chatconfig"))["temperature"] == ("0.3", "config")
    help_text = cell("%config ChatMagics").text
    assert "Sampling temperature (0–2)." in help_text


def test_ipython_config_applies_before_the_first_cell(env, server) -> None:
    config = Config()
    config.ChatMagics.temperature = 0.25
    config.ChatMagics.model = "gpt-4o"
    shell = make_shell(config)
    try:
        cell = Cell(shell)
        assert cell("%%chat\nhi").ok
        assert (server.bodies[-1]["temperature"], server.bodies[-1]["model"]) == (0.25, "gpt-4o")
        assert rows(cell("%chatconfig"))["model"] == ("'gpt-4o'", "config")
    finally:
        from IPython.core.interactiveshell import InteractiveShell

        InteractiveShell.clear_instance()


def test_environment_variables_are_honored(monkeypatch, server, env) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-nbchat")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-nbchat")
    shell = make_shell()
    try:
        assert Cell(shell)("%%chat\nhi").ok
        headers = server.requests[-1].headers
        assert headers["authorization"] == f"Bearer {FAKE_KEY}"
        assert headers["openai-organization"] == "org-nbchat"
        assert headers["openai-project"] == "proj-nbchat"
        assert server.requests[-1].path == "/v1/chat/completions"
    finally:
        from IPython.core.interactiveshell import InteractiveShell

        InteractiveShell.clear_instance()
