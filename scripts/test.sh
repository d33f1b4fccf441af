#!/usr/bin/env bash
# The project's checks, as CI runs them: lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m ruff check src tests benchmarks examples
$PY -m ruff format --check src tests benchmarks examples
$PY -m pyright src
# Two workers, one test file each at a time (a file's module fixtures, real trainings, are
# made once): on 2 cores the suite's JAX compilations and browsers overlap.
$PY -m pytest -q -n 2 --dist loadfile "$@"
