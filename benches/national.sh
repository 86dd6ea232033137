#!/usr/bin/env bash
# National scale on one machine, measured side by side with DuckDB. Prints one table:
#   1. seeding PERSONS persons from the simulator into an empty lake (`regsync run
#      --until-caught-up`): persons/s end to end, wall time, peak memory of regsync and of the
#      simulator;
#   2. normalisation: the same person documents as JSON lines, regsync's document -> Parquet path
#      (`regsync bench normalise`) against DuckDB's read_ndjson_objects -> COPY ... (FORMAT
#      parquet) extracting the same fields;
#   3. catch-up: a backlog of BACKLOG feed events on that lake: events/s until caught up, peak
#      memory;
#   4. citizen lists: "resident in 5035 born 2019" and "everyone aged 6 on a date across the
#      country", cold (first) and warm p50/p95, in-process and as a whole process, against DuckDB
#      over the Delta log's active Parquet files;
#   5. Kafka produce: messages/s of the first slice after the seed to the broker at
#      REGSYNC_BENCH_KAFKA (host:port; absent: the row says so).
#
#   cargo build --release && benches/national.sh [PERSONS] [BACKLOG]   # default 5400000 1000000
#   benches/national.sh 20000 5000                                      # a quick run
#
# REGSYNC_BIN picks the binary (default $CARGO_TARGET_DIR/release/regsync, else target/...);
# WORK keeps the lake and files in a given directory (default: a temporary one, removed after);
# PHASES picks phases (default "1 2 3 4 5"; 2, 4 and 5 also run on a lake an earlier run left in
# WORK; 3 needs 1's simulator). Each row is also printed on standard error as it is measured.
# DuckDB is the Python package (`pip install duckdb`; installed if missing).
set -euo pipefail

persons="${1:-5400000}"
backlog="${2:-1000000}"
here="$(cd "$(dirname "$0")" && pwd)"
target="${CARGO_TARGET_DIR:-target}"
bin="${REGSYNC_BIN:-$target/release/regsync}"
[[ -x "$bin" ]] || { echo "no regsync binary at $bin: cargo build --release, or set REGSYNC_BIN" >&2; exit 2; }
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet duckdb >&2
duck_version=$(python3 -c 'import duckdb; print(duckdb.__version__)')
work="${WORK:-$(mktemp -d)}"
mkdir -p "$work"
lake="$work/lake"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
api="$url/folkeregisteret/offentlig-med-hjemmel/api"

