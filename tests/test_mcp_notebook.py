"""notebooks/mcp.ipynb runs in a real kernel against the stand-in and the example MCP server."""

from __future__ import annotations

import json

import pytest
from kernels import NOTEBOOKS, against, execute, outputs_of, text_of

pytest.importorskip("mcp")
pytestmark = pytest.mark.kernel


def test_the_mcp_notebook_offers_a_servers_tools_with_approval(server, tmp_path) -> None:
    nb = execute(NOTEBOOKS / "mcp.ipynb", against(server), cwd=tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []

    listed = [text_of(o) for o in outputs_of(nb, "%chat mcp")]
    assert "| demo | stdio: " in listed[0] and "| not started | — |" in listed[0]
    tools = text_of(outputs_of(nb, "%chat mcp demo")[0])
    assert "| demo__add | read-only | Add two numbers. |" in tools
    assert "| demo__remember | asks | " in tools

    added = next(b for b in server.bodies if b["messages"][-1].get("content") == "42.0")
    assert added["messages"][-1]["role"] == "tool"
    assert [t["function"]["name"] for t in added["tools"]][:2] == ["demo__add", "demo__word_count"]
    assert "<pre>42.0</pre>" in text_of(outputs_of(nb, "%%chat --tools demo\n")[0])

    chart = text_of(outputs_of(nb, "%%chat --tools demo.chart")[0])
    assert '<img src="data:image/png;base64,' in chart and "[an image (image/png, 48×32 pixels" in chart

    refused = text_of(outputs_of(nb, "%%chat --tools demo.remember\n")[0])
    assert "Not run: the user could not be asked to approve this call (no input available)" in refused
    ran = text_of(outputs_of(nb, "%%chat --tools demo.remember,demo.notes")[0])
    assert "<pre>noted (1 in all)</pre>" in ran  # the refused call never reached the server

    final = [c for c in nb.cells if c.cell_type == "code" and c.source == "%chat mcp"][-1]
    assert "| running | demo__add, demo__word_count, demo__remember" in text_of(final.outputs[0])
    assert json.loads(text_of(outputs_of(nb, "from nbchat import Chat")[0])) == {"words": 6, "characters": 18}
