"""Typed exceptions raised by the Countersign SDK.

Every exception derives from :class:`CountersignError` and carries the gate's
machine-readable ``code``, a human-readable ``message``, the HTTP ``status``
(``None`` when no HTTP answer was received) and, for validation failures, the
offending ``field``.

=====================  ======  ==========================================
Exception              Status  When
=====================  ======  ==========================================
BadRequest             400     malformed query or path parameter
AuthenticationError    401     missing, unknown or revoked API key
PermissionDenied       403     the key's role or workspace does not allow it
NotFound               404     unknown run (or route)
ConflictError          409     the run's state forbids the request
IdempotencyConflict    409     same idempotency key, different request
PayloadTooLarge        413     body larger than the gate's ``max_body_bytes``
ValidationError        422     the body is not what the endpoint takes
RateLimited            429     the key's rate limit is exhausted
GateUnavailable        5xx/-   gate unreachable or failing after retries
DeadlineExceeded       -       no answer within the call's deadline
ConfigurationError     -       ``Client()`` without an API key
DecisionTimeout        -       :meth:`Client.wait_for_decision` timed out
ActionBlocked          -       :func:`gated`: blocked, rejected or expired
ApprovalPending        -       :func:`gated`: waiting for approval
AlreadyReported        -       :func:`gated`: the run was already reported
=====================  ======  ==========================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Type

if TYPE_CHECKING:  # pragma: no cover
    from .models import Run, Ticket

__all__ = [
    "CountersignError",
    "BadRequest",
    "AuthenticationError",
    "PermissionDenied",
    "NotFound",
    "ConflictError",
    "IdempotencyConflict",
    "PayloadTooLarge",
    "ValidationError",
    "RateLimited",
    "GateUnavailable",
    "DeadlineExceeded",
    "ConfigurationError",
    "DecisionTimeout",
    "ActionNotExecutable",
    "ActionBlocked",
    "ApprovalPending",
    "AlreadyReported",
    "ReceiptVerificationError",
    "error_from_response",
]


class CountersignError(Exception):
    """Base class of every error the SDK raises.

    Attributes:
        code: The gate's machine-readable error code (``"not_found"``,
            ``"idempotency_conflict"``…) or an SDK code such as
            ``"unreachable"`` or ``"decision_timeout"``.
        message: A human-readable explanation.
        status: The HTTP status of the gate's answer, or ``None``.
        field: The offending field of a validation error, else ``None``.
        body: The decoded JSON error body, when the gate sent one.
    """

    default_code = "error"

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        field: Optional[str] = None,
        body: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.status = status
        self.field = field
        self.body = body

    def __str__(self) -> str:
        parts = [self.message]
        detail = []
        if self.status is not None:
            detail.append(f"HTTP {self.status}")
        if self.code:
            detail.append(self.code)
        if self.field:
            detail.append(f"field {self.field!r}")
        if detail:
            parts.append(f"({', '.join(detail)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, "
            f"field={self.field!r}, message={self.message!r})"
        )


class BadRequest(CountersignError):
    """400: a malformed query or path parameter."""

    default_code = "bad_request"


class AuthenticationError(CountersignError):
    """401: no API key, an unknown key or a revoked key."""

    default_code = "unauthorized"


class PermissionDenied(CountersignError):
    """403: the key may not do this (e.g. an agent key on an admin endpoint)."""

    default_code = "forbidden"


class NotFound(CountersignError):
    """404: the run (or route) does not exist in the key's workspace."""

    default_code = "not_found"


class ConflictError(CountersignError):
    """409: the request conflicts with the run's current state.

    For example reporting a run that is not executable, or reporting a
    different outcome for a run that was already reported.
    """

    default_code = "conflict"


class IdempotencyConflict(ConflictError):
    """409: the idempotency key was already used for a different request."""

    default_code = "idempotency_conflict"


class PayloadTooLarge(CountersignError):
    """413: the request body exceeds the gate's ``max_body_bytes``."""

    default_code = "payload_too_large"


