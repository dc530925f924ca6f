"""Markdown that JupyterLab shows as written: dollar signs that are not math get escaped. No IPython.

JupyterLab and Notebook 7 typeset anything between two ``$`` as LaTeX, so "A costs $3 and
B costs $4" turns into italic math and a table of costs loses its rows. Math a model
writes on purpose (``$x^2$``, ``$$…$$``) must still render, so the rule is pandoc's:
``$…$`` is math when the opening ``$`` has a non-space after it, the closing one a
non-space before it and no digit after it, and no other ``$`` or blank line comes
between; ``$$…$$`` is display math.

Every other ``$`` becomes ``<span>\\$</span>``. A bare ``\\$`` is not enough: Markdown
turns it into ``$`` before MathJax reads the page, and MathJax then pairs it with the next
one in the same text. In an element of its own, a ``$`` has no partner (MathJax never
pairs delimiters across elements), and the backslash keeps JupyterLab's own math
pre-pass from taking it as a delimiter. Code (fenced blocks, inline spans) stays as
written: neither pass looks inside it.
"""

from __future__ import annotations

import re

# fenced code blocks (``` or ~~~, to the closing fence or the end) and inline code spans
_CODE = re.compile(
    r"^(?P<fence>[ \t]*(?:`{3,}|~{3,}))[^\n]*\n.*?(?:^(?P=fence)[ \t]*$|\Z)"
    r"|(?P<ticks>`+)(?!`).*?(?<!`)(?P=ticks)(?!`)",
    re.S | re.M,
)


def protect_dollars(text: str) -> str:
    """``text`` with each ``$`` that is not part of math escaped; code untouched."""
    if "$" not in text:
        return text
    out, pos = [], 0
    for code in _CODE.finditer(text):
        out.append(_prose(text[pos : code.start()]))
        out.append(code.group(0))
        pos = code.end()
    out.append(_prose(text[pos:]))
    return "".join(out)


DOLLAR = "<span>\\$</span>"  # a $ that Markdown, JupyterLab and MathJax all show as a $


def escape_dollars(text: str) -> str:
    """Every ``$`` shown as a dollar: for text that is never math (tables, footers)."""
    return re.sub(r"\\?\$", lambda _: DOLLAR, text)


_ALIGNED = re.compile(r"^\s{2,}\S|\S {2,}\S|\t")  # a column of a printed table, an indented line


def keep_lines(text: str) -> str:
    """Text written as plain text (a user's message, a tool's result) as Markdown that shows
    it line for line: a printed table (a DataFrame, ``describe()``) in a code block so its
    columns stay aligned, every other line ending in a hard break. Fenced code stays."""
    out: list[str] = []
    block: list[str] = []
    fence: str | None = None

    def flush() -> None:
        if block:
            out.append("```\n" + "\n".join(block) + "\n```")
            block.clear()

    for line in text.split("\n"):
        marker = re.match(r"[ \t]*(`{3,}|~{3,})", line)
        if fence is not None or marker:
            flush()
            out.append(line)
            if marker and fence is None:
                fence = marker.group(1)
            elif marker and fence is not None and marker.group(1).startswith(fence[0]):
                fence = None
        elif _ALIGNED.search(line) and not line.lstrip().startswith(("|", "-", "*", "+")):
            block.append(line.replace("```", "`\u200b``"))
        else:
            flush()
            out.append(line + "  " if line.strip() else line)
    flush()
    return "\n".join(out).rstrip()


def _prose(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("\\$", i):
            out.append(DOLLAR)  # written escaped: meant as a dollar
            i += 2
            continue
        if c == "\\" and i + 1 < n:
            out.append(text[i : i + 2])  # other escapes stay as written
            i += 2
            continue
        if c != "$":
            out.append(c)
            i += 1
            continue
        if text.startswith("$$", i):
            end = text.find("$$", i + 2)
            if end != -1 and text[i + 2 : end].strip():
                out.append(text[i : end + 2])  # display math
                i = end + 2
                continue
            out.append(DOLLAR * 2)
            i += 2
            continue
        close = _inline_end(text, i)
        if close is not None:
            out.append(text[i : close + 1])
            i = close + 1
        else:
            out.append(DOLLAR)
            i += 1
    return "".join(out)


def _inline_end(text: str, start: int) -> int | None:
    """The index of the ``$`` closing inline math opened at ``start``, if it is math."""
    if start + 1 >= len(text) or text[start + 1].isspace():
        return None
    end = start + 1
    while end < len(text):
        c = text[end]
        if c == "\\":
            end += 2
            continue
        if c == "$":
            break
        if c == "\n" and text[end + 1 : end + 2] == "\n":
            return None  # math does not cross a blank line
        end += 1
    else:
        return None
    if text[end - 1].isspace() or text[end + 1 : end + 2].isdigit():
        return None  # "$3 and $4": the second $ opens an amount, it does not close math
    return end


__all__ = ["DOLLAR", "escape_dollars", "keep_lines", "protect_dollars"]
