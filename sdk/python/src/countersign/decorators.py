"""``@countersign.gated``: put a function behind the gate."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Generic, Optional, Tuple, TypeVar, Union, cast

from ._core import ENV_API_KEY, ENV_URL
from ._util import _CURRENT_RUN, _error_text, _is_async_callable, _loads, _refuse_awaitable, _result_json, current_run
from .aio import AsyncClient, AsyncPendingActionManager, _acall
from .client import Client
from .errors import ActionBlocked, AlreadyReported, ApprovalPending, CountersignError
from .models import Receipt, Run, Ticket

if TYPE_CHECKING:  # pragma: no cover
    from .pending import PendingActionManager

__all__ = ["gated", "payload_from_call", "current_run", "GatedCall", "AsyncGatedCall"]

logger = logging.getLogger("countersign")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@dataclass(frozen=True)
class GatedCall(Generic[T]):
    """What ``fn.call_with_run(...)`` of a :func:`gated` function returns.

    Attributes:
        value: The function's return value.
        run: The run, as the execution report returned it
            (``execution_status == "executed"``); if that report could not be
            delivered, the run as the intercept returned it, and ``reported``
            is false.
        reported: Whether the execution report reached the gate.
    """

    value: T
    run: Run
    reported: bool
    client: Client = field(repr=False, compare=False)

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.run.run_id

    def receipt(self) -> Receipt:
        """Fetches the run's signed receipt."""
        return self.client.receipt(self.run.run_id)


@dataclass(frozen=True)
class AsyncGatedCall(Generic[T]):
    """What ``await fn.call_with_run(...)`` of an ``async def`` :func:`gated` function returns.

    The same as :class:`GatedCall`, but :meth:`receipt` is a coroutine.
    """

    value: T
    run: Run
    reported: bool
    client: Union[AsyncClient, Client] = field(repr=False, compare=False)

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.run.run_id

    async def receipt(self) -> Receipt:
        """Fetches the run's signed receipt."""
        receipt: Receipt = await _acall(self.client, "receipt", self.run.run_id)
        return receipt


# Decorated functions given no client share one client per kind (sync or
# async) and configuration, so their connections are reused.
_DEFAULTS: Dict[Tuple[str, Optional[str], Optional[str]], Any] = {}
_DEFAULTS_LOCK = threading.Lock()


def _default_client(kind: str) -> Any:
    key = (kind, os.environ.get(ENV_API_KEY), os.environ.get(ENV_URL))
    with _DEFAULTS_LOCK:
        client = _DEFAULTS.get(key)
        if client is None:
            client = AsyncClient() if kind == "async" else Client()
            _DEFAULTS[key] = client
        return client


