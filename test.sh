#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, with lint and type checks first; pytest
# arguments are passed on (`./test.sh -n 0` runs it in one process).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/system-deps.sh
bash scripts/setup.sh
. .venv/bin/activate
ruff check recommender tests benchmarks
mypy
# two workers (one per core), each test file kept on one worker (its module fixtures, servers and
# the benchmarks' run, are made once), files in the conftest's order (the long ones first); the
# conftest makes the model and the sample index once for both
python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=25 "$@"
