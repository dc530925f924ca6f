"""The widgets in Python: the panel's controls are built from the traits and linked both ways;
the chat view shows choices, log-probs, usage, and re-asks with the panel's values."""

from __future__ import annotations

import ipywidgets as W
import pytest

from nbchat.widgets import COPY_CSS, WIDGET_VIEW, ChatView, Panel, output_text, shown_view


@pytest.fixture
def panel(magics, server) -> Panel:
    return Panel(magics, magics.transport.models(magics))


def test_controls_are_built_from_each_traits_bounds_and_help(panel, magics) -> None:
    c = panel.controls
    assert set(c) == {
        "model",
        "temperature",
        "top_p",
        "max_tokens",
        "frequency_penalty",
        "presence_penalty",
        "n",
        "seed",
        "stop",
        "reasoning_effort",
        "verbosity",
        "stream",
    }
    t = c["temperature"].widget
    assert isinstance(t, W.FloatSlider) and (t.min, t.max) == (0.0, 2.0)
    assert t.tooltip == type(magics).temperature.help
    assert (c["top_p"].widget.min, c["top_p"].widget.max) == (0.0, 1.0)
    assert (c["frequency_penalty"].widget.min, c["frequency_penalty"].widget.max) == (-2.0, 2.0)
    assert (c["n"].widget.min, c["n"].widget.max) == (1, 128)
    # no upper bound: number boxes, usable from 1 to a million alike, empty while unset
    for name in ("max_tokens", "seed"):
        assert isinstance(c[name].widget, W.Text) and c[name].widget.value == ""
        assert "API default" in c[name].widget.placeholder
    assert "≥ 1" in c["max_tokens"].widget.placeholder and "≥" not in c["seed"].widget.placeholder
    assert isinstance(c["stop"].widget, W.Text)
    assert isinstance(c["stream"].widget, W.Checkbox) and c["stream"].widget.value is True
    model = c["model"].widget
    assert (
        isinstance(model, W.Dropdown) and "nbchat-stand-in" in model.options and model.value == "gpt-4o-mini"
    )


def test_without_a_model_list_the_model_is_free_text(magics, server) -> None:
    server.quirks.no_models = True
    assert isinstance(Panel(magics, []).controls["model"].widget, W.Text)


def test_unset_settings_show_the_api_default_marked_unset_and_are_not_sent(panel, cell, server) -> None:
    t = panel.controls["temperature"]
    assert t.widget.value == 1.0 and "unset" in t.status.value
    assert cell("%%chat\nhi").ok
    assert "temperature" not in server.bodies[-1]


def test_moving_a_slider_changes_the_next_request(panel, magics, cell, server) -> None:
    panel.controls["temperature"].widget.value = 0.7
    panel.controls["n"].widget.value = 2
    panel.controls["stop"].widget.value = "###"
    panel.controls["model"].widget.value = "gpt-4o"
    assert magics.temperature == 0.7 and magics.origin("temperature") == "sliders"
    assert panel.controls["temperature"].status.value == ""
    assert cell("%%chat\nhi").ok
    body = server.bodies[-1]
    assert (body["temperature"], body["n"], body["stop"], body["model"]) == (0.7, 2, ["###"], "gpt-4o")


def test_chatconfig_and_config_move_the_controls(panel, cell) -> None:
    assert cell("%chatconfig temperature=0.3 max_tokens=256").ok
    assert panel.controls["temperature"].widget.value == 0.3
    assert panel.controls["max_tokens"].widget.value == "256"
    assert cell("%config ChatMagics.top_p = 0.4").ok
    assert panel.controls["top_p"].widget.value == 0.4 and panel.controls["top_p"].status.value == ""
    assert cell("%chatconfig temperature=unset").ok
    assert panel.controls["temperature"].widget.value == 1.0
    assert "unset" in panel.controls["temperature"].status.value


