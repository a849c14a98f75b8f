"""Helpers for a webhook receiver of approval requests.

A workspace webhook receives one signed POST per pending run (Standard
Webhooks: headers ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature``; JSON ``{"type": "approval.requested", "timestamp",
"data": {"run_id", "action", "payload_summary", "reason", "group",
"quorum", "expires_at", "answer_url", "approvers", ...}}``). The receiver
(a ticketing system, a chat bot…) checks the signature with
:func:`verify_webhook` and records a person's answer with
:func:`answer_approval`; the answer URL takes one answer from each approver
in ``data.approvers`` (``[{"id", "eligible_from"}]``: an escalation member
only from ``eligible_from``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Mapping, Optional, Union

from ._version import __version__
from .errors import CountersignError, GateUnavailable, error_from_response

__all__ = ["verify_webhook", "answer_approval", "WebhookVerificationError"]


class WebhookVerificationError(CountersignError):
    """The webhook's signature or timestamp does not check out."""

    default_code = "webhook_invalid"


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing `{name}` header")


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: Union[bytes, str],
    *,
    tolerance: float = 300,
    now: Optional[float] = None,
) -> Dict[str, Any]:
    """Verifies a Standard Webhooks signature and returns the decoded event.

    Args:
        secret: The webhook's secret as configured (``whsec_<base64>``).
        headers: The request headers (any case).
        body: The raw request body, exactly as received.
        tolerance: Largest accepted clock difference, in seconds, between
            ``webhook-timestamp`` and now (replay protection).
        now: The current Unix time (for tests); defaults to ``time.time()``.

    Raises:
        WebhookVerificationError: A header is missing, the timestamp is out of
            tolerance, or no signature matches.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    msg_id = _header(headers, "webhook-id")
    ts_text = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        ts = int(ts_text)
    except ValueError:
        raise WebhookVerificationError("`webhook-timestamp` is not a number") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise WebhookVerificationError("`webhook-timestamp` is too far from the current time")
    encoded = secret.strip()
    if encoded.startswith("whsec_"):
        encoded = encoded[len("whsec_"):]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the secret must be whsec_ followed by base64") from None
    signed = msg_id.encode("utf-8") + b"." + ts_text.encode("utf-8") + b"." + raw
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            try:
                event = json.loads(raw)
            except ValueError:
                raise WebhookVerificationError("the body is not JSON") from None
            if not isinstance(event, dict):
                raise WebhookVerificationError("the body is not a JSON object")
            return event
    raise WebhookVerificationError("no signature matches: wrong secret or altered body")


def answer_approval(
    answer_url: str,
    decision: str,
    approver: Optional[str] = None,
    comment: Optional[str] = None,
    *,
    timeout: float = 10,
) -> Dict[str, Any]:
    """Records an approver's answer at a webhook's ``data.answer_url``.

    Args:
        answer_url: The URL from the webhook event.
        decision: ``"approve"`` or ``"reject"``.
        approver: The approver's id as the policy's group lists it (required
            for webhook answer URLs, which are shared by the whole group).
        comment: Optional text kept with the answer.

    Returns:
        The gate's answer: ``{"outcome": "recorded"|"duplicate"|"already_decided",
        "message", "run"}``.

    Raises:
        PermissionDenied: ``not_an_approver`` or ``self_approval``.
        ConflictError: ``token_used`` (answer URLs work once) or ``token_expired``.
        NotFound: Unknown token.

    The request is not retried: a used answer URL cannot be used again.
    """
    if decision not in ("approve", "reject"):
        raise ValueError("decision must be 'approve' or 'reject'")
    body: Dict[str, Any] = {"decision": decision}
    if approver is not None:
        body["approver"] = approver
    if comment is not None:
        body["comment"] = comment
    req = urllib.request.Request(
        answer_url,
        data=json.dumps(body).encode("utf-8"),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"countersign-python/{__version__}",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer: Dict[str, Any] = json.loads(resp.read().decode("utf-8"))
            return answer
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        raise error_from_response(e.code, decoded, text) from None
    except OSError as e:
        raise GateUnavailable(f"cannot reach {answer_url.split('/v1/')[0]}: {e}", code="unreachable") from e
