#!/usr/bin/env bash
# nbchat's two commands, each doing its own set-up in ./.venv:
#   ./run.sh quickstart   run notebooks/quickstart.ipynb (OpenAI if OPENAI_API_KEY is set,
#                         otherwise the offline stand-in server) and print what it showed
#   ./run.sh test         run the test suite
#   ./run.sh bench        run the benchmarks
set -euo pipefail
cd "$(dirname "$0")"

venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.nbchat-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]"
  touch "$stamp"
fi
export PATH="$PWD/$venv/bin:$PATH"

command=${1:-}
shift || true
case "$command" in
  quickstart) exec python scripts/run_notebook.py notebooks/quickstart.ipynb "$@" ;;
  test)
    ruff check nbchat tests scripts benchmarks
    ruff format --check --quiet nbchat tests scripts benchmarks
    mypy --strict nbchat
    exec python -m pytest "$@" ;;
  bench)
    python -m pip install --quiet --disable-pip-version-check -e ".[bench]"
    python benchmarks/bench.py "$@"
    python benchmarks/long_sessions.py
    python benchmarks/replay.py
    python benchmarks/context.py
    python benchmarks/map.py
    exec python benchmarks/tokens.py ;;
  *) echo "usage: ./run.sh quickstart | test | bench" >&2; exit 2 ;;
esac
