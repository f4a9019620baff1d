#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, with lint and type checks first.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/system-deps.sh
bash scripts/setup.sh
. .venv/bin/activate
ruff check recommender tests benchmarks
mypy
python -m pytest "$@"
