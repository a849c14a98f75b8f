"""asyncio: @gated on `async def`, AsyncClient, AsyncPendingActionManager, AsyncActionRunner."""

from __future__ import annotations

import asyncio
import threading
import warnings
from decimal import Decimal
from typing import Any, Dict, List

import pytest

import countersign
from helpers import CountingForwarder, reminder


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---------------------------------------------------------------- @gated on async def


def test_gated_async_def_is_awaited_before_it_is_reported_executed(gate, actor):
    """Before the fix the wrapper reported `executed` with `unserializable_result`
    (the coroutine object) before the body ever ran."""
    steps: List[str] = []

    async def main() -> Dict[str, Any]:
        async with gate.aclient() as client:

            @countersign.gated("send_invoice_reminder", client=client, actor=actor)
            async def send_invoice_reminder(invoice_id: str, amount: Decimal) -> Dict[str, Any]:
                steps.append("started")
                seen = countersign.current_run()
                assert seen is not None and seen.governance_status == "allowed"
                # While the body is suspended here, the gate has no report yet.
                status = await client.status(seen.run_id)
                steps.append(status.execution_status)
                await asyncio.sleep(0.05)
                steps.append("finished")
                return {"message_id": f"msg-{invoice_id}"}

            assert asyncio.iscoroutinefunction(send_invoice_reminder)
            result = await send_invoice_reminder("INV-A1", Decimal("120.10"))
            assert result == {"message_id": "msg-INV-A1"}
            runs, _ = await countersign.AsyncClient(api_key=gate.admin_key, base_url=gate.url).list_runs(actor=actor)
            assert len(runs) == 1
            return (await client.status(runs[0].run_id)).raw

    raw = run(main())
    assert steps == ["started", "awaiting_execution", "finished"]
    assert raw["execution_status"] == "executed"
    assert raw["execution"]["execution_result"] == {"message_id": "msg-INV-A1"}


def test_gated_async_def_failure_is_reported_failed_and_re_raised(gate, actor):
    async def main() -> None:
        async with gate.aclient() as client:

            @countersign.gated("send_invoice_reminder", client=client, actor=actor)
            async def send_invoice_reminder(invoice_id: str, amount: int) -> None:
                await asyncio.sleep(0.01)
                raise ConnectionError("SMTP connection refused")

            with pytest.raises(ConnectionError):
                await send_invoice_reminder("INV-A2", 10)

    run(main())
    runs, _ = gate.admin().list_runs(actor=actor, limit=10)
    assert len(runs) == 1
    done = gate.client().status(runs[0].run_id)
    assert done.execution_status == "failed"
    assert done.execution is not None and done.execution.execution_error == "SMTP connection refused"


def test_gated_async_def_refusals_never_run_the_body(gate, actor):
    calls: List[str] = []

    async def main() -> None:
        client = gate.aclient()

        @countersign.gated("send_invoice_reminder", client=client, actor=actor)
        async def send_invoice_reminder(invoice_id: str, amount: int) -> None:
            calls.append(invoice_id)

        @countersign.gated("delete_customer", client=client, actor=actor)
        async def delete_customer(customer_id: str) -> None:
            calls.append(customer_id)

        with pytest.raises(countersign.ApprovalPending) as pending:
            await send_invoice_reminder("INV-A3", 5000)
        assert pending.value.run.approval is not None
        with pytest.raises(countersign.ActionBlocked):
            await delete_customer("C-1")
        await client.aclose()

    run(main())
    assert calls == []


def test_gated_async_def_with_a_sync_client_and_the_default_client(gate, actor, monkeypatch):
    sync_client = gate.client()

    @countersign.gated("send_invoice_reminder", client=sync_client, actor=actor)
    async def with_sync(invoice_id: str, amount: int) -> str:
        await asyncio.sleep(0)
        return "sent"

    monkeypatch.setenv("COUNTERSIGN_API_KEY", gate.agent_key)
    monkeypatch.setenv("COUNTERSIGN_URL", gate.url)

    @countersign.gated("send_invoice_reminder", actor=actor)
    async def from_env(invoice_id: str, amount: int) -> str:
        await asyncio.sleep(0)
        return "sent too"

    async def main() -> None:
        call = await with_sync.call_with_run("INV-A4", 10)
        assert isinstance(call, countersign.AsyncGatedCall)
        assert call.value == "sent" and call.reported and call.run.execution_status == "executed"
        receipt = await call.receipt()
        assert receipt.run_id == call.run_id and receipt.execution_status == "executed"
        assert await from_env("INV-A5", 11) == "sent too"

    run(main())
    runs, _ = gate.admin().list_runs(actor=actor, limit=10)
    assert sorted(r.execution_status for r in runs) == ["executed", "executed"]


