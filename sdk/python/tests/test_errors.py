"""Every gate error arrives as its typed exception, with code, status and field."""

from __future__ import annotations

import time

import pytest

import countersign
from helpers import free_port, reminder


def test_401_unknown_key(gate):
    bad = gate.client(api_key="csk_00000000_not-a-real-key")
    with pytest.raises(countersign.AuthenticationError) as e:
        bad.intercept("send_invoice_reminder", reminder(10))
    assert (e.value.status, e.value.code) == (401, "unauthorized")
    assert "unknown API key" in e.value.message
    assert isinstance(e.value, countersign.CountersignError)

    # No key at all is refused when the client is made (see test_client_config).
    with pytest.raises(countersign.ConfigurationError):
        countersign.Client(api_key="", base_url=gate.url)
    # A request sent without the header still gets the typed 401.
    with pytest.raises(countersign.AuthenticationError):
        bad.request("GET", "/v1/runs/run_whatever", auth=False)


def test_403_agent_key_on_an_admin_endpoint(gate, client, actor):
    with pytest.raises(countersign.PermissionDenied) as e:
        client.list_runs()
    assert (e.value.status, e.value.code) == (403, "admin_required")
    runs, _ = gate.admin().list_runs(actor=actor)
    assert runs == []


def test_403_self_approval_through_the_answer_url(gate, client):
    run = client.intercept("send_invoice_reminder", reminder(2000), actor="bob")
    with pytest.raises(countersign.PermissionDenied) as e:
        gate.answer(run.run_id, "approve", "bob")
    assert e.value.code == "self_approval"
    assert client.status(run.run_id).governance_status == "pending_approval"


def test_404_unknown_run(client):
    with pytest.raises(countersign.NotFound) as e:
        client.status("run_0000000000000000000000000000dead")
    assert (e.value.status, e.value.code) == (404, "not_found")
    with pytest.raises(countersign.NotFound):
        client.receipt("run_0000000000000000000000000000dead")
    with pytest.raises(countersign.NotFound):
        client.report_executed("run_0000000000000000000000000000dead", None)


def test_409_reporting_a_run_that_is_not_executable(client, actor):
    blocked = client.intercept("delete_customer", {"customer_id": "C-9"}, actor=actor)
    assert blocked.governance_status == "blocked"
    with pytest.raises(countersign.ConflictError) as e:
        client.report_executed(blocked.run_id, {"deleted": True})
    assert (e.value.status, e.value.code) == (409, "conflict")
    assert not isinstance(e.value, countersign.IdempotencyConflict)

    allowed = client.intercept("send_invoice_reminder", reminder(10), actor=actor)
    client.report_executed(allowed.run_id, {"message_id": "a"})
    with pytest.raises(countersign.ConflictError) as e:
        client.report_failed(allowed.run_id, "changed my mind")
    assert e.value.code == "conflict"


def test_409_idempotency_conflict(client, actor):
    key = "reminder-conflict-" + actor
    first = client.intercept("send_invoice_reminder", {"invoice_id": "INV-7", "amount": 10}, key, actor=actor)
    assert not first.replayed
    with pytest.raises(countersign.IdempotencyConflict) as e:
        client.intercept("send_invoice_reminder", {"invoice_id": "INV-7", "amount": 11}, key, actor=actor)
    assert (e.value.status, e.value.code) == (409, "idempotency_conflict")
    assert isinstance(e.value, countersign.ConflictError)
    # Key order does not matter for "the same request".
    same = client.intercept("send_invoice_reminder", {"amount": 10, "invoice_id": "INV-7"}, key, actor=actor)
    assert same.run_id == first.run_id and same.replayed


def test_413_payload_too_large(client):
    with pytest.raises(countersign.PayloadTooLarge) as e:
        client.intercept("send_invoice_reminder", reminder(10, notes="x" * 4000))
    assert (e.value.status, e.value.code) == (413, "payload_too_large")
    assert "2048" in e.value.message


def test_422_validation_names_the_field(client, actor):
    with pytest.raises(countersign.ValidationError) as e:
        client.intercept("send invoice reminder!", reminder(10))
    assert (e.value.status, e.value.code, e.value.field) == (422, "validation_failed", "action")

    # A top-level actor wins over a payload field of the same name (the
    # gate's documented precedence), so this is no error.
    both = client.intercept("send_invoice_reminder", reminder(10, actor="x"), actor="y")
    assert both.actor == "y"

    run = client.intercept("send_invoice_reminder", reminder(10), actor=actor)
    with pytest.raises(countersign.ValidationError) as e:
        client.report_failed(run.run_id, "")
    assert e.value.field == "execution_error"


def test_429_rate_limited_then_retried_after_retry_after(make_gate):
    limited = make_gate("rate_limit: { per_second: 1, burst: 2 }\n", webhooks=False)
    strict = limited.client(max_retries=0)
    run = strict.intercept("send_invoice_reminder", reminder(10))
    strict.status(run.run_id)
    with pytest.raises(countersign.RateLimited) as e:
        strict.status(run.run_id)
    assert (e.value.status, e.value.code) == (429, "rate_limited")
    assert e.value.retry_after is not None and e.value.retry_after >= 1

    patient = limited.client(max_retries=3)
    started = time.monotonic()
    assert patient.status(run.run_id).run_id == run.run_id
    assert time.monotonic() - started >= 0.5, "the client waited as Retry-After asked"


def test_gate_unavailable_after_retries(monkeypatch):
    port = free_port()  # nothing listens there
    client = countersign.Client(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=2, backoff_base=0.01)
    attempts = []
    original = client._send

    def counting(*args, **kw):
        attempts.append(1)
        return original(*args, **kw)

    monkeypatch.setattr(client, "_send", counting)
    with pytest.raises(countersign.GateUnavailable) as e:
        client.status("run_abc")
    assert e.value.code == "unreachable" and e.value.status is None
    assert len(attempts) == 3, "one try and two retries"
    assert client.health() is False


def test_client_configuration_from_the_environment(monkeypatch, gate):
    monkeypatch.setenv("COUNTERSIGN_API_KEY", gate.agent_key)
    monkeypatch.setenv("COUNTERSIGN_URL", gate.url + "/")
    client = countersign.Client()
    assert client.base_url == gate.url and client.api_key == gate.agent_key
    assert client.health() is True
    assert client.intercept("send_invoice_reminder", reminder(10)).executable
    monkeypatch.delenv("COUNTERSIGN_URL")
    assert countersign.Client().base_url == countersign.DEFAULT_URL
    with pytest.raises(ValueError):
        countersign.Client(base_url="ftp://example")
