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
    ("md", "# nbchat quick start\n\nChat with OpenAI-compatible models from notebook cells. "
           "Run with `./run.sh quickstart`: against OpenAI when `OPENAI_API_KEY` is set, otherwise "
           "against nbchat's offline stand-in server, which **echoes** messages (it is not a model)."),
    ("code", "%load_ext nbchat"),
    ("md", "Settings, where each came from (the key only as *set* / *not set*):"),
    ("code", "%chatconfig"),
    ("md", "A system prompt (nothing is sent), then a question. The reply streams in; the footer shows tokens, cost and latency."),
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
    ("code", "from nbchat import Chat\n\nchat = Chat(system='You are terse.', temperature=0.2)\nreply = chat.send('Hello')\nprint(reply.text)\nprint(len(chat.messages), 'messages')"),
]


def main() -> None:
    HERE.mkdir(exist_ok=True)
    nbformat.write(build(QUICKSTART), HERE / "quickstart.ipynb")


if __name__ == "__main__":
    main()
