#!/usr/bin/env bash
# The whole test suite (a real redis-server is started by the tests themselves).
# Two test processes (pytest-xdist), one per core: each has its own redis-server, fake
# platform and temp dirs; the multi-process tests run one after another on one of them
# and a module sharing a module-scoped fixture stays on one (tests/conftest.py).
# GUANJIA_TEST_WORKERS=0 runs in this process only (e.g. with a debugger); arguments
# go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
workers=${GUANJIA_TEST_WORKERS:-2}
if [ "$workers" = "0" ]; then
  exec .venv/bin/python -m pytest "$@"
fi
exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup "$@"
