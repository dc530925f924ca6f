"""Every notebook in notebooks/ runs in a real kernel against the stand-in server."""

from __future__ import annotations

import json

import pytest
from kernels import NOTEBOOKS, against, execute, outputs_of, text_of

pytestmark = pytest.mark.kernel


def test_notebooks_are_committed_without_outputs() -> None:
    import nbformat

    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(
            not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code"
        ), path


def test_quickstart_runs_in_a_real_kernel_and_shows_every_feature(server, tmp_path) -> None:
    nb = execute(NOTEBOOKS / "quickstart.ipynb", against(server))

    config = "\n".join(text_of(o) for o in outputs_of(nb, "%chatconfig"))
    assert "api_key" in config and "sk-local" not in config
    assert "System prompt of *default* set" in text_of(outputs_of(nb, "%%chat -s")[0])

    reply = outputs_of(nb, "%%chat\nWhat is a p-value?")
    assert len(reply) == 1, "the waiting indicator and stream updates share one output"
    markdown = reply[0]["data"]["text/markdown"]
    assert markdown.startswith("Echo: What is a p-value? One sentence.")
    assert "gpt-4o-mini · " in markdown and " completion tokens · " in markdown
    assert reply[0]["metadata"]["nbchat"]["usage"]["completion_tokens"] == 7

    sampled = next(b for b in server.bodies if b["messages"][-1]["content"] == "And a confidence interval?")
    assert (sampled["temperature"], sampled["max_tokens"], sampled["seed"]) == (0.2, 60, 1)
    assert [m["role"] for m in sampled["messages"]] == ["system", "user", "assistant", "user"]

    substituted = server.bodies[2]["messages"][-1]["content"]
    assert substituted == "My table has 1200 rows and columns ['price', 'area']. Config: {\"dropna\": true}"

    choices = text_of(outputs_of(nb, "%%chat -n 2")[0])
    assert "**Choice 1**" in choices and "**Choice 2**" in choices

    fix = outputs_of(nb, "%%chat -c coding -f code -o fix")[-1]["metadata"]["nbchat"]
    assert text_of(outputs_of(nb, "print(type(fix)")[0]) == f"Reply {fix['usage']} {fix['finish_reason']}\n"
    assert fix["finish_reason"] == "stop"

    stopped = next(b for b in server.bodies if b.get("stop") == ["###"])
    assert stopped["temperature"] == 0.3 and stopped["max_tokens"] == 200
    assert "this part is cut" not in text_of(outputs_of(nb, "%%chat\nList three")[0])

    listing = text_of(outputs_of(nb, "%chat list")[0])
    assert "default" in listing and "coding" in listing

    error = outputs_of(nb, "%%chat -t 5")
    assert [text_of(o).strip() for o in error] == [
        "UsageError: temperature must be a number from 0 to 2 (got 5.0)"
    ]

    python = text_of(outputs_of(nb, "from nbchat import Chat")[0])
    assert python == "Echo: Hello\n3 messages\n"
    assert server.bodies[-1]["temperature"] == 0.2


def test_conversations_notebook_shows_rerun_names_save_load_export_usage(server) -> None:
    nb = execute(NOTEBOOKS / "conversations.ipynb", against(server))

    history = text_of(outputs_of(nb, "%chat history")[0])
    assert history.index("Name a dark colour.") < history.index("Name a fruit.")
    assert "Name a colour." not in history  # the re-run replaced it
    rerun = next(b for b in server.bodies if b["messages"][-1]["content"] == "Name a dark colour.")
    assert [m["content"] for m in rerun["messages"]] == ["Name a dark colour."]

    assert "| sql | 3 |" in text_of(outputs_of(nb, "%chat list")[0])
    retried = [b for b in server.bodies if b.get("temperature") == 0.9]
    assert [m["role"] for m in retried[0]["messages"]] == ["system", "user"]
    assert "Choice 2 is now the reply kept" in text_of(outputs_of(nb, "%chat pick 2")[0])

    restored = outputs_of(nb, "%chat load")
    assert "Loaded 3 turns into *restored*" in text_of(restored[0])
    assert "Echo: Suggest a name for a cat. (choice 2)" in text_of(restored[1])

    exported = outputs_of(nb, "%chat export")
    jsonl = json.loads(text_of(exported[-1]))
    assert jsonl["messages"][0] == {"role": "user", "content": "Name a dark colour."}

    usage = text_of(outputs_of(nb, "%chat usage")[0])
    assert "| total | 6 |" in usage

    dry = outputs_of(nb, "%chatconfig max_context_tokens=60")
    assert "earlier messages left out" in text_of(dry[-1]) and "nothing sent" in text_of(dry[-1])
    last = outputs_of(nb, "%%chat\nAnd a vegetable")[0]
    assert last["metadata"]["nbchat"]["left_out"] > 0
    assert server.bodies[-1]["messages"][-1]["content"] == "And a vegetable"


