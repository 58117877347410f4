#!/usr/bin/env bash
# Sets up a fresh Debian machine with Python 3.11: system packages, venv, dependencies.
# Idempotent; used by `make run`, `make test` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ "${GUANJIA_BROWSER_TESTS:-1}" = "1" ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || $PY -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat 2>&1 | grep -v -E '^(WARNING|  )' || true
.venv/bin/python -c "import bot, handlers, store, faq, scheduler" 
