#!/usr/bin/env bash
# One command on a fresh Debian machine: set up, start a local redis-server if none answers,
# migrate, load the demo community and run web + worker + scheduler (`guanjia run`) on the
# embedded defaults (SQLite under ./var/, Redis on 127.0.0.1:6379). Extra arguments go to
# `guanjia run` (e.g. --port 8080). Ctrl-C stops everything but the redis-server it started.
set -euo pipefail
cd "$(dirname "$0")/.."
GUANJIA_BROWSER_TESTS=${GUANJIA_BROWSER_TESTS:-0} bash scripts/setup.sh
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
  mkdir -p var
  port=$(.venv/bin/python -c "from urllib.parse import urlparse; print(urlparse('$REDIS_URL').port or 6379)")
  redis-server --port "$port" --bind 127.0.0.1 --dir "$PWD/var" --daemonize yes \
    --pidfile "$PWD/var/redis.pid" --logfile "$PWD/var/redis.log"
  for _ in $(seq 50); do redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "started redis-server on port $port (pid $(cat var/redis.pid); stop: kill \$(cat var/redis.pid))"
fi
.venv/bin/guanjia db upgrade
.venv/bin/guanjia demo-data
exec .venv/bin/guanjia run "$@"
