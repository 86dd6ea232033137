#!/usr/bin/env python3
"""The active Parquet files of a Delta table, from its log: the last checkpoint (read with
DuckDB) and the JSON commits after it, replayed. One absolute path per line; with --vectors,
only how many of them have a deletion vector (rows a reader of the bare files would wrongly
count).

    benches/delta_files.py LAKE/person
    benches/delta_files.py LAKE/person --vectors
"""
import json
import os
import sys
import urllib.parse


def active_files(table):
    log = os.path.join(table, "_delta_log")
    files = {}
    start = -1
    last = os.path.join(log, "_last_checkpoint")
    if os.path.exists(last):
        import duckdb

        with open(last) as f:
            version = json.load(f)["version"]
        parts = sorted(
            os.path.join(log, n)
            for n in os.listdir(log)
            if n.startswith(f"{version:020d}.checkpoint") and n.endswith(".parquet")
        )
        con = duckdb.connect()
        for path in parts:
            try:
                found = con.execute(
                    "SELECT \"add\".path, \"add\".deletionVector IS NOT NULL FROM read_parquet(?) "
                    "WHERE \"add\" IS NOT NULL",
                    [path],
                ).fetchall()
            except duckdb.Error:
                found = [
                    (p, False)
                    for (p,) in con.execute(
                        "SELECT \"add\".path FROM read_parquet(?) WHERE \"add\" IS NOT NULL", [path]
                    ).fetchall()
                ]
            for p, vector in found:
                files[p] = bool(vector)
        start = version
    commits = sorted(
        n for n in os.listdir(log) if n.endswith(".json") and int(n.split(".")[0]) > start
    )
    for name in commits:
        with open(os.path.join(log, name)) as f:
            for line in f:
                action = json.loads(line)
                if "add" in action:
                    files[action["add"]["path"]] = bool(action["add"].get("deletionVector"))
                elif "remove" in action:
                    files.pop(action["remove"]["path"], None)
    return {os.path.join(table, urllib.parse.unquote(p)): v for p, v in files.items()}


if __name__ == "__main__":
    active = active_files(sys.argv[1])
    if "--vectors" in sys.argv[2:]:
        print(sum(active.values()))
    else:
        for path in sorted(active):
            print(path)
