#!/usr/bin/env python3
"""The active Parquet files of a Delta table, from its log: the last checkpoint (read with
DuckDB) and the JSON commits after it, replayed. One absolute path per line.

    benches/delta_files.py LAKE/person
"""
import json
import os
import sys
import urllib.parse


def active_files(table):
    log = os.path.join(table, "_delta_log")
    files = set()
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
            for (p,) in con.execute(
                "SELECT \"add\".path FROM read_parquet(?) WHERE \"add\" IS NOT NULL", [path]
            ).fetchall():
                files.add(p)
        start = version
    commits = sorted(
        n for n in os.listdir(log) if n.endswith(".json") and int(n.split(".")[0]) > start
    )
    for name in commits:
        with open(os.path.join(log, name)) as f:
            for line in f:
                action = json.loads(line)
                if "add" in action:
                    files.add(action["add"]["path"])
                elif "remove" in action:
                    files.discard(action["remove"]["path"])
    return sorted(os.path.join(table, urllib.parse.unquote(p)) for p in files)


if __name__ == "__main__":
    for path in active_files(sys.argv[1]):
        print(path)