def test_a_plain_function_returning_a_coroutine_is_reported_failed_not_executed(gate, client, actor):
    ran: List[int] = []

    async def really_send() -> str:
        ran.append(1)
        return "sent"

    @countersign.gated("send_invoice_reminder", client=client, actor=actor)
    def send_invoice_reminder(invoice_id: str, amount: int) -> Any:
        return really_send()  # forgot to await: nothing was sent

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the coroutine is closed, not left un-awaited
        with pytest.raises(TypeError, match="awaitable"):
            send_invoice_reminder("INV-A6", 10)
    assert ran == []
    runs, _ = gate.admin().list_runs(actor=actor, limit=10)
    done = client.status(runs[0].run_id)
    assert done.execution_status == "failed"
    assert done.execution is not None and "awaitable" in (done.execution.execution_error or "")


def test_async_clients_are_refused_for_plain_functions_and_async_executors_by_the_sync_runner(gate, store):
    aclient = gate.aclient()
    with pytest.raises(TypeError, match="async def"):

        @countersign.gated("send_invoice_reminder", client=aclient)
        def send(invoice_id: str) -> None:
            pass

    @countersign.gated("send_invoice_reminder", client=aclient)
    async def asend(invoice_id: str) -> None:
        pass

    runner = countersign.ActionRunner(gate.client(), store)
    with pytest.raises(TypeError, match="AsyncActionRunner"):
        runner.register(asend)

    async def executor(payload: Dict[str, Any]) -> None:
        pass

    with pytest.raises(TypeError, match="AsyncActionRunner"):
        runner.when_executable("send_invoice_reminder", run=executor)


# ---------------------------------------------------------------- AsyncClient


def test_async_client_round_trip_with_receipt(gate, actor):
    async def main() -> None:
        async with gate.aclient() as client:
            payload = reminder(120)
            first = await client.intercept("send_invoice_reminder", payload, "a-rt-" + actor, actor=actor)
            assert isinstance(first, countersign.Run)
            assert (first.governance_status, first.executable, first.replayed) == ("allowed", True, False)
            again = await client.intercept("send_invoice_reminder", payload, "a-rt-" + actor, actor=actor)
            assert again.run_id == first.run_id and again.replayed
            done = await client.report_executed(first, {"message_id": "m-1", "amount": Decimal("120.10")})
            assert done.execution_status == "executed"
            receipt = await client.receipt(first.run_id)
            keys = await client.receipt_keys()
            assert countersign.verify_receipt(receipt, keys) is True
            assert await client.health() is True

            # Same errors, same types.
            with pytest.raises(countersign.NotFound) as e:
                await client.status("run_0000000000000000000000000000dead")
            assert (e.value.status, e.value.code) == (404, "not_found")
            with pytest.raises(countersign.IdempotencyConflict):
                await client.intercept("send_invoice_reminder", reminder(121), "a-rt-" + actor, actor=actor)
            with pytest.raises(countersign.ValidationError) as v:
                await client.intercept("bad action!", reminder(1))
            assert v.value.field == "action"
            with pytest.raises(countersign.PermissionDenied):
                await client.list_runs()
            with pytest.raises(countersign.ConflictError):
                await client.report_failed(first.run_id, "changed my mind")

    run(main())


def test_async_client_many_concurrent_calls_reuse_a_few_connections(gate, actor):
    forwarder = CountingForwarder(gate.port)

    async def main() -> List[countersign.Run]:
        async with countersign.AsyncClient(api_key=gate.agent_key, base_url=forwarder.url) as client:
            for _ in range(5):  # one after the other: one connection
                await client.intercept("send_invoice_reminder", reminder(10), actor=actor)
            assert forwarder.accepted == 1
            runs = await asyncio.gather(
                *(client.intercept("send_invoice_reminder", reminder(10), actor=actor) for _ in range(10))
            )
            assert forwarder.accepted <= 11
            return list(runs)

    try:
        runs = run(main())
        assert len({r.run_id for r in runs}) == 10
        assert forwarder.wait_closed(forwarder.accepted), "aclose() closed every connection"
    finally:
        forwarder.close()


def test_async_wait_for_decision_sees_the_approval(gate, actor):
    async def main() -> None:
        async with gate.aclient() as client:
            pending = await client.intercept("send_invoice_reminder", reminder(5000), actor=actor)
            with pytest.raises(countersign.DecisionTimeout):
                await client.wait_for_decision(pending.run_id, timeout=0.3, poll_interval=0.1)
            approver = threading.Thread(target=gate.answer, args=(pending.run_id, "approve", "alice"))
            approver.start()
            decided = await client.wait_for_decision(pending, timeout=20, poll_interval=0.1)
            approver.join()
            assert decided.governance_status == "approved" and decided.executable

    run(main())


# ---------------------------------------------------------------- async manager and runner


