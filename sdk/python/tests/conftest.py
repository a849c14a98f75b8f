"""Fixtures: a real `countersign serve` with a test policy and a webhook receiver.

The binary comes from $COUNTERSIGN_BIN (default: the repository's debug
build); nothing is built here. Approvals go through the gate's real approval
API: the webhook the gate delivers carries ``data.answer_url``, and the tests
POST the approver's answer to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import countersign
from helpers import free_port

REPO = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("COUNTERSIGN_BIN", str(REPO / "target" / "debug" / "countersign")))

WEBHOOK_SECRET = "whsec_" + "c2RrLXRlc3Qtd2ViaG9vay1zZWNyZXQtMzItYnl0ZXM="  # 32 bytes of key

POLICY = """\
version: 1
approvers:
  leads:
    members:
      - { id: alice }
      - { id: bob }
    quorum: 1
    timeout: 1h
  hasty-leads:
    members:
      - { id: alice }
      - { id: bob }
    quorum: 1
    timeout: 2s
actions:
  send_invoice_reminder:
    description: Email a customer about an overdue invoice.
    risk: medium
    approvers: leads
    default: allow
    on_error: block
    rules:
      - name: large-amount
        when: payload.amount > 500
        decision: require_approval
        reason: Reminders above 500 need a finance lead
  delete_customer:
    risk: critical
    default: block
    rules:
      - name: never-delete
        when: true
        decision: block
        reason: Agents never delete customers
  rotate_api_token:
    risk: high
    approvers: hasty-leads
    default: require_approval
"""


class HookReceiver:
    """A webhook endpoint that verifies and records every delivery."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.events: List[Dict[str, Any]] = []
        self.rejected: List[str] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event = countersign.verify_webhook(receiver.secret, dict(self.headers), body)
                except countersign.WebhookVerificationError as e:
                    with receiver._cond:
                        receiver.rejected.append(str(e))
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver._cond:
                    receiver.events.append(event)
                    receiver._cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, run_id: str, timeout: float = 15) -> Dict[str, Any]:
        """The approval request delivered for ``run_id``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if event.get("data", {}).get("run_id") == run_id:
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no webhook for {run_id} within {timeout}s (rejected: {self.rejected})")
                self._cond.wait(remaining)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Gate:
    """One `countersign serve` process in its own directory."""

    def __init__(self, root: Path, hooks: Optional[HookReceiver], extra_config: str = "") -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.hooks = hooks
        self.proc: Optional[subprocess.Popen] = None
        (root / "policies").mkdir(parents=True, exist_ok=True)
        (root / "policies" / "test.yaml").write_text(POLICY)
        webhooks = ""
        if hooks is not None:
            webhooks = (
                "    webhooks:\n"
                f'      - {{ name: hooks, url: "{hooks.url}", secret: "{hooks.secret}" }}\n'
            )
        self.config = root / "countersign.yaml"
        self.config.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            "data_dir: ./data\n"
            "console: false\n"
            "policy_poll_interval: 1h\n"
            "delivery: { poll_interval: 100ms, base_delay: 200ms }\n"
            f"{extra_config}"
            "workspaces:\n"
            "  default:\n"
            "    policies: ./policies\n"
            f"{webhooks}"
        )
        self.agent_key = self.create_key("agent")
        self.admin_key = self.create_key("admin")

    def create_key(self, role: str) -> str:
        out = subprocess.run(
            [str(BIN), "keys", "create", "--workspace", "default", "--role", role, "--config", str(self.config)],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        key = out.stdout.strip().splitlines()[-1].strip()
        assert key, out
        return key

    def start(self, timeout: float = 30) -> None:
        assert self.proc is None
        log = open(self.root / "serve.log", "ab")
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--config", str(self.config)],
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"countersign serve exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"countersign serve did not become healthy:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        path = self.root / "serve.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def client(self, **kw: Any) -> countersign.Client:
        kw.setdefault("api_key", self.agent_key)
        kw.setdefault("base_url", self.url)
        kw.setdefault("backoff_base", 0.1)
        return countersign.Client(**kw)

    def admin(self) -> countersign.Client:
        return self.client(api_key=self.admin_key)

    def aclient(self, **kw: Any) -> countersign.AsyncClient:
        kw.setdefault("api_key", self.agent_key)
        kw.setdefault("base_url", self.url)
        kw.setdefault("backoff_base", 0.1)
        return countersign.AsyncClient(**kw)

    def answer(self, run_id: str, decision: str = "approve", approver: str = "bob") -> Dict[str, Any]:
        """Answers the run's approval request through the webhook's answer URL."""
        assert self.hooks is not None
        event = self.hooks.wait_for(run_id)
        return countersign.answer_approval(event["data"]["answer_url"], decision, approver)


@pytest.fixture(scope="session")
def gate_bin() -> Path:
    if not BIN.exists():
        pytest.exit(f"countersign binary not found at {BIN}; build it or set COUNTERSIGN_BIN", returncode=2)
    return BIN


@pytest.fixture(scope="session")
def hooks() -> Iterator[HookReceiver]:
    receiver = HookReceiver(WEBHOOK_SECRET)
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="countersign-sdk-"))
    yield path
    if os.environ.get("COUNTERSIGN_KEEP_TMP") != "1":
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def make_gate(gate_bin: Path, hooks: HookReceiver, workdir: Path) -> Iterator[Callable[..., Gate]]:
    """Starts extra gates (their own data dir and port); stopped at the end."""
    started: List[Gate] = []

    def make(extra_config: str = "", webhooks: bool = True) -> Gate:
        g = Gate(workdir / f"gate-{len(started)}", hooks if webhooks else None, extra_config)
        g.start()
        started.append(g)
        return g

    yield make
    for g in started:
        g.stop()


@pytest.fixture(scope="session")
def gate(make_gate: Callable[..., Gate]) -> Gate:
    """The shared gate: webhook approvals and a 2 KiB body limit."""
    return make_gate("max_body_bytes: 2048\n")


@pytest.fixture()
def client(gate: Gate) -> countersign.Client:
    return gate.client()


@pytest.fixture()
def store(tmp_path: Path) -> countersign.SQLitePendingStore:
    return countersign.SQLitePendingStore(tmp_path / "pending.db")


@pytest.fixture()
def actor() -> str:
    """A unique actor per test, to find a test's runs with list_runs."""
    return f"agent-{uuid.uuid4().hex[:10]}"
