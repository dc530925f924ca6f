"""``./run.sh quickstart`` as a person reads it on a terminal: footers as text (no HTML),
the settings as a short summary, no kernel warnings, and at the end how to open the
notebook in Jupyter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.kernel


def test_the_quick_start_prints_plain_text_a_short_settings_summary_and_how_to_open_it(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    result = subprocess.run(
        [
            sys.executable,
            "scripts/run_notebook.py",
            "notebooks/quickstart.ipynb",
            "--out",
            str(tmp_path / "q.ipynb"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "<sub" not in out and "<span" not in out and "&#" not in out
    assert "WARNING" not in out
    footers = [line for line in out.splitlines() if line.strip().startswith("— nbchat-stand-in · ")]
    assert len(footers) >= 5
    settings = out.split("In: %chatconfig\n", 1)[1].split("\nIn: ", 1)[0].splitlines()
    assert len(settings) <= 10
    assert settings[-1].strip().startswith("(and ") and "settings at their defaults" in settings[-1]
    assert any("model" in line and "nbchat-stand-in" in line for line in settings)
    last = out.strip().splitlines()[-1]
    assert last.startswith("Open it in Jupyter: pip install jupyterlab, then jupyter lab ")
    assert (tmp_path / "q.ipynb").exists()
