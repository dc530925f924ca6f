"""What the package declares matches what it ships: license, classifiers, typed docstrings."""

from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # tomllib is 3.11+, nbchat runs on 3.10


def declared(key: str) -> str:
    """The text after ``key =`` in pyproject.toml, up to the next blank line."""
    match = re.search(rf"^{re.escape(key)} = (.*?)(?:\n\n|\n\[)", PYPROJECT, re.M | re.S)
    assert match, key
    return match.group(1)


def test_the_license_file_is_the_declared_license() -> None:
    assert declared("license").startswith('"BSD-3-Clause"')
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License")
    assert "Neither the name of the copyright holder" in text  # the third clause
    assert '"LICENSE"' in declared("license-files")


def test_the_classifiers_name_ipython_and_jupyter_and_the_urls_are_set() -> None:
    classifiers = declared("classifiers")
    assert '"Framework :: IPython"' in classifiers and '"Framework :: Jupyter"' in classifiers
    urls = PYPROJECT.split("[project.urls]")[1].split("\n[")[0]
    assert all(f"\n{name} = " in urls for name in ("Homepage", "Source", "Issues"))


def test_the_type_checker_is_part_of_the_test_command_and_extra() -> None:
    assert "mypy --strict nbchat" in (ROOT / "run.sh").read_text(encoding="utf-8")
    assert re.search(r'^    "mypy[>=<]', declared("test"), re.M)


def test_no_docstring_cites_a_section_of_a_document_that_does_not_ship() -> None:
    citing = []
    for path in sorted((ROOT / "nbchat").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node) or ""
                if "§" in doc:
                    citing.append(f"{path.name}:{getattr(node, 'name', '<module>')}")
    assert citing == []
