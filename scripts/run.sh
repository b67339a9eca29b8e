#!/usr/bin/env bash
# Run the whole system in the foreground: web server + django-q2 cluster.
# Embedded default: SQLite under var/, paper exchange, rule-based signals.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .venv/.installed ] || scripts/bootstrap.sh
PY=.venv/bin/python
export DEBUG=${DEBUG:-1}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
mkdir -p var
# Web and cluster share one prometheus multiprocess directory, so /metrics also
# shows the cluster's job metrics. Stale samples from a previous run are removed.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$PWD/var/prometheus}
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

$PY manage.py migrate --no-input -v0
$PY manage.py createcachetable
$PY manage.py ensure_default_config >/dev/null
# History for the first signal (candle closes where nothing is stored yet); a failure only delays signals.
$PY manage.py backfill_market_data || echo "  (backfill failed; signals wait until enough market data is collected)"
if $PY manage.py help ensure_schedules >/dev/null 2>&1; then
  $PY manage.py ensure_schedules --signal-now
fi

# A local operator account on first run; the password is printed once and kept in var/.
if [ ! -f var/admin-password.txt ]; then
  password=$($PY -c 'import secrets; print(secrets.token_urlsafe(12))')
  if DJANGO_SUPERUSER_PASSWORD=$password $PY manage.py createsuperuser --no-input --username admin --email admin@localhost >/dev/null 2>&1; then
    umask 077; echo "$password" > var/admin-password.txt
  fi
fi

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # django-q2 waits for running tasks, and a cadence driver runs for about a minute.
  # After a 10 s grace period the rest is killed, as `docker compose stop` would:
  # leases expire on their own and orders are reconciled by identifier on the next start.
  for _ in $(seq 1 20); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# Own process groups: Ctrl-C reaches only this script, which stops each child with one SIGTERM
# (django-q2 hangs if its worker processes also receive the terminal's SIGINT).
setsid $PY manage.py runserver "$HOST:$PORT" --noreload &
pids+=($!)
setsid $PY manage.py qcluster &
pids+=($!)

echo
echo "  Admin:  http://$HOST:$PORT/admin/   (user: admin, password in var/admin-password.txt)"
echo "  API:    http://$HOST:$PORT/api/docs/"
echo "  Health: http://$HOST:$PORT/health/detail"
echo "  Ctrl-C stops the web server and the cluster."
echo
wait -n "${pids[@]}"
