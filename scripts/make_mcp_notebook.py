"""Write notebooks/mcp.ipynb: an MCP server's tools offered to the model, with approval.

python scripts/make_mcp_notebook.py   # regenerates it, without outputs
"""

from __future__ import annotations

from make_notebook import HERE, build

MCP = [
    (
        "md",
        "# MCP servers as tools\n\n"
        "An MCP server (Model Context Protocol) offers tools — read files, query a database, search "
        "an issue tracker. nbchat starts the servers you declare, in the `mcpServers` format other "
        "MCP clients use, and offers their tools to the model like your own functions: "
        "`%%chat --tools NAME` offers every tool of server NAME, `--tools NAME.TOOL` one of them.\n\n"
        "This notebook needs `pip install 'nbchat[mcp]'`. It runs offline: the server is a small "
        "example that ships with nbchat's stand-in, and without `OPENAI_API_KEY` the model is the "
        "stand-in, which **echoes** (it is not a model) and calls the tools a message writes out, "
        "such as `demo__add(a=2, b=40)`.",
    ),
    ("code", "%load_ext nbchat"),
    (
        "md",
        "Declare the servers in a JSON file (the same file Claude Desktop, Cursor or VS Code read). "
        "A local server is a `command` with `args`, `env` and `cwd`; a remote one a `url` with "
        "`headers`. `env` values and headers are credentials: nbchat never shows, saves or caches them.",
    ),
    (
        "code",
        "import json, os, sys, tempfile\n"
        "from nbchat.testing import mcp_example\n\n"
        'servers = {"mcpServers": {"demo": {"command": sys.executable, "args": [mcp_example.__file__]}}}\n'
        'path = os.path.join(tempfile.mkdtemp(), "mcp_servers.json")\n'
        'with open(path, "w") as f:\n'
        "    json.dump(servers, f, indent=2)\n\n"
        "%config ChatMagics.mcp_servers = path",
    ),
    ("md", "`%chat mcp` lists the servers: nothing runs until a cell uses one."),
    ("code", "%chat mcp"),
    (
        "md",
        "`%chat mcp demo` starts *demo* and lists its tools as the model sees them (`SERVER__TOOL`). "
        "A tool the server marks read-only is run without asking; the others ask first.",
    ),
    ("code", "%chat mcp demo"),
    ("md", "Offer every tool of *demo*. The call and its result show in a block above the reply."),
    ("code", "%%chat --tools demo\nWhat is demo__add(a=2, b=40)?"),
    ("md", "An image in a result is shown in the tool's block; the model is told what it was."),
    ("code", "%%chat --tools demo.chart\nPlot demo__chart(values=[3, 1, 4, 1, 5, 9])"),
    (
        "md",
        "`remember` changes the server's state, so nbchat asks before it runs (`Run demo__remember(…)? "
        "[y/N/a(ll)]`). Run unattended (nbclient, papermill) there is no one to ask: the call is "
        "refused and the model is told so.",
    ),
    ("code", "%%chat --tools demo.remember\nPlease demo__remember(note='water the plants')"),
    ("md", "`--tool-approval auto` (or the `tool_approval` setting) runs calls without asking:"),
    (
        "code",
        "%%chat --tools demo.remember,demo.notes --tool-approval auto\ndemo__remember(note='water the plants')",
    ),
    ("md", "The server keeps running for the kernel's life (until `%unload_ext nbchat` or exit):"),
    ("code", "%chat mcp"),
    ("md", "From Python, a server's tools are offered by name, as in a cell:"),
    (
        "code",
        "from nbchat import Chat\n\n"
        'chat = Chat(mcp_servers=path, tools=["demo.word_count"])\n'
        "reply = chat.send(\"demo__word_count(text='to be or not to be')\")\n"
        "print(reply.tool_calls[0].result)",
    ),
]


def main() -> None:
    import nbformat

    nbformat.write(build(MCP), HERE / "mcp.ipynb")


if __name__ == "__main__":
    main()
