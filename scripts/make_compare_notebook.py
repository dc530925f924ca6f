"""Write notebooks/compare.ipynb: three models (two by name, one a Chat with its own system
prompt) label the same 80 reviews; agreement, Cohen's κ, accuracy against a gold column.

python scripts/make_compare_notebook.py   # regenerates it, without outputs
"""

from __future__ import annotations

import nbformat
from make_notebook import HERE, build

CELL = (
    "%%chat --map reviews --compare gpt-4o-mini,gpt-4o,cautious --schema label --truth gold "
    "--concurrency 16 -o grid\nLabel the sentiment of this review: {review}"
)

COMPARE = [
    (
        "md",
        "# Compare models over a column\n\n`%%chat --map NAME --compare A,B,C` asks every row of "
        "every model — one request each, many at once, one progress bar — and puts the answers side "
        "by side: a summary per model, how far each pair agrees (Cohen's κ), and with `--truth` "
        "each model's accuracy and confusion table. Without `OPENAI_API_KEY` this runs against "
        "nbchat's offline stand-in, which is **not a model**: its labels come from the text and the "
        "model's name, so the models disagree here and there, as real ones do — but not for reasons.",
    ),
    ("code", "%load_ext nbchat"),
    (
        "code",
        "import pandas as pd\n\n"
        "texts = {\n"
        '    "great battery, sharp screen": "pos",\n'
        '    "broke after a week": "neg",\n'
        '    "does the job, nothing more": "neu",\n'
        '    "arrived late but works well": "pos",\n'
        '    "the strap feels cheap": "neg",\n'
        "}\n"
        'rows = [(f"Review {i}: {text}", gold) for i, (text, gold) in enumerate(list(texts.items()) * 16)]\n'
        'reviews = pd.DataFrame(rows, columns=["review", "gold"], index=[f"R{i:03d}" for i in range(80)])\n'
        "reviews.head(3)",
    ),
    ("md", "The conversation's system prompt goes with the models named on this server:"),
    ("code", "%%chat -s\nYou label product reviews: pos, neg or neu."),
    (
        "md",
        "A `Chat` variable brings its own server, model and system prompt — here a more cautious "
        "prompt on another model. The schema's `enum` makes the replies labels to compare.",
    ),
    (
        "code",
        "from nbchat import Chat\n\n"
        'cautious = Chat(model="gpt-4.1-mini", system="You label product reviews. When in doubt, say neu.")\n'
        'label = {"sentiment": {"enum": ["pos", "neg", "neu"]}}',
    ),
    ("md", "`--dry-run` shows the grid's size and what it should cost; nothing is sent."),
    ("code", CELL.replace(" -o grid", " --dry-run")),
    (
        "md",
        "The grid: 80 reviews × 3 models = 240 requests, at most 16 at once to this server. The "
        "`gold` column is the truth: it is never sent.",
    ),
    ("code", CELL),
    ("md", "`grid` has the reviews' index and a column per model (per field and model with a schema):"),
    ("code", "grid.head()"),
    ("md", "The statistics are data too:"),
    (
        "code",
        "from nbchat.compare import comparison_of\n\n"
        "found = comparison_of(grid)\n"
        "[(pair.a, pair.b, round(pair.kappa, 2)) for pair in found.agreement]",
    ),
    ("code", "{a.label: round(a.accuracy, 2) for a in found.accuracy}, len(found.disagreements)"),
    ("md", "Run the same cell again: every answer is kept from `grid`, nothing is asked again."),
    ("code", CELL),
    (
        "md",
        "The same from Python: `Chat.compare` takes model names and `Chat` objects (with no "
        "schema and no truth, a summary per model):",
    ),
    (
        "code",
        'chat = Chat(system="You label product reviews: pos, neg or neu.")\n'
        'short = chat.compare(reviews.head(4), "In one word, the sentiment of: {review}",\n'
        '                     models=["gpt-4o-mini", cautious])\n'
        "short",
    ),
]


def main() -> None:
    nbformat.write(build(COMPARE), HERE / "compare.ipynb")


if __name__ == "__main__":
    main()
