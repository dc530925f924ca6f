"""Write a notebook from a list of cells (kept as code so notebooks diff cleanly).

python scripts/make_notebook.py   # regenerates notebooks/*.ipynb, without outputs
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent.parent / "notebooks"


def build(cells: list[tuple[str, str] | tuple[str, str, list[str]]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, spec in enumerate(cells):
        kind, source = spec[0], spec[1]
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell["id"] = f"cell-{i:02d}"
        if len(spec) > 2:
            cell.metadata["tags"] = spec[2]  # type: ignore[misc]
        nb.cells.append(cell)
    return nb


QUICKSTART = [
    (
        "md",
        "# nbchat quick start\n\nChat with OpenAI-compatible models from notebook cells. "
        "Run with `./run.sh quickstart`: against OpenAI when `OPENAI_API_KEY` is set, otherwise "
        "against nbchat's offline stand-in server, which **echoes** messages (it is not a model).",
    ),
    ("code", "%load_ext nbchat"),
    ("md", "Settings, where each came from (the key only as *set* / *not set*):"),
    ("code", "%chatconfig"),
    (
        "md",
        "A system prompt (nothing is sent), then a question. The reply streams in; the footer shows tokens, cost and latency.",
    ),
    ("code", "%%chat -s\nYou are a concise data-science assistant."),
    ("code", "%%chat\nWhat is a p-value? One sentence."),
    ("md", "Per-cell sampling options apply to this cell only; the whole history goes with every request."),
    ("code", "%%chat -t 0.2 --max-tokens 60 --seed 1\nAnd a confidence interval?"),
    ("md", "`{name}` is replaced when `name` exists; other braces (JSON, code) are sent as written."),
    ("code", "n_rows = 1200\ncolumns = ['price', 'area']"),
    ("code", '%%chat\nMy table has {n_rows} rows and columns {columns}. Config: {"dropna": true}'),
    ("md", "Several choices at once; choice 1 continues the conversation."),
    ("code", "%%chat -n 2\nSuggest a title for a histogram of prices."),
    ("md", "`-f code` puts the reply's first code block into the next cell; `-o` keeps the reply."),
    ("code", "%%chat -c coding -f code -o fix\nFix this:\n```python\nprint('hello' + 1)\n```"),
    ("code", "print(type(fix).__name__, fix.usage, fix.finish_reason)"),
    ("md", "Few-shot priming: an example reply added without a request."),
    ("code", "%%chat -c coding --role assistant\nAlways answer with a single code block."),
    ("md", "Settings for every following cell; `name=unset` stops sending one."),
    ("code", '%chatconfig temperature=0.3 stop="###" max_tokens=200'),
    ("code", "%%chat\nList three plot types.###this part is cut by the stop sequence"),
    ("code", "%chatconfig temperature=unset stop=unset max_tokens=unset"),
    ("md", "Managing conversations:"),
    ("code", "%chat list"),
    ("code", "%chat history"),
    ("code", "%chat undo"),
    ("code", "%chat reset --keep-system"),
    ("md", "A mistake is a one-line usage error and nothing is sent:"),
    ("code", "%%chat -t 5\nToo hot", ["raises-exception"]),
    ("md", "The same engine from Python:"),
    (
        "code",
        "from nbchat import Chat\n\nchat = Chat(system='You are terse.', temperature=0.2)\nreply = chat.send('Hello')\nprint(reply.text)\nprint(len(chat.messages), 'messages')",
    ),
]


CONVERSATIONS = [
    (
        "md",
        "# Conversations in a notebook\n\nRe-runs, named conversations, retry and pick, "
        "save/load, export, usage and the dry run. Offline, the stand-in server echoes messages.",
    ),
    ("code", "%load_ext nbchat"),
    (
        "md",
        "## Re-running a cell replaces its exchange\n\nJupyterLab, Notebook 7 and VS Code send each "
        "cell's id. Re-running a `%%chat` cell then replaces that cell's exchange instead of adding a "
        "duplicate. Here we do what the frontend does, passing `cell_id` ourselves:",
    ),
    (
        "code",
        "ip = get_ipython()\nip.run_cell('%%chat\\nName a colour.', cell_id='colour-cell')\n"
        "ip.run_cell('%%chat\\nName a fruit.', cell_id='fruit-cell')\n"
        "ip.run_cell('%%chat\\nName a dark colour.', cell_id='colour-cell');  # the re-run",
    ),
    ("code", "%chat history"),
    ("md", "## Named conversations"),
    ("code", "%%chat -c sql -s\nYou write PostgreSQL."),
    ("code", "%%chat -c sql\nCount rows per day in table events."),
    ("code", "%chat list"),
    ("md", "## Retry and pick"),
    ("code", "%chatconfig temperature=0.9"),
    ("code", "%chat retry -c sql"),
    ("code", "%%chat -n 3\nSuggest a name for a cat."),
    ("code", "%chat pick 2"),
    ("code", "%chatconfig temperature=unset"),
    ("md", "## Save, load, export"),
    ("code", "import tempfile\nfolder = tempfile.mkdtemp()\n%chat save {folder}/colours.json"),
    ("code", "%chat load {folder}/colours.json -c restored\n%chat history -c restored"),
    (
        "code",
        "%chat export {folder}/colours.md\n%chat export {folder}/colours.jsonl\nprint(open(f'{folder}/colours.jsonl').read())",
    ),
    ("md", "## Usage, context budget and the dry run"),
    ("code", "%chat usage"),
    ("code", "%chatconfig max_context_tokens=60\n%chat request And a vegetable"),
    ("code", "%%chat\nAnd a vegetable"),
]


WIDGETS = [
    (
        "md",
        "# Widgets\n\nA panel of controls linked to the settings, and the chat view. "
        "Offline, the stand-in server echoes messages (it is not a model).",
    ),
    ("code", "%load_ext nbchat"),
    (
        "md",
        "Move a slider: the next request uses it. `%chatconfig` moves the sliders too. "
        "Unset settings show the API default and read *unset*.",
    ),
    ("code", "%chatconfig --sliders"),
    ("code", "%chatconfig max_tokens=300"),
    ("code", "%%chat\nSay hello in three languages."),
    ("md", "The chat view: choices as tabs with *Keep this one*, log-probabilities, usage, and *Re-ask*."),
    ("code", "%%chat -f widget -n 2 --logprobs 2\nSuggest a name for a cat."),
    ("md", "Log-probabilities in Markdown output: hover a token."),
    ("code", "%%chat --logprobs 3\nIs this certain?"),
]

TOOLS = [
    (
        "md",
        "# Tools: the model calls your functions\n\n"
        "`%%chat --tools NAME,…` lets the model call functions from your namespace, and the built-ins "
        "`variables`, `describe` and `python`. Each call shows as a collapsible block above the reply. "
        "Offline, the stand-in server (not a model) calls the tools your message writes out as calls, "
        "like `describe(name='sales')`; a real model decides by itself.",
    ),
    ("code", "%load_ext nbchat"),
    (
        "code",
        "import pandas as pd\n\n"
        "sales = pd.DataFrame(\n"
        '    {"region": ["north", "south", "east", "west"] * 50, "amount": [120.0 + i for i in range(200)]}\n'
        ")",
    ),
    (
        "md",
        "Any function with type hints is a tool; its docstring describes it to the model "
        "(`@nbchat.tool` is optional).",
    ),
    (
        "code",
        "from typing import Literal\n\n\n"
        'def to_eur(amount: float, currency: Literal["USD", "GBP"] = "USD") -> float:\n'
        '    """Convert an amount of money to euros.\n\n'
        "    Args:\n"
        "        amount: The amount to convert.\n"
        "        currency: Its currency.\n"
        '    """\n'
        '    return round(amount * {"USD": 0.92, "GBP": 1.17}[currency], 2)',
    ),
    (
        "md",
        "`describe` only reads, so it never asks. Your own functions ask first (`tool_approval=ask`): "
        "*Run to_eur(amount=319.0, currency='USD')? [y/N/a(ll)]*. Where nobody can answer (this notebook "
        "run by nbclient in CI) the call is refused and the model is told so.",
    ),
    (
        "code",
        "%%chat --tools describe,to_eur\n"
        "Look at describe(name='sales'): what is the largest amount, in euros with "
        "to_eur(amount=319.0, currency='USD')?",
    ),
    ("md", "With `tool_approval=auto` calls run without asking (`python` too, so use it with care):"),
    ("code", "%chatconfig tool_approval=auto"),
    (
        "code",
        "%%chat --tools describe,to_eur\n"
        "Look at describe(name='sales'): what is the largest amount, in euros with "
        "to_eur(amount=319.0, currency='USD')?",
    ),
    (
        "md",
        "The whole exchange — question, calls, results, answer — is one turn: re-running the cell "
        "replaces all of it, and the history keeps the tool messages.",
    ),
    ("code", "%chat history"),
]


