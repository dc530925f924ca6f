"""Write notebooks/map.ipynb: label 200 rows of a DataFrame with a schema, then the same as a batch.

python scripts/make_map_notebook.py   # regenerates it, without outputs
"""

from __future__ import annotations

import nbformat
from make_notebook import HERE, build

SCHEMA = '"sentiment, stars int, topics list[str]"'

MAP = [
    (
        "md",
        "# A prompt over a whole column\n\n`%%chat --map` sends the cell once per row, many at once, with a "
        "progress bar; `--schema` makes every reply a row of typed fields; `--batch` sends the same "
        "requests to the Batch API (half price, done within 24 h). Without `OPENAI_API_KEY` this runs "
        "against nbchat's offline stand-in, which **echoes** (it is not a model): its labels repeat the "
        "review.",
    ),
    ("code", "%load_ext nbchat"),
    (
        "code",
        "import pandas as pd\n\n"
        "reviews = pd.DataFrame({\n"
        '    "review": [f"Review {i}: " + ("great battery, sharp screen" if i % 3 else "broke after a week")\n'
        "               for i in range(200)],\n"
        '    "product": [f"P-{i % 7}" for i in range(200)],\n'
        "})\n"
        "reviews.shape",
    ),
    ("code", "%%chat -s\nYou label product reviews. Be consistent."),
    ("md", "Label every row: at most 16 requests at once, one column per schema field, the same index."),
    (
        "code",
        f"%%chat --map reviews --schema {SCHEMA} --concurrency 16 -o labels\n"
        "Label this review of {product}: {review}",
    ),
    ("code", "labels.head(3)"),
    ("code", 'len(labels), list(labels.columns), labels.attrs["errors"]'),
    (
        "md",
        "The same requests through the Batch API: a JSONL file uploaded with the Files API, a batch, a handle.",
    ),
    (
        "code",
        f"%%chat --map reviews --schema {SCHEMA} --batch -o job\n"
        "Label this review of {product}: {review}",
    ),
    ("code", "batch_labels = job.wait(poll=0.5).results()\nbatch_labels.equals(labels)"),
    ("md", "The files the batch used (its input and its output):"),
    ("code", "%chat files"),
]


def main() -> None:
    nbformat.write(build(MAP), HERE / "map.ipynb")


if __name__ == "__main__":
    main()
