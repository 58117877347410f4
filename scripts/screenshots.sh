#!/usr/bin/env bash
# The console screenshots in docs/ (shown in the README), taken by headless Chromium
# on the lived-in demo community of tests/console_world.py at desktop (1280 px) and
# phone (390 px) size. Needs chromium, chromium-driver and fonts-noto-cjk
# (`bash scripts/setup.sh` installs them). Usage: bash scripts/screenshots.sh [dir]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs}
mkdir -p "$out"
GUANJIA_SCREENSHOTS="$out" timeout 900 .venv/bin/python -m pytest -q -m browser tests/test_console_screens.py
ls -1 "$out"/console-*.png
