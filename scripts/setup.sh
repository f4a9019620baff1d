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
# TORCH_INDEX_URL: where the CPU build comes from on a machine whose pip would pull CUDA
python -m pip install --quiet --disable-pip-version-check torch==2.13.0 \
  ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
python -m pip install --quiet --disable-pip-version-check -e '.[dev,ray]'
