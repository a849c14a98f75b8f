"""Fixtures for the MCP proxy suite: a real `countersign serve`, a webhook
receiver whose deliveries carry the approval answer URLs, and the reference
filesystem MCP server from npm behind `countersign mcp`, driven by the
official Python MCP SDK.

Paths come from the environment (mcp/tests/run-tests.sh sets them):
COUNTERSIGN_BIN (the binary), MCP_FS_SERVER (server-filesystem's entry
point), NODE (a Node.js 20 or later).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("COUNTERSIGN_BIN", str(REPO / "target" / "debug" / "countersign")))
FS_SERVER = os.environ.get(
    "MCP_FS_SERVER",
    str(REPO / "target" / "mcp-npm" / "node_modules" / "@modelcontextprotocol" / "server-filesystem" / "dist" / "index.js"),
)
NODE = os.environ.get("NODE") or shutil.which("node") or "node"

# Reads are allowed, writes need a lead's approval, moves are blocked; two
# rules read the MCP context, one in each condition language.
POLICY = """\
version: 1
approvers:
  leads:
    members:
      - { id: alice }
      - { id: bob }
    quorum: 1
    timeout: 1h
  hasty:
    members:
      - { id: carol }
    timeout: 2s
actions:
  fs.read_text_file:
    default: allow
  fs.list_allowed_directories:
    default: allow
  fs.list_directory:
    default: allow
    rules:
      - name: untrusted-client
        when: context.mcp.client.name == "untrusted-client"
        decision: block
        reason: This client may not list directories
  fs.directory_tree:
    default: allow
    rules:
      - name: no-trees
        when_cel: context.mcp.server == "fs" && context.mcp.tool == "directory_tree"
        decision: block
        reason: Directory trees are too large for the model
  fs.write_file:
    approvers: leads
    default: allow
    rules:
      - name: writes-need-approval
        when: true
        decision: require_approval
        reason: Writes need a lead's approval
  fs.create_directory:
    approvers: hasty
    default: allow
    rules:
      - name: hasty-approval
        when: true
        decision: require_approval
        reason: Directories need a quick approval
  crashy.echo: { default: allow }
  crashy.fail: { default: allow }
  crashy.hang: { default: allow }
  crashy.crash: { default: allow }
  fs.move_file:
    default: block
    rules:
      - name: never-move
        when: true
        decision: block
        reason: Agents never move files
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hooks:
    """Records the gate's webhook deliveries (approval requests)."""

    def __init__(self) -> None:
        self.events: List[Dict[str, Any]] = []
        self.cond = threading.Condition()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hooks.cond:
                    hooks.events.append(json.loads(body))
                    hooks.cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer_url(self, run_id: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if e.get("data", {}).get("run_id") == run_id:
                        return e["data"]["answer_url"]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no approval request delivered for {run_id}")
                self.cond.wait(left)


class Gate:
    """One `countersign serve` with the test policy and a webhook channel."""

    def __init__(self, root: Path, hooks: Hooks) -> None:
        self.root = root
        self.hooks = hooks
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (root / "policies").mkdir(parents=True)
        (root / "policies" / "fs.yaml").write_text(POLICY)
        self.config = root / "countersign.yaml"
        self.config.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            "data_dir: ./data\n"
            "console: false\n"
            "max_body_bytes: 4096\n"
            "policy_poll_interval: 1h\n"
            "delivery: { poll_interval: 100ms, base_delay: 200ms }\n"
            "workspaces:\n"
            "  default:\n"
            "    policies: ./policies\n"
            "    webhooks:\n"
            f'      - {{ name: hooks, url: "{hooks.url}", secret: "whsec_c2RrLXRlc3Qtd2ViaG9vay1zZWNyZXQtMzItYnl0ZXM=" }}\n'
        )
        self.agent_key = self.key("agent")
        self.admin_key = self.key("admin")
        log = open(root / "serve.log", "ab")
        self.proc = subprocess.Popen([str(BIN), "serve", "--config", str(self.config)], cwd=root, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError((root / "serve.log").read_text())
                time.sleep(0.05)

    def key(self, role: str) -> str:
        out = subprocess.run(
            [str(BIN), "keys", "create", "--workspace", "default", "--role", role, "--config", str(self.config)],
            cwd=self.root, capture_output=True, text=True, timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()[-1].strip()

    def run(self, run_id: str) -> Dict[str, Any]:
        req = urllib.request.Request(f"{self.url}/v1/runs/{run_id}", headers={"Authorization": f"Bearer {self.agent_key}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def runs(self, action: str) -> List[Dict[str, Any]]:
        req = urllib.request.Request(
            f"{self.url}/v1/runs?action={action}&limit=100", headers={"Authorization": f"Bearer {self.admin_key}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            body = json.loads(r.read())
        return body["runs"] if isinstance(body, dict) else body

    def answer(self, run_id: str, decision: str = "approve", approver: str = "bob", comment: Optional[str] = None) -> None:
        url = self.hooks.answer_url(run_id)
        body: Dict[str, Any] = {"decision": decision, "approver": approver}
        if comment:
            body["comment"] = comment
        req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status in (200, 201), r.status

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="countersign-mcp-"))
    yield path
    if os.environ.get("COUNTERSIGN_KEEP_TMP") != "1":
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def gate(workdir: Path) -> Iterator[Gate]:
    if not BIN.exists():
        pytest.exit(f"no countersign binary at {BIN}", returncode=2)
    if not Path(FS_SERVER).exists():
        pytest.exit(f"no server-filesystem at {FS_SERVER} (run mcp/tests/run-tests.sh)", returncode=2)
    g = Gate(workdir / "gate", Hooks())
    yield g
    g.stop()


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    """The directory the filesystem server may touch, with one file."""
    d = tmp_path / "files"
    d.mkdir()
    (d / "hello.txt").write_text("hello from the test\n")
    return d.resolve()