def test_async_manager_and_runner_execute_an_approved_action_once(gate, store, actor):
    sent: List[Any] = []

    async def main() -> None:
        async with gate.aclient() as client:
            manager = countersign.AsyncPendingActionManager(client, store)
            runner = countersign.AsyncActionRunner(client, store)

            @runner.when_executable("send_invoice_reminder")
            async def send(payload: Dict[str, Any]) -> Dict[str, Any]:
                await asyncio.sleep(0.01)
                seen = countersign.current_run()
                sent.append((payload["amount"], seen.run_id if seen else None))
                return {"sent": payload["invoice_id"]}

            ticket = await manager.propose(
                "send_invoice_reminder", reminder(Decimal("1250.10")), actor=actor  # type: ignore[arg-type]
            )
            assert (ticket.governance_status, ticket.stored, ticket.executable) == ("pending_approval", True, False)
            assert (await runner.run_pending_once()).pending == [ticket.run_id]
            assert sent == []

            rejected = await manager.propose("send_invoice_reminder", reminder(900), actor=actor)
            await asyncio.to_thread(gate.answer, rejected.run_id, "reject", "alice")
            await asyncio.to_thread(gate.answer, ticket.run_id, "approve", "bob")
            summary = await runner.run_pending_once()
            assert summary.executed == [ticket.run_id]
            assert summary.refused == {rejected.run_id: "rejected"}
            # The store gave the executor the exact decimal, not a float.
            assert sent == [(Decimal("1250.10"), ticket.run_id)]
            assert str(sent[0][0]) == "1250.10"
            done = await client.status(ticket.run_id)
            assert done.execution is not None
            assert done.execution.execution_result == {"sent": ticket.payload["invoice_id"]}
            assert len(store) == 0
            assert (await runner.run_pending_once()).ran == [] and len(sent) == 1

    run(main())


def test_async_gated_with_a_manager_runs_later_through_the_async_runner(gate, store, actor):
    calls: List[Any] = []

    async def main() -> None:
        async with gate.aclient() as client:
            manager = countersign.AsyncPendingActionManager(client, store)

            @countersign.gated("send_invoice_reminder", manager=manager, actor=actor)
            async def send_invoice_reminder(invoice_id: str, amount: int) -> Dict[str, str]:
                await asyncio.sleep(0)
                calls.append(invoice_id)
                return {"sent": invoice_id}

            with pytest.raises(countersign.ApprovalPending) as e:
                await send_invoice_reminder("INV-A7", 750)
            ticket = e.value.ticket
            assert ticket is not None and ticket.stored and calls == []

            runner = countersign.AsyncActionRunner(client, store)
            runner.register(send_invoice_reminder)
            stop = asyncio.Event()
            worker = asyncio.ensure_future(runner.run_forever(0.05, stop_event=stop))
            await asyncio.to_thread(gate.answer, ticket.run_id)
            for _ in range(200):
                if calls:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(worker, 5)
            assert calls == ["INV-A7"]
            done = await client.status(ticket.run_id)
            assert done.execution is not None and done.execution.execution_result == {"sent": "INV-A7"}

    run(main())


def test_async_runner_reports_a_failing_async_executor_failed(gate, store, actor):
    async def main() -> None:
        async with gate.aclient() as client:
            manager = countersign.AsyncPendingActionManager(client, store)
            runner = countersign.AsyncActionRunner(client, store)

            async def broken(payload: Dict[str, Any]) -> None:
                await asyncio.sleep(0)
                raise RuntimeError("SMTP provider rejected the message")

            runner.when_executable("send_invoice_reminder", run=broken)
            ticket = await manager.propose("send_invoice_reminder", reminder(700), actor=actor)
            await asyncio.to_thread(gate.answer, ticket.run_id)
            summary = await runner.run_pending_once()
            assert summary.failed == [ticket.run_id]
            done = await client.status(ticket.run_id)
            assert done.execution_status == "failed"
            assert done.execution is not None
            assert done.execution.execution_error == "SMTP provider rejected the message"

    run(main())


def test_async_callable_objects_and_partials_count_as_async(gate, store, actor):
    import functools

    class Sender:
        def __init__(self) -> None:
            self.sent: List[str] = []

        async def __call__(self, invoice_id: str, amount: int) -> str:
            await asyncio.sleep(0)
            self.sent.append(invoice_id)
            return "sent"

    sender = Sender()
    gated = countersign.gated("send_invoice_reminder", client=gate.client(), actor=actor)(sender)
    assert asyncio.run(gated("INV-A8", 10)) == "sent" and sender.sent == ["INV-A8"]
    runs, _ = gate.admin().list_runs(actor=actor, limit=10)
    assert runs[0].execution is not None and runs[0].execution.execution_result == "sent"

    async def send(payload: Dict[str, Any], channel: str) -> None:
        pass

    runner = countersign.ActionRunner(gate.client(), store)
    with pytest.raises(TypeError, match="AsyncActionRunner"):
        runner.when_executable("send_invoice_reminder", run=functools.partial(send, channel="email"))
