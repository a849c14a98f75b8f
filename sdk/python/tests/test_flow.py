"""The propose → decide → approve → execute → report → receipt flow, end to end."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

import countersign
from helpers import read_lines, recording_executor, reminder, runner_process


def test_allowed_action_runs_reports_and_gets_a_verified_receipt(gate, client, actor):
    payload = reminder(120, reasoning="Invoice is 14 days overdue")
    run = client.intercept("send_invoice_reminder", payload, "reminder-allowed-" + actor, actor=actor)
    assert isinstance(run, countersign.Run)
    assert run.run_id.startswith("run_")
    assert (run.governance_status, run.execution_status, run.executable) == ("allowed", "awaiting_execution", True)
    assert run.replayed is False
    assert run.actor == actor
    assert run.reasoning == "Invoice is 14 days overdue"
    assert run.approval is None
    assert len(run.policy_version) == 64

    # The same key and body again: the same run, not a new one.
    again = client.intercept("send_invoice_reminder", payload, "reminder-allowed-" + actor, actor=actor)
    assert again.run_id == run.run_id and again.replayed is True

    done = client.report_executed(run.run_id, {"message_id": "msg-981"})
    assert (done.execution_status, done.executable) == ("executed", False)
    assert done.execution is not None and done.execution.execution_result == {"message_id": "msg-981"}
    # An identical repeated report is harmless (that is what makes retries safe).
    assert client.report_executed(run.run_id, {"message_id": "msg-981"}).execution_status == "executed"

    status = client.status(run.run_id)
    assert status.execution_status == "executed"

    receipt = client.receipt(run.run_id)
    assert isinstance(receipt, countersign.Receipt)
    assert receipt.run_id == run.run_id
    assert receipt.governance_status == "allowed"
    assert receipt.execution_status == "executed"
    keys = client.receipt_keys()
    assert keys and keys[0].alg == "Ed25519"
    assert countersign.verify_receipt(receipt, keys) is True
    assert receipt.verify(keys[0].public_key) is True


def test_blocked_action_is_not_executable_and_not_stored(gate, client, store, actor):
    manager = countersign.PendingActionManager(client, store)
    ticket = manager.propose("delete_customer", {"customer_id": "C-1"}, actor=actor)
    assert isinstance(ticket, countersign.Ticket)
    assert (ticket.governance_status, ticket.executable, ticket.stored) == ("blocked", False, False)
    assert ticket.governance_reason == "Agents never delete customers"
    assert len(store) == 0


def test_pending_then_approved_runs_exactly_once_across_two_processes(gate, client, store, actor, tmp_path):
    manager = countersign.PendingActionManager(client, store)
    payload = reminder(1250.10)
    ticket = manager.propose("send_invoice_reminder", payload, actor=actor)
    assert (ticket.governance_status, ticket.executable, ticket.stored) == ("pending_approval", False, True)
    assert ticket.run is not None and ticket.run.approval is not None
    assert ticket.run.approval.group == "leads" and ticket.run.approval.approvers == ["alice", "bob"]
    assert store.get(ticket.run_id) is not None

    side_effects = tmp_path / "sent.txt"
    runner = countersign.ActionRunner(client, store)
    runner.when_executable("send_invoice_reminder", run=recording_executor(side_effects))
    summary = runner.run_pending_once()
    assert summary.pending == [ticket.run_id] and summary.ran == []
    assert read_lines(side_effects) == [], "nothing runs before approval"

    answer = gate.answer(ticket.run_id, "approve", "bob")
    assert answer["outcome"] == "recorded"
    assert answer["run"]["governance_status"] == "approved"

    # A fresh "restart": new objects on the same file, in two processes at once.
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=runner_process,
            args=(gate.url, gate.agent_key, store.path, str(side_effects), barrier, out),
        )
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0

    lines = read_lines(side_effects)
    assert len(lines) == 1, f"executed {len(lines)} times: {lines}"
    executor_pid = int(lines[0].split()[0])
    executed = [r for r in results if r["executed"]]
    assert [r["pid"] for r in executed] == [executor_pid]
    assert executed[0]["executed"] == [ticket.run_id]
    other = [r for r in results if not r["executed"]][0]
    assert other["failed"] == [] and other["errors"] == {}

    run = client.status(ticket.run_id)
    assert (run.governance_status, run.execution_status, run.executable) == ("approved", "executed", False)
    assert run.execution is not None
    assert run.execution.execution_result == {"sent_by": executor_pid, "invoice_id": payload["invoice_id"]}
    assert [a.approver for a in run.approvals] == ["bob"]
    assert len(store) == 0, "the ticket is forgotten once reported"

    # Later passes have nothing left to do.
    assert runner.run_pending_once().ran == []
    assert len(read_lines(side_effects)) == 1


def test_rejected_run_is_forgotten_and_never_executed(gate, client, store, actor, tmp_path):
    manager = countersign.PendingActionManager(client, store)
    ticket = manager.propose("send_invoice_reminder", reminder(900), actor=actor)
    assert ticket.stored
    gate.answer(ticket.run_id, "reject", "alice")

    side_effects = tmp_path / "sent.txt"
    runner = countersign.ActionRunner(client, store)
    runner.when_executable("send_invoice_reminder", run=recording_executor(side_effects))
    summary = runner.run_pending_once()
    assert summary.refused == {ticket.run_id: "rejected"}
    assert summary.ran == []
    assert read_lines(side_effects) == []
    assert len(store) == 0
    run = client.status(ticket.run_id)
    assert (run.governance_status, run.execution_status, run.executable) == ("rejected", "not_executed", False)
    with pytest.raises(countersign.ConflictError):
        client.report_executed(ticket.run_id, {"sneaky": True})


def test_expired_run_is_forgotten_and_never_executed(gate, client, store, actor, tmp_path):
    manager = countersign.PendingActionManager(client, store)
    ticket = manager.propose("rotate_api_token", {"token_id": "tok-1"}, actor=actor)
    assert ticket.governance_status == "pending_approval" and ticket.stored

    ran = []
    runner = countersign.ActionRunner(client, store)
    runner.when_executable("rotate_api_token", run=lambda payload: ran.append(payload))
    assert runner.run_pending_once().pending == [ticket.run_id]

    run = client.wait_for_decision(ticket.run_id, timeout=15, poll_interval=0.2)
    assert run.governance_status == "expired"
    summary = runner.run_pending_once()
    assert summary.refused == {ticket.run_id: "expired"}
    assert ran == []
    assert len(store) == 0
    # Too late to approve: the answer URL is dead and the run stays expired.
    with pytest.raises(countersign.CountersignError) as e:
        gate.answer(ticket.run_id, "approve", "bob")
    assert e.value.status in (409, 403)
    assert client.status(ticket.run_id).executable is False


def test_failing_executor_is_reported_failed(gate, client, store, actor):
    manager = countersign.PendingActionManager(client, store)
    ticket = manager.propose("send_invoice_reminder", reminder(700), actor=actor)
    gate.answer(ticket.run_id)

    calls = []

    def broken(payload):
        calls.append(payload["invoice_id"])
        raise RuntimeError("SMTP provider rejected the message")

    runner = countersign.ActionRunner(client, store)
    runner.when_executable("send_invoice_reminder", run=broken)
    summary = runner.run_pending_once()
    assert summary.failed == [ticket.run_id] and summary.executed == []
    assert calls == [ticket.payload["invoice_id"]]
    run = client.status(ticket.run_id)
    assert run.execution_status == "failed"
    assert run.execution is not None
    assert run.execution.execution_error == "SMTP provider rejected the message"
    assert len(store) == 0
    assert runner.run_pending_once().ran == [] and calls == [ticket.payload["invoice_id"]]
    assert client.receipt(ticket.run_id).receipt["execution"]["error"] == "SMTP provider rejected the message"


def test_a_claimed_but_unreported_run_is_never_re_executed_automatically(gate, client, store, actor):
    """Crash safety: a process died after claiming (mid-execution)."""
    manager = countersign.PendingActionManager(client, store)
    ticket = manager.propose("send_invoice_reminder", reminder(800), actor=actor)
    gate.answer(ticket.run_id)
    assert store.claim(ticket.run_id, "dead-host:4242:deadbeef")  # the crashed process

    ran = []
    runner = countersign.ActionRunner(client, store, stale_after=3600)
    runner.when_executable("send_invoice_reminder", run=lambda p: ran.append(p) or {"ok": True})
    summary = runner.run_pending_once()
    assert summary.in_progress == [ticket.run_id] and ran == []

    runner.stale_after = 0
    summary = runner.run_pending_once()
    assert summary.stuck == [ticket.run_id] and ran == []
    assert store.get(ticket.run_id).claimed_by == "dead-host:4242:deadbeef"

    # The operator checked: it did not happen. Releasing lets the next pass run it.
    assert store.release(ticket.run_id)
    summary = runner.run_pending_once()
    assert summary.executed == [ticket.run_id] and len(ran) == 1
    assert client.status(ticket.run_id).execution_status == "executed"


def test_an_owed_report_is_retried_without_executing_again(gate, client, store, actor):
    """The executor ran, but the report never reached the gate."""
    manager = countersign.PendingActionManager(client, store)
    ticket = manager.propose("send_invoice_reminder", reminder(650), actor=actor)
    gate.answer(ticket.run_id)

    ran = []
    down = gate.client(base_url="http://127.0.0.1:9", max_retries=0)  # nothing listens there
    runner = countersign.ActionRunner(client, store)
    runner.when_executable("send_invoice_reminder", run=lambda p: ran.append(1) or {"amount": 650.5})

    original = client.report_executed
    client.report_executed = down.report_executed  # the gate is unreachable at report time
    try:
        summary = runner.run_pending_once()
    finally:
        client.report_executed = original
    assert ran == [1] and summary.executed == [] and ticket.run_id in summary.errors
    rec = store.get(ticket.run_id)
    assert rec is not None and rec.outcome == "executed"

    summary = runner.run_pending_once()
    assert summary.executed == [ticket.run_id] and ran == [1]
    run = client.status(ticket.run_id)
    assert run.execution is not None and run.execution.execution_result == {"amount": 650.5}


def test_reproposing_an_approved_ticket_hands_it_to_the_caller_once(gate, client, store, actor):
    manager = countersign.PendingActionManager(client, store)
    payload = reminder(990)
    first = manager.propose("send_invoice_reminder", payload, "reminder-" + actor, actor=actor)
    assert first.stored
    gate.answer(first.run_id)
    second = manager.propose("send_invoice_reminder", payload, "reminder-" + actor, actor=actor)
    assert second.run_id == first.run_id
    assert (second.governance_status, second.executable) == ("approved", True)
    assert len(store) == 0, "the caller executes it now, so the runner must not"
    client.report_executed(second.run_id, {"sent": True})


def test_wait_for_decision_times_out_then_sees_the_approval(gate, client, actor):
    run = client.intercept("send_invoice_reminder", reminder(5000), actor=actor)
    assert run.is_pending
    started = time.monotonic()
    with pytest.raises(countersign.DecisionTimeout) as e:
        client.wait_for_decision(run.run_id, timeout=0.6, poll_interval=0.2)
    assert 0.5 <= time.monotonic() - started < 5
    assert e.value.run_id == run.run_id
    assert e.value.run is not None and e.value.run.governance_status == "pending_approval"
    assert e.value.code == "decision_timeout"

    timer = threading.Timer(0.5, gate.answer, args=(run.run_id, "approve", "alice"))
    timer.start()
    try:
        decided = client.wait_for_decision(run, timeout=20, poll_interval=0.1)
    finally:
        timer.join()
    assert decided.governance_status == "approved" and decided.executable
    assert decided.approvals[0].approver == "alice" and decided.approvals[0].decision == "approve"
    # An already decided run returns at once.
    assert client.wait_for_decision(run.run_id, timeout=0).governance_status == "approved"


def test_the_store_is_shared_by_path_and_survives_reopening(tmp_path: Path):
    path = tmp_path / "shared.db"
    a = countersign.SQLitePendingStore(path)
    a.save("run_x", "send_invoice_reminder", {"amount": 1.5, "invoice_id": "INV-1"}, idempotency_key="k")
    b = countersign.SQLitePendingStore(str(path))
    rec = b.get("run_x")
    assert rec is not None and rec.payload == {"amount": 1.5, "invoice_id": "INV-1"} and rec.idempotency_key == "k"
    assert b.claim("run_x", "one") is True
    assert a.claim("run_x", "two") is False
    assert b.release("run_x", owner="two") is False
    assert b.release("run_x", owner="one") is True
    assert a.claim("run_x", "two") is True
    a.forget("run_x")
    assert b.list() == [] and len(a) == 0
    with pytest.raises(ValueError):
        countersign.SQLitePendingStore(":memory:")


def test_run_forever_executes_after_approval_and_stops_on_request(gate, client, store, actor, tmp_path):
    manager = countersign.PendingActionManager(client, store)
    ticket = manager.propose("send_invoice_reminder", reminder(3000), actor=actor)
    side_effects = tmp_path / "sent.txt"
    runner = countersign.ActionRunner(client, store)
    runner.when_executable("send_invoice_reminder", run=recording_executor(side_effects))
    stop = threading.Event()
    worker = threading.Thread(target=runner.run_forever, kwargs={"interval": 0.1, "stop_event": stop})
    worker.start()
    try:
        time.sleep(0.3)
        assert read_lines(side_effects) == []
        gate.answer(ticket.run_id)
        deadline = time.monotonic() + 15
        while not read_lines(side_effects) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive()
    assert len(read_lines(side_effects)) == 1
    assert client.wait_for_decision(ticket.run_id, 0).execution_status in ("executed", "awaiting_execution")
    deadline = time.monotonic() + 5
    while client.status(ticket.run_id).execution_status != "executed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.status(ticket.run_id).execution_status == "executed"
