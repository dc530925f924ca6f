"""notebooks/more.ipynb runs in a real kernel against the stand-in: an image, a reasoning
reply with its summary, a prompt scored with echo and logprobs, organization costs."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from kernels import NOTEBOOKS, against, execute, outputs_of, text_of

from nbchat.testing.server import StandInServer

pytestmark = pytest.mark.kernel


def test_more_runs_and_shows_an_image_a_summary_a_scored_prompt_and_costs(
    server: StandInServer, tmp_path: Path
) -> None:
    # run in tmp_path, where the saved image may land
    nb = execute(NOTEBOOKS / "more.ipynb", against(server, OPENAI_ADMIN_KEY="sk-admin-nb12345678"), tmp_path)
    paths = [r.path.split("?")[0] for r in server.requests]

    image = outputs_of(nb, "%%chat -f image")
    pictures = [o for o in image if "image/png" in o.get("data", {})]
    assert pictures and base64.b64decode(pictures[-1]["data"]["image/png"]).startswith(b"\x89PNG")
    assert "gpt-image-1 · 1 image 1024x1024 · " in text_of(image[-1]) and "272 image tokens" in text_of(
        image[-1]
    )
    assert "<Image 64×64 PNG" in text_of(outputs_of(nb, "print(lighthouse")[0])
    assert (tmp_path / "lighthouse.png").read_bytes().startswith(b"\x89PNG")

    reply = outputs_of(nb, "%%chat -m o4-mini")[-1]["data"]["text/markdown"]
    assert reply.startswith("<details><summary>Thinking</summary>")
    assert reply.index("</details>") < reply.index("Echo: Why does ice float on water?")
    assert "(16 reasoning)" in reply
    sent = next(r.body for r in server.requests if r.path.endswith("/v1/responses"))
    assert sent["store"] is False and sent["reasoning"] == {"effort": "low", "summary": "auto"}

    scored = outputs_of(nb, "%%chat --completion")
    html = next(o["data"]["text/html"] for o in scored if "text/html" in o.get("data", {}))
    assert "prompt scoring" in html and html.count('class="nbchat-token"') == 7
    asked = next(r.body for r in server.requests if r.path.endswith("/v1/completions"))
    assert (asked["echo"], asked["logprobs"], asked["prompt"]) == (True, 3, "The capital of France is Paris")

    costs = outputs_of(nb, "%chat usage --org")
    assert "<svg" in costs[0]["data"]["text/html"]
    assert "proj_standin_alpha" in text_of(costs[-1]) and "total" in text_of(costs[-1])
    assert "sk-admin-nb12345678" not in str(nb)
    assert {"/v1/images/generations", "/v1/responses", "/v1/completions", "/v1/organization/costs"} <= set(
        paths
    )


def test_more_runs_clean_offline_without_any_key(server: StandInServer, tmp_path: Path, monkeypatch) -> None:
    # as ./run.sh and the docs run it with no key at all: every cell ends without an error
    for name in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    nb = execute(NOTEBOOKS / "more.ipynb", {"OPENAI_BASE_URL": server.url}, tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert "proj_standin_alpha" in text_of(outputs_of(nb, "%chat usage --org")[-1])
