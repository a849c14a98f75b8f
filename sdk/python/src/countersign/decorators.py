"""``@countersign.gated``: put a function behind the gate."""

from __future__ import annotations

import functools
import inspect
import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple, TypeVar, cast

from ._util import _error_text, _loads, _result_json
from .client import Client
from .errors import ActionBlocked, AlreadyReported, ApprovalPending, CountersignError
from .models import Run, Ticket

if TYPE_CHECKING:  # pragma: no cover
    from .pending import PendingActionManager

__all__ = ["gated", "payload_from_call"]

logger = logging.getLogger("countersign")

F = TypeVar("F", bound=Callable[..., Any])


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
    client: Optional[Client] = None,
    *,
    idempotency_key: Optional[Callable[..., str]] = None,
    actor: Optional[str] = None,
    reasoning: Optional[str] = None,
    source: Any = None,
    manager: Optional["PendingActionManager"] = None,
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

    If the report cannot be delivered after the client's retries, the
    function's result is still returned (the action did happen, and raising
    could make the caller do it again); the failure is logged on the
    ``countersign`` logger.

    Args:
        action: The action name the policies declare.
        client: The gate client; default: the manager's client, else a
            :class:`Client` configured from the environment at call time.
        idempotency_key: ``f(*args, **kwargs) -> str`` deriving a key from the
            call (``lambda invoice_id, **_: f"reminder:{invoice_id}"``) so a
            repeated call returns the same run. Default: a new key per call.
        actor: Sent as the run's actor (it may also be a parameter).
        reasoning: Sent as the run's reasoning.
        source: Sent as the run's source.
        manager: A :class:`PendingActionManager` to save pending proposals in.

    The decorated function gets two attributes: ``action`` and
    ``executor`` (``executor(payload)`` calls the undecorated function with
    ``**payload``, for :class:`ActionRunner`).
    """
    if isinstance(idempotency_key, str):
        raise TypeError(
            "idempotency_key must be a function of the call's arguments; a fixed string "
            "would make every call the same run"
        )

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            payload = payload_from_call(fn, args, kwargs)
            key = idempotency_key(*args, **kwargs) if idempotency_key is not None else None
            gate = client or (manager.client if manager is not None else Client())
            ticket: Optional[Ticket] = None
            if manager is not None:
                ticket = manager.propose(action, payload, key, actor=actor, reasoning=reasoning, source=source)
                run = cast(Run, ticket.run)
                executable = ticket.executable
            else:
                run = gate.intercept(action, payload, key, actor=actor, reasoning=reasoning, source=source)
                executable = run.executable
            if not executable:
                _refuse(action, run, ticket)
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                try:
                    gate.report_failed(run.run_id, _error_text(exc))
                except CountersignError as report_error:
                    logger.error("could not report run %s failed: %s", run.run_id, report_error)
                raise
            try:
                gate.report_executed(run.run_id, _loads(_result_json(result), exact=True))
            except CountersignError as report_error:
                logger.error("could not report run %s executed: %s", run.run_id, report_error)
            return result

        def executor(payload: Dict[str, Any]) -> Any:
            return fn(**payload)

        wrapper.action = action  # type: ignore[attr-defined]
        wrapper.executor = executor  # type: ignore[attr-defined]
        return cast(F, wrapper)

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
