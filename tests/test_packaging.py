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


def test_the_classifiers_name_ipython_and_jupyter_and_no_license_classifier_competes() -> None:
    classifiers = re.findall(r"\"([^\"]+)\"", declared("classifiers").split("]")[0])
    assert "Framework :: IPython" in classifiers and "Framework :: Jupyter" in classifiers
    assert all(" :: " in c for c in classifiers)
    # the license is the SPDX expression; a License :: classifier beside it is refused by PyPI
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert (
        declared("requires-python").startswith('">=3.10"')
        and "Programming Language :: Python :: 3" in classifiers
    )


def test_every_declared_url_is_one_the_readme_gives_too() -> None:
    """Project URLs are facts users follow from PyPI: each must be an address the README
    itself names (none is invented), and the README is the long description."""
    assert declared("readme").startswith('"README.md"')
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = PYPROJECT.split("[project.urls]")[1].split("\n[")[0] if "[project.urls]" in PYPROJECT else ""
    urls = re.findall(r'^\w[\w ]* = "([^"]+)"', table, re.M)
    assert all(url.startswith("https://") and url.split("#")[0] in readme for url in urls), urls
    assert "nbchat-maintainers" not in PYPROJECT


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
