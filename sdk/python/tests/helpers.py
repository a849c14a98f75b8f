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


class CountingForwarder:
    """A TCP forwarder in front of the gate that counts the connections made through it.

    Bytes are piped unchanged both ways, so keep-alive works through it; each
    accepted connection is one the client opened.
    """

    def __init__(self, target_port: int) -> None:
        import threading

        self.target_port = target_port
        self.accepted = 0
        self.closed_by_client = 0
        self._lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._threads = threading
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            up = socket.create_connection(("127.0.0.1", self.target_port))
            self._threads.Thread(target=self._pipe, args=(conn, up, True), daemon=True).start()
            self._threads.Thread(target=self._pipe, args=(up, conn, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        if from_client:
            with self._lock:
                self.closed_by_client += 1
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        src.close()  # the other direction's thread closes dst

    def wait_closed(self, n: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.closed_by_client >= n:
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.sock.close()


class SilentServer:
    """Accepts TCP connections (the kernel completes the handshake) and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


class FullBacklog:
    """A port whose accept queue is full: new connections are never established.

    Linux drops the SYNs of a listening socket whose queue is full, so a
    client's connect() hangs until its own timeout: a gate that is "there"
    but cannot take connections.
    """

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.fillers = []
        for _ in range(4):  # fill the queue (its size is backlog + 1 on Linux)
            s = socket.socket()
            s.settimeout(0.3)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                pass
            self.fillers.append(s)

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.sock.close()


def self_signed_cert(directory: Path) -> "tuple[Path, Path]":
    """A throwaway certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "countersign-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class TlsForwarder(CountingForwarder):
    """A CountingForwarder that terminates TLS: the gate behind an https:// address."""

    def __init__(self, target_port: int, cert: Path, key: Path) -> None:
        import ssl

        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert), str(key))
        self.failed_handshakes = 0
        super().__init__(target_port)
        self.url = self.url.replace("http://", "https://")

    def _accept(self) -> None:
        import ssl

        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            try:
                raw.settimeout(10)
                conn = self.context.wrap_socket(raw, server_side=True)
                conn.settimeout(None)
            except (OSError, ssl.SSLError):
                raw.close()
                with self._lock:
                    self.failed_handshakes += 1
                continue
            with self._lock:
                self.accepted += 1
            up = socket.create_connection(("127.0.0.1", self.target_port))
            self._threads.Thread(target=self._pipe, args=(conn, up, True), daemon=True).start()
            self._threads.Thread(target=self._pipe, args=(up, conn, False), daemon=True).start()
