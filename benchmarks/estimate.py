"""The map's cost estimate against the bill, on ordinary shapes of item.

For each shape, a map of 20 items runs against the stand-in, which answers as a model would
for that shape (a label, a sentence, a paragraph; as JSON with a schema) and reports its
usage by its own token rule. The estimate is what the map computed before sending
(``Progress.estimate``, the number the cost confirmation and the budget use); the bill is
the sum of the costs of the replies, from the usage the server reported. Also shown: the
estimate the map made before (a 200-token reply whenever max_tokens is unset).

    python benchmarks/estimate.py
"""

from __future__ import annotations

from typing import Any

from nbchat import Chat
from nbchat.mapping import Progress, jobs_for
from nbchat.schema import to_schema
from nbchat.testing.server import StandInServer
from nbchat.tokens import estimate_messages
from nbchat.usage import price

MODEL = "gpt-4o-mini"
N = 20
PRODUCTS = [
    "a kettle that boils in a minute",
    "headphones whose left side crackles after a week",
    "a desk lamp with three warm settings",
    "running shoes that gave me blisters",
    "a phone case that cracked on the first drop",
]
TOPICS = ["a mutex", "a hash map", "TCP slow start", "a B-tree", "gradient descent", "a bloom filter"]
SENTENCE = "A mutex is a lock that lets only one thread at a time enter the code it guards."
PARAGRAPH = " ".join(
    [
        "A B-tree is a balanced search tree built for storage that reads whole blocks at once.",
        "Each node holds many keys in order and has one more child than keys, so a tree of a",
        "million entries is only three or four levels deep. Lookups walk down from the root,",
        "choosing a child by comparing keys; inserts split a full node in two and push the middle",
        "key up, which keeps every leaf at the same depth. Databases and file systems use B-trees",
        "because a single disk read brings in a whole node, so few reads answer a query.",
    ]
)
ANSWER = (
    "Gradient descent finds a minimum by stepping against the gradient. The step size sets how "
    "fast it moves; too large and it overshoots, too small and it crawls."
)
SENTIMENT = {"type": "object", "properties": {"label": {"enum": ["positive", "negative", "neutral"]}}}

# (name, items, template, schema, what the "model" answers)
SHAPES: list[tuple[str, list[str], str, Any, str]] = [
    ("short label", PRODUCTS, "Sentiment of this review, one word: {item}", None, "negative"),
    ("label, schema", PRODUCTS, "Classify the sentiment of: {item}", SENTIMENT, '{"label": "negative"}'),
    ("one sentence", TOPICS, "In one sentence, what is {item}?", None, SENTENCE),
    (
        "sentence, schema",
        TOPICS,
        "Answer briefly: what is {item}?",
        "answer, confidence float",
        '{"answer": "' + SENTENCE + '", "confidence": 0.9}',
    ),
    ("paragraph", TOPICS, "Explain {item} in a paragraph.", None, PARAGRAPH),
    ("plain question", TOPICS, "What is {item}?", None, ANSWER),
]


def run_shape(
    server: StandInServer, shape: tuple[str, list[str], str, Any, str]
) -> tuple[float, float, float]:
    """(estimate, old estimate, bill) in USD for a map of N items of this shape."""
    _, topics, template, schema, answer = shape
    items = [f"{topics[i % len(topics)]} (#{i})" for i in range(N)]
    chat = Chat(base_url=server.url, api_key="sk-bench", cache="off", model=MODEL)
    server.script(text=answer, times=N)
    seen: list[Progress] = []
    results = chat.map(items, template, schema=schema, progress=seen.append, concurrency=4)
    assert not results.errors, results.errors
    estimate, bill = seen[0].estimate, chat.ledger.spent
    jobs = jobs_for(chat, items, template, to_schema(schema) if schema else None, {})
    rates = price(MODEL)
    assert estimate is not None and rates is not None
    prompt = sum(estimate_messages(j.request.messages) for j in jobs)
    old = (prompt * rates[0] + N * 200 * rates[1]) / 1e6
    return estimate, old, bill


def main() -> None:
    print(f"{N} items per shape, {MODEL} prices; ratio = estimate / bill (within 2×: 0.5–2.0)\n")
    print(f"{'shape':18} {'estimate':>10} {'bill':>10} {'ratio':>6}   {'old est.':>10} {'old ratio':>9}")
    with StandInServer() as server:
        for shape in SHAPES:
            estimate, old, bill = run_shape(server, shape)
            print(
                f"{shape[0]:18} ${estimate:9.6f} ${bill:9.6f} {estimate / bill:6.2f}   "
                f"${old:9.6f} {old / bill:9.2f}"
            )


if __name__ == "__main__":
    main()