sim_pid=""
cleanup() {
  if [[ -n "$sim_pid" ]]; then kill "$sim_pid" 2>/dev/null || true; fi
  if [[ -z "${WORK:-}" ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

phases="${PHASES:-1 2 3 4 5}"
want() { [[ " $phases " == *" $1 "* ]]; }
rows=()
row() {
  rows+=("$(printf '| %s | %s | %s |' "$1" "$2" "$3")")
  echo "${rows[-1]}" >&2
}
peak_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
ms() { python3 -c "import sys; print(f'{float(sys.argv[1])*1000:.1f}')" "$1"; }
stat_of() { # p50 and p95 of the numbers on standard input (ms)
  python3 -c '
import sys
v = sorted(float(x) for x in sys.stdin.read().split())
at = lambda q: v[round((len(v) - 1) * q)]
print(f"{at(0.5):.1f} / {at(0.95):.1f}")'
}

# 1. Seed.
if want 1; then
"$bin" simulate --listen "127.0.0.1:$port" --persons "$persons" --seed 5 --events-per-sec 0 \
  > "$work/simulator.log" 2>&1 &
sim_pid=$!
until curl -sf "$api/v1/hendelser/siste/sekvensnummer" > /dev/null; do sleep 0.5; done
cat > "$work/pipeline.toml" <<TOML
name = "national-bench"
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
after_seed = true
TOML
echo "1/5 seeding $persons persons..." >&2
t0=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/seed.rss" \
  "$bin" run "$work/pipeline.toml" --until-caught-up > "$work/seed.log" 2>&1
t1=$(date +%s.%N)
seed_s=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
# The compaction of what the seed wrote (maintenance.after_seed) is part of the run's time.
compact_ms=$(sed -n 's/.*lake maintained.*elapsed_ms=\([0-9]*\).*/\1/p' "$work/seed.log" | head -1)
compacted="not run"
if [[ -n "$compact_ms" ]]; then compacted="$(python3 -c "print(f'{$compact_ms / 1000:.1f} s')")"; fi
row "seed $persons persons (regsync run --until-caught-up)" \
  "$(python3 -c "print(f'{$persons / ($t1 - $t0):,.0f} persons/s')"), ${seed_s} s (of which compaction $compacted)" \
  "peak RSS regsync $(( $(cat "$work/seed.rss") / 1024 )) MB, simulator $(( $(peak_kb "$sim_pid") / 1024 )) MB"
fi

# 2. Normalisation against DuckDB, on the same documents.
if want 2; then
docs=$(( persons < 1000000 ? persons : 1000000 ))
echo "2/5 normalising $docs documents, regsync and DuckDB..." >&2
"$bin" bench documents --persons "$docs" --seed 5 --output "$work/docs.jsonl" > "$work/docs.json"
ours=$("$bin" bench normalise --input "$work/docs.jsonl" --output "$work/ours.parquet" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["per_second"])')
theirs=$(python3 "$here/duckdb_normalise.py" "$work/docs.jsonl" "$work/duck.parquet")
row "normalise $docs documents -> Parquet" \
  "regsync $(python3 -c "print(f'{$ours:,.0f}')")/s, DuckDB $duck_version $(python3 -c "print(f'{$theirs:,.0f}')")/s" \
  "ratio $(python3 -c "print(f'{$ours / $theirs:.2f}')")x"
fi

# 3. Catch-up of a backlog.
if want 3; then
echo "3/5 catching up $backlog feed events..." >&2
curl -sf -X POST "$url/simulator/v1/hendelser?antall=$backlog" > /dev/null
t0=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/catchup.rss" \
  "$bin" run "$work/pipeline.toml" --until-caught-up > "$work/catchup.log" 2>&1
t1=$(date +%s.%N)
# Once at the head the worker folds the deletion vectors of its catch-up commits: part of the
# run's time, and also shown apart.
fold_ms=$(sed -n '/folding the catch-up/,$ s/.*lake maintained.*elapsed_ms=\([0-9]*\).*/\1/p' "$work/catchup.log" | head -1)
folded="no fold"
if [[ -n "$fold_ms" ]]; then
  folded="of which folding the deletion vectors $(python3 -c "print(f'{$fold_ms / 1000:.1f} s; before it {$backlog / ($t1 - $t0 - $fold_ms / 1000):,.0f} events/s')")"
fi
row "catch up $backlog feed events" \
  "$(python3 -c "print(f'{$backlog / ($t1 - $t0):,.0f} events/s')"), $(python3 -c "print(f'{$t1 - $t0:.1f}')") s ($folded)" \
  "peak RSS $(( $(cat "$work/catchup.rss") / 1024 )) MB"
fi
# The simulator stops here unless phase 5 follows: its worker follows the feed while it
# publishes, and a register that stays down stops it (an idle simulator takes no CPU).
if ! want 5 && [[ -n "$sim_pid" ]]; then kill "$sim_pid" 2>/dev/null || true; sim_pid=""; fi

# 4. Citizen lists.
if want 4; then
echo "4/5 citizen lists..." >&2
cohort_2019() {
  "$bin" cohort --lake "$lake" --municipality 5035 --born-from 2019-01-01 --born-to 2019-12-31 \
    --status bosatt --format csv --output "$work/list.csv" > /dev/null 2>&1
}
# A catch-up leaves deletion vectors, which DuckDB over the bare files would not apply: the
# list is timed on the lake as the catch-up left it, then maintenance folds them and the rest is
# measured on the folded lake.
vectors=$(python3 "$here/delta_files.py" "$lake/person" --vectors)
if (( vectors > 0 )); then
  whole=()
  for _ in $(seq 11); do
    t0=$(date +%s%N); cohort_2019; t1=$(date +%s%N)
    whole+=($(( (t1 - t0) / 1000 )))
  done
  row "citizen list 5035, born 2019, whole process p50/p95 (ms), on the lake as the catch-up left it" \
    "regsync $(printf '%s\n' "${whole[@]}" | awk '{print $1/1000}' | stat_of)" \
    "$vectors of $(python3 "$here/delta_files.py" "$lake/person" | wc -l) files with a deletion vector; not compared (DuckDB would count deleted rows)"
  t0=$(date +%s.%N)
  "$bin" maintain --lake "$lake" > "$work/maintain.log" 2>&1
  t1=$(date +%s.%N)
  left=$(python3 "$here/delta_files.py" "$lake/person" --vectors)
  row "maintenance folding the deletion vectors (regsync maintain)" "$(python3 -c "print(f'{$t1 - $t0:.1f}')") s" "every table; files of person still with a vector: $left"
  if (( left > 0 )); then echo "person still has $left files with a deletion vector: DuckDB would count deleted rows" >&2; exit 1; fi
fi
python3 "$here/delta_files.py" "$lake/person" > "$work/person.files"
files=$(wc -l < "$work/person.files")
day=$(date +%Y-%m-%d)
six_from=$(python3 -c "import datetime as d; t=d.date.fromisoformat('$day'); print(t.replace(year=t.year-7) + d.timedelta(days=1))")
six_to=$(python3 -c "import datetime as d; t=d.date.fromisoformat('$day'); print(t.replace(year=t.year-6))")
kommune_sql="SELECT person_id, given_name, family_name, birth_date FROM person WHERE municipality_number = '5035' AND birth_date BETWEEN DATE '2019-01-01' AND DATE '2019-12-31' AND status = 'bosatt'"
national_sql="SELECT person_id, municipality_number, birth_date FROM person WHERE birth_date BETWEEN DATE '$six_from' AND DATE '$six_to' AND status = 'bosatt'"
for which in kommune national; do
  if [[ $which == kommune ]]; then sql="$kommune_sql"; label="5035, born 2019"; else sql="$national_sql"; label="aged 6 on $day, whole country"; fi
  inproc=$("$bin" bench query --lake "$lake" --sql "$sql" --runs 20)
  duck=$(python3 "$here/duckdb_query.py" "$work/person.files" "$sql" 20)
  whole=()
  duck_whole=()
  for _ in $(seq 11); do
    t0=$(date +%s%N)
    if [[ $which == kommune ]]; then
      cohort_2019
    else
      "$bin" sql --lake "$lake" --format csv "$sql" > "$work/list.csv" 2>/dev/null
    fi
    t1=$(date +%s%N)
    whole+=($(( (t1 - t0) / 1000 )))
    t0=$(date +%s%N)
    python3 "$here/duckdb_query.py" "$work/person.files" "$sql" 0 > /dev/null
    t1=$(date +%s%N)
    duck_whole+=($(( (t1 - t0) / 1000 )))
  done
  field() { python3 -c "import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(f'{v*1000:.1f}' if isinstance(v, float) else v)" "$1" "$2"; }
  row "citizen list $label, in-process: cold, warm p50/p95 (ms)" \
    "regsync $(field "$inproc" cold_seconds), $(field "$inproc" warm_p50_seconds)/$(field "$inproc" warm_p95_seconds) ($(field "$inproc" rows) rows)" \
    "DuckDB $(field "$duck" cold_seconds), $(field "$duck" warm_p50_seconds)/$(field "$duck" warm_p95_seconds) over $files files"
  row "citizen list $label, whole process p50/p95 (ms)" \
    "regsync $(printf '%s\n' "${whole[@]}" | awk '{print $1/1000}' | stat_of)" \
    "DuckDB (Python process) $(printf '%s\n' "${duck_whole[@]}" | awk '{print $1/1000}' | stat_of)"
done

fi

# 5. Kafka produce: the first slice after the seed (every person and every feed entry).
if ! want 5; then
  :
elif [[ -n "${REGSYNC_BENCH_KAFKA:-}" && -z "$sim_pid" ]]; then
  row "Kafka produce" "not measured" "needs phase 1 in the same run: the worker follows its simulator while it publishes"
elif [[ -n "${REGSYNC_BENCH_KAFKA:-}" ]]; then
  echo "5/5 publishing to Kafka at $REGSYNC_BENCH_KAFKA..." >&2
  lake_at=$("$bin" sql --lake "$lake" --format csv "SELECT coalesce(max(sequence), 0) AS p FROM person_event" | tail -1)
  published() {
    "$bin" sql --lake "$lake" --format csv \
      "SELECT coalesce(min(to_position), -1) AS p, coalesce(sum(messages), 0) AS m FROM (SELECT topic, max(to_position) AS to_position, sum(messages) AS messages FROM kafka_sink WHERE register = 'freg' GROUP BY topic)" | tail -1
  }
  t0=$(date +%s.%N)
  "$bin" run "$work/pipeline.toml" --kafka "$REGSYNC_BENCH_KAFKA" > "$work/kafka.log" 2>&1 &
  kafka_pid=$!
  while :; do
    IFS=, read -r at messages <<< "$(published)"
    [[ "$at" -ge "$lake_at" ]] && break
    kill -0 "$kafka_pid" 2>/dev/null || { echo "the worker stopped: $(tail -3 "$work/kafka.log")" >&2; exit 1; }
    sleep 0.5
  done
  t1=$(date +%s.%N)
  kill "$kafka_pid" 2>/dev/null || true
  wait "$kafka_pid" 2>/dev/null || true
  row "Kafka produce (freg.person.v1 and freg.event.v1 from the seeded lake)" \
    "$(python3 -c "print(f'{$messages / ($t1 - $t0):,.0f} messages/s')"), $messages messages in $(python3 -c "print(f'{$t1 - $t0:.1f}')") s" \
    "broker at $REGSYNC_BENCH_KAFKA"
else
  row "Kafka produce" "not measured" "set REGSYNC_BENCH_KAFKA=host:port"
fi

echo
echo "regsync national benchmark: $persons persons, backlog $backlog, $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB, $(date -u +%Y-%m-%d)"
echo
echo "| measure | result | beside |"
echo "| --- | --- | --- |"
printf '%s\n' "${rows[@]}"
