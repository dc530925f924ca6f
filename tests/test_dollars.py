"""Dollar signs: Jupyter typesets text between two ``$`` as LaTeX, so nbchat escapes every
``$`` that is not math wherever it shows Markdown; math written on purpose still renders.
(The real browser check is in test_browser.py.)"""

from __future__ import annotations

import pytest

from nbchat.markdown import DOLLAR as D
from nbchat.markdown import escape_dollars, protect_dollars


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("Option A costs $3 and option B costs $4.", f"Option A costs {D}3 and option B costs {D}4."),
        ("$10 and $20 respectively; use $x$", f"{D}10 and {D}20 respectively; use $x$"),
        ("from $3.50/$4.00 up", f"from {D}3.50/{D}4.00 up"),
        ("a lone $ sign", f"a lone {D} sign"),
        ("price: $5.", f"price: {D}5."),
        ("total $$$", f"total {D}{D}{D}"),
        (r"already \$5 and $6", f"already {D}5 and {D}6"),
    ],
)
def test_currency_is_escaped(written: str, shown: str) -> None:
    assert protect_dollars(written) == shown


@pytest.mark.parametrize(
    "math",
    [
        "The area is $x^2$.",
        "$a$ and $b$",
        "$$\\int_0^1 x\\,dx = \\frac{1}{2}$$",
        "Display:\n$$\nE = mc^2\n$$\nend",
        "inline $\\$5$ stays",
    ],
)
def test_math_written_on_purpose_is_left_alone(math: str) -> None:
    assert protect_dollars(math) == math


def test_code_is_left_exactly_as_written() -> None:
    text = "Run `echo $HOME $PATH` for $5.\n```sh\nexport A=$1 B=$2\n```\n~~~\n$x and $y\n~~~\nthen $3 and $4"
    assert protect_dollars(text) == (
        f"Run `echo $HOME $PATH` for {D}5.\n```sh\nexport A=$1 B=$2\n```\n~~~\n$x and $y\n~~~\nthen {D}3 and {D}4"
    )


def test_text_that_is_never_math_has_every_dollar_escaped() -> None:
    assert escape_dollars("$0.00001 | $0.00002 | \\$1") == f"{D}0.00001 | {D}0.00002 | {D}1"


def test_replies_choices_history_footer_and_usage_show_currency_as_written(cell, server) -> None:
    server.script(text="A costs $3 and B costs $4; the area is $x^2$.")
    run = cell("%%chat\nprices?")
    assert run.markdown.startswith(f"A costs {D}3 and B costs {D}4; the area is $x^2$.")
    assert "<sub>" in run.markdown and f"{D}0.0" in run.markdown.split("<sub>")[1]  # the footer's cost
    assert run.io.outputs[-1].data["text/plain"].startswith("A costs $3 and B costs $4")  # plain: as written
    server.script(text="Choose $5 or $6")
    choices = cell("%%chat -n 2\nmore").markdown
    assert f"Choose {D}5 or {D}6" in choices and f"Choose {D}5 or {D}6 (choice 2)" in choices
    history = cell("%chat history").markdown
    assert (
        f"A costs {D}3 and B costs {D}4; the area is $x^2$." in history and f"Choose {D}5 or {D}6" in history
    )
    usage = cell("%chat usage").markdown
    total = [row for row in usage.splitlines() if row.startswith("| total")]
    assert total and f"{D}0.0" in total[0] and "$" not in total[0].replace(D, "")