def test_widgets_notebook_saves_the_widget_state_of_panel_and_chat_view(server) -> None:
    nb = execute(NOTEBOOKS / "widgets.ipynb", against(server))
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = {k: v for k, v in state.items()}

    def find(model_name: str, **attrs: object) -> list[dict]:
        return [
            m["state"]
            for m in models.values()
            if m["model_name"] == model_name and all(m["state"].get(a) == v for a, v in attrs.items())
        ]

    # each row's name is a label of its own; the temperature is the slider from 0 to 2
    assert any(">temperature</span>" in h["value"] for h in find("HTMLModel"))
    temperature = find("FloatSliderModel", min=0, max=2)
    assert temperature and temperature[0]["value"] == 1
    max_tokens = [t for t in find("TextModel") if "≥ 1" in t["placeholder"]]
    assert [t["value"] for t in max_tokens] == ["300"]  # the number box, moved by %chatconfig
    assert any("nbchat-stand-in" in d["_options_labels"] for d in find("DropdownModel"))
    tabs = find("TabModel")
    assert tabs and tabs[0]["titles"] == ["Choice 1", "Choice 2"]
    assert any("Keep this one" == b["description"] for b in find("ButtonModel"))
    assert any('class="nbchat-token"' in h["value"] for h in find("HTMLModel"))
    assert server.bodies[0]["max_tokens"] == 300 and "temperature" not in server.bodies[0]
    view, copy = outputs_of(nb, "%%chat -f widget")
    model_id = view["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert model_id in state
    # without that state, the saved reply is still there to read
    assert copy["data"]["text/markdown"].startswith("**Choice 1**\n\nEcho:")
    shaded = outputs_of(nb, "%%chat --logprobs 3")
    assert 'class="nbchat-token"' in shaded[-2]["data"]["text/html"]  # reply, shading, footer
    assert "completion tokens" in shaded[-1]["data"]["text/markdown"]


def test_context_notebook_sends_a_dataframe_a_figure_an_error_and_earlier_cells(server) -> None:
    nb = execute(NOTEBOOKS / "context.ipynb", against(server))
    sent = [b["messages"][-1]["content"] for b in server.bodies]

    table = next(c for c in sent if isinstance(c, str) and c.startswith("Which column of"))
    assert "DataFrame sales: 5,000 rows × 3 columns" in table and "price (float64)" in table
    described = outputs_of(nb, "%%chat\nWhich column")[0]
    assert described["metadata"]["nbchat"]["context"][0]["kind"] == "DataFrame 5000×3"

    figure = next(
        c for c in sent if isinstance(c, list) and c[0]["text"].startswith("What does this histogram")
    )
    assert figure[1]["type"] == "image_url" and figure[1]["image_url"]["url"].startswith(
        "data:image/png;base64,"
    )
    assert "[image/png 600×300]" in text_of(outputs_of(nb, "%%chat\nWhat does this histogram")[0])

    error = next(c for c in sent if isinstance(c, str) and c.startswith("Why did this fail?"))
    assert "KeyError: 'prcie'" in error and "\x1b[" not in error

    earlier = next(c for c in sent if isinstance(c, str) and c.endswith("Explain what I just computed."))
    assert earlier.startswith("<notebook context: the 1 cell run before this message>")
    assert "by_store = sales.groupby('store')" in earlier
    assert "] Out:\nSeries Out[" in earlier and "(price): 3 values, dtype float64" in earlier

    dry = "\n".join(text_of(o) for o in outputs_of(nb, "%%chat --dry-run"))
    assert "data:image/png;base64,… (" in dry and "600×300 px" in dry
    assert "| by_store |" in dry and "| histogram.png |" in dry and "nothing sent" in dry
    assert not any("Compare this image" in str(c) for c in sent)