def test_the_reset_button_unsets_them_again(panel, magics, cell, server) -> None:
    panel.controls["temperature"].widget.value = 0.5
    panel.controls["seed"].widget.value = "9"
    panel.controls["stop"].widget.value = "x"
    panel.reset_button.click()
    assert (magics.temperature, magics.seed, magics.stop) == (None, None, None)
    assert all("unset" in panel.controls[n].status.value for n in ("temperature", "seed", "stop"))
    assert cell("%%chat\nhi").ok
    assert not {"temperature", "seed", "stop"} & set(server.bodies[-1])


def test_an_emptied_stop_list_unsets_stop(panel, magics) -> None:
    panel.controls["stop"].widget.value = "a"
    panel.controls["stop"].widget.value = ""
    assert magics.stop is None


def test_the_stop_box_takes_comma_separated_or_json_sequences(panel, magics, cell) -> None:
    stop = panel.controls["stop"]
    assert stop.widget.continuous_update is False  # the value is taken on Enter
    stop.widget.value = "###, END"
    assert magics.stop == ["###", "END"]
    stop.widget.value = '["a,b", "c"]'
    assert magics.stop == ["a,b", "c"]
    assert cell('%chatconfig stop=["x, y"]').ok and stop.widget.value == '["x, y"]'
    stop.widget.value = "[broken"
    assert magics.stop == ["x, y"] and "not a JSON list" in stop.status.value


def test_every_row_has_its_label_in_one_column_and_a_wide_control(panel) -> None:
    for name, control in panel.controls.items():
        label, widget, *_rest = control.box.children
        assert name in label.value and label.layout.width == "11em"
        if not isinstance(widget, W.Checkbox):
            assert widget.layout.width == "30em" and not getattr(widget, "description", "")


def test_sliders_magic_shows_the_panel_and_a_markdown_line_for_a_saved_notebook(cell) -> None:
    run = cell("%chatconfig --sliders")
    assert run.ok and [list(o) for o in run.outputs] == [
        [WIDGET_VIEW, "text/plain"],
        ["text/markdown", "text/plain"],
    ]
    assert "live kernel" in run.outputs[1]["text/markdown"] and COPY_CSS in run.outputs[1]["text/markdown"]


def views(cell, code: str) -> ChatView:
    """Run a widget-output cell; return its view (the last ChatView displayed)."""
    run = cell(code)
    assert run.ok, run.error
    return shown_view(run.outputs)


def test_widget_output_shows_transcript_choices_as_tabs_logprobs_and_usage(cell, magics, server) -> None:
    assert cell("%%chat\nfirst").ok
    view = views(cell, "%%chat -f widget -n 2 --logprobs 2\nname a colour")
    assert "first" in view.transcript.value and "Echo: first" in view.transcript.value
    assert isinstance(view.tabs, W.Tab) and view.tabs.titles == ("Choice 1", "Choice 2")
    assert "Echo: name a colour (choice 2)" in output_text(view.tabs.children[1].children[0])
    assert view.logprobs.value.count('class="nbchat-token"') == 4 and "title=" in view.logprobs.value
    assert "gpt-4o-mini · " in view.usage.value and "completion tokens" in view.usage.value
    view.tabs.children[1].children[1].click()  # keep choice 2
    assert magics.conversations["default"].messages()[-1]["content"] == "Echo: name a colour (choice 2)"
    assert view.tabs.children[1].children[1].description == "Kept ✓"


def test_reask_regenerates_the_last_reply_with_the_panels_values(cell, magics, server) -> None:
    view = views(cell, "%%chat -f widget\nhello")
    panel = Panel(magics, [])
    panel.controls["temperature"].widget.value = 1.4
    server.script(text="a fresh answer")
    view.reask.click()
    assert server.bodies[-1]["temperature"] == 1.4
    assert [m["content"] for m in server.bodies[-1]["messages"]] == ["hello"]
    assert "a fresh answer" in output_text(view.reply.children[0])
    assert magics.conversations["default"].messages()[-1]["content"] == "a fresh answer"