CONTEXT = [
    (
        "md",
        "# The model sees what you see\n\n`{df}` sends a DataFrame's shape, dtypes and first and last rows; "
        "`{fig}` sends a figure as an image; `{Err}` the last traceback; `--context N` the cells you ran. "
        "Against the offline stand-in server the echo shows what arrived (`[image/png 640×480]`).",
    ),
    ("code", "%load_ext nbchat"),
    (
        "code",
        "import numpy as np\nimport pandas as pd\n\n"
        "rng = np.random.default_rng(0)\n"
        "sales = pd.DataFrame({\n"
        "    'store': rng.choice(['north', 'south', 'east'], 5000),\n"
        "    'price': rng.gamma(2.0, 20.0, 5000).round(2),\n"
        "    'units': rng.integers(0, 20, 5000),\n"
        "})",
    ),
    ("md", "A DataFrame is described compactly, within `context_tokens` (default 2000), whatever its size."),
    ("code", "%%chat\nWhich column of {sales} would you look at first, and why?"),
    ("md", "A figure goes in as an image part, scaled so its longer side fits `image_max_side` (1024)."),
    (
        "code",
        "import matplotlib.pyplot as plt\n\n"
        "fig, ax = plt.subplots(figsize=(6, 3), dpi=100)\n"
        "ax.hist(sales.price, bins=40)\n"
        "ax.set_title('price')",
    ),
    ("code", "%%chat\nWhat does this histogram tell me? {fig}"),
    ("md", "`{Err}` is the last error's traceback, as plain text."),
    ("code", "sales['prcie'].mean()", ["raises-exception"]),
    ("code", "%%chat\nWhy did this fail? {Err}"),
    ("md", "`--context N` adds the N cells run before this one (source, output, error)."),
    ("code", "by_store = sales.groupby('store').price.mean().round(1)\nby_store"),
    ("code", "%%chat --context 1\nExplain what I just computed."),
    (
        "md",
        "Attach files with `--image PATH_OR_URL` and `--file PATH`. `--dry-run` shows the request "
        "(data URLs shortened) and a receipt of every context piece with its tokens; nothing is sent.",
    ),
    ("code", "fig.savefig('histogram.png')"),
    ("code", "%%chat --dry-run --image histogram.png --detail low\nCompare this image with {by_store}."),
    ("code", "import os\n\nos.remove('histogram.png')"),
]


def main() -> None:
    HERE.mkdir(exist_ok=True)
    nbformat.write(build(QUICKSTART), HERE / "quickstart.ipynb")
    nbformat.write(build(CONVERSATIONS), HERE / "conversations.ipynb")
    nbformat.write(build(WIDGETS), HERE / "widgets.ipynb")
    nbformat.write(build(TOOLS), HERE / "tools.ipynb")
    nbformat.write(build(CONTEXT), HERE / "context.ipynb")


if __name__ == "__main__":
    main()
