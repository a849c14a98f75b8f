"""Transient failures are retried transparently, and retries never duplicate a run."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import List, Optional

import countersign
from helpers import reminder


class FlakyProxy:
    """An HTTP proxy in front of the gate that can lose answers or fail.

    - ``drop_next``: forward the next request whose path starts with this,
      let the gate process it, then close the connection without answering
      (the answer is lost on the way back).
    - ``fail_next``: answer that many requests with 503 without forwarding.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.drop_next: Optional[str] = None
        self.fail_next = 0
        self.forwarded: List[str] = []
        self.dropped: List[str] = []
        self.failed: List[str] = []
        self._lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self.sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_message(sock: socket.socket, request: bool) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None and request:
            length = 0  # a request without Content-Length has no body
        if length is None:
            while True:  # read until the peer closes
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
        else:
            while len(body) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
        return head + b"\r\n\r\n" + body

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = self._read_message(conn, request=True)
            if not request:
                return
            path = request.split(b" ", 2)[1].decode()
            with self._lock:
                fail = self.fail_next > 0
                if fail:
                    self.fail_next -= 1
                drop = self.drop_next is not None and path.startswith(self.drop_next)
                if drop:
                    self.drop_next = None
            if fail:
                self.failed.append(path)
                body = b'{"error":{"code":"unavailable","message":"store not ready"}}'
                conn.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
                )
                return
            with socket.create_connection(("127.0.0.1", self.target_port), timeout=10) as up:
                up.sendall(request)
                response = self._read_message(up, request=False)
            self.forwarded.append(path)
            if drop:
                self.dropped.append(path)
                return  # the gate answered; the client never hears it
            conn.sendall(response)


def test_a_lost_intercept_answer_is_retried_with_the_same_generated_key(gate, actor):
    proxy = FlakyProxy(gate.port)
    try:
        client = countersign.Client(api_key=gate.agent_key, base_url=proxy.url, backoff_base=0.05)
        proxy.drop_next = "/v1/intercept"
        run = client.intercept("send_invoice_reminder", reminder(42), actor=actor)  # no idempotency key
        assert proxy.dropped == ["/v1/intercept"], "the first answer was lost"
        assert proxy.forwarded.count("/v1/intercept") == 2, "the gate saw the request twice"
        assert run.replayed is True, "the retry was answered from the first request's run"
        assert run.idempotency_key
        runs, _ = gate.admin().list_runs(actor=actor, limit=100)
        assert [r.run_id for r in runs] == [run.run_id], "exactly one run was created"

        # A lost report answer is retried too; the repeat is a no-op.
        proxy.drop_next = f"/v1/runs/{run.run_id}/executed"
        done = client.report_executed(run.run_id, {"message_id": "m-1"})
        assert done.execution_status == "executed"
        assert len(proxy.dropped) == 2

        # 5xx answers are retried with backoff.
        proxy.fail_next = 2
        assert client.status(run.run_id).execution_status == "executed"
        assert len(proxy.failed) == 2
        proxy.fail_next = 5
        try:
            countersign.Client(api_key=gate.agent_key, base_url=proxy.url, max_retries=1, backoff_base=0.01).status(
                run.run_id
            )
        except countersign.GateUnavailable as e:
            assert e.status == 503 and e.code == "unavailable"
        else:
            raise AssertionError("a persisting 503 must raise GateUnavailable")
    finally:
        proxy.close()


def test_client_calls_survive_a_gate_restart(make_gate, actor, caplog):
    caplog.set_level(logging.INFO, logger="countersign")
    g = make_gate(webhooks=False)
    client = g.client(max_retries=20, backoff_base=0.1, backoff_max=0.5)
    done: List[str] = []
    errors: List[BaseException] = []
    halfway = threading.Event()

    def agent() -> None:
        try:
            for i in range(16):
                if i == 4:
                    halfway.set()
                run = client.intercept("send_invoice_reminder", reminder(10 + i), actor=actor)
                assert run.executable
                client.report_executed(run.run_id, {"n": i})
                assert client.status(run.run_id).execution_status == "executed"
                done.append(run.run_id)
                time.sleep(0.05)
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)
            halfway.set()

    worker = threading.Thread(target=agent)
    worker.start()
    assert halfway.wait(30)
    g.stop()  # in the middle of the agent's calls
    time.sleep(0.8)
    g.start()
    worker.join(60)
    assert not worker.is_alive()
    assert errors == [], errors
    assert len(done) == 16 and len(set(done)) == 16
    runs, _ = g.admin().list_runs(actor=actor, limit=100)
    assert len(runs) == 16, "no retry created a second run"
    assert {r.execution_status for r in runs} == {"executed"}
    retried = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert retried, "some calls met the stopped gate and were retried"
