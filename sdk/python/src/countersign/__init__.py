"""Python SDK of Countersign, the self-hosted approval gate for AI agents.

Propose an action, let the policy decide, wait for a human when it asks for
one, perform the action only when it is executable, report what happened,
and keep the signed receipt::

    import countersign

    with countersign.Client() as client:  # COUNTERSIGN_API_KEY, COUNTERSIGN_URL
        run = client.intercept("send_invoice_reminder", {"invoice_id": "INV-1042", "amount": 120})
        if run.executable:
            client.report_executed(run.run_id, {"message_id": send_reminder()})

:class:`AsyncClient`, :class:`AsyncPendingActionManager` and
:class:`AsyncActionRunner` are the asyncio versions; :func:`gated` works on
``async def`` functions too.
"""

from ._version import __version__
from .canonical import canonical_json, loads_exact
from ._util import current_run
from .aio import AsyncActionRunner, AsyncClient, AsyncPendingActionManager
from .client import DEFAULT_URL, ENV_API_KEY, ENV_URL, Client
from .decorators import AsyncGatedCall, GatedCall, gated, payload_from_call
from .errors import (
    ActionBlocked,
    ActionNotExecutable,
    AlreadyReported,
    ApprovalPending,
    AuthenticationError,
    BadRequest,
    ConfigurationError,
    ConflictError,
    CountersignError,
    DeadlineExceeded,
    DecisionTimeout,
    GateUnavailable,
    IdempotencyConflict,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ReceiptVerificationError,
    ValidationError,
)
from .models import (
    Approval,
    ApprovalAnswer,
    Decision,
    Delivery,
    Execution,
    ExecutionStatus,
    GovernanceStatus,
    Receipt,
    ReceiptKey,
    Run,
    Signature,
    Ticket,
)
from .pending import ActionRunner, PendingActionManager, RunnerSummary
from .pending_store import PendingRecord, SQLitePendingStore
from .receipts import key_id_of, verify_receipt
from .webhooks import WebhookVerificationError, answer_approval, verify_webhook

__all__ = [
    "__version__",
    "DEFAULT_URL",
    "ENV_API_KEY",
    "ENV_URL",
    "Client",
    "AsyncClient",
    "Run",
    "GovernanceStatus",
    "ExecutionStatus",
    "Decision",
    "Approval",
    "ApprovalAnswer",
    "Execution",
    "Delivery",
    "Receipt",
    "ReceiptKey",
    "Signature",
    "Ticket",
    "PendingActionManager",
    "AsyncPendingActionManager",
    "SQLitePendingStore",
    "PendingRecord",
    "ActionRunner",
    "AsyncActionRunner",
    "RunnerSummary",
    "gated",
    "current_run",
    "GatedCall",
    "AsyncGatedCall",
    "payload_from_call",
    "verify_receipt",
    "key_id_of",
    "canonical_json",
    "loads_exact",
    "verify_webhook",
    "answer_approval",
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
    "WebhookVerificationError",
]
