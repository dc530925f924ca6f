"""The documentation: its references are generated from the declarations nbchat reads, so a
setting, option or verb without its entry (or an entry without its setting) fails here; and
the site builds offline with warnings as errors, the shipped notebooks executed in it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nbchat.magics import ChatMagics, parser_of

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import reference  # noqa: E402  (docs/_ext, put on the path just above)


def _first_column(page: str, heading: str | None = None) -> list[str]:
    """The names in the first column of the table under ``heading`` (or the only table)."""
    if heading is not None:
        page = page.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    return [re.findall(r"`([^`]+)`", row.split(" | ", 1)[0]) for row in rows]


def test_the_settings_reference_has_every_setting_and_no_other() -> None:
    listed = [names[0] for names in _first_column(reference.settings_page())]
    assert sorted(listed) == sorted(ChatMagics.class_traits(config=True))
    assert len(listed) == len(set(listed))


def test_the_settings_reference_takes_each_help_and_default_from_its_trait() -> None:
    page = reference.settings_page()
    temperature = ChatMagics.class_traits()["temperature"]
    row = next(line for line in page.splitlines() if line.startswith("| `temperature` |"))
    assert temperature.help in row and "(0–2)" in row  # the bounds come from the trait
    assert "| unset |" in row  # a request parameter unset by default is not sent
    row = next(line for line in page.splitlines() if line.startswith("| `cache_path` |"))
    assert "$NBCHAT_CACHE_PATH" in row  # the environment variable a setting reads is named


@pytest.mark.parametrize(("magic", "heading"), [(k, v[0]) for k, v in reference.MAGICS.items()])
def test_the_magics_reference_has_every_option_of_each_magic_and_no_other(magic: str, heading: str) -> None:
    parser = parser_of(getattr(ChatMagics, reference.MAGICS[magic][1]))
    declared = {
        tuple(action.option_strings or [action.dest]) for action in parser._actions if action.dest != "help"
    }
    listed = {tuple(names) for names in _first_column(reference.magics_page(), f"`{heading}`")}
    assert listed == declared


def test_the_magics_reference_has_every_verb_with_its_help_and_no_other() -> None:
    listed = [names[0] for names in _first_column(reference.magics_page(), "`%chat` verbs")]
    assert listed == list(ChatMagics.verbs)
    assert all(reference.verbs().values()), "a verb's handler has no docstring: the reference has no help"


def test_every_setting_a_page_sets_exists() -> None:
    """The reverse: a page showing ``%chatconfig NAME=…`` for a setting that no longer exists fails."""
    settings = set(ChatMagics.class_traits(config=True))
    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    named = {
        (page.name, name)
        for page in pages
        for line in page.read_text(encoding="utf-8").splitlines()
        if "%chatconfig" in line
        for name in re.findall(r"(?:^|\s)([a-z_]+)=", line.split("%chatconfig", 1)[1])
    }
    assert named, "no page sets a setting: the check found nothing to check"
    assert {(page, name) for page, name in named if name not in settings} == set()


@pytest.mark.kernel
def test_the_site_builds_offline_with_warnings_as_errors(tmp_path: Path) -> None:
    out = tmp_path / "html"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NBCHAT_"))}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    settings = (out / "reference" / "settings.html").read_text(encoding="utf-8")
    assert "temperature" in settings and "cache_path" in settings
    quickstart = (out / "notebooks" / "quickstart.html").read_text(encoding="utf-8")
    assert "Echo:" in quickstart  # executed for real, against the stand-in
    assert "Traceback" not in quickstart


def test_a_page_naming_a_setting_that_does_not_exist_fails_the_build(tmp_path: Path) -> None:
    (tmp_path / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'docs' / '_ext')!r})\n"
        'extensions = ["myst_parser", "reference"]\n'
    )
    (tmp_path / "index.md").write_text(
        "# Page\n\nAt most {setting}`max_tool_steps` rounds (default {default}`max_tool_steps`).\n"
        "And {setting}`max_tool_stepz`.\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(tmp_path), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "no setting named 'max_tool_stepz'" in result.stderr
    assert "max_tool_steps'" not in result.stderr.replace("max_tool_stepz'", "")
