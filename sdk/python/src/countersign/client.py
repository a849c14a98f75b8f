"""The HTTP client of the Countersign gate (standard library only)."""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from email.utils import parsedate_to_datetime
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ._version import __version__
from .canonical import dumps, loads_exact
from .errors import (
    CountersignError,
    DecisionTimeout,
    GateUnavailable,
    error_from_response,
)
from .models import Receipt, ReceiptKey, Run

__all__ = ["Client", "DEFAULT_URL"]

logger = logging.getLogger("countersign")

#: The gate's address when neither ``base_url`` nor ``COUNTERSIGN_URL`` is set.
DEFAULT_URL = "http://127.0.0.1:8080"

RunRef = Union[str, Run]

# Errors that mean "no usable answer arrived": the request may or may not have
# reached the gate, so it is only retried where a repeat is harmless (every
# SDK call is: reads, intercepts with an idempotency key, identical reports).
_TRANSIENT = (OSError, http.client.HTTPException, socket.timeout)


def _run_id(run: RunRef) -> str:
    rid = run.run_id if isinstance(run, Run) else run
    if not isinstance(rid, str) or not rid:
        raise ValueError("run_id must be a non-empty string")
    return rid


def _parse_retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class Client:
    """A client of one Countersign gate, authenticated with one API key.

    Args:
        api_key: The bearer key (``countersign keys create``). Defaults to
            ``$COUNTERSIGN_API_KEY``.
        base_url: The gate's address. Defaults to ``$COUNTERSIGN_URL``, else
            ``http://127.0.0.1:8080``.
        timeout: Seconds to wait for each HTTP request.
        max_retries: How many times a transient failure (connection refused
            or reset, timeout, HTTP 5xx, HTTP 429) is retried before an error
            is raised; ``0`` disables retries.
        backoff_base: The first retry waits about this many seconds; each
            further retry doubles it (with random jitter), up to ``backoff_max``.
        backoff_max: The longest wait between two attempts.
        max_retry_after: A 429 or 503 whose ``Retry-After`` asks for a longer
            wait than this is raised at once instead of retried.
        user_agent: Sent as ``User-Agent``.

    Every method is safe to retry: reads are, an intercept always carries an
    idempotency key (one is generated per call when none is given, and reused
    by that call's retries), and the gate treats an identical repeated
    execution report as a no-op. So a retry never creates a second run or a
    second report.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: float = 10,
        max_retries: int = 3,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_after: float = 60.0,
        user_agent: Optional[str] = None,
    ) -> None:
        self.api_key = api_key if api_key is not None else os.environ.get("COUNTERSIGN_API_KEY")
        url = base_url if base_url is not None else os.environ.get("COUNTERSIGN_URL") or DEFAULT_URL
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"base_url {url!r} must be an http:// or https:// URL")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.base_url = url.rstrip("/")
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_retry_after = float(max_retry_after)
        self.user_agent = user_agent or f"countersign-python/{__version__}"
        self._opener = urllib.request.build_opener()

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, api_key={'set' if self.api_key else None})"

    # ------------------------------------------------------------------ HTTP

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter for retry number ``attempt`` (0-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))

    def _send(
        self, method: str, path: str, data: Optional[bytes], auth: bool
    ) -> Tuple[int, str, Any]:
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if auth and self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return resp.status, resp.read().decode("utf-8", "replace"), resp.headers
        except urllib.error.HTTPError as e:
            try:
                text = e.read().decode("utf-8", "replace")
            except _TRANSIENT:
                text = ""
            finally:
                e.close()
            return e.code, text, e.headers

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: bool = True,
        retry: bool = True,
        exact: bool = False,
    ) -> Tuple[int, Any]:
        """Sends one API request with retries; returns ``(status, decoded JSON)``.

        Lower level than the named methods; useful for endpoints this SDK does
        not wrap. Raises the typed :class:`CountersignError` of any error.
        With ``exact``, the answer is read by :func:`loads_exact`: non-integer
        numbers as :class:`decimal.Decimal`, and duplicate keys refused.
        """
        data = dumps(body).encode("utf-8") if body is not None else None
        attempts = self.max_retries + 1 if retry else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                status, text, headers = self._send(method, path, data, auth)
            except _TRANSIENT as e:
                reason = getattr(e, "reason", e)
                err: CountersignError = GateUnavailable(
                    f"cannot reach the gate at {self.base_url}: {reason}", code="unreachable"
                )
                if last or isinstance(reason, ssl.SSLCertVerificationError):  # retrying won't help
                    raise err from e
                delay = self._backoff(attempt)
                logger.info("%s %s failed (%s); retry %d in %.2fs", method, path, reason, attempt + 1, delay)
                time.sleep(delay)
                continue
            try:
                decoded = (loads_exact(text) if exact else json.loads(text)) if text else None
            except ValueError:
                decoded = None
            if status < 400:
                if decoded is None and text:
                    raise CountersignError(
                        f"the gate answered HTTP {status} with a body that is not JSON",
                        code="invalid_response",
                        status=status,
                    )
                return status, decoded
            retry_after = _parse_retry_after(headers.get("Retry-After") if headers else None)
            err = error_from_response(status, decoded, text, retry_after)
            if not (status >= 500 or status == 429) or last:
                raise err
            if retry_after is not None:
                if retry_after > self.max_retry_after:
                    raise err
                delay = retry_after + random.uniform(0, min(0.25, self.backoff_base))
            else:
                delay = self._backoff(attempt)
            logger.info("%s %s answered %d; retry %d in %.2fs", method, path, status, attempt + 1, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ API

    def intercept(
        self,
        action: str,
        payload: Mapping[str, Any],
        idempotency_key: Optional[str] = None,
        *,
        actor: Optional[str] = None,
        reasoning: Optional[str] = None,
        source: Any = None,
    ) -> Run:
        """Proposes an action; the policy decides (``POST /v1/intercept``).

        Args:
            action: The action name the policies declare (``send_invoice_reminder``).
            payload: The JSON object the policy looks at and approvers see.
                :class:`decimal.Decimal` amounts are sent exactly.
            idempotency_key: Repeating a request with the same key and body
                returns the same run instead of a new one. When omitted a
                random key is generated for this call (and reused by its
                retries), so only repeats *within* the call are deduplicated.
            actor: Who proposes it (the agent's id); approvers never approve
                their own requests. May also be given inside ``payload``.
            reasoning: Why, in the agent's words; shown to approvers.
            source: Where the request came from (any JSON).

        Returns:
            The new run (``replayed`` is true when an earlier identical
            request with this key was answered instead).

        Raises:
            IdempotencyConflict: The key was used for a different request.
            ValidationError: The body is invalid (``field`` says where).
            PayloadTooLarge: The body exceeds the gate's limit.
        """
        if not isinstance(payload, Mapping):
            raise TypeError("payload must be a mapping (a JSON object)")
        body: Dict[str, Any] = {
            "action": action,
            "payload": dict(payload),
            "idempotency_key": idempotency_key or str(uuid.uuid4()),
        }
        if actor is not None:
            body["actor"] = actor
        if reasoning is not None:
            body["reasoning"] = reasoning
        if source is not None:
            body["source"] = source
        status, data = self.request("POST", "/v1/intercept", body)
        return Run.from_json(data, replayed=status == 200)

    def status(self, run_id: RunRef) -> Run:
        """Returns the current state of a run (``GET /v1/runs/{id}``), with its deliveries."""
        _, data = self.request("GET", f"/v1/runs/{urllib.parse.quote(_run_id(run_id), safe='')}")
        return Run.from_json(data)

    #: Alias of :meth:`status`.
    get_run = status

    def report_executed(self, run_id: RunRef, execution_result: Any = None) -> Run:
        """Reports that the application performed the action (``POST /v1/runs/{id}/executed``).

        ``execution_result`` is any JSON value (``None`` for nothing); the
        receipt keeps its SHA-256 and a short summary. Repeating the identical
        report is harmless.

        Raises:
            ConflictError: The run is not executable, or already has a
                different report.
        """
        rid = urllib.parse.quote(_run_id(run_id), safe="")
        _, data = self.request("POST", f"/v1/runs/{rid}/executed", {"execution_result": execution_result})
        return Run.from_json(data)

    def report_failed(self, run_id: RunRef, execution_error: str) -> Run:
        """Reports that performing the action failed (``POST /v1/runs/{id}/failed``).

        ``execution_error`` must be a non-empty string of at most 8 KiB.

        Raises:
            ConflictError: The run is not executable, or already has a
                different report.
        """
        rid = urllib.parse.quote(_run_id(run_id), safe="")
        _, data = self.request("POST", f"/v1/runs/{rid}/failed", {"execution_error": execution_error})
        return Run.from_json(data)

    def receipt(self, run_id: RunRef) -> Receipt:
        """Fetches the signed receipt of a run (``GET /v1/runs/{id}/receipt``)."""
        rid = urllib.parse.quote(_run_id(run_id), safe="")
        # Read exactly: the receipt is checked against its signature later.
        _, data = self.request("GET", f"/v1/runs/{rid}/receipt", exact=True)
        return Receipt.from_json(data)

    def receipt_keys(self) -> List[ReceiptKey]:
        """Returns the gate's public receipt keys (``GET /v1/receipt-keys``, no key needed)."""
        _, data = self.request("GET", "/v1/receipt-keys", auth=False)
        return [ReceiptKey.from_json(k) for k in (data or {}).get("keys", []) if isinstance(k, dict)]

    def list_runs(
        self,
        *,
        governance_status: Optional[str] = None,
        execution_status: Optional[str] = None,
        action: Optional[str] = None,
        actor: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Tuple[List[Run], Optional[str]]:
        """Lists the workspace's runs, newest first (``GET /v1/runs``; admin keys only).

        Returns ``(runs, next_cursor)``; pass ``next_cursor`` back for the next
        page (``None`` on the last one).

        Raises:
            PermissionDenied: The key is not an admin key.
        """
        params = {
            "governance_status": governance_status,
            "execution_status": execution_status,
            "action": action,
            "actor": actor,
            "limit": None if limit is None else str(limit),
            "cursor": cursor,
        }
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        _, data = self.request("GET", "/v1/runs" + (f"?{query}" if query else ""))
        data = data or {}
        runs = [Run.from_json(r) for r in data.get("runs", []) if isinstance(r, dict)]
        return runs, data.get("next_cursor")

    def health(self) -> bool:
        """``True`` when the gate answers ``GET /healthz`` (no retries)."""
        try:
            status, _ = self.request("GET", "/healthz", auth=False, retry=False)
        except CountersignError:
            return False
        return status == 200

    def wait_for_decision(self, run_id: RunRef, timeout: float, poll_interval: float = 1.0) -> Run:
        """Polls a run until its governance status leaves ``pending_approval``.

        Returns the run as soon as it is approved, rejected or expired (or
        at once if it was never pending).

        Raises:
            DecisionTimeout: Still pending after ``timeout`` seconds; the
                exception's ``run`` is the last state seen.
        """
        rid = _run_id(run_id)
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            run = self.status(rid)
            if run.governance_status != "pending_approval":
                return run
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DecisionTimeout(
                    f"run {rid} is still pending approval after {timeout:g}s", run_id=rid, run=run
                )
            time.sleep(min(max(poll_interval, 0.01), remaining))
