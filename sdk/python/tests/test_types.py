"""Statuses are Literal types: a type checker catches a status the gate never sends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

GOOD = """
import asyncio
import countersign

def check(run: countersign.Run, client: countersign.Client) -> bool:
    runs, _ = client.list_runs(governance_status="pending_approval", execution_status="awaiting_execution")
    return run.governance_status == "pending_approval" and run.execution_status != "executed"

async def acheck(client: countersign.AsyncClient) -> countersign.GovernanceStatus:
    run = await client.intercept("send_invoice_reminder", {"amount": 1})
    return run.governance_status
"""

BAD = """
import countersign

def check(run: countersign.Run, client: countersign.Client) -> bool:
    client.list_runs(governance_status="pending")
    return run.governance_status == "pending" or run.execution_status == "done"
"""


def mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    """Runs mypy --strict (installed by run-tests.sh with the dev extra) on ``source``."""
    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(source))
    env = dict(os.environ, MYPYPATH=str(SRC))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
         "--config-file", os.devnull, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_valid_statuses_type_check(tmp_path):
    out = mypy(tmp_path, GOOD)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_status_the_gate_never_sends_is_a_type_error(tmp_path):
    out = mypy(tmp_path, BAD)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout
    assert 'Argument "governance_status" to "list_runs" of "Client" has incompatible type' in lines, lines
    assert lines.count("Non-overlapping equality check") == 2, lines
