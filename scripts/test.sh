#!/usr/bin/env bash
# The project's checks, as CI runs them: lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m ruff check src tests benchmarks examples
$PY -m ruff format --check src tests benchmarks examples
$PY -m pyright src
# Two workers, a group of files each (tests/conftest.py says which), each pinned to its own cores.
$PY -m pytest -q --durations=10 -n 2 --dist loadgroup "$@"
