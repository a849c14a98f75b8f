"""The asyncio flavour of the SDK: :class:`AsyncClient`,
:class:`AsyncPendingActionManager` and :class:`AsyncActionRunner`.

They take the same arguments, return the same types and raise the same
errors as :class:`~countersign.Client`, :class:`~countersign.PendingActionManager`
and :class:`~countersign.ActionRunner`; only the methods that talk to the
gate are coroutines. Standard library only (asyncio streams, no third-party
HTTP client). The pending store stays :class:`~countersign.SQLitePendingStore`
(the same file works for sync and async runners); its calls run in a worker
thread so they never block the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
import time
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar, overload

from ._aio_http import AsyncPool, Headers, roundtrip
from ._core import _TRANSIENT, RunRef, _BaseClient, _Deadline, _quoted, _Retry, _run_id, _Target
from ._util import _CURRENT_RUN, _error_text, _is_async_callable, _loads, _result_json
from .canonical import dumps
from .errors import ConflictError, CountersignError, DecisionTimeout, GateUnavailable, NotFound
from .models import ExecutionStatus, GovernanceStatus, Receipt, ReceiptKey, Run, Ticket
from .pending import RunnerSummary, _new_owner
from .pending_store import PendingRecord, SQLitePendingStore

__all__ = ["AsyncClient", "AsyncPendingActionManager", "AsyncActionRunner", "AsyncExecutor"]

logger = logging.getLogger("countersign")

#: An executor of :class:`AsyncActionRunner`: an ``async def`` (or a plain
#: function) receiving the proposed payload and returning a JSON-serializable
#: result; raising means the action failed.
AsyncExecutor = Callable[[Dict[str, Any]], Any]
F = TypeVar("F", bound=AsyncExecutor)
T = TypeVar("T")


class AsyncClient(_BaseClient):
    """An asyncio client of one Countersign gate: ``await client.intercept(...)``.

    Same arguments, defaults, results and errors as :class:`~countersign.Client`
    (``Client()`` and ``AsyncClient()`` read the same ``COUNTERSIGN_API_KEY``
    and ``COUNTERSIGN_URL``). Connections are kept alive and reused; close
    them with ``await client.aclose()`` or ``async with AsyncClient(...) as
    client:``. Proxies from the environment are not used: the client always
    connects to the gate directly.

    One client may serve many concurrent tasks of one event loop; each
    request uses its own connection from the pool.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: float = 10,
        max_retries: int = 3,
        *,
        connect_timeout: float = 5.0,
        deadline: Optional[float] = 15.0,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_after: float = 60.0,
        user_agent: Optional[str] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url,
            timeout,
            max_retries,
            connect_timeout=connect_timeout,
            deadline=deadline,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_retry_after=max_retry_after,
            user_agent=user_agent,
            ssl_context=ssl_context,
        )
        self._pool = AsyncPool()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the idle connections. The client stays usable (it reconnects)."""
        await self._pool.close()

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)  # absent if __init__ raised
        if pool is not None:
            pool.discard()

    # ------------------------------------------------------------------ HTTP

    async def _send(
        self, method: str, target: _Target, headers: Dict[str, str], data: Optional[bytes], deadline: _Deadline
    ) -> Tuple[int, str, Headers]:
        while True:
            conn = self._pool.take(target.origin)
            reused = conn is not None
            if conn is None:
                ctx = self._ssl() if target.scheme == "https" else None
                try:
                    conn = await asyncio.wait_for(self._pool.open(target, ctx), deadline.cap(self.connect_timeout))
                except asyncio.TimeoutError:
                    raise TimeoutError("timed out connecting") from None
            try:
                status, answer, body, keep_alive = await asyncio.wait_for(
                    roundtrip(conn, method, target, headers, data), deadline.cap(self.timeout)
                )
            except asyncio.TimeoutError:
                conn.close()
                raise TimeoutError("timed out waiting for the answer") from None
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, EOFError):
                conn.close()
                if reused:
                    continue  # the idle connection had been closed by the server; once more on a new one
                raise
            except BaseException:
                conn.close()
                raise
            if keep_alive:
                self._pool.give_back(target.origin, conn)
            else:
                conn.close()
            return status, body.decode("utf-8", "replace"), answer

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: bool = True,
        retry: bool = True,
        exact: bool = False,
    ) -> Tuple[int, Any]:
        """Sends one API request with retries; see :meth:`Client.request`."""
        target, headers, data = self._prepare(path, body, auth)
        deadline = _Deadline(self.deadline)
        attempts = self.max_retries + 1 if retry else 1
        what = f"{method} {path}"
        for attempt in range(attempts):
            try:
                status, text, answer_headers = await self._send(method, target, headers, data, deadline)
            except _TRANSIENT as e:
                step = self._after_transport_error(e, attempt, attempts, deadline, what)
            else:
                outcome = self._after_answer(status, text, answer_headers, exact, attempt, attempts, deadline, what)
                if not isinstance(outcome, _Retry):
                    return outcome
                step = outcome
            await asyncio.sleep(step.delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ API

    async def intercept(
        self,
        action: str,
        payload: Mapping[str, Any],
        idempotency_key: Optional[str] = None,
        *,
        actor: Optional[str] = None,
        reasoning: Optional[str] = None,
        source: Any = None,
    ) -> Run:
        """Proposes an action; the policy decides. See :meth:`Client.intercept`."""
        body = self._intercept_body(action, payload, idempotency_key, actor, reasoning, source)
        status, data = await self.request("POST", "/v1/intercept", body)
        return Run.from_json(data, replayed=status == 200)

    async def status(self, run_id: RunRef) -> Run:
        """The current state of a run, with its deliveries. See :meth:`Client.status`."""
        _, data = await self.request("GET", f"/v1/runs/{_quoted(run_id)}")
        return Run.from_json(data)

    #: Alias of :meth:`status`.
    get_run = status

    async def report_executed(self, run_id: RunRef, execution_result: Any = None) -> Run:
        """Reports the action performed. See :meth:`Client.report_executed`."""
        path = f"/v1/runs/{_quoted(run_id)}/executed"
        _, data = await self.request("POST", path, {"execution_result": execution_result})
        return Run.from_json(data)

    async def report_failed(self, run_id: RunRef, execution_error: str) -> Run:
        """Reports that performing the action failed. See :meth:`Client.report_failed`."""
        path = f"/v1/runs/{_quoted(run_id)}/failed"
        _, data = await self.request("POST", path, {"execution_error": execution_error})
        return Run.from_json(data)

    async def receipt(self, run_id: RunRef) -> Receipt:
        """The signed receipt of a run. See :meth:`Client.receipt`."""
        _, data = await self.request("GET", f"/v1/runs/{_quoted(run_id)}/receipt", exact=True)
        return self._receipt(data)

    async def receipt_keys(self) -> List[ReceiptKey]:
        """The gate's public receipt keys. See :meth:`Client.receipt_keys`."""
        _, data = await self.request("GET", "/v1/receipt-keys", auth=False)
        return self._keys(data)

    async def list_runs(
        self,
        *,
        governance_status: Optional[GovernanceStatus] = None,
        execution_status: Optional[ExecutionStatus] = None,
        action: Optional[str] = None,
        actor: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Tuple[List[Run], Optional[str]]:
        """Lists the workspace's runs (admin keys). See :meth:`Client.list_runs`."""
        path = self._runs_path(governance_status, execution_status, action, actor, limit, cursor)
        _, data = await self.request("GET", path)
        return self._runs_page(data)

    async def health(self) -> bool:
        """``True`` when the gate answers ``GET /healthz`` (no retries)."""
        try:
            status, _ = await self.request("GET", "/healthz", auth=False, retry=False)
        except CountersignError:
            return False
        return status == 200

    async def wait_for_decision(self, run_id: RunRef, timeout: float, poll_interval: float = 1.0) -> Run:
        """Polls until the run is no longer ``pending_approval``. See :meth:`Client.wait_for_decision`."""
        rid = _run_id(run_id)
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            run = await self.status(rid)
            if run.governance_status != "pending_approval":
                return run
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DecisionTimeout(
                    f"run {rid} is still pending approval after {timeout:g}s", run_id=rid, run=run
                )
            await asyncio.sleep(min(max(poll_interval, 0.01), remaining))


async def _in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs a (short, blocking) store call without blocking the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


class AsyncPendingActionManager:
    """:class:`~countersign.PendingActionManager` for asyncio: ``await manager.propose(...)``.

    Args:
        client: The gate client.
        pending_store: Where pending proposals are kept for an
            :class:`AsyncActionRunner` (or a sync :class:`~countersign.ActionRunner`).
    """

    def __init__(self, client: AsyncClient, pending_store: SQLitePendingStore) -> None:
        if not isinstance(client, AsyncClient):
            raise TypeError("AsyncPendingActionManager needs an AsyncClient")
        self.client = client
        self.store = pending_store
        self.owner = _new_owner()

    async def propose(
        self,
        action: str,
        payload: Mapping[str, Any],
        idempotency_key: Optional[str] = None,
        *,
        actor: Optional[str] = None,
        reasoning: Optional[str] = None,
        source: Any = None,
    ) -> Ticket:
        """Proposes an action and returns a :class:`~countersign.Ticket`.

        See :meth:`PendingActionManager.propose`.
        """
        key = idempotency_key or str(uuid.uuid4())
        run = await self.client.intercept(action, payload, key, actor=actor, reasoning=reasoning, source=source)
        executable = run.executable
        stored = False
        if run.is_pending:
            await _in_thread(
                self.store.save,
                run.run_id,
                action,
                payload,
                idempotency_key=key,
                governance_status=run.governance_status,
            )
            stored = True
        elif await _in_thread(self.store.get, run.run_id) is not None:
            if executable and not await _in_thread(self.store.claim, run.run_id, self.owner):
                executable = False  # a runner is executing it
            elif executable or run.is_refused or run.is_reported:
                await _in_thread(self.store.forget, run.run_id)
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


class AsyncActionRunner:
    """:class:`~countersign.ActionRunner` for asyncio: executes stored proposals once approved.

    Executors may be ``async def`` functions (awaited) or plain functions
    (called on the event loop's thread: keep them short). The crash-safety
    rules, the store format and :class:`~countersign.RunnerSummary` are those
    of the sync runner, and both kinds of runner may share one store file.

    Args:
        client: The gate client.
        pending_store: The store the manager saves to.
        stale_after: Seconds after which a claim without a recorded outcome
            is reported as ``stuck`` rather than ``in_progress``.
        owner: This runner's name in claims (default ``host:pid:random``).
    """

    def __init__(
        self,
        client: AsyncClient,
        pending_store: SQLitePendingStore,
        *,
        stale_after: float = 600.0,
        owner: Optional[str] = None,
    ) -> None:
        if not isinstance(client, AsyncClient):
            raise TypeError("AsyncActionRunner needs an AsyncClient")
        self.client = client
        self.store = pending_store
        self.stale_after = float(stale_after)
        self.owner = owner or _new_owner()
        self._executors: Dict[str, AsyncExecutor] = {}

    @overload
    def when_executable(self, action: str) -> Callable[[F], F]: ...

    @overload
    def when_executable(self, action: str, run: F) -> F: ...

    def when_executable(self, action: str, run: Optional[F] = None) -> Any:
        """Registers ``run(payload)`` (async or not) as the executor of ``action``; also a decorator."""

        def register(fn: F) -> F:
            if not callable(fn):
                raise TypeError("the executor must be callable")
            self._executors[action] = fn
            return fn

        return register if run is None else register(run)

    def register(self, gated_function: Any) -> None:
        """Registers a :func:`countersign.gated` function (async or not) as the executor of its action."""
        action = getattr(gated_function, "action", None)
        executor = getattr(gated_function, "executor", None)
        if not isinstance(action, str) or not callable(executor):
            raise TypeError("register() takes a function decorated with @countersign.gated")
        self.when_executable(action, run=executor)

    # ------------------------------------------------------------------ passes

    async def run_pending_once(self) -> RunnerSummary:
        """Checks every stored proposal once; see :meth:`ActionRunner.run_pending_once`."""
        summary = RunnerSummary()
        for rec in await _in_thread(self.store.list):
            try:
                await self._process(rec, summary)
            except GateUnavailable as e:
                summary.errors[rec.run_id] = str(e)
                await _in_thread(self.store.update, rec.run_id, last_error=str(e))
                break
            except CountersignError as e:
                summary.errors[rec.run_id] = str(e)
                await _in_thread(self.store.update, rec.run_id, last_error=str(e))
        if summary.stuck:
            logger.warning(
                "runs claimed but never reported (a process died while executing them?): %s",
                ", ".join(summary.stuck),
            )
        return summary

    async def _forget(self, run_id: str, summary: RunnerSummary) -> None:
        await _in_thread(self.store.forget, run_id)
        summary.forgotten.append(run_id)

    async def _process(self, rec: PendingRecord, summary: RunnerSummary) -> None:
        if rec.claimed_by is not None:
            if rec.outcome is not None:
                # Executed already; only the (idempotent) report is owed.
                await self._report(rec.run_id, rec.outcome, rec.outcome_value, summary)
                return
            run = await self._status(rec, summary)
            if run is None:
                return
            if run.is_reported:
                await self._forget(rec.run_id, summary)
            elif rec.claimed_at is not None and time.time() - rec.claimed_at >= self.stale_after:
                summary.stuck.append(rec.run_id)
            else:
                summary.in_progress.append(rec.run_id)
            return

        run = await self._status(rec, summary)
        if run is None:
            return
        if run.is_refused:
            await _in_thread(self.store.forget, rec.run_id)
            summary.refused[rec.run_id] = run.governance_status
            return
        if run.is_pending:
            if run.governance_status != rec.governance_status:
                await _in_thread(self.store.update, rec.run_id, governance_status=run.governance_status)
            summary.pending.append(rec.run_id)
            return
        if not run.executable:
            await self._forget(rec.run_id, summary)  # allowed or approved, but someone already reported it
            return
        executor = self._executors.get(rec.action)
        if executor is None:
            message = f"no executor registered for action {rec.action!r}"
            await _in_thread(
                self.store.update, rec.run_id, governance_status=run.governance_status, last_error=message
            )
            summary.errors[rec.run_id] = message
            return
        if not await _in_thread(self.store.claim, rec.run_id, self.owner):
            summary.in_progress.append(rec.run_id)
            return
        # The claim is ours; make sure nobody reported it in the meantime.
        try:
            run = await self.client.status(rec.run_id)
        except CountersignError:
            await _in_thread(self.store.release, rec.run_id, self.owner)
            raise
        if not run.executable:
            if run.is_reported or run.is_refused:
                await self._forget(rec.run_id, summary)
            else:
                await _in_thread(self.store.release, rec.run_id, self.owner)
            return
        token = _CURRENT_RUN.set(run)
        try:
            result = executor(dict(rec.payload))
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # the action failed: report it
            outcome, value_json = "failed", dumps(_error_text(exc))
            logger.info("run %s (%s) failed: %s", rec.run_id, rec.action, exc)
        else:
            outcome, value_json = "executed", _result_json(result)
        finally:
            _CURRENT_RUN.reset(token)
        await _in_thread(self.store.record_outcome, rec.run_id, self.owner, outcome, value_json)
        await self._report(rec.run_id, outcome, _loads(value_json, exact=True), summary)

    async def _status(self, rec: PendingRecord, summary: RunnerSummary) -> Optional[Run]:
        try:
            return await self.client.status(rec.run_id)
        except NotFound:
            await self._forget(rec.run_id, summary)
            return None

    async def _report(self, run_id: str, outcome: str, value: Any, summary: RunnerSummary) -> None:
        try:
            if outcome == "executed":
                await self.client.report_executed(run_id, value)
            else:
                await self.client.report_failed(run_id, str(value))
        except ConflictError as e:
            run = await self.client.status(run_id)
            if run.is_reported:
                await self._forget(run_id, summary)
                return
            await _in_thread(self.store.update, run_id, last_error=str(e))
            summary.errors[run_id] = str(e)
            return
        except CountersignError as e:
            await _in_thread(self.store.update, run_id, last_error=str(e))
            raise
        await _in_thread(self.store.forget, run_id)
        (summary.executed if outcome == "executed" else summary.failed).append(run_id)

    # ------------------------------------------------------------------ operators

    async def abandon(self, run_id: str, execution_error: str = "execution was interrupted; outcome unknown") -> Run:
        """Reports a stuck run failed and forgets it (use after checking what happened)."""
        run = await self.client.report_failed(run_id, execution_error)
        await _in_thread(self.store.forget, run_id)
        return run

    async def report_stuck_executed(self, run_id: str, execution_result: Any = None) -> Run:
        """Reports a stuck run executed and forgets it (you found it did happen)."""
        run = await self.client.report_executed(run_id, execution_result)
        await _in_thread(self.store.forget, run_id)
        return run

    async def run_forever(
        self,
        interval: float = 5.0,
        *,
        stop_event: Optional[asyncio.Event] = None,
        max_passes: Optional[int] = None,
    ) -> None:
        """Calls :meth:`run_pending_once` every ``interval`` seconds.

        Stops when ``stop_event`` is set, after ``max_passes`` passes, or when
        its task is cancelled. Errors of a pass are logged and the loop goes on.
        """
        stop = stop_event or asyncio.Event()
        passes = 0
        while not stop.is_set():
            try:
                summary = await self.run_pending_once()
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
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                pass


# Used by the decorator: the async counterparts of a sync client or manager
# call, run in a worker thread so that they do not block the event loop.
async def _acall(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    method = getattr(obj, name)
    if _is_async_callable(method):
        return await method(*args, **kwargs)
    return await asyncio.to_thread(method, *args, **kwargs)

