"""Helpers shared by the tests, importable by child processes too."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List

import countersign


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reminder(amount: float, **extra: Any) -> Dict[str, Any]:
    """An invoice-reminder payload; amounts above 500 need approval in the test policy."""
    payload: Dict[str, Any] = {
        "invoice_id": f"INV-{uuid.uuid4().hex[:6]}",
        "amount": amount,
        "customer": "Acme GmbH",
    }
    payload.update(extra)
    return payload


def read_lines(path: Path) -> List[str]:
    return path.read_text().splitlines() if path.exists() else []


def recording_executor(side_effects: Path, delay: float = 0.0):
    """An executor that appends one line per execution (the side effect)."""

    def send_invoice_reminder(payload: Dict[str, Any]) -> Dict[str, Any]:
        with open(side_effects, "a") as f:
            f.write(f"{os.getpid()} {payload['invoice_id']}\n")
            f.flush()
        if delay:
            time.sleep(delay)
        return {"sent_by": os.getpid(), "invoice_id": payload["invoice_id"]}

    return send_invoice_reminder


def runner_process(base_url: str, api_key: str, store_path: str, side_effects: str, barrier: Any, out: Any) -> None:
    """Runs one runner pass in a child process, started together with the others."""
    client = countersign.Client(api_key=api_key, base_url=base_url)
    runner = countersign.ActionRunner(client, countersign.SQLitePendingStore(store_path))
    runner.when_executable("send_invoice_reminder", run=recording_executor(Path(side_effects), delay=1.0))
    barrier.wait(30)
    summary = runner.run_pending_once()
    out.put(
        {
            "pid": os.getpid(),
            "executed": summary.executed,
            "failed": summary.failed,
            "in_progress": summary.in_progress,
            "errors": summary.errors,
        }
    )
