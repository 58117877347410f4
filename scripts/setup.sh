#!/usr/bin/env bash
# Sets up a fresh Debian machine with Python 3.11: system packages, venv, dependencies.
# Idempotent; used by scripts/run.sh, scripts/test.sh and .ci/run.
# GUANJIA_BROWSER_TESTS=0 skips Chromium (only the console's browser tests need it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

need_apt=()
command -v "$PY" >/dev/null 2>&1 || need_apt+=(python3)
# Debian splits venv/ensurepip out of python3.
{ command -v "$PY" >/dev/null 2>&1 && "$PY" -c "import ensurepip, venv" >/dev/null 2>&1; } || need_apt+=(python3-venv)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ "${GUANJIA_BROWSER_TESTS:-1}" = "1" ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
  # Without a CJK font the console's screenshots (docs/, failed browser tests) show empty boxes.
  [ -d /usr/share/fonts/opentype/noto ] && fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need_apt+=(fonts-noto-cjk)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
  echo "installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
mkdir -p var
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# A failed install must stop here with pip's own words, not later with an ImportError.
if ! .venv/bin/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat >var/pip.log 2>&1; then
  cat var/pip.log >&2
  echo "setup: pip install failed (log above, also in var/pip.log)" >&2
  exit 1
fi
.venv/bin/python -c "import ground, bot, handlers, store, faq, scheduler"