def payload_from_call(fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Maps a call's arguments to the payload :func:`gated` proposes.

    Every parameter becomes a payload field named after it, whether it was
    passed by position or by keyword, with defaults filled in. A
    ``**kwargs`` parameter is merged into the payload; a ``*args``
    parameter becomes a list under its name. A leading ``self`` or ``cls``
    is left out.
    """
    sig = inspect.signature(fn)
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    payload: Dict[str, Any] = {}
    params = list(sig.parameters.values())
    for name, value in bound.arguments.items():
        param = sig.parameters[name]
        if param is params[0] and name in ("self", "cls"):
            continue
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            payload.update(value)
        elif param.kind is inspect.Parameter.VAR_POSITIONAL:
            payload[name] = list(value)
        else:
            payload[name] = value
    return payload


def gated(
    action: str,
    client: Union[Client, AsyncClient, None] = None,
    *,
    idempotency_key: Optional[Callable[..., str]] = None,
    actor: Optional[str] = None,
    reasoning: Optional[str] = None,
    source: Any = None,
    manager: Union["PendingActionManager", AsyncPendingActionManager, None] = None,
) -> Callable[[F], F]:
    """Decorates a function so that each call is proposed to the gate first.

    Calling the decorated function:

    1. builds the payload from the call's arguments
       (:func:`payload_from_call`: ``send(invoice_id="INV-1", amount=900)``
       proposes ``{"invoice_id": "INV-1", "amount": 900}``; positional
       arguments are named after their parameters);
    2. proposes ``action`` with it (:meth:`Client.intercept`);
    3. if the run is executable, calls the function, reports
       ``report_executed(return value)`` and returns the value; if the
       function raises, reports ``report_failed(str(exception))`` and
       re-raises;
    4. otherwise raises, without calling the function:

       - :class:`ApprovalPending` while a human has to approve (its ``run_id``
         can be waited on with :meth:`Client.wait_for_decision`; with
         ``manager`` the proposal is saved and its ``ticket`` set, so an
         :class:`ActionRunner` that :meth:`~ActionRunner.register`\\ s this
         function executes it once approved);
       - :class:`ActionBlocked` when blocked, rejected or expired;
       - :class:`AlreadyReported` when the idempotency key names a run that
         was already executed.

    An ``async def`` function gives an ``async def`` wrapper: the gate calls
    are awaited (with an :class:`AsyncClient`; a sync :class:`Client` or
    :class:`PendingActionManager` is used from a worker thread), the function
    is awaited, and only then is its outcome reported. A plain function that
    returns an awaitable anyway (a coroutine it did not await) is reported
    failed and raises ``TypeError``: the work it stands for never ran.

    If the report cannot be delivered after the client's retries, the
    function's result is still returned (the action did happen, and raising
    could make the caller do it again); the failure is logged on the
    ``countersign`` logger.

    Inside the function, :func:`current_run` returns its run. After the
    call, ``fn.call_with_run(*args, **kwargs)`` (awaited for an ``async def``)
    does the same as ``fn(*args, **kwargs)`` but returns a :class:`GatedCall`
    (:class:`AsyncGatedCall`): ``.value``, ``.run``, ``.run_id``,
    ``.reported`` and ``.receipt()``.

    Args:
        action: The action name the policies declare.
        client: The gate client (:class:`Client`, or :class:`AsyncClient` for
            an ``async def``); default: the manager's client, else a client
            configured from the environment (``COUNTERSIGN_API_KEY``,
            ``COUNTERSIGN_URL``) at the first call.
        idempotency_key: ``f(*args, **kwargs) -> str`` deriving a key from the
            call (``lambda invoice_id, **_: f"reminder:{invoice_id}"``) so a
            repeated call returns the same run. Default: a new key per call.
        actor: Sent as the run's actor (it may also be a parameter).
        reasoning: Sent as the run's reasoning.
        source: Sent as the run's source.
        manager: A :class:`PendingActionManager` (or
            :class:`AsyncPendingActionManager`) to save pending proposals in.

    The decorated function gets the attributes ``action``, ``is_async``,
    ``call_with_run`` and ``executor`` (``executor(payload)`` calls the
    undecorated function with ``**payload``, for :class:`ActionRunner` and
    :class:`AsyncActionRunner`).
    """
    if isinstance(idempotency_key, str):
        raise TypeError(
            "idempotency_key must be a function of the call's arguments; a fixed string "
            "would make every call the same run"
        )

    def decorate(fn: F) -> F:
        if _is_async_callable(fn):
            wrapper = _async_wrapper(fn)
        else:
            if isinstance(client, AsyncClient) or isinstance(manager, AsyncPendingActionManager):
                raise TypeError(
                    f"{getattr(fn, '__name__', fn)!r} is not an async def, so it cannot use an "
                    "AsyncClient or AsyncPendingActionManager; pass a Client or PendingActionManager"
                )
            wrapper = _sync_wrapper(fn)

        def executor(payload: Dict[str, Any]) -> Any:
            return fn(**payload)

        wrapper.action = action  # type: ignore[attr-defined]
        wrapper.executor = executor  # type: ignore[attr-defined]
        wrapper.is_async = _is_async_callable(fn)  # type: ignore[attr-defined]
        return cast(F, wrapper)

    def _sync_wrapper(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call_with_run(*args: Any, **kwargs: Any) -> GatedCall[Any]:
            payload = payload_from_call(fn, args, kwargs)
            key = idempotency_key(*args, **kwargs) if idempotency_key is not None else None
            gate = cast(Client, client or (manager.client if manager is not None else _default_client("sync")))
            ticket: Optional[Ticket] = None
            if manager is not None:
                ticket = cast("PendingActionManager", manager).propose(
                    action, payload, key, actor=actor, reasoning=reasoning, source=source
                )
                run = cast(Run, ticket.run)
                executable = ticket.executable
            else:
                run = gate.intercept(action, payload, key, actor=actor, reasoning=reasoning, source=source)
                executable = run.executable
            if not executable:
                _refuse(action, run, ticket)
            token = _CURRENT_RUN.set(run)
            try:
                result = fn(*args, **kwargs)
                _refuse_awaitable(result, action)
            except Exception as exc:
                try:
                    gate.report_failed(run.run_id, _error_text(exc))
                except CountersignError as report_error:
                    logger.error("could not report run %s failed: %s", run.run_id, report_error)
                raise
            finally:
                _CURRENT_RUN.reset(token)
            try:
                done = gate.report_executed(run.run_id, _loads(_result_json(result), exact=True))
            except CountersignError as report_error:
                logger.error("could not report run %s executed: %s", run.run_id, report_error)
                return GatedCall(result, run, False, gate)
            return GatedCall(result, done, True, gate)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return call_with_run(*args, **kwargs).value

        wrapper.call_with_run = call_with_run  # type: ignore[attr-defined]
        return wrapper

    def _async_wrapper(fn: Callable[..., Any]) -> Callable[..., Any]:
        async def call_with_run(*args: Any, **kwargs: Any) -> AsyncGatedCall[Any]:
            payload = payload_from_call(fn, args, kwargs)
            key = idempotency_key(*args, **kwargs) if idempotency_key is not None else None
            gate: Union[Client, AsyncClient] = client or (
                manager.client if manager is not None else _default_client("async")
            )
            ticket: Optional[Ticket] = None
            if manager is not None:
                ticket = await _acall(
                    manager, "propose", action, payload, key, actor=actor, reasoning=reasoning, source=source
                )
                assert ticket is not None
                run = cast(Run, ticket.run)
                executable = ticket.executable
            else:
                run = await _acall(
                    gate, "intercept", action, payload, key, actor=actor, reasoning=reasoning, source=source
                )
                executable = run.executable
            if not executable:
                _refuse(action, run, ticket)
            token = _CURRENT_RUN.set(run)
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                try:
                    await _acall(gate, "report_failed", run.run_id, _error_text(exc))
                except CountersignError as report_error:
                    logger.error("could not report run %s failed: %s", run.run_id, report_error)
                raise
            finally:
                _CURRENT_RUN.reset(token)
            try:
                done = await _acall(gate, "report_executed", run.run_id, _loads(_result_json(result), exact=True))
            except CountersignError as report_error:
                logger.error("could not report run %s executed: %s", run.run_id, report_error)
                return AsyncGatedCall(result, run, False, gate)
            return AsyncGatedCall(result, done, True, gate)

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return (await call_with_run(*args, **kwargs)).value

        wrapper.call_with_run = call_with_run  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _refuse(action: str, run: Run, ticket: Optional[Ticket]) -> None:
    status = run.governance_status
    reason = run.governance_reason or "no reason given"
    if status == "pending_approval":
        raise ApprovalPending(f"{action} ({run.run_id}) awaits approval: {reason}", run=run, ticket=ticket)
    if status in ("blocked", "rejected", "expired"):
        raise ActionBlocked(f"{action} ({run.run_id}) is {status}: {reason}", run=run, ticket=ticket)
    if run.is_reported:
        raise AlreadyReported(
            f"{action} ({run.run_id}) was already reported {run.execution_status}", run=run, ticket=ticket
        )
    # Executable per the gate, but a runner claimed it first (manager case).
    raise AlreadyReported(f"{action} ({run.run_id}) is being executed by a runner", run=run, ticket=ticket)
