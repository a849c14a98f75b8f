#!/usr/bin/env python3
"""Seed a Countersign SQLite store for the replay benchmark.

  seed.py send --gate URL --key KEY --policies DIR --runs N
      sends N intercepts to a running gate, cycling through the requests of
      the policy tests (*_test.yaml) under DIR: real runs, decided and
      recorded by the gate.
  seed.py replicate --db PATH --total M
      with the gate stopped, copies the workspace's events and runs until it
      holds M runs: each copy gets its own run ids and log positions, rows of
      exactly the shape and size the gate wrote. (The copies' MACs and hashes
      are the originals', so `audit verify` would reject them; replay does not
      verify, it reads.)
"""
import argparse
import datetime
import json
import pathlib
import sqlite3
import sys
import time
import urllib.error
import urllib.request

from ruamel.yaml import YAML  # installed with check-jsonschema


def requests_from_tests(policies):
    yaml = YAML(typ="safe")
    out = []
    for path in sorted(pathlib.Path(policies).rglob("*_test.yaml")):
        doc = yaml.load(path.read_text()) or {}
        for t in doc.get("tests") or []:
            if "payload_json" in t:
                payload = json.loads(t["payload_json"])
            else:
                payload = t.get("payload") or {}
            body = {"action": t["action"], "payload": payload}
            if t.get("actor") is not None:
                body["actor"] = t["actor"]
            if t.get("source") is not None:
                body["source"] = t["source"]
            out.append(body)
    if not out:
        sys.exit(f"no test requests found under {policies}")
    return out


def default(o):
    if isinstance(o, (datetime.date, datetime.datetime)):
        return o.isoformat()
    raise TypeError(type(o))


def send(args):
    bodies = requests_from_tests(args.policies)
    sent = refused = 0
    start = time.monotonic()
    for i in range(args.runs):
        body = json.dumps(bodies[i % len(bodies)], default=default).encode()
        req = urllib.request.Request(
            args.gate.rstrip("/") + "/v1/intercept",
            data=body,
            headers={"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                resp.read()
                sent += 1
        except urllib.error.HTTPError as e:
            if e.code in (403, 422):
                refused += 1  # a test request the API refuses (an actor bound elsewhere)
            else:
                raise
    print(f"sent {sent} runs ({refused} refused) in {time.monotonic() - start:.1f}s", file=sys.stderr)


def replicate(args):
    db = sqlite3.connect(args.db)
    ws = args.workspace
    (events,) = db.execute("SELECT max(seq) FROM events WHERE workspace = ?", (ws,)).fetchone()
    (runs,) = db.execute("SELECT count(*) FROM runs WHERE workspace = ?", (ws,)).fetchone()
    if not runs:
        sys.exit("no runs to copy")
    copies = (args.total + runs - 1) // runs - 1
    run_cols = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
    ev_cols = [r[1] for r in db.execute("PRAGMA table_info(events)")]
    db.execute("CREATE TEMP TABLE original_runs AS SELECT * FROM runs WHERE workspace = ?", (ws,))
    start = time.monotonic()
    for k in range(1, copies + 1):
        ev_sel = ", ".join(
            f"seq + {k * events}" if c == "seq"
            else f"CASE WHEN run_id IS NULL THEN NULL ELSE run_id || '-c{k}' END" if c == "run_id"
            else c
            for c in ev_cols
        )
        run_sel = ", ".join(
            f"run_id || '-c{k}'" if c == "run_id"
            else "NULL" if c == "idempotency_key"
            else c
            for c in run_cols
        )
        db.execute(
            f"INSERT INTO events ({', '.join(ev_cols)}) SELECT {ev_sel} FROM events "
            f"WHERE workspace = ? AND seq <= ?", (ws, events))
        db.execute(
            f"INSERT INTO runs ({', '.join(run_cols)}) SELECT {run_sel} FROM original_runs")
        if k % 50 == 0:
            db.commit()
            print(f"  {(k + 1) * runs} runs", file=sys.stderr)
    db.execute("UPDATE chain_heads SET seq = (SELECT max(seq) FROM events WHERE workspace = ?) "
               "WHERE workspace = ?", (ws, ws))
    db.commit()
    (total,) = db.execute("SELECT count(*) FROM runs WHERE workspace = ?", (ws,)).fetchone()
    (last,) = db.execute("SELECT max(seq) FROM events WHERE workspace = ?", (ws,)).fetchone()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print(f"{total} runs, {last} events, in {time.monotonic() - start:.1f}s", file=sys.stderr)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--gate", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--policies", required=True)
    s.add_argument("--runs", type=int, default=1000)
    r = sub.add_parser("replicate")
    r.add_argument("--db", required=True)
    r.add_argument("--total", type=int, default=1_000_000)
    r.add_argument("--workspace", default="default")
    a = p.parse_args()
    send(a) if a.cmd == "send" else replicate(a)


if __name__ == "__main__":
    main()
