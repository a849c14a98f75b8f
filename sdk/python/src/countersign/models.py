"""Typed results returned by the SDK.

Every object keeps the gate's JSON it was built from in ``raw``, so fields
added to the API later are still reachable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Tuple, cast

__all__ = [
    "GovernanceStatus",
    "ExecutionStatus",
    "Decision",
    "GOVERNANCE_STATUSES",
    "EXECUTION_STATUSES",
    "FINAL_REFUSALS",
    "Approval",
    "ApprovalAnswer",
    "Execution",
    "Delivery",
    "Run",
    "Signature",
    "Receipt",
    "ReceiptKey",
    "Ticket",
]

#: A run's ``governance_status``: what the policy (and the approvers) decided.
#: A ``Literal`` type, so a type checker (mypy, pyright) flags a comparison
#: with a value the gate never sends, such as ``run.governance_status == "pending"``.
GovernanceStatus = Literal["allowed", "pending_approval", "blocked", "approved", "rejected", "expired"]
#: A run's ``execution_status``: what the application reported.
ExecutionStatus = Literal["not_executed", "awaiting_execution", "executed", "failed"]
#: An approver's answer.
Decision = Literal["approve", "reject"]

#: Every ``governance_status`` the gate reports.
GOVERNANCE_STATUSES: Tuple[GovernanceStatus, ...] = (
    "allowed",
    "pending_approval",
    "blocked",
    "approved",
    "rejected",
    "expired",
)
#: Every ``execution_status`` the gate reports.
EXECUTION_STATUSES: Tuple[ExecutionStatus, ...] = ("not_executed", "awaiting_execution", "executed", "failed")
#: Governance statuses that can never become executable.
FINAL_REFUSALS: Tuple[GovernanceStatus, ...] = ("blocked", "rejected", "expired")


def _opt_str(d: Dict[str, Any], key: str) -> Optional[str]:
    v = d.get(key)
    return v if isinstance(v, str) else None


@dataclass(frozen=True)
class Approval:
    """What a pending run needs: ``quorum`` approvals from ``group`` before ``expires_at``."""

    group: str
    quorum: int
    expires_at: str
    approvers: List[str]
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Approval":
        return cls(
            group=str(d.get("group", "")),
            quorum=int(d.get("quorum", 1)),
            expires_at=str(d.get("expires_at", "")),
            approvers=[str(a) for a in d.get("approvers") or []],
            raw=d,
        )


@dataclass(frozen=True)
class ApprovalAnswer:
    """One approver's recorded answer (``decision`` is ``approve`` or ``reject``)."""

    approver: str
    decision: Decision
    channel: Optional[str]
    comment: Optional[str]
    answered_at: Optional[str]
    counted: bool
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "ApprovalAnswer":
        return cls(
            approver=str(d.get("approver", "")),
            decision=cast(Decision, str(d.get("decision", ""))),
            channel=_opt_str(d, "channel"),
            comment=_opt_str(d, "comment"),
            answered_at=_opt_str(d, "answered_at"),
            counted=bool(d.get("counted", False)),
            raw=d,
        )


@dataclass(frozen=True)
class Execution:
    """The execution report of a run: ``status`` is ``executed`` or ``failed``."""

    status: Literal["executed", "failed"]
    execution_result: Any
    execution_error: Optional[str]
    reported_at: Optional[str]
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Execution":
        return cls(
            status=cast(Literal["executed", "failed"], str(d.get("status", ""))),
            execution_result=d.get("execution_result"),
            execution_error=_opt_str(d, "execution_error"),
            reported_at=_opt_str(d, "reported_at"),
            raw=d,
        )


@dataclass(frozen=True)
class Delivery:
    """One approval request sent (or being sent) to an approver or a webhook."""

    delivery_id: str
    approver: str
    channel: str
    status: str
    attempts: int
    sent_at: Optional[str]
    last_error: Optional[str]
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Delivery":
        return cls(
            delivery_id=str(d.get("delivery_id", "")),
            approver=str(d.get("approver", "")),
            channel=str(d.get("channel", "")),
            status=str(d.get("status", "")),
            attempts=int(d.get("attempts") or 0),
            sent_at=_opt_str(d, "sent_at"),
            last_error=_opt_str(d, "last_error"),
            raw=d,
        )


