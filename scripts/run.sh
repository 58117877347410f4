#!/usr/bin/env bash
# Set up, start a local redis-server if none answers, load the demo community and run everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! redis-cli -u "${REDIS_URL:-redis://127.0.0.1:6379/0}" ping >/dev/null 2>&1; then
  mkdir -p var
  redis-server --port 6379 --bind 127.0.0.1 --dir "$PWD/var" --daemonize yes --logfile "$PWD/var/redis.log"
fi
.venv/bin/guanjia db upgrade
.venv/bin/guanjia demo-data
exec .venv/bin/guanjia run "$@"