class ValidationError(CountersignError):
    """422: the request body is invalid; ``field`` names the culprit."""

    default_code = "validation_failed"


class RateLimited(CountersignError):
    """429: the API key's rate limit is exhausted.

    Attributes:
        retry_after: Seconds the gate asked to wait (``Retry-After``), if sent.
    """

    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class GateUnavailable(CountersignError):
    """The gate could not be reached, or kept failing (5xx) after retries.

    ``status`` is ``None`` for connection errors and timeouts.
    """

    default_code = "unavailable"


class DeadlineExceeded(GateUnavailable):
    """No answer arrived within the call's overall deadline (``Client(deadline=…)``).

    Raised when the gate accepts connections but does not answer in time, or
    when connection attempts and their retries use up the deadline. When the
    gate did answer (a 5xx or a 429), that answer's error is raised instead.
    """

    default_code = "deadline_exceeded"


class ConfigurationError(CountersignError, ValueError):
    """The client is not configured: no API key was given or found.

    Also a :class:`ValueError`, as it is raised by a constructor.
    """

    default_code = "not_configured"


class DecisionTimeout(CountersignError):
    """:meth:`Client.wait_for_decision` gave up while the run was still pending.

    Attributes:
        run_id: The run waited for.
        run: The last state seen (``governance_status == "pending_approval"``).
    """

    default_code = "decision_timeout"

    def __init__(self, message: str, *, run_id: str, run: Optional["Run"] = None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.run = run


class ActionNotExecutable(CountersignError):
    """Base of the errors :func:`countersign.gated` raises instead of running.

    Attributes:
        run: The run the gate returned.
        run_id: Its id.
        governance_status: Its governance status; also the error ``code``.
        ticket: The stored :class:`Ticket`, when the decorator was given a
            :class:`PendingActionManager` and the action awaits approval.
    """

    def __init__(self, message: str, *, run: "Run", ticket: Optional["Ticket"] = None) -> None:
        super().__init__(message, code=run.governance_status)
        self.run = run
        self.run_id = run.run_id
        self.governance_status = run.governance_status
        self.ticket = ticket


class ActionBlocked(ActionNotExecutable):
    """The gate will never allow this run: blocked, rejected or expired."""


class ApprovalPending(ActionNotExecutable):
    """The run waits for a human's approval; the function did not run."""


class AlreadyReported(ActionNotExecutable):
    """The run was allowed or approved but its execution was already reported.

    Happens when an idempotency key is reused for a call that already ran.
    """


class ReceiptVerificationError(CountersignError):
    """A receipt's signature does not verify, or the receipt is malformed."""

    default_code = "receipt_invalid"


_BY_STATUS: Dict[int, Type[CountersignError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: ConflictError,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
}


def error_from_response(
    status: int,
    body: Optional[Dict[str, Any]],
    text: str = "",
    retry_after: Optional[float] = None,
) -> CountersignError:
    """Builds the typed exception for a gate error answer.

    Args:
        status: The HTTP status.
        body: The decoded JSON body (``{"error": {"code", "message", "field"?}}``),
            or ``None`` when the body was not JSON.
        text: The raw body text, used when it was not JSON.
        retry_after: The parsed ``Retry-After`` header, for 429.
    """
    err: Dict[str, Any] = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
    code = err.get("code") if isinstance(err.get("code"), str) else None
    message = err.get("message") if isinstance(err.get("message"), str) else None
    field = err.get("field") if isinstance(err.get("field"), str) else None
    if message is None:
        snippet = text.strip()[:200]
        message = f"the gate answered HTTP {status}" + (f": {snippet}" if snippet else "")
    kw: Dict[str, Any] = {"code": code, "status": status, "field": field, "body": body}
    if status == 409 and code == "idempotency_conflict":
        return IdempotencyConflict(message, **kw)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, **kw)
    if status >= 500:
        return GateUnavailable(message, **kw)
    cls = _BY_STATUS.get(status, CountersignError)
    return cls(message, **kw)
