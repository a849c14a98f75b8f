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


def test_an_async_def_is_awaited_then_reported_executed_with_its_result(gate, client, actor):
    """Issue 19: the wrapper used to return the coroutine unawaited and report
    `executed` with `{"unserializable_result": "<coroutine ...>"}` before the body ran."""
    import asyncio

    steps = []

    @countersign.gated("send_invoice_reminder", client=client, actor=actor)
    async def send_invoice_reminder(invoice_id, amount):
        steps.append("started")
        await asyncio.sleep(0.05)
        runs, _ = gate.admin().list_runs(actor=actor, limit=10)
        steps.append(runs[0].execution_status)  # not reported while the body runs
        return {"message_id": f"msg-{invoice_id}"}

    assert asyncio.run(send_invoice_reminder("INV-6", 10)) == {"message_id": "msg-INV-6"}
    runs, _ = gate.admin().list_runs(actor=actor, limit=10)
    run = client.status(runs[0].run_id)
    assert steps == ["started", "awaiting_execution"]
    assert run.execution_status == "executed"
    assert run.execution is not None and run.execution.execution_result == {"message_id": "msg-INV-6"}


def test_an_async_def_that_raises_is_reported_failed(gate, client, actor):
    import asyncio

    @countersign.gated("send_invoice_reminder", client=client, actor=actor)
    async def send_invoice_reminder(invoice_id, amount):
        await asyncio.sleep(0.01)
        raise ConnectionError("SMTP connection refused")

    with pytest.raises(ConnectionError):
        asyncio.run(send_invoice_reminder("INV-7", 10))
    runs, _ = gate.admin().list_runs(actor=actor, limit=10)
    run = client.status(runs[0].run_id)
    assert run.execution_status == "failed", "the audit record says what happened"
    assert run.execution is not None and run.execution.execution_error == "SMTP connection refused"


def test_a_decorated_call_gives_its_run_and_receipt(gate, client, actor):
    seen = []

    @countersign.gated("send_invoice_reminder", client=client, actor=actor)
    def send_invoice_reminder(invoice_id, amount):
        seen.append(countersign.current_run())
        return {"message_id": f"msg-{invoice_id}"}

    assert countersign.current_run() is None
    call = send_invoice_reminder.call_with_run("INV-8", amount=Decimal("99.90"))
    assert isinstance(call, countersign.GatedCall)
    assert call.value == {"message_id": "msg-INV-8"} and call.reported
    assert call.run_id.startswith("run_") and call.run.execution_status == "executed"
    assert seen[0] is not None and seen[0].run_id == call.run_id, "current_run() inside the function"
    assert countersign.current_run() is None
    receipt = call.receipt()
    assert receipt.run_id == call.run_id and receipt.execution_status == "executed"
    assert countersign.verify_receipt(receipt, client.receipt_keys())
