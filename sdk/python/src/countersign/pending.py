"""Durable pending actions: propose now, execute after approval.

- :class:`SQLitePendingStore` (in :mod:`countersign.pending_store`) keeps
  proposals that await approval in an SQLite file, so they survive restarts
  and can be shared by several worker processes on one machine.
- :class:`PendingActionManager` proposes actions and saves the pending ones.
- :class:`ActionRunner` checks the stored proposals against the gate and
  executes each approved one exactly once, then reports the outcome.

Crash safety
------------
Before executing, a runner *claims* the run with a conditional UPDATE
(``claimed_by IS NULL``), so among any number of processes exactly one
executes it. The outcome is written to the store before it is reported, so
a report that fails (gate unreachable) is retried later without executing
again. If a process dies *during* execution the outcome is unknown: the run
stays claimed and is never executed again automatically. Runners list it in
:attr:`RunnerSummary.stuck` once the claim is older than ``stale_after``
(and in :attr:`RunnerSummary.in_progress` before that), and log a warning.
An operator resolves it after checking whether the action happened:
:meth:`ActionRunner.abandon` reports it failed and forgets it,
:meth:`ActionRunner.report_stuck_executed` reports it executed, and
:meth:`SQLitePendingStore.release` removes the claim so the next pass
executes it again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, TypeVar, overload

from ._util import _CURRENT_RUN, _error_text, _is_async_callable, _loads, _refuse_awaitable, _result_json
from .canonical import dumps
from .client import Client
from .errors import ConflictError, CountersignError, GateUnavailable, NotFound
from .models import Run, Ticket

# Re-exported: ``countersign.pending`` has always offered the store too.
from .pending_store import PendingRecord, SQLitePendingStore

__all__ = [
    "PendingRecord",
    "SQLitePendingStore",
    "PendingActionManager",
    "ActionRunner",
    "RunnerSummary",
    "Executor",
]

logger = logging.getLogger("countersign")

#: An executor: receives the proposed payload, performs the action and
#: returns a JSON-serializable result (raising means the action failed).
Executor = Callable[[Dict[str, Any]], Any]
F = TypeVar("F", bound=Executor)


def _new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class PendingActionManager:
    """Proposes actions and keeps the ones awaiting approval.

    Args:
        client: The gate client.
        pending_store: Where pending proposals are kept for an
            :class:`ActionRunner`.
    """

    def __init__(self, client: Client, pending_store: SQLitePendingStore) -> None:
        self.client = client
        self.store = pending_store
        self.owner = _new_owner()

    def propose(
        self,
        action: str,
        payload: Mapping[str, Any],
        idempotency_key: Optional[str] = None,
        *,
        actor: Optional[str] = None,
        reasoning: Optional[str] = None,
        source: Any = None,
    ) -> Ticket:
        """Proposes an action and returns a :class:`Ticket`.

        - ``ticket.executable`` true: perform the action now with
          ``ticket.payload`` and report it (:meth:`Client.report_executed`).
        - pending approval: the proposal is saved (``ticket.stored``); an
          :class:`ActionRunner` with an executor for ``action`` performs and
          reports it once approved, even after a restart.
        - blocked: nothing is saved; never perform it.

        A generated idempotency key (when none is given) is saved with the
        ticket. Proposing again with the key of a stored, since approved
        proposal hands execution to the caller only if no runner claimed it
        yet (the stored ticket is then removed), so it still runs once.
        """
        key = idempotency_key or str(uuid.uuid4())
        run = self.client.intercept(action, payload, key, actor=actor, reasoning=reasoning, source=source)
        executable = run.executable
        stored = False
        if run.is_pending:
            self.store.save(run.run_id, action, payload, idempotency_key=key, governance_status=run.governance_status)
            stored = True
        elif self.store.get(run.run_id) is not None:
            if executable and not self.store.claim(run.run_id, self.owner):
                executable = False  # a runner is executing it
            elif executable or run.is_refused or run.is_reported:
                self.store.forget(run.run_id)
        return Ticket(
            executable=executable,
            payload=dict(payload),
            run_id=run.run_id,
            governance_status=run.governance_status,
            action=action,
            governance_reason=run.governance_reason,
            idempotency_key=key,
            stored=stored,
            run=run,
        )


@dataclass
class RunnerSummary:
    """What one :meth:`ActionRunner.run_pending_once` pass did (run ids).

    Attributes:
        executed: Executed here and reported executed.
        failed: Executed here, raised, and reported failed.
        refused: Rejected, blocked or expired: forgotten, never executed
            (run id → governance status).
        pending: Still awaiting approval; kept.
        in_progress: Claimed by another runner recently; left alone.
        stuck: Claimed longer than ``stale_after`` without a recorded
            outcome: the executing process probably died. Never re-executed
            automatically; see the module documentation.
        forgotten: Dropped because the gate already has a report for them
            (or no longer knows the run).
        errors: Problems met (run id → message); the records are kept.
    """

    executed: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)
    refused: Dict[str, str] = field(default_factory=dict)
    pending: List[str] = field(default_factory=list)
    in_progress: List[str] = field(default_factory=list)
    stuck: List[str] = field(default_factory=list)
    forgotten: List[str] = field(default_factory=list)
    errors: Dict[str, str] = field(default_factory=dict)

    @property
    def ran(self) -> List[str]:
        """Runs executed in this pass (successfully or not)."""
        return self.executed + self.failed


class ActionRunner:
    """Executes stored proposals once the gate says they are executable.

    Args:
        client: The gate client.
        pending_store: The store :class:`PendingActionManager` saves to.
        stale_after: Seconds after which a claim without a recorded outcome
            is reported as ``stuck`` rather than ``in_progress``.
        owner: This runner's name in claims (default ``host:pid:random``).
    """

    def __init__(
        self,
        client: Client,
        pending_store: SQLitePendingStore,
        *,
        stale_after: float = 600.0,
        owner: Optional[str] = None,
    ) -> None:
        self.client = client
        self.store = pending_store
        self.stale_after = float(stale_after)
        self.owner = owner or _new_owner()
        self._executors: Dict[str, Executor] = {}

    @overload
    def when_executable(self, action: str) -> Callable[[F], F]: ...

    @overload
    def when_executable(self, action: str, run: F) -> F: ...

    def when_executable(self, action: str, run: Optional[F] = None) -> Any:
        """Registers ``run(payload) -> result`` as the executor of ``action``.

        Also usable as a decorator: ``@runner.when_executable("send_invoice_reminder")``.
        """
        def register(fn: F) -> F:
            if not callable(fn):
                raise TypeError("the executor must be callable")
            if _is_async_callable(fn):
                raise TypeError(
                    f"the executor of {action!r} is an async function: use countersign.AsyncActionRunner"
                )
            self._executors[action] = fn
            return fn

        return register if run is None else register(run)

    def register(self, gated_function: Any) -> None:
        """Registers a :func:`countersign.gated` function as the executor of its action."""
        action = getattr(gated_function, "action", None)
        executor = getattr(gated_function, "executor", None)
        if not isinstance(action, str) or not callable(executor):
            raise TypeError("register() takes a function decorated with @countersign.gated")
        if getattr(gated_function, "is_async", False):
            raise TypeError(f"{action!r} is an async def: register it with countersign.AsyncActionRunner")
        self.when_executable(action, run=executor)

    # ------------------------------------------------------------------ passes

    def run_pending_once(self) -> RunnerSummary:
        """Checks every stored proposal once; see :class:`RunnerSummary`.

        Approved (executable) runs are claimed, executed exactly once and
        reported; rejected, blocked and expired ones are forgotten without
        executing; pending ones are kept. When the gate is unreachable the
        pass stops early (the error is in ``errors``) and the rest waits for
        the next pass.
        """
        summary = RunnerSummary()
        for rec in self.store.list():
            try:
                self._process(rec, summary)
            except GateUnavailable as e:
                summary.errors[rec.run_id] = str(e)
                self.store.update(rec.run_id, last_error=str(e))
                break
            except CountersignError as e:
                summary.errors[rec.run_id] = str(e)
                self.store.update(rec.run_id, last_error=str(e))
        if summary.stuck:
            logger.warning(
                "runs claimed but never reported (a process died while executing them?): %s",
                ", ".join(summary.stuck),
            )
        return summary

    def _process(self, rec: PendingRecord, summary: RunnerSummary) -> None:
        if rec.claimed_by is not None:
            if rec.outcome is not None:
                # Executed already; only the report is owed. Reports are
                # idempotent, so any runner may send it.
                self._report(rec.run_id, rec.outcome, rec.outcome_value, summary)
                return
            run = self._status(rec, summary)
            if run is None:
                return
            if run.is_reported:
                self.store.forget(rec.run_id)
                summary.forgotten.append(rec.run_id)
            elif rec.claimed_at is not None and time.time() - rec.claimed_at >= self.stale_after:
                summary.stuck.append(rec.run_id)
            else:
                summary.in_progress.append(rec.run_id)
            return

        run = self._status(rec, summary)
        if run is None:
            return
        if run.is_refused:
            self.store.forget(rec.run_id)
            summary.refused[rec.run_id] = run.governance_status
            return
        if run.is_pending:
            if run.governance_status != rec.governance_status:
                self.store.update(rec.run_id, governance_status=run.governance_status)
            summary.pending.append(rec.run_id)
            return
        if not run.executable:
            # Allowed or approved, but someone already reported it.
            self.store.forget(rec.run_id)
            summary.forgotten.append(rec.run_id)
            return
        executor = self._executors.get(rec.action)
        if executor is None:
            message = f"no executor registered for action {rec.action!r}"
            self.store.update(rec.run_id, governance_status=run.governance_status, last_error=message)
            summary.errors[rec.run_id] = message
            return
        if not self.store.claim(rec.run_id, self.owner):
            summary.in_progress.append(rec.run_id)
            return
        # The claim is ours; make sure nobody reported it in the meantime.
        try:
            run = self.client.status(rec.run_id)
        except CountersignError:
            self.store.release(rec.run_id, self.owner)
            raise
        if not run.executable:
            if run.is_reported or run.is_refused:
                self.store.forget(rec.run_id)
                summary.forgotten.append(rec.run_id)
            else:
                self.store.release(rec.run_id, self.owner)
            return
        token = _CURRENT_RUN.set(run)
        try:
            result = executor(dict(rec.payload))
            _refuse_awaitable(result, rec.action)
        except Exception as exc:  # the action failed: report it
            outcome, value_json = "failed", dumps(_error_text(exc))
            logger.info("run %s (%s) failed: %s", rec.run_id, rec.action, exc)
        else:
            outcome, value_json = "executed", _result_json(result)
        finally:
            _CURRENT_RUN.reset(token)
        self.store.record_outcome(rec.run_id, self.owner, outcome, value_json)
        self._report(rec.run_id, outcome, _loads(value_json, exact=True), summary)

    def _status(self, rec: PendingRecord, summary: RunnerSummary) -> Optional[Run]:
        try:
            return self.client.status(rec.run_id)
        except NotFound:
            # The gate does not know this run (another gate or workspace, or
            # a wiped database): it can never become executable there.
            self.store.forget(rec.run_id)
            summary.forgotten.append(rec.run_id)
            return None

    def _report(self, run_id: str, outcome: str, value: Any, summary: RunnerSummary) -> None:
        try:
            if outcome == "executed":
                self.client.report_executed(run_id, value)
            else:
                self.client.report_failed(run_id, str(value))
        except ConflictError as e:
            run = self.client.status(run_id)
            if run.is_reported:
                self.store.forget(run_id)
                summary.forgotten.append(run_id)
                return
            self.store.update(run_id, last_error=str(e))
            summary.errors[run_id] = str(e)
            return
        except CountersignError as e:
            self.store.update(run_id, last_error=str(e))
            raise
        self.store.forget(run_id)
        (summary.executed if outcome == "executed" else summary.failed).append(run_id)

    # ------------------------------------------------------------------ operators

    def abandon(self, run_id: str, execution_error: str = "execution was interrupted; outcome unknown") -> Run:
        """Reports a stuck run failed and forgets it (use after checking what happened)."""
        run = self.client.report_failed(run_id, execution_error)
        self.store.forget(run_id)
        return run

    def report_stuck_executed(self, run_id: str, execution_result: Any = None) -> Run:
        """Reports a stuck run executed and forgets it (you found it did happen)."""
        run = self.client.report_executed(run_id, execution_result)
        self.store.forget(run_id)
        return run

    def run_forever(
        self,
        interval: float = 5.0,
        *,
        stop_event: Optional[threading.Event] = None,
        max_passes: Optional[int] = None,
    ) -> None:
        """Calls :meth:`run_pending_once` every ``interval`` seconds.

        Stops when ``stop_event`` is set or after ``max_passes`` passes;
        otherwise runs until interrupted. Errors of a pass are logged and the
        loop goes on.
        """
        stop = stop_event or threading.Event()
        passes = 0
        while not stop.is_set():
            try:
                summary = self.run_pending_once()
                if summary.ran or summary.refused:
                    logger.info(
                        "runner pass: %d executed, %d failed, %d refused, %d pending",
                        len(summary.executed), len(summary.failed), len(summary.refused), len(summary.pending),
                    )
            except Exception:  # keep the loop alive; the next pass retries
                logger.exception("runner pass failed")
            passes += 1
            if max_passes is not None and passes >= max_passes:
                return
            stop.wait(interval)
