"""Prices: %chatconfig shows which table prices replies and its date; the prices setting
comes first; with genai-prices installed (the nbchat[prices] extra) its table is used and
the footer's cost says so."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from nbchat import usage

HAS_GENAI = importlib.util.find_spec("genai_prices") is not None


def footer(run: object) -> str:
    """The reply's footer as read (Markdown escapes each $)."""
    markdown: str = run.markdown  # type: ignore[attr-defined]
    return markdown.split("<sub>")[-1].replace("<span>\\$</span>", "$")


@pytest.fixture
def without_genai_prices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if genai-prices were not installed (the built-in table's path)."""
    monkeypatch.setattr(usage, "genai_prices", lambda: None)
    monkeypatch.setattr(usage, "genai_installed", lambda: False)
    usage._genai_rates.cache_clear()
    yield
    usage._genai_rates.cache_clear()


def test_the_built_in_table_carries_its_date(cell, server, without_genai_prices) -> None:
    shown = cell("%chatconfig").text
    assert f"Prices: nbchat's built-in table, taken {usage.PRICES_TAKEN}" in shown
    assert "pip install 'nbchat[prices]' for genai-prices" in shown
    run = cell("%%chat -m gpt-4o-mini\nhi")
    assert run.ok and "$0.0" in footer(run) and "genai-prices" not in footer(run)
    assert usage.priced_by("gpt-4o-mini") == "built-in"


def test_the_prices_setting_comes_before_any_table(cell, server) -> None:
    assert cell('%chatconfig prices={"gpt-4o-mini": [1000, 2000]}').ok
    run = cell("%%chat -m gpt-4o-mini\nhi")
    reply_usage = run.metadata["usage"]
    expected = (reply_usage["prompt_tokens"] * 1000 + reply_usage["completion_tokens"] * 2000) / 1e6
    assert usage.format_cost(expected) in footer(run) and "genai-prices" not in footer(run)
    assert "the prices setting gives 1 model (used first)" in cell("%chatconfig").text


@pytest.mark.skipif(not HAS_GENAI, reason="genai-prices (the nbchat[prices] extra) is not installed")
def test_with_genai_prices_installed_its_table_prices_the_reply_and_the_footer_says_so(cell, server) -> None:
    from genai_prices import Usage, calc_price

    usage._genai_rates.cache_clear()
    shown = cell("%chatconfig").text
    assert "Prices: the genai-prices " in shown and "table (installed; it replaces nbchat's own)" in shown
    run = cell("%%chat -m gpt-4o-mini\nhi")
    assert run.ok, run.error
    counts = run.metadata["usage"]
    theirs = calc_price(
        Usage(input_tokens=counts["prompt_tokens"], output_tokens=counts["completion_tokens"]),
        model_ref="gpt-4o-mini",
        provider_id="openai",
    )
    assert f"{usage.format_cost(float(theirs.total_price))} (genai-prices)" in footer(run)
    # a model only its table knows is priced too; one no table knows is not
    assert usage.priced_by("gpt-4o-mini-2024-07-18") == "genai-prices"
    assert usage.price("no-such-model-anywhere") is None


def test_genai_prices_is_not_imported_until_a_reply_is_priced() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\nsh.extension_manager.load_extension('nbchat')\n"
        "print('genai_prices' in sys.modules, 'pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "False"
