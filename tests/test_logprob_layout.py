"""With --logprobs, the footer is painted on its own below the shading: it is only the
footer, never a stray note about choices that the reply does not have."""

from __future__ import annotations

import pytest
from conftest import Cell


@pytest.mark.parametrize(
    "code", ["%%chat --logprobs 2\nThe sky is", "%%chat --completion --echo --logprobs 2\nThe sky is"]
)
def test_the_footer_after_the_shading_is_only_the_footer(cell: Cell, code: str) -> None:
    run = cell(code)
    assert run.ok, run.error
    footer = run.outputs[-1]
    assert "completion tokens" in str(footer["text/plain"])
    assert str(footer["text/plain"]).startswith("— ")
    assert not any("Choice" in str(v) for o in run.outputs for v in o.values())
