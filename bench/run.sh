#!/usr/bin/env bash
# One command: runs the same workloads on our crates and on the independent peers,
# pinned to one core, several repetitions, and writes docs/performance.md and
# docs/performance.svg.
#
#   bench/run.sh                 # full run (~16 minutes)
#   BENCH_REPS=3 BENCH_MS=500 BENCH_CYCLES=2000 bench/run.sh   # quick run
#   BENCH_E2E_ONLY=1 bench/run.sh   # only the end-to-end run per store; prints its
#                                   # table, leaves docs/ alone (~4 minutes)
#
# The end-to-end workload runs once per store (BENCH_STORES, default
# "memory sqlite postgres postgres+redis"); the server-backed ones use
# BENCH_POSTGRES_URL (default postgres://root@127.0.0.1:5432/test; the schema
# lti_bench is dropped and created for each run, so the database must be one
# you may write to) and BENCH_REDIS_URL (default redis://127.0.0.1:6379).
#
# The load-balanced workload (issue 25): BENCH_LB_INSTANCES (default 2) `lti
# serve` processes behind HAProxy (deploy/haproxy.cfg, as docs/deployment.md
# shows), sharing PostgreSQL + Redis (the same URLs, schema lti_bench_lb), all
# of them on the server's core, the load generator on the other. It runs after
# the per-store runs; BENCH_LB=0 leaves it out, BENCH_LB_ONLY=1 runs only it
# and prints the per-store table (~2 minutes; leaves docs/ alone). Needs
# haproxy (apt-get install haproxy).
#
# Needs: taskset, python3, node, the peers (tests/interop/setup.sh installs them),
# psql for the PostgreSQL stores.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
reps="${BENCH_REPS:-5}"
ms="${BENCH_MS:-2000}"
cycles="${BENCH_CYCLES:-5000}"
cpu="${BENCH_CPU:-1}"
e2e_only="${BENCH_E2E_ONLY:-0}"
stores="${BENCH_STORES:-memory sqlite postgres postgres+redis}"
pg_url="${BENCH_POSTGRES_URL:-postgres://root@127.0.0.1:5432/test}"
redis_url="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
pin=(taskset -c "$cpu")
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

[[ $e2e_only == 1 || ${BENCH_LB_ONLY:-0} == 1 ]] || "$root/tests/interop/setup.sh"
py="$CARGO_TARGET_DIR/interop/venv/bin/python"
export NODE_PATH="$CARGO_TARGET_DIR/interop/node_modules"

echo "building lti-loadgen and lti (release)"
(cd "$root" && cargo build --release --quiet -p lti-loadgen -p lti-app)
loadgen="$CARGO_TARGET_DIR/release/lti-loadgen"
lti="$CARGO_TARGET_DIR/release/lti"

work="$CARGO_TARGET_DIR/bench-run"
rm -rf "$work"
mkdir -p "$work"
results="$work/results.jsonl"
: >"$results"
run() { # label, command...
  echo "== $1" >&2
  shift
  "$@" | tee -a "$results"
}

"$loadgen" fixture "$work"

# The load-balanced workload (see the header).
run_lb() {
  command -v haproxy >/dev/null 2>&1 || { echo "haproxy is missing (apt-get install haproxy)" >&2; exit 1; }
  local n="${BENCH_LB_INSTANCES:-2}" lb_other=0 lb_sep='?'
  [[ $cpu == 0 ]] && lb_other=1
  [[ $pg_url == *\?* ]] && lb_sep='&'
  PGOPTIONS='--client-min-messages=warning' psql "$pg_url" -qc "DROP SCHEMA IF EXISTS lti_bench_lb CASCADE" \
    -c "CREATE SCHEMA lti_bench_lb" >/dev/null
  run "ours: e2e (postgres+redis, $n instances + haproxy)" env E2E_STORE=postgres+redis E2E_INSTANCES="$n" \
    E2E_DB_PROCS=postgres,redis-server E2E_POSTGRES_URL="$pg_url${lb_sep}options[search_path]=lti_bench_lb" \
    E2E_REDIS_URL="$redis_url" E2E_SERVER_CPU="$cpu" taskset -c "$lb_other" "$loadgen" e2e "$lti" "$work" "$reps" "$cycles"
  PGOPTIONS='--client-min-messages=warning' psql "$pg_url" -qc "DROP SCHEMA IF EXISTS lti_bench_lb CASCADE" >/dev/null
}
if [[ ${BENCH_LB_ONLY:-0} == 1 ]]; then
  run_lb
  python3 "$here/report.py" --stores "$results"
  exit 0
