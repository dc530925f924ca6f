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
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || { echo "python3 -m venv failed: on Debian/Ubuntu, apt install python3-venv" >&2; exit 1; }
fi
stamp="$venv/.nbchat-installed-$extra"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$extra]"
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
