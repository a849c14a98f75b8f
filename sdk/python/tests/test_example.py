"""The README's quickstart (examples/invoice_reminder.py) runs as written."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "invoice_reminder.py"


def run_example(gate, tmp_path, *args):
    env = dict(os.environ, COUNTERSIGN_API_KEY=gate.agent_key, COUNTERSIGN_URL=gate.url)
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--store", str(tmp_path / "pending.db"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_quickstart_allowed_path(gate, tmp_path):
    invoice = f"INV-{uuid.uuid4().hex[:6]}"
    proc = run_example(gate, tmp_path, "--invoice", invoice, "--amount", "120")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert ": allowed (" in out
    assert f"-> emailing Acme GmbH about {invoice} (120)" in out
    assert "receipt verified:" in out and '"execution_status": "executed"' in out


def test_quickstart_approval_path(gate, tmp_path):
    invoice = f"INV-{uuid.uuid4().hex[:6]}"
    proc = run_example(gate, tmp_path, "--invoice", invoice, "--amount", "1250.10", "--wait", "30")
    first = proc.stdout.readline()
    assert ": pending_approval (" in first, first
    run_id = first.split()[1].rstrip(":")
    approver = threading.Thread(target=gate.answer, args=(run_id, "approve", "alice"))
    approver.start()
    out, _ = proc.communicate(timeout=60)
    approver.join()
    assert proc.returncode == 0, first + out
    assert "decided: approved" in out
    assert f"-> emailing Acme GmbH about {invoice} (1250.10)" in out
    assert f"runner: executed ['{run_id}']" in out
    assert '"governance_status": "approved"' in out and '"execution_status": "executed"' in out


def test_quickstart_says_what_to_do_when_its_key_was_used_for_other_details(gate, tmp_path):
    invoice = f"INV-{uuid.uuid4().hex[:6]}"
    first = run_example(gate, tmp_path, "--invoice", invoice, "--amount", "120")
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out
    again = run_example(gate, tmp_path, "--invoice", invoice, "--amount", "130")
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 1, out
    assert f"{invoice}'s second reminder was already proposed with different details" in out
    assert "Traceback" not in out


ASYNC_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "async_reminder.py"


def test_async_example_sends_when_allowed_and_not_when_pending(gate):
    env = dict(os.environ, COUNTERSIGN_API_KEY=gate.agent_key, COUNTERSIGN_URL=gate.url)
    invoice = f"INV-{uuid.uuid4().hex[:6]}"
    out = subprocess.run(
        [sys.executable, str(ASYNC_EXAMPLE), "--invoice", invoice, "--amount", "120.00"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"-> emailed Acme GmbH about {invoice} (120.00), run run_" in out.stdout
    assert ": executed, receipt verified" in out.stdout

    out = subprocess.run(
        [sys.executable, str(ASYNC_EXAMPLE), "--invoice", invoice, "--amount", "1250.10"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "waits for a finance lead's approval; nothing sent" in out.stdout
    assert "emailed" not in out.stdout

    del env["COUNTERSIGN_API_KEY"]
    out = subprocess.run([sys.executable, str(ASYNC_EXAMPLE)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "COUNTERSIGN_API_KEY" in out.stderr