fi

if [[ $e2e_only != 1 ]]; then
run "ours: launch13 + mint13" env LOADGEN_ONLY=launch13,mint13 "${pin[@]}" "$loadgen" inproc "$work" "$reps" "$ms"
run "pylti1p3: launch13" "${pin[@]}" "$py" "$here/peers/pylti1p3_launch.py" "$work" "$reps" "$ms"
run "ltijs: launch13" "${pin[@]}" node "$here/peers/ltijs_launch.js" "$work" "$reps" "$ms"
run "lti1p3platform: mint13" "${pin[@]}" "$py" "$here/peers/lti1p3platform_mint.py" "$work" "$reps" "$ms"

# LTI 1.1: a fresh fixture before each implementation (the timestamps must be recent;
# every implementation has its own nonce store).
for live in 0 1000000; do
  w=lti11_verify
  [[ $live -gt 0 ]] && w=lti11_verify_1M
  "$loadgen" fixture "$work"
  run "ours: $w" env LOADGEN_ONLY=$w "${pin[@]}" "$loadgen" inproc "$work" "$reps" "$ms"
  "$loadgen" fixture "$work"
  run "lti/oauthlib: $w" "${pin[@]}" "$py" "$here/peers/lti_verify.py" "$work" "$reps" "$ms" "$live"
  "$loadgen" fixture "$work"
  run "ims-lti: $w" "${pin[@]}" node "$here/peers/ims_lti_verify.js" "$work" "$reps" "$ms" "$live"
done

fi

# End to end: the server on CPU $cpu, the load generator on the other core, once
# per store. For the server-backed stores the database servers' CPU time (every
# process named postgres / redis-server, from /proc) is metered too; they are not
# pinned and share the machine with both.
other=0
[[ $cpu == 0 ]] && other=1
sep='?'
[[ $pg_url == *\?* ]] && sep='&'
for store in $stores; do
  db_procs=""
  case $store in
    postgres) db_procs=postgres ;;
    postgres+redis) db_procs=postgres,redis-server ;;
  esac
  if [[ $store == postgres* ]]; then
    PGOPTIONS='--client-min-messages=warning' psql "$pg_url" -qc "DROP SCHEMA IF EXISTS lti_bench CASCADE" \
      -c "CREATE SCHEMA lti_bench" >/dev/null
  fi
  run "ours: e2e ($store)" env E2E_STORE="$store" E2E_DB_PROCS="$db_procs" \
    E2E_POSTGRES_URL="$pg_url${sep}options[search_path]=lti_bench" E2E_REDIS_URL="$redis_url" \
    E2E_SERVER_CPU="$cpu" taskset -c "$other" "$loadgen" e2e "$lti" "$work" "$reps" "$cycles"
done
if [[ " $stores " == *" postgres"* ]]; then
  PGOPTIONS='--client-min-messages=warning' psql "$pg_url" -qc "DROP SCHEMA IF EXISTS lti_bench CASCADE" >/dev/null
fi
if [[ ${BENCH_LB:-1} == 1 ]]; then run_lb; fi
if [[ $e2e_only == 1 ]]; then
  python3 "$here/report.py" --stores "$results"
  exit 0
fi
# The same cycles against ltijs: the interop suite's ltijs tool server (sequelize, in-memory sqlite).
run "ltijs: e2e" env E2E_SERVER_CPU="$cpu" taskset -c "$other" "$loadgen" e2e-ltijs \
  "$root/tests/interop/peers/ltijs_tool_peer.js" "$work" "$reps" "$cycles"

"$py" - "$work/machine.json" "$reps" "$ms" "$cpu" "$load_before" <<'PY'
import json, os, platform, subprocess, sys, datetime
out, reps, ms, cpu, before = sys.argv[1:6]
def sh(*c):
    try:
        return subprocess.run(c, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"
cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
json.dump({
    "cpu": cpu_model, "cores": os.cpu_count(), "memory": f"{int(mem.split()[0]) // 1024 // 1024} GiB RAM",
    "kernel": platform.release(), "rustc": sh("rustc", "--version"), "python": "Python " + platform.python_version(),
    "node": sh("node", "--version"), "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "reps": int(reps), "millis": int(ms), "cpu_pin": cpu, "load_before": before,
    "load_after": " ".join(open("/proc/loadavg").read().split()[:3]),
}, open(out, "w"))
PY
python3 "$here/report.py" "$results" "$work/machine.json" "$root/docs/performance.md" \
  "$root/docs/performance.svg" "$root/docs/performance"
echo "wrote docs/performance.md and docs/performance.svg"
