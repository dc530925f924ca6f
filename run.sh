#!/usr/bin/env bash
# nbchat's two commands, each doing its own set-up in ./.venv:
#   ./run.sh quickstart   run notebooks/quickstart.ipynb (OpenAI if OPENAI_API_KEY is set,
#                         otherwise the offline stand-in server) and print what it showed
#   ./run.sh test         run the test suite
#   ./run.sh bench        run the benchmarks
#   ./run.sh docs         build the documentation site into docs/_build/html (warnings fail it)
set -euo pipefail
cd "$(dirname "$0")"

usage() { echo "usage: ./run.sh quickstart | test | bench | docs" >&2; exit 2; }
command=${1:-}
shift || true
# Each command installs only what it needs (the quick start needs no JupyterLab or browser
# driver), and an unknown command says so before anything is installed.
case "$command" in
  quickstart) extra=quickstart ;;
  test) extra=test ;;
  bench) extra=test,bench ;;
  docs) extra=docs ;;
  *) usage ;;
esac

venv=.venv
# uv installs a new venv's packages in parallel, in seconds; on a machine without it, it is
# fetched once into the venv (with the host's pip). pip is the fallback for everything.
host_pip() {  # the host's pip can install into another environment (--python: pip >= 22.3)
  python3 -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (22, 3))' 2>/dev/null
}
uv=$(command -v uv || true)
[ -z "$uv" ] && [ -x "$venv/.tools/bin/uv" ] && uv="$venv/.tools/bin/uv"
if [ ! -x "$venv/bin/python" ]; then
  if [ -z "$uv" ] && host_pip &&
    python3 -m pip install --quiet --disable-pip-version-check --no-compile --target "$venv/.tools" uv >/dev/null 2>&1; then
    uv="$venv/.tools/bin/uv"
  fi
  if [ -n "$uv" ] || host_pip; then
    python3 -m venv --without-pip "$venv"  # no pip of its own to set up: a blink, not seconds
  else
    python3 -m venv "$venv" || { echo "python3 -m venv failed: on Debian/Ubuntu, apt install python3-venv" >&2; exit 1; }
  fi
fi
pip_install() {
  # --no-compile: Python compiles what it imports on first use, not every installed module
  if "$venv/bin/python" -c 'import pip' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile "$@"
  else
    python3 -m pip --python "$venv/bin/python" install --quiet --disable-pip-version-check --no-compile "$@"
  fi
}
stamp="$venv/.nbchat-installed-$extra"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  if [ -z "$uv" ] || ! "$uv" pip install --quiet --python "$venv/bin/python" -e ".[$extra]"; then
    pip_install -e ".[$extra]"
  fi
  touch "$stamp"
fi
export PATH="$PWD/$venv/bin:$PATH"

case "$command" in
  quickstart) exec python scripts/run_notebook.py notebooks/quickstart.ipynb "$@" ;;
  test)
    ruff check nbchat tests scripts benchmarks docs
    ruff format --check --quiet nbchat tests scripts benchmarks docs/conf.py docs/_ext
    mypy --strict nbchat
    exec python -m pytest "$@" ;;
  docs)
    # offline: the notebooks run against the stand-in, and only internal links are checked
    exec python -m sphinx -W --keep-going -q -b html docs docs/_build/html "$@" ;;
  bench)
    python benchmarks/bench.py "$@"
    python benchmarks/long_sessions.py
    python benchmarks/replay.py
    python benchmarks/context.py
    python benchmarks/map.py
    exec python benchmarks/tokens.py ;;
esac
