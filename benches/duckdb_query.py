#!/usr/bin/env python3
"""DuckDB's side of the citizen-list benchmark: a query over the Parquet files listed in FILES
(a Delta table's active files, from benches/delta_files.py) as `person`. With RUNS > 0, prints
JSON with the first run (cold: connecting included) and the warm p50/p95 of RUNS more; with 0,
runs once (a whole process, timed from outside).

    benches/duckdb_query.py FILES SQL RUNS
"""
import json
import sys
import time


def main(files_path, sql, runs):
    started = time.perf_counter()
    import duckdb

    with open(files_path) as f:
        files = [line.strip() for line in f if line.strip()]
    con = duckdb.connect()
    listed = ", ".join("'" + p.replace("'", "''") + "'" for p in files)
    con.execute(f"CREATE VIEW person AS SELECT * FROM read_parquet([{listed}], hive_partitioning = false, union_by_name = true)")
    rows = len(con.execute(sql).fetchall())
    cold = time.perf_counter() - started
    if runs == 0:
        return
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        times.append(time.perf_counter() - t)
    times.sort()
    at = lambda q: times[round((len(times) - 1) * q)]
    print(json.dumps({"rows": rows, "cold_seconds": cold, "warm_p50_seconds": at(0.5),
                      "warm_p95_seconds": at(0.95), "runs": runs}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