def test_errors_in_button_callbacks_are_shown_not_lost(cell, magics, server) -> None:
    view = views(cell, "%%chat -f widget\nhello")
    magics.max_retries = 0
    server.script(status=500, error="exploded")
    view.reask.click()
    shown = "".join(o.get("text", "") for o in view.errors.outputs)
    assert "nbchat: 500 server error" in shown and "exploded" in shown
    assert magics.conversations["default"].messages()[-1]["content"] == "Echo: hello"


def test_output_widget_setting_uses_the_chat_view(cell) -> None:
    assert cell("%chatconfig output=widget").ok
    view = views(cell, "%%chat\nhello")
    assert "Echo: hello" in output_text(view.reply.children[0])


def test_logprobs_come_between_the_reply_and_its_footer_as_shaded_tokens(cell) -> None:
    run = cell("%%chat --logprobs 3\nhello world")
    kinds = [
        "shading" if "text/html" in o else "footer" if "completion tokens" in str(o) else "reply"
        for o in run.outputs
        if not str(o.get("text/plain", "")).startswith("⏳")
    ]
    assert kinds[-3:] == ["reply", "shading", "footer"] and "shading" not in kinds[:-3]
    html = next(o["text/html"] for o in run.outputs if "text/html" in o)
    assert html.count('class="nbchat-token"') == 3
    assert "p = " in html and "top: " in html and "background-color: rgba(255, 140, 0," in html
    reply = [o for o in run.outputs if "text/markdown" in o][-2]["text/markdown"]
    assert reply.startswith("Echo: hello world") and "completion tokens" not in reply
    assert run.metadata["model"] == "gpt-4o-mini"


def test_the_chat_view_looks_like_a_chat_and_renders_replies_as_markdown(cell, server) -> None:
    assert cell("%%chat\nfirst").ok
    server.script(text="**bold** costs $3 and $4")
    run = cell("%%chat -f widget\nwhat does it cost?")
    view = shown_view(run.outputs)
    assert 'class="nbchat-msg nbchat-user' in view.transcript.value
    assert 'class="nbchat-msg nbchat-assistant' in view.transcript.value
    user = view.transcript.value.split("nbchat-user")[1].split('style="')[1]
    assistant = view.transcript.value.split("nbchat-assistant")[1].split('style="')[1]
    assert user.split(";")[0] != assistant.split(";")[0], "the roles are styled apart"
    assert "what does it cost?" in view.question.value and "nbchat-user" in view.question.value
    reply = view.reply.children[0]
    assert isinstance(reply, W.Output)
    data = reply.outputs[0]["data"]
    assert (
        data["text/markdown"].startswith("**bold** costs <span>")
        and data["text/plain"] == "**bold** costs $3 and $4"
    )


def test_the_log_prob_view_follows_the_selected_choice(cell) -> None:
    view = views(cell, "%%chat -f widget -n 2 --logprobs 1\nname a colour")
    first = view.logprobs.value
    assert first.count('class="nbchat-token"') == 4  # "Echo: name a colour" as four tokens
    view.tabs.selected_index = 1
    assert view.logprobs.value.count('class="nbchat-token"') == 6 and "choice" in view.logprobs.value
    view.tabs.selected_index = 0
    assert view.logprobs.value == first


def test_reask_keeps_the_cells_number_of_choices_and_says_so(cell, server) -> None:
    view = views(cell, "%%chat -f widget -n 3\nname a colour")
    assert "n = 3" in view.reask.description
    view.reask.click()
    assert server.bodies[-1]["n"] == 3 and len(server.bodies) == 2
    assert len(view.tabs.children) == 3


