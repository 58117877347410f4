#!/usr/bin/env bash
# The whole test suite (a real redis-server is started by the tests themselves).
# Two steps:
# 1. everything but the multi-process tests in two test processes (pytest-xdist), one
#    per core: each has its own redis-server, fake platform and temp dirs; a module
#    sharing a module-scoped fixture stays on one (tests/conftest.py);
# 2. the multi-process tests (`-m slow`) after them, one test file per test process
#    (`--dist loadfile`, two processes; a file's tests stay together). Each file's processes time what they do
#    and much of it is waiting (leases, a 35 s lock), so two files side by side keep
#    their margins; the fast tests are not running beside them. (One process took
#    3 min 25 s, two take 2 min 28 s.)
# GUANJIA_TEST_WORKERS=0 runs everything in this process, in one step (e.g. with a
# debugger). Arguments go to pytest (both steps).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
workers=${GUANJIA_TEST_WORKERS:-2}
if [ "$workers" = "0" ]; then
  exec .venv/bin/python -m pytest "$@"
fi
rc=0
.venv/bin/python -m pytest -n "$workers" --dist loadgroup -m "not slow" "$@" || rc=$?
slow=0
.venv/bin/python -m pytest -n "$workers" --dist loadfile -m slow "$@" || slow=$?
[ "$rc" = 5 ] && rc=0  # 5: no test selected (arguments naming only slow, or only fast, tests)
[ "$slow" = 5 ] && slow=0
[ "$rc" != 0 ] && exit "$rc"
exit "$slow"
