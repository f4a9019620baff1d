#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with the CPU build of torch installed first
# (an unpinned torch pulls gigabytes of CUDA packages), then the project, its dev tools and the
# optional Ray extra (the suite tests the Ray Data build on a local instance).
set -euo pipefail
cd "$(dirname "$0")/.."
# --no-compile: Python compiles a module when it is first imported (a small share of torch's and
# transformers' files); compiling every file at install is half of pip's time for transformers
PIP=(python -m pip install --quiet --disable-pip-version-check --no-compile)
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
"${PIP[@]}" --upgrade pip
# TORCH_INDEX_URL: where the CPU build comes from on a machine whose pip would pull CUDA
"${PIP[@]}" torch==2.13.0 \
  ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
"${PIP[@]}" -e '.[dev,ray]'
