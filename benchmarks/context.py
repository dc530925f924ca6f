"""What substituting a big DataFrame and a big figure costs, against pasting them by hand.

For a 100,000-row DataFrame: nbchat's description (``{df}``) against ``str(df)`` (pandas'
own truncated repr) and ``df.to_string()`` (every row). For a 2,000×2,000 px figure:
nbchat's image part (rendered to fit ``image_max_side``) against an unscaled PNG.
Times are medians; tokens are nbchat's estimate (text) and OpenAI's tile rule (images).

    python benchmarks/context.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import best

from nbchat.content import data_url, image_part, image_size
from nbchat.context import Limits, render
from nbchat.tokens import estimate_text, part_tokens


def frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=rows, freq="min"),
            "store": rng.choice(["north", "south", "east", "west"], rows),
            "product": [f"SKU-{i % 997:04d}" for i in range(rows)],
            "units": rng.integers(0, 50, rows),
            "price": rng.uniform(1, 100, rows).round(2),
            "discount": rng.uniform(0, 0.3, rows).round(3),
            "returned": rng.random(rows) < 0.05,
            "note": rng.choice(["", "promo", "damaged box", "late delivery"], rows),
        }
    )


def figure() -> plt.Figure:
    fig = plt.figure(figsize=(20, 20), dpi=100)  # 2,000×2,000 px
    x = np.linspace(0, 20, 2000)
    for k in range(5):
        plt.plot(x, np.sin(x + k) * (k + 1), label=f"series {k}")
    plt.legend()
    plt.title("five series")
    return fig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeat = 3 if args.quick else 9
    limits = Limits()  # context_tokens=2000, image_max_side=1024

    df = frame(100_000)
    ours = render(df, limits, "df")
    t_ours = best(lambda: render(df, limits, "df"), repeat)
    t_str = best(lambda: str(df), repeat)
    t_full = best(lambda: df.to_string(), 1)
    full = df.to_string()
    print("100,000-row DataFrame (8 columns)")
    print(f"  {'':28} {'time':>10} {'tokens':>10}")
    print(f"  {'nbchat {df}':28} {t_ours * 1000:8.1f} ms {ours.tokens:>10,}   ({ours.note})")
    print(f"  {'str(df) pasted':28} {t_str * 1000:8.1f} ms {estimate_text(str(df)):>10,}   (no dtypes)")
    print(f"  {'df.to_string() pasted':28} {t_full * 1000:8.1f} ms {estimate_text(full):>10,}")
    for rows in (1_000, 1_000_000):
        big = frame(rows)
        t = best(lambda big=big: render(big, limits, "df"), repeat)
        print(
            f"  {'nbchat {df}, ' + f'{rows:,} rows':28} {t * 1000:8.1f} ms {render(big, limits).tokens:>10,}"
        )

    fig = figure()
    image = render(fig, limits, "fig")
    assert isinstance(image.piece, dict)
    t_fig = best(lambda: render(fig, limits, "fig"), repeat)

    def unscaled() -> bytes:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()

    t_raw = best(unscaled, repeat)
    raw = unscaled()
    raw_tokens = part_tokens(image_part(data_url("image/png", raw)))
    ours_bytes = len(image.piece["image_url"]["url"]) * 3 // 4
    print("\n2,000×2,000 px matplotlib figure")
    print(f"  {'':28} {'time':>10} {'pixels':>12} {'bytes':>10} {'tokens':>8}")
    print(
        f"  {'nbchat {fig}':28} {t_fig * 1000:8.1f} ms {image.kind.split()[-1]:>12} "
        f"{ours_bytes:>10,} {image.tokens:>8,}"
    )
    w, h = image_size(raw) or (0, 0)
    print(f"  {'unscaled PNG':28} {t_raw * 1000:8.1f} ms {f'{w}×{h}':>12} {len(raw):>10,} {raw_tokens:>8,}")
    # the low-detail alternative, for reference
    low = render(fig, Limits(detail="low"), "fig")
    print(f"  {'nbchat {fig}, --detail low':28} {'':>10} {'':>12} {'':>10} {low.tokens:>8,}")


if __name__ == "__main__":
    main()
