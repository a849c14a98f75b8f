#!/usr/bin/env python3
"""Latency from intercept to the approval mail's arrival at an SMTP server.

Starts `countersign serve` (the binary given) in a temporary directory with
an SMTP server on loopback (aiosmtpd, in this process), sends intercepts
that need approval one after another, and records for each the time from
sending the intercept to the SMTP server receiving the mail (end of DATA).
Prints p50/p90/p99/max in milliseconds.

    python3 benches/delivery/latency.py target/debug/countersign [--runs 200] [--poll 500ms]

Needs aiosmtpd (`pip install aiosmtpd`, in a venv on Debian).
"""

import argparse
import asyncio
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from aiosmtpd.controller import Controller

POLICY = """version: 1
approvers:
  leads:
    members:
      - { id: alice, email: alice@example.com }
actions:
  refund:
    approvers: leads
    rules:
      - name: always
        decision: require_approval
"""


class Arrivals:
    """SMTP handler: every mail and when it arrived (monotonic clock)."""

    def __init__(self):
        self.mails = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        now = time.monotonic()
        # Quoted-printable soft breaks undone, so a run id is found whole.
        text = envelope.content.decode("utf-8", "replace").replace("=\r\n", "")
        with self.cond:
            self.mails.append((now, text))
            self.cond.notify_all()
        return "250 OK"

    def wait(self, run_id, timeout):
        """When the first mail naming `run_id` arrived (it may have come
        before the intercept's answer was read), or None."""
        def found():
            return next((at for at, text in self.mails if run_id in text), None)
        with self.cond:
            self.cond.wait_for(lambda: found() is not None, timeout)
            return found()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--poll", default="500ms", help="delivery.poll_interval")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)

    arrivals = Arrivals()
    smtp_port = free_port()
    smtp = Controller(arrivals, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    port = free_port()
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "policies"))
        with open(os.path.join(root, "policies", "policy.yaml"), "w") as f:
            f.write(POLICY)
        with open(os.path.join(root, "countersign.yaml"), "w") as f:
            f.write(
                f"listen: 127.0.0.1:{port}\n"
                "data_dir: ./data\nconsole: false\n"
                f"email: {{ host: 127.0.0.1, port: {smtp_port}, security: plain, from: cs@example.com }}\n"
                f"delivery: {{ poll_interval: {args.poll} }}\n"
                "workspaces:\n  default: { policies: ./policies }\n"
            )
        key = subprocess.run(
            [binary, "keys", "create", "--workspace", "default", "--role", "agent",
             "--config", "countersign.yaml"],
            cwd=root, check=True, capture_output=True, text=True,
        ).stdout.strip()
        log = open(os.path.join(root, "serve.log"), "w")
        gate = subprocess.Popen(
            [binary, "serve", "--config", "countersign.yaml"],
            cwd=root, stdout=log, stderr=log, env={**os.environ, "RUST_LOG": "warn"},
        )
        try:
            for _ in range(400):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.025)
            conn = http.client.HTTPConnection("127.0.0.1", port)
            took = []
            for i in range(args.runs):
                body = json.dumps({"action": "refund", "payload": {"n": i}, "actor": "bench"})
                start = time.monotonic()
                conn.request("POST", "/v1/intercept", body,
                             {"authorization": f"Bearer {key}", "content-type": "application/json"})
                resp = conn.getresponse()
                run = json.loads(resp.read())
                assert resp.status == 201, run
                run_id = run["run_id"]
                arrived = arrivals.wait(run_id, 30)
                assert arrived is not None, f"no mail for {run_id}"
                took.append((arrived - start) * 1000)
            took.sort()
            q = lambda p: took[min(len(took) - 1, int(len(took) * p))]
            print(f"runs={len(took)} poll_interval={args.poll} intercept->mail ms: "
                  f"p50={q(0.5):.1f} p90={q(0.9):.1f} p99={q(0.99):.1f} max={took[-1]:.1f} "
                  f"mean={statistics.mean(took):.1f}")
        finally:
            gate.terminate()
            gate.wait(10)
            smtp.stop()


if __name__ == "__main__":
    sys.exit(main())
