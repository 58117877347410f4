#!/usr/bin/env bash
# The whole test suite (a real redis-server is started by the tests themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
