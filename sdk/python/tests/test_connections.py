"""Configuration, time limits and connection reuse of Client and AsyncClient."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from typing import Any, Dict, List

import pytest

import countersign
from helpers import CountingForwarder, FullBacklog, SilentServer, reminder


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("cls", [countersign.Client, countersign.AsyncClient])
def test_no_key_is_refused_and_the_error_names_the_environment_variables(cls, monkeypatch):
    monkeypatch.delenv("COUNTERSIGN_API_KEY", raising=False)
    monkeypatch.delenv("COUNTERSIGN_URL", raising=False)
    with pytest.raises(countersign.ConfigurationError) as e:
        cls()
    assert e.value.code == "missing_api_key"
    assert "COUNTERSIGN_API_KEY" in str(e.value) and "COUNTERSIGN_URL" in str(e.value)
    assert isinstance(e.value, ValueError) and isinstance(e.value, countersign.CountersignError)
    with pytest.raises(countersign.ConfigurationError):
        cls(api_key="")
    monkeypatch.setenv("COUNTERSIGN_API_KEY", "csk_from_env")
    client = cls()
    assert client.api_key == "csk_from_env" and client.base_url == countersign.DEFAULT_URL
    assert "csk_from_env" not in repr(client)
    for bad in ({"deadline": 0}, {"timeout": -1}, {"connect_timeout": 0}, {"max_retries": -1}):
        with pytest.raises(ValueError):
            cls(**bad)


def test_a_gated_function_without_a_client_needs_a_key_at_call_time(monkeypatch):
    monkeypatch.delenv("COUNTERSIGN_API_KEY", raising=False)
    ran: List[int] = []

    @countersign.gated("send_invoice_reminder")
    def send(invoice_id: str) -> None:
        ran.append(1)

    with pytest.raises(countersign.ConfigurationError, match="COUNTERSIGN_API_KEY"):
        send("INV-1")
    assert ran == []


# ---------------------------------------------------------------- time limits


def test_a_gate_that_accepts_and_never_answers_costs_the_15s_default_deadline(gate):
    """The defaults used to block for about 43 s (10 s x 4 attempts)."""
    silent = SilentServer()
    results: Dict[str, Any] = {}

    def sync_call() -> None:
        client = countersign.Client(api_key="k", base_url=silent.url)
        started = time.monotonic()
        try:
            client.intercept("send_invoice_reminder", reminder(10))
        except countersign.CountersignError as e:
            results["sync"] = (e, time.monotonic() - started)

    async def async_call() -> None:
        client = countersign.AsyncClient(api_key="k", base_url=silent.url)
        started = time.monotonic()
        try:
            await client.intercept("send_invoice_reminder", reminder(10))
        except countersign.CountersignError as e:
            results["async"] = (e, time.monotonic() - started)

    try:
        assert countersign.Client(api_key="k").deadline == 15.0
        assert countersign.AsyncClient(api_key="k").deadline == 15.0
        worker = threading.Thread(target=sync_call)
        worker.start()
        asyncio.run(async_call())
        worker.join(30)
    finally:
        silent.close()
    for kind in ("sync", "async"):
        err, took = results[kind]
        assert isinstance(err, countersign.DeadlineExceeded), (kind, err)
        assert isinstance(err, countersign.GateUnavailable)
        assert err.code == "deadline_exceeded" and err.status is None
        assert "15s deadline" in err.message
        assert 14.5 <= took < 17, (kind, took)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_short_deadline_and_the_connect_timeout(flavour):
    silent = SilentServer()
    backlog = FullBacklog()

    def call(cls: Any, **kw: Any) -> Any:
        client = cls(api_key="k", **kw)
        if flavour == "sync":
            return client.status("run_x")
        return asyncio.run(client.status("run_x"))

    cls = countersign.Client if flavour == "sync" else countersign.AsyncClient
    try:
        # An overall deadline shorter than one attempt's timeout wins.
        started = time.monotonic()
        with pytest.raises(countersign.DeadlineExceeded):
            call(cls, base_url=silent.url, timeout=10, deadline=1.0)
        assert 0.9 <= time.monotonic() - started < 2.5

        # A connection that is never established gives up after connect_timeout
        # (per attempt), not after the read timeout.
        started = time.monotonic()
        with pytest.raises(countersign.GateUnavailable) as e:
            call(cls, base_url=backlog.url, connect_timeout=0.3, timeout=10, max_retries=1,
                 backoff_base=0.01, deadline=None)
        took = time.monotonic() - started
        assert e.value.code == "unreachable" and "timed out" in e.value.message
        assert 0.55 <= took < 2.0, took
    finally:
        silent.close()
        backlog.close()


def test_no_deadline_means_every_attempt_runs(gate):
    silent = SilentServer()
    try:
        client = countersign.Client(api_key="k", base_url=silent.url, timeout=0.3, max_retries=2,
                                    backoff_base=0.01, deadline=None)
        started = time.monotonic()
        with pytest.raises(countersign.GateUnavailable) as e:
            client.status("run_x")
        assert not isinstance(e.value, countersign.DeadlineExceeded)
        assert 0.85 <= time.monotonic() - started < 3, "three attempts of 0.3 s"
    finally:
        silent.close()


# ---------------------------------------------------------------- connection reuse


def test_the_client_reuses_its_connection_and_with_closes_it(gate, actor):
    forwarder = CountingForwarder(gate.port)
    try:
        with countersign.Client(api_key=gate.agent_key, base_url=forwarder.url) as client:
            for _ in range(5):
                run = client.intercept("send_invoice_reminder", reminder(10), actor=actor)
                client.report_executed(run.run_id, {"ok": True})
                client.status(run)
            assert forwarder.accepted == 1, "15 calls over one kept-alive connection"
            assert forwarder.closed_by_client == 0
        assert forwarder.wait_closed(1), "leaving the with block closed it"
        # Still usable afterwards: it connects again.
        assert client.status(run).execution_status == "executed"
        assert forwarder.accepted == 2
        client.close()

        # Threads share the pool; each request has a connection of its own.
        shared = countersign.Client(api_key=gate.agent_key, base_url=forwarder.url)
        errors: List[BaseException] = []

        def agent() -> None:
            try:
                for _ in range(5):
                    assert shared.intercept("send_invoice_reminder", reminder(10), actor=actor).executable
            except BaseException as e:  # surfaced below
                errors.append(e)

        threads = [threading.Thread(target=agent) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert forwarder.accepted <= 2 + 4
        shared.close()
    finally:
        forwarder.close()


def test_a_connection_the_gate_closed_while_idle_is_replaced_transparently(make_gate, actor):
    g = make_gate(webhooks=False)
    client = g.client(max_retries=0)  # no retries: only the stale-connection rule may help
    assert client.intercept("send_invoice_reminder", reminder(10), actor=actor).executable
    g.stop()
    g.start()  # the kept-alive connection is dead now
    assert client.intercept("send_invoice_reminder", reminder(10), actor=actor).executable
    client.close()


# ---------------------------------------------------------------- the pending store


def test_the_pending_store_keeps_exact_decimals_by_default(tmp_path):
    store = countersign.SQLitePendingStore(tmp_path / "p.db")
    store.save("run_1", "send_invoice_reminder", {"amount": Decimal("1250.10"), "n": 3, "rate": 0.1})
    payload = store.get("run_1").payload  # type: ignore[union-attr]
    assert payload == {"amount": Decimal("1250.10"), "n": 3, "rate": Decimal("0.1")}
    assert isinstance(payload["amount"], Decimal) and str(payload["amount"]) == "1250.10"
    assert isinstance(payload["n"], int)
    floats = countersign.SQLitePendingStore(tmp_path / "p.db", decimals=False)
    assert floats.get("run_1").payload["amount"] == 1250.1  # type: ignore[union-attr]


def test_https_with_a_private_ca_for_both_clients(gate, actor, tmp_path):
    import ssl

    from helpers import TlsForwarder, self_signed_cert

    cert, key = self_signed_cert(tmp_path)
    tls = TlsForwarder(gate.port, cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    try:
        # The system trust store does not know this certificate: refused at once, no retries.
        untrusted = countersign.Client(api_key=gate.agent_key, base_url=tls.url, backoff_base=0.01)
        with pytest.raises(countersign.GateUnavailable) as e:
            untrusted.status("run_x")
        assert "CERTIFICATE_VERIFY_FAILED" in e.value.message
        deadline = time.monotonic() + 5
        while tls.failed_handshakes < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (tls.failed_handshakes, tls.accepted) == (1, 0), "one attempt: retrying would not help"

        with countersign.Client(api_key=gate.agent_key, base_url=tls.url, ssl_context=trusting) as client:
            run = client.intercept("send_invoice_reminder", reminder(10), actor=actor)
            assert client.report_executed(run.run_id, {"ok": True}).execution_status == "executed"
        assert tls.accepted == 1  # one kept-alive connection for both calls

        async def main() -> None:
            async with countersign.AsyncClient(api_key=gate.agent_key, base_url=tls.url, ssl_context=trusting) as ac:
                assert (await ac.status(run.run_id)).execution_status == "executed"
                assert (await ac.receipt(run.run_id)).run_id == run.run_id
            with pytest.raises(countersign.GateUnavailable) as e:
                await countersign.AsyncClient(api_key=gate.agent_key, base_url=tls.url).status(run.run_id)
            assert "CERTIFICATE_VERIFY_FAILED" in e.value.message

        asyncio.run(main())
        deadline = time.monotonic() + 5
        while tls.failed_handshakes < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (tls.accepted, tls.failed_handshakes) == (2, 2)
    finally:
        tls.close()


def test_the_sync_client_goes_through_http_proxy(gate, actor, monkeypatch):
    # The gate accepts absolute-form request targets, so a byte forwarder can
    # stand in for a forward proxy here.
    proxy = CountingForwarder(gate.port)
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = countersign.Client(api_key=gate.agent_key, base_url="http://127.0.0.1:%d" % gate.port)
        assert client.intercept("send_invoice_reminder", reminder(10), actor=actor).executable
        assert proxy.accepted == 1
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        client.close()
        assert client.intercept("send_invoice_reminder", reminder(10), actor=actor).executable
        assert proxy.accepted == 1, "NO_PROXY bypasses it"
        client.close()
    finally:
        proxy.close()