@dataclass(frozen=True)
class Run:
    """A proposed action and everything the gate knows about it.

    The application may perform the action only while ``executable`` is true,
    and then reports the outcome with :meth:`Client.report_executed` or
    :meth:`Client.report_failed`.

    Attributes:
        run_id: The gate's id (``run_…``).
        action: The action name.
        governance_status: ``allowed``, ``pending_approval``, ``blocked``,
            ``approved``, ``rejected`` or ``expired``.
        execution_status: ``not_executed``, ``awaiting_execution``,
            ``executed`` or ``failed``.
        executable: Whether the application may perform the action now.
        governance_reason: Why the policy decided as it did.
        rule: The deciding rule, or ``None`` (no rule matched).
        policy_version: SHA-256 of the policy set that decided.
        approval: What approval is needed, for runs that needed one.
        approvals: The answers recorded so far.
        execution: The execution report, once reported.
        deliveries: Approval requests sent (only filled by :meth:`Client.status`).
        replayed: ``True`` when the intercept answered an earlier identical
            request with the same idempotency key (HTTP 200 instead of 201).
        raw: The JSON the gate returned.
    """

    run_id: str
    action: str
    governance_status: GovernanceStatus
    execution_status: ExecutionStatus
    executable: bool
    governance_reason: str
    rule: Optional[str]
    policy_version: str
    approval: Optional[Approval]
    approvals: List[ApprovalAnswer]
    execution: Optional[Execution]
    deliveries: List[Delivery]
    workspace: Optional[str]
    actor: Optional[str]
    reasoning: Optional[str]
    source: Any
    risk: Optional[str]
    payload_summary: Optional[str]
    payload_sha256: Optional[str]
    idempotency_key: Optional[str]
    created_at: Optional[str]
    updated_at: Optional[str]
    replayed: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Dict[str, Any], *, replayed: bool = False) -> "Run":
        """Builds a run from the gate's JSON."""
        approval = d.get("approval")
        execution = d.get("execution")
        return cls(
            run_id=str(d.get("run_id", "")),
            action=str(d.get("action", "")),
            # Cast, not checked: a status added by a newer gate still arrives.
            governance_status=cast(GovernanceStatus, str(d.get("governance_status", ""))),
            execution_status=cast(ExecutionStatus, str(d.get("execution_status", ""))),
            executable=bool(d.get("executable", False)),
            governance_reason=str(d.get("governance_reason") or ""),
            rule=_opt_str(d, "rule"),
            policy_version=str(d.get("policy_version") or ""),
            approval=Approval.from_json(approval) if isinstance(approval, dict) else None,
            approvals=[ApprovalAnswer.from_json(a) for a in d.get("approvals") or [] if isinstance(a, dict)],
            execution=Execution.from_json(execution) if isinstance(execution, dict) else None,
            deliveries=[Delivery.from_json(x) for x in d.get("deliveries") or [] if isinstance(x, dict)],
            workspace=_opt_str(d, "workspace"),
            actor=_opt_str(d, "actor"),
            reasoning=_opt_str(d, "reasoning"),
            source=d.get("source"),
            risk=_opt_str(d, "risk"),
            payload_summary=_opt_str(d, "payload_summary"),
            payload_sha256=_opt_str(d, "payload_sha256"),
            idempotency_key=_opt_str(d, "idempotency_key"),
            created_at=_opt_str(d, "created_at"),
            updated_at=_opt_str(d, "updated_at"),
            replayed=replayed,
            raw=d,
        )

    @property
    def is_pending(self) -> bool:
        """``True`` while the run waits for approval."""
        return self.governance_status == "pending_approval"

    @property
    def is_refused(self) -> bool:
        """``True`` when the run can never execute (blocked, rejected, expired)."""
        return self.governance_status in FINAL_REFUSALS

    @property
    def is_reported(self) -> bool:
        """``True`` once an execution report (executed or failed) is recorded."""
        return self.execution_status in ("executed", "failed")


@dataclass(frozen=True)
class Signature:
    """A receipt's signature: Ed25519 by the key ``key_id``, ``value`` in base64."""

    alg: str
    key_id: str
    value: str


@dataclass(frozen=True)
class Receipt:
    """A signed receipt of one run, as ``GET /v1/runs/{id}/receipt`` returns it.

    Attributes:
        receipt: The signed document (``version``, ``run_id``, ``decision``,
            ``approvals``, ``execution``, ``audit``…).
        signature: The signature over the RFC 8785 canonical JSON of ``receipt``.
        document: The whole signed JSON (``{"receipt", "signature"}``), e.g. to
            store or hand to an auditor; ``countersign receipt verify`` takes it.
    """

    receipt: Dict[str, Any]
    signature: Signature
    document: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Receipt":
        raw_sig, raw_body = d.get("signature"), d.get("receipt")
        sig: Dict[str, Any] = raw_sig if isinstance(raw_sig, dict) else {}
        body: Dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
        return cls(
            receipt=body,
            signature=Signature(
                alg=str(sig.get("alg", "")),
                key_id=str(sig.get("key_id", "")),
                value=str(sig.get("value", "")),
            ),
            document=d,
        )

    @property
    def run_id(self) -> str:
        return str(self.receipt.get("run_id", ""))

    @property
    def governance_status(self) -> GovernanceStatus:
        decision = self.receipt.get("decision") or {}
        return cast(GovernanceStatus, str(decision.get("governance_status", "")))

    @property
    def execution_status(self) -> ExecutionStatus:
        return cast(ExecutionStatus, str(self.receipt.get("execution_status", "")))

    def verify(self, public_key: Any) -> bool:
        """Verifies the signature; see :func:`countersign.verify_receipt`."""
        from .receipts import verify_receipt

        return verify_receipt(self, public_key)


@dataclass(frozen=True)
class ReceiptKey:
    """A public key of the gate, as ``GET /v1/receipt-keys`` lists it."""

    key_id: str
    alg: str
    public_key: str

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "ReceiptKey":
        return cls(
            key_id=str(d.get("key_id", "")),
            alg=str(d.get("alg", "")),
            public_key=str(d.get("public_key", "")),
        )


@dataclass(frozen=True)
class Ticket:
    """The answer to :meth:`PendingActionManager.propose`.

    Attributes:
        executable: Perform the action now (with ``payload``) if true.
        payload: The payload proposed; what an executor receives.
        run_id: The gate's run id.
        governance_status: The gate's decision so far.
        action: The action name.
        governance_reason: Why.
        idempotency_key: The key the proposal was sent with.
        stored: ``True`` when the ticket was saved to the pending store
            because the action awaits approval; an :class:`ActionRunner`
            will execute it once approved.
        run: The full :class:`Run`.
    """

    executable: bool
    payload: Dict[str, Any]
    run_id: str
    governance_status: GovernanceStatus
    action: str
    governance_reason: str
    idempotency_key: Optional[str] = None
    stored: bool = False
    run: Optional[Run] = field(default=None, repr=False, compare=False)