def test_the_widget_is_followed_by_a_markdown_copy_of_the_reply_for_a_notebook_saved_without_widget_state(
    cell, server
) -> None:
    server.script(text="A **reply** for $5")
    run = cell("%%chat -f widget\nhello")
    widget, copy, final = run.outputs[0], run.outputs[1], run.outputs[-1]
    # the widget's own bundle has nothing a viewer could prefer to it but a blank line
    assert widget == {WIDGET_VIEW: widget[WIDGET_VIEW], "text/plain": ""}
    assert copy["text/markdown"].startswith("*(waiting") and COPY_CSS in copy["text/markdown"]
    # the copy is updated in place once the reply is complete
    assert len(run.outputs) == 3 and WIDGET_VIEW not in final
    assert final["text/markdown"].startswith("A **reply** for <span>")
    assert "completion tokens" in final["text/markdown"] and final["text/markdown"].endswith(f"{COPY_CSS}\n")
    assert final["text/plain"].startswith("A **reply** for $5")


def test_unset_controls_show_no_number_nobody_chose(panel, magics, cell, server) -> None:
    c = panel.controls
    assert (c["max_tokens"].widget.value, c["seed"].widget.value) == ("", "")
    assert (
        c["reasoning_effort"].widget.label == "API default" and c["verbosity"].widget.label == "API default"
    )
    assert c["stop"].widget.value == "" and "API default" in c["stop"].widget.placeholder
    for name in ("max_tokens", "seed", "reasoning_effort", "verbosity", "stop", "temperature", "n"):
        assert "unset" in c[name].status.value and "nbchat-unset" in c[name].box._dom_classes, name
    # sliders rest on what the API does when nothing is sent
    assert (c["temperature"].widget.value, c["top_p"].widget.value, c["n"].widget.value) == (1.0, 1.0, 1)
    assert c["stream"].status.value == "" and c["model"].status.value == ""


def test_the_number_boxes_take_a_whole_number_and_empty_unsets(panel, magics, cell, server) -> None:
    seed, most = panel.controls["seed"], panel.controls["max_tokens"]
    seed.widget.value = "42"
    most.widget.value = "1_000"
    assert (magics.seed, magics.max_tokens) == (42, 1000) and seed.status.value == ""
    assert "nbchat-unset" not in seed.box._dom_classes
    seed.widget.value = "forty"
    assert magics.seed == 42 and "not a whole number" in seed.status.value
    most.widget.value = "0"
    assert magics.max_tokens == 1000 and "must be ≥ 1" in most.status.value
    assert cell("%%chat\nhi").ok
    assert (server.bodies[-1]["seed"], server.bodies[-1]["max_tokens"]) == (42, 1000)
    seed.widget.value = ""
    assert magics.seed is None and "unset" in seed.status.value
    assert cell("%%chat\nhi").ok and "seed" not in server.bodies[-1]


def test_the_api_default_choice_of_a_dropdown_unsets_it(panel, magics) -> None:
    effort = panel.controls["reasoning_effort"]
    effort.widget.value = "high"
    assert magics.reasoning_effort == "high" and effort.status.value == ""
    effort.widget.label = "API default"
    assert magics.reasoning_effort is None and "unset" in effort.status.value


def test_each_set_control_has_a_button_that_unsets_only_it(panel, magics, cell, server) -> None:
    t, p = panel.controls["temperature"], panel.controls["top_p"]
    assert t.clear.layout.visibility == "hidden"  # nothing to unset yet
    t.widget.value, p.widget.value = 0.4, 0.5
    assert t.clear.layout.visibility == "visible"
    t.clear.click()
    assert (magics.temperature, magics.top_p) == (None, 0.5) and magics.origin("temperature") == "sliders"
    assert t.widget.value == 1.0 and "unset" in t.status.value and t.clear.layout.visibility == "hidden"
    assert cell("%%chat\nhi").ok
    assert "temperature" not in server.bodies[-1] and server.bodies[-1]["top_p"] == 0.5
    # settings that cannot be unset have no such button
    assert panel.controls["stream"].clear not in panel.controls["stream"].box.children
    assert panel.controls["model"].clear not in panel.controls["model"].box.children
