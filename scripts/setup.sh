#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with the CPU build of torch installed first
# (an unpinned torch pulls gigabytes of CUDA packages), then the project, its dev tools and the
# optional Ray extra (the suite tests the Ray Data build on a local instance).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check --upgrade pip
python -m pip install --quiet --disable-pip-version-check torch==2.13.0
python -m pip install --quiet --disable-pip-version-check -e '.[dev,ray]'
