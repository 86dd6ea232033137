#!/usr/bin/env bash
# What table maintenance does to a lake after a long run of changes: seeds a lake of PERSONS
# synthetic persons from the simulator, follows at least EVENTS feed events with the worker's
# scheduled maintenance off, then measures files, size and citizen-list latency, runs
# `regsync maintain`, and measures again.
#
#   cargo build --release && benches/maintenance.sh [PERSONS] [EVENTS]   # default 1000000 500000
#
# REGSYNC_BIN picks the binary (default target/release/regsync, or $CARGO_TARGET_DIR's);
# WORK keeps the lake in a given directory (default: a temporary one, removed at the end).
set -euo pipefail

persons="${1:-1000000}"
events="${2:-500000}"
target="${CARGO_TARGET_DIR:-target}"
bin="${REGSYNC_BIN:-$target/release/regsync}"
[[ -x "$bin" ]] || { echo "no regsync binary at $bin: cargo build --release, or set REGSYNC_BIN" >&2; exit 2; }
work="${WORK:-$(mktemp -d)}"
mkdir -p "$work"
lake="$work/lake"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
api="$url/folkeregisteret/offentlig-med-hjemmel/api"

sim_pid=""
cleanup() {
  [[ -n "$sim_pid" ]] && kill "$sim_pid" 2>/dev/null || true
  [[ -z "${WORK:-}" ]] && rm -rf "$work"
}
trap cleanup EXIT

# Events arrive while the lake is seeded and afterwards: the worker seeds from the extract at the
# head it finds, then follows every later event. A few events are in the extract already.
rate=$(( events / 200 > 500 ? events / 200 : 500 ))
"$bin" simulate --listen "127.0.0.1:$port" --persons "$persons" --seed 8 \
  --events-per-sec "$rate" --max-events "$((events + events / 10))" > "$work/simulator.log" 2>&1 &
sim_pid=$!
until curl -sf "$api/v1/hendelser/siste/sekvensnummer" > /dev/null; do sleep 0.5; done

cat > "$work/pipeline.toml" <<EOF
name = "maintenance-bench"
[source]
register = "freg"
base_url = "$url"
rights_package_path = "/folkeregisteret/offentlig-med-hjemmel/api"
request_timeout = "120s"
max_tries = 12
[lake]
url = "$lake"
[worker]
batch_events = 10000
seed_batch_persons = 50000
fetch_concurrency = 4
poll_interval = "1s"
[maintenance]
every = "0s"
after_seed = false
EOF

head() { curl -sf "$api/v1/hendelser/siste/sekvensnummer"; }
position() {
  "$bin" sql --lake "$lake" --format csv \
    "SELECT coalesce(max(sequence), 0) AS p FROM person_event" | tail -1
}

if [[ -d "$lake/person/_delta_log" ]]; then
  echo "using the lake already built in $lake"
  kill "$sim_pid" 2>/dev/null || true
  sim_pid=""
else
start=$(date +%s)
echo "seeding $persons persons and following the feed (scheduled maintenance off)..."
/usr/bin/time -f "%e s, peak RSS %M KB" -o "$work/run.time" \
  "$bin" run "$work/pipeline.toml" --until-caught-up --log-format json > "$work/run.log" 2>&1
# Follow until the simulator has stopped and the lake holds its last event.
last=-1
while :; do
  h=$(head)
  if [[ "$h" == "$last" && "$(position)" -ge "$h" ]]; then break; fi
  last="$h"
  "$bin" run "$work/pipeline.toml" --until-caught-up --log-format json >> "$work/run.log" 2>&1
  sleep 2
done
elapsed=$(( $(date +%s) - start ))
applied=$("$bin" sql --lake "$lake" --format csv "SELECT count(*) AS n FROM person_event" | tail -1)
echo "lake built in ${elapsed} s (first run: $(cat "$work/run.time")); feed events applied: $applied"
kill "$sim_pid" 2>/dev/null || true
sim_pid=""
# BUILD_ONLY=1: stop here (measure later on a quiet machine: run again with the same WORK).
[[ -n "${BUILD_ONLY:-}" ]] && exit 0
fi
applied=$("$bin" sql --lake "$lake" --format csv "SELECT count(*) AS n FROM person_event" | tail -1)

cohort() {
  "$bin" cohort --lake "$lake" --municipality 5035 --born-from 2019-01-01 --born-to 2019-12-31 \
    --status bosatt --format csv --output "$work/list.csv" > "$work/cohort.log" 2>&1
}

measure() {
  local label="$1"
  echo "== $label"
  "$bin" status --lake "$lake" | sed 's/^/   /'
  echo "   on disk: $(du -sh "$lake" | cut -f1) ($(find "$lake" -name '*.parquet' | wc -l) parquet files)"
  cohort
  local times=()
  for _ in 1 2 3 4 5 6 7; do
    local t0 t1
    t0=$(date +%s%N)
    cohort
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000000 )))
  done
  local sorted
  sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
  echo "   regsync cohort 5035 born 2019 bosatt, whole process, 7 warm runs (ms): $sorted"
  echo "   median: $(printf '%s\n' "${times[@]}" | sort -n | sed -n 4p) ms, $(grep -o 'rows=[0-9]*' "$work/cohort.log")"
}

measure "after $applied feed events, no maintenance"
t0=$(date +%s)
/usr/bin/time -f "%e s, peak RSS %M KB" -o "$work/maintain.time" \
  "$bin" maintain --lake "$lake" --retention 0s > "$work/maintain.log" 2>&1
echo "== regsync maintain --retention 0s: $(cat "$work/maintain.time")"
measure "after regsync maintain"
