"""./run.sh: an unknown command prints its usage before anything is installed."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_an_unknown_command_prints_usage_before_installing_anything(tmp_path: Path) -> None:
    shutil.copy(ROOT / "run.sh", tmp_path / "run.sh")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    result = subprocess.run(["bash", str(tmp_path / "run.sh"), "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage: ./run.sh quickstart | test | bench | docs" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_the_quick_start_installs_no_jupyterlab_or_browser_driver() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    quickstart = text.split("quickstart = [", 1)[1].split("]", 1)[0]
    assert "nbclient" in quickstart
    assert "jupyterlab" not in quickstart and "playwright" not in quickstart
