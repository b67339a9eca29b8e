#!/usr/bin/env bash
# `make bench`: install the bench extras (requirements-bench.txt, pinned), then run every benchmark case
# and regenerate benchmarks/REPORT.md, benchmarks/charts/*.png and benchmarks/out/results.json.
#   scripts/bench.sh             quick profile (about 15 min on 2 cores)
#   scripts/bench.sh --full      longer runs, more repetitions, a year of market data
#   scripts/bench.sh --only pool indexes
# PostgreSQL: BENCH_DATABASE_URL when set; else the server on 127.0.0.1:5432; else a throwaway cluster
# (scripts/pg_throwaway.sh, port 55432) stopped afterwards. Each case creates and drops its own bench_* database.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .venv/.installed ] || scripts/bootstrap.sh
if [ ! -f .venv/.bench-installed ] || [ requirements-bench.txt -nt .venv/.bench-installed ]; then
  .venv/bin/pip install -q -r requirements-bench.txt
  touch .venv/.bench-installed
fi

cleanup() { :; }
if [ -z "${BENCH_DATABASE_URL:-}" ]; then
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    export BENCH_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  else
    scripts/pg_throwaway.sh start
    cleanup() { scripts/pg_throwaway.sh stop; }
    export BENCH_DATABASE_URL="postgres://postgres@127.0.0.1:55432/postgres"
  fi
fi
drop_leftovers() {
  # Cases drop their own databases; this catches a run that was killed half-way.
  # bench_cadence: cadence_check.py leaves its database behind.
  for db in bench_pool bench_stats bench_idx bench_idx_noindex bench_cadence; do
    .venv/bin/python - "$db" <<'PY' || true
import sys
from benchmarks import common
common.drop_database(sys.argv[1])
PY
  done
  cleanup
}
trap drop_leftovers EXIT
echo "benchmarks use PostgreSQL at ${BENCH_DATABASE_URL%%\?*}" | sed -E 's#//[^@/]*@#//***@#'
export SECRET_KEY=${SECRET_KEY:-benchmark-only-secret-key}
.venv/bin/python -m benchmarks.run_all "$@"
