"""Each setting is declared once: %%chat's per-cell options, their help, %chatconfig's
parser and the panel all come from the traits."""

from __future__ import annotations

import ipywidgets as W
import pytest
from IPython.core.error import UsageError
from traitlets import Enum, Float, Int, List

from nbchat.magics import SETTING_OPTIONS, ChatMagics, parser_of
from nbchat.options import CELL_OPTIONS, setting_options
from nbchat.settings import Settings, _sampling, literal
from nbchat.widgets import Panel, panel_settings

REQUEST_SETTINGS = sorted(Settings.class_trait_names(request=True))


def a_valid_value(name: str) -> str:
    """A value inside the trait's bounds, as a user would type it after the option."""
    trait = getattr(Settings, name)
    if isinstance(trait, Enum):
        return str(list(trait.values)[-1])
    if isinstance(trait, Float):
        return str(trait.min + (trait.max - trait.min) / 4 if trait.min is not None else 0.5)
    if isinstance(trait, Int):
        return str(max(trait.min or 0, 2))
    if isinstance(trait, List):
        return "'###'"
    return "gpt-4o"


@pytest.mark.parametrize("name", REQUEST_SETTINGS)
def test_every_request_setting_is_a_cell_option_sent_for_that_cell_only(cell, server, magics, name) -> None:
    option = next(o for o in SETTING_OPTIONS if o.setting == name)
    flag = option.names[-1]
    value = a_valid_value(name)
    before = magics.trait_values()
    model = "o4-mini" if name == "reasoning_effort" else "gpt-4o"  # gpt-4o is not sent reasoning_effort
    run = cell(f"%%chat -m {model} {flag} {value}\nhi")
    assert run.ok, run.error
    sent = server.bodies[-1]
    expected = magics.checked({name: literal(value)})[name]
    if name == "logprobs":
        assert sent["logprobs"] is True and sent["top_logprobs"] == expected
    else:
        assert sent[name] == ([expected] if isinstance(expected, str) and name == "stop" else expected)
    assert magics.trait_values() == before  # the cell's value was not kept


def test_a_new_request_setting_gets_its_option_type_bounds_and_help_for_free() -> None:
    class More(Settings):
        widgets = _sampling(Int(None, allow_none=True, min=0, max=5, help="How many widgets"), short="-w")

    option = next(o for o in setting_options(More) if o.setting == "widgets")
    assert option.names == ("-w", "--widgets")
    assert option.kwargs["type"] is int and option.kwargs["help"] == "How many widgets (0–5)."
    assert "widgets" in panel_settings(More)


def test_the_cell_help_lists_each_option_with_its_short_form_and_bounds() -> None:
    help_text = ChatMagics.chat_cell.__doc__ or ""
    assert help_text.lstrip(":\n ").startswith("%%chat ")  # the magic's name, not the method's
    for setting in REQUEST_SETTINGS:
        trait = getattr(Settings, setting)
        assert trait.help.split(" (")[0].rstrip(".") in " ".join(help_text.split()), setting
    assert "-t X, --temperature X" in help_text and "(0–2)" in help_text and "(−2–2)" in help_text
    assert "--stream, --no-stream" in help_text


def test_cell_options_and_setting_options_do_not_clash() -> None:
    names = [n for o in CELL_OPTIONS + SETTING_OPTIONS for n in o.names]
    assert len(names) == len(set(names))
    assert parser_of(ChatMagics.chat_cell).parse_args(["--no-stream"]).stream is False


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--reset temperature=0.2", "one thing at a time"),
        ("--key --sliders", "one thing at a time"),
        ("--ini", "expected one argument"),
        ("--frobnicate temperature=1", "unknown option --frobnicate"),
        ("'unclosed", "cannot parse"),
    ],
)
def test_chatconfig_parses_with_the_parser_it_declares(cell, magics, line, message) -> None:
    before = magics.trait_values()
    run = cell(f"%chatconfig {line}")
    assert type(run.error) is UsageError and message in str(run.error)
    assert magics.trait_values() == before


def test_chatconfig_keeps_bracketed_and_quoted_values_whole(cell, magics) -> None:
    assert cell("""%chatconfig stop=["a b", "c"] system_prompt="You are 'terse'." temperature=0.2""").ok
    assert magics.stop == ["a b", "c"] and magics.system_prompt == "You are 'terse'."
    assert magics.temperature == 0.2


def test_an_ini_file_goes_through_apply_all_or_nothing_with_its_origin(cell, magics, tmp_path) -> None:
    path = tmp_path / "my config.ini"
    path.write_text("[OpenAI]\nMODEL = gpt-4o\nstop = ###\n")
    assert cell(f'%chatconfig --ini "{path}"').ok
    assert (magics.model, magics.stop) == ("gpt-4o", ["###"])
    assert magics.origin("stop") == f"ini {path}"
    path.write_text("[OpenAI]\nMODEL = gpt-4.1\nn = 0\n")
    run = cell(f'%chatconfig --ini "{path}"')
    assert type(run.error) is UsageError and "n must be" in str(run.error)
    assert magics.model == "gpt-4o"  # nothing of the bad file was applied


def test_the_panel_has_a_control_for_each_setting_option_and_invents_no_api_default(magics, server) -> None:
    panel = Panel(magics, [])
    # every per-cell setting, except those tagged panel=False (logprobs; the tool settings)
    expected = {
        o.setting for o in SETTING_OPTIONS if getattr(Settings, o.setting).metadata.get("panel", True)
    }
    assert {"logprobs", "tools"} & expected == set()
    assert set(panel.controls) == expected
    assert magics.max_tokens is None
    assert "api_default" not in Settings.max_tokens.metadata  # the API has none for max_tokens
    for name, control in panel.controls.items():
        default = getattr(Settings, name).metadata.get("api_default")
        if getattr(magics, name) is not None:
            continue
        if isinstance(control.widget, W.Dropdown):  # the default depends on the model: no value claimed
            assert control.widget.label == "API default", name
        elif isinstance(control.widget, W.Text):  # a number box or the stop list: empty
            assert control.widget.value == "" and "API default" in control.widget.placeholder, name
        else:  # a slider rests on what the API does when nothing is sent
            assert default is not None and control.widget.value == default, name
