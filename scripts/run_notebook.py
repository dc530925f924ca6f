"""Execute a notebook in a real kernel and print what each cell showed.

Against OpenAI when OPENAI_API_KEY is set; otherwise against nbchat's offline stand-in
server (an echo, not a model), started here on 127.0.0.1.

    python scripts/run_notebook.py notebooks/quickstart.ipynb [--out build/quickstart.ipynb]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from nbchat.testing.server import STAND_IN, StandInServer


def execute(
    path: Path,
    env: dict[str, str] | None = None,
    extra_arguments: list[str] | None = None,
    timeout: int = 120,
) -> Any:
    """Run every cell of ``path`` in a fresh python3 kernel; return the executed notebook."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout,
        resources={"metadata": {"path": str(path.parent)}},
        extra_arguments=extra_arguments or [],
        record_timing=False,
        store_widget_state=True,
    ).execute(env={**os.environ, **(env or {})})  # the kernel's environment; ours is left alone
    return nb


def text_of(output: Any) -> str:
    """What an output says on a terminal: its plain text (a footer as text, not as the HTML
    that styles it in Jupyter), else its Markdown."""
    if output.output_type == "stream":
        return str(output.text)
    if output.output_type == "error":
        return f"{output.ename}: {output.evalue}"
    data = output.get("data", {})
    return str(data.get("text/plain") or data.get("text/markdown") or "")


def settings_summary(text: str) -> str:
    """``%chatconfig``'s table in a few lines: where requests go and the settings that are
    not at their defaults (the notebook keeps the whole table)."""
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith(("setting ", "---"))]
    changed = [line for line in lines if line.strip() and not line.rstrip().endswith("default")]
    kept = [line for line in changed if line not in rows or line.startswith("setting ")]
    hidden = len([line for line in lines if line.rstrip().endswith("  default")])
    return "\n".join([*kept, f"(and {hidden} settings at their defaults: %chatconfig lists them all)"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", type=Path, help="where to write the executed notebook")
    args = parser.parse_args()
    # the kernel's own warnings (a local kernel over TCP) are not the notebook's output
    server, env, extra = None, {}, ["--IPKernelApp.log_level=ERROR"]
    if not os.environ.get("OPENAI_API_KEY"):
        server = StandInServer().start()
        env = {"OPENAI_BASE_URL": server.url}
        extra.append(f"--ChatMagics.model={STAND_IN}")
        print(f"No OPENAI_API_KEY: using nbchat's offline stand-in server at {server.url}.")
        print("It echoes your messages back; it is a stand-in for demos and tests, not a model.\n")
    try:
        nb = execute(args.notebook, env, extra)
    finally:
        if server:
            server.stop()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        print("In: " + cell.source.replace("\n", "\n    "))
        for output in cell.outputs:
            text = text_of(output).strip()
            if cell.source.strip() == "%chatconfig" and text.startswith("setting "):
                text = settings_summary(text)
            print("  " + text.replace("\n", "\n  "))
        print()
    out = args.out or Path("build") / args.notebook.name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    print(f"Executed notebook written to {out}")
    print(
        f"Open it in Jupyter: pip install jupyterlab, then jupyter lab {out}"
        f" (or run {args.notebook} there yourself; without a key, start the stand-in with"
        " python -m nbchat.testing.server and set OPENAI_BASE_URL to the address it prints)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
