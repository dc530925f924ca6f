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
# The host's pip installs into the venv when it can (pip >= 22.3 has --python): a venv
# without a pip of its own is made in a blink instead of seconds. Otherwise the venv's pip.
host_pip() {
  python3 -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (22, 3))' 2>/dev/null
}
if [ ! -x "$venv/bin/python" ]; then
  if host_pip; then
    python3 -m venv --without-pip "$venv"
  else
    python3 -m venv "$venv" || { echo "python3 -m venv failed: on Debian/Ubuntu, apt install python3-venv" >&2; exit 1; }
  fi
fi
if "$venv/bin/python" -c 'import pip' 2>/dev/null; then
  pip=("$venv/bin/python" -m pip)
else
  pip=(python3 -m pip --python "$venv/bin/python")
fi
stamp="$venv/.nbchat-installed-$extra"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # --no-compile: Python compiles what it imports on first use; compiling every installed
  # module up front was a third of a first run
  "${pip[@]}" install --quiet --disable-pip-version-check --no-compile -e ".[$extra]"
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
