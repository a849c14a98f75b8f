"""@countersign.gated: propose, run only when executable, report."""

from __future__ import annotations

from decimal import Decimal

import pytest

import countersign


def test_allowed_call_runs_and_reports_its_return_value(gate, client, actor):
    calls = []

    @countersign.gated("send_invoice_reminder", client=client, actor=actor)
    def send_invoice_reminder(invoice_id, amount, customer="Acme GmbH"):
        calls.append((invoice_id, amount, customer))
        return {"message_id": f"msg-{invoice_id}"}

    assert send_invoice_reminder.action == "send_invoice_reminder"
    result = send_invoice_reminder("INV-1", amount=Decimal("120.10"))
    assert result == {"message_id": "msg-INV-1"}
    assert calls == [("INV-1", Decimal("120.10"), "Acme GmbH")]

    runs, _ = gate.admin().list_runs(actor=actor, limit=10)
    assert len(runs) == 1
    run = client.status(runs[0].run_id)
    assert (run.governance_status, run.execution_status) == ("allowed", "executed")
    assert run.execution is not None and run.execution.execution_result == {"message_id": "msg-INV-1"}
    # Positional and keyword arguments and defaults all land in the payload.
    assert "invoice_id=INV-1" in (run.payload_summary or "")
    assert "amount=120.10" in (run.payload_summary or "") or "amount=120.1" in (run.payload_summary or "")
    assert "customer=Acme GmbH" in (run.payload_summary or "")


def test_pending_call_does_not_run_and_raises_approval_pending(gate, client, actor):
    calls = []

    @countersign.gated("send_invoice_reminder", client=client, actor=actor)
    def send_invoice_reminder(invoice_id, amount):
        calls.append(invoice_id)

    with pytest.raises(countersign.ApprovalPending) as e:
        send_invoice_reminder("INV-2", 5000)
    assert calls == []
    assert e.value.governance_status == "pending_approval" and e.value.code == "pending_approval"
    assert e.value.run.approval is not None and e.value.run.approval.group == "leads"
    assert isinstance(e.value, countersign.ActionNotExecutable)
    assert client.status(e.value.run_id).execution_status == "not_executed"


def test_blocked_call_raises_action_blocked(client, actor):
    calls = []

    @countersign.gated("delete_customer", client=client, actor=actor)
    def delete_customer(customer_id):
        calls.append(customer_id)

    with pytest.raises(countersign.ActionBlocked) as e:
        delete_customer("C-1")
    assert calls == []
    assert e.value.governance_status == "blocked"
    assert "never delete" in e.value.message


def test_a_raising_call_is_reported_failed_and_re_raised(gate, client, actor):
    @countersign.gated("send_invoice_reminder", client=client, actor=actor)
    def send_invoice_reminder(invoice_id, amount):
        raise ConnectionError("SMTP connection refused")

    with pytest.raises(ConnectionError):
        send_invoice_reminder("INV-3", 10)
    runs, _ = gate.admin().list_runs(actor=actor, limit=10)
    run = client.status(runs[0].run_id)
    assert run.execution_status == "failed"
    assert run.execution is not None and run.execution.execution_error == "SMTP connection refused"


def test_idempotency_key_from_the_arguments_makes_a_repeat_the_same_run(client, actor):
    calls = []

    @countersign.gated(
        "send_invoice_reminder",
        client=client,
        actor=actor,
        idempotency_key=lambda invoice_id, amount: f"reminder:{actor}:{invoice_id}",
    )
    def send_invoice_reminder(invoice_id, amount):
        calls.append(invoice_id)
        return "sent"

    assert send_invoice_reminder("INV-4", 10) == "sent"
    with pytest.raises(countersign.AlreadyReported) as e:
        send_invoice_reminder("INV-4", 10)
    assert calls == ["INV-4"], "the second call did not send again"
    assert e.value.run.execution_status == "executed"
    with pytest.raises(TypeError):
        countersign.gated("send_invoice_reminder", idempotency_key="fixed")  # type: ignore[arg-type]


def test_with_a_manager_a_pending_call_runs_later_through_the_runner(gate, client, store, actor):
    manager = countersign.PendingActionManager(client, store)
    calls = []

    @countersign.gated("send_invoice_reminder", manager=manager, actor=actor)
    def send_invoice_reminder(invoice_id, amount, **extra):
        calls.append((invoice_id, amount, extra))
        return {"sent": invoice_id}

    with pytest.raises(countersign.ApprovalPending) as e:
        send_invoice_reminder("INV-5", 750, channel="email")
    ticket = e.value.ticket
    assert ticket is not None and ticket.stored
    assert ticket.payload == {"invoice_id": "INV-5", "amount": 750, "channel": "email"}
    assert calls == []

    runner = countersign.ActionRunner(client, store)
    runner.register(send_invoice_reminder)
    gate.answer(ticket.run_id)
    summary = runner.run_pending_once()
    assert summary.executed == [ticket.run_id]
    assert calls == [("INV-5", 750, {"channel": "email"})]
    run = client.status(ticket.run_id)
    assert run.execution is not None and run.execution.execution_result == {"sent": "INV-5"}


def test_payload_mapping():
    def f(self, a, b=2, *rest, c, **more):
        pass

    payload = countersign.payload_from_call(f, (object(), 1, 3, 4, 5), {"c": 6, "d": 7})
    assert payload == {"a": 1, "b": 3, "rest": [4, 5], "c": 6, "d": 7}
