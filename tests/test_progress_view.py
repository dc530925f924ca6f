"""A map's progress widget shows the same facts as its text line (done/total, rate, time left,
tokens, cost), and its summary's dollars are dollars, not LaTeX."""

from __future__ import annotations

import time

from IPython.utils.capture import capture_output

from nbchat.items import Progress
from nbchat.mapview import ProgressView


def test_the_widget_shows_done_of_total_and_the_time_left(shell) -> None:
    with capture_output() as io:
        view = ProgressView(10, "reviews", terminal=False, widget=True)
        state = Progress(total=10, label="reviews", done=4, tokens=120, cost=0.012, estimate=0.03)
        state.started = time.perf_counter() - 2.0  # 2 items a second: 6 left take about 3 s
        view.update(state)
        info = view.info.value
        # the HTML widget typesets $…$ as math: its line is kept out of it, its $ as written
        assert info.startswith('<span class="tex2jax_ignore">4/10 · 2.0/s · ')
        assert " left" in info and "120 tokens" in info and "$0.0120 of ≈$0.0300" in info
        view.close("reviews: 10/10 done · 300 tokens · $0.012 (estimated ≈$0.03) · 5.00 s")
    summary = io.outputs[-1].data["text/markdown"]
    assert "$0" not in summary.replace("<span>\\$</span>", "")  # every $ escaped: no $…$ math
    assert summary.count("<span>\\$</span>") == 2
