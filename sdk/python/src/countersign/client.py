"""The HTTP client of the Countersign gate (standard library only)."""

from __future__ import annotations

import base64
import http.client
import os
import select
import ssl
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type

from ._core import (
    _TRANSIENT,
    DEFAULT_URL,
    ENV_API_KEY,
    ENV_URL,
    RunRef,
    _BaseClient,
    _Deadline,
    _quoted,
    _Retry,
    _run_id,
    _Target,
)
from .errors import CountersignError, DecisionTimeout
from .models import ExecutionStatus, GovernanceStatus, Receipt, ReceiptKey, Run

__all__ = ["Client", "DEFAULT_URL", "ENV_API_KEY", "ENV_URL", "RunRef"]

# A reused keep-alive connection the server closed while it sat idle fails
# like this before any answer; the request is then sent again on a new
# connection without counting as a retry.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def _proxy_for(target: _Target) -> Optional[urllib.parse.SplitResult]:
    """The proxy ``HTTP(S)_PROXY``/``NO_PROXY`` select for ``target``, like urllib does."""
    proxy = urllib.request.getproxies().get(target.scheme)
    if not proxy or urllib.request.proxy_bypass(target.host):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    parsed = urllib.parse.urlsplit(proxy)
    return parsed if parsed.hostname else None


def _proxy_auth(proxy: urllib.parse.SplitResult) -> Dict[str, str]:
    if not proxy.username:
        return {}
    user = urllib.parse.unquote(proxy.username)
    password = urllib.parse.unquote(proxy.password or "")
    token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    return {"Proxy-Authorization": f"Basic {token}"}


class _Pool:
    """Idle keep-alive connections per origin, shared by a client's threads."""

    def __init__(self, max_idle: int = 8) -> None:
        self.max_idle = max_idle
        self._idle: Dict[Tuple[str, str, int], List[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()
        #: Connections opened so far (for tests and diagnostics).
        self.opened = 0

    def take(self, origin: Tuple[str, str, int]) -> Optional[http.client.HTTPConnection]:
        while True:
            with self._lock:
                if self._pid != os.getpid():
                    # A forked child must not share its parent's sockets: forget
                    # them here (the parent keeps using its own).
                    self._idle = {}
                    self._pid = os.getpid()
                idle = self._idle.get(origin)
                if not idle:
                    return None
                conn = idle.pop()
            sock = conn.sock
            if sock is not None:
                try:
                    # Readable while idle means the server closed it (or sent
                    # something unasked): either way it cannot be reused.
                    readable, _, _ = select.select([sock], [], [], 0)
                except (OSError, ValueError):
                    readable = [sock]
                if not readable:
                    return conn
            conn.close()

    def give_back(self, origin: Tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for c in conns:
            c.close()


class Client(_BaseClient):
    """A client of one Countersign gate, authenticated with one API key.

    Args:
        api_key: The bearer key (``countersign keys create``). Defaults to
            ``$COUNTERSIGN_API_KEY``; without either, the constructor raises
            :class:`~countersign.ConfigurationError`.
        base_url: The gate's address. Defaults to ``$COUNTERSIGN_URL``, else
            ``http://127.0.0.1:8080``.
        timeout: Seconds one attempt waits for the gate's answer.
        max_retries: How many times a transient failure (connection refused
            or reset, timeout, HTTP 5xx, HTTP 429) is retried before an error
            is raised; ``0`` disables retries.
        connect_timeout: Seconds one attempt waits to open the connection
            (TCP and TLS).
        deadline: Seconds a whole call may take, every attempt and backoff
            included (``None``: no limit). When it passes the call raises
            :class:`~countersign.DeadlineExceeded`, or the gate's last error
            answer (5xx, 429) if it sent one.
        backoff_base: The first retry waits about this many seconds; each
            further retry doubles it (with random jitter), up to ``backoff_max``.
        backoff_max: The longest wait between two attempts.
        max_retry_after: A 429 or 503 whose ``Retry-After`` asks for a longer
            wait than this is raised at once instead of retried.
        user_agent: Sent as ``User-Agent``.
        ssl_context: For ``https://`` gates with a private CA, say; default:
            the system's trust store.

    Connections are kept alive and reused by later calls (also from other
    threads); :meth:`close`, or leaving a ``with Client(...) as client:``
    block, closes the idle ones. ``HTTP_PROXY``, ``HTTPS_PROXY`` and
    ``NO_PROXY`` are honoured as by :mod:`urllib`.

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
        self._pool = _Pool()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the idle connections. The client stays usable (it reconnects)."""
        self._pool.close()

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)  # absent if __init__ raised
        if pool is not None:
            pool.close()

    # ------------------------------------------------------------------ HTTP

    def _connection(self, target: _Target, deadline: _Deadline) -> Tuple[http.client.HTTPConnection, bool, str]:
        """A connection to ``target``'s origin (reused if one is idle), and the request target to send."""
        proxy = _proxy_for(target)
        request_target = target.target
        if proxy is not None and target.scheme == "http":
            default = ":80" if target.port == 80 else f":{target.port}"
            request_target = f"http://{target.host}{default}{target.target}"
        conn = self._pool.take(target.origin)
        if conn is not None:
            return conn, True, request_target
        cls: Type[http.client.HTTPConnection]
        kw: Dict[str, Any] = {}
        if target.scheme == "https":
            cls = http.client.HTTPSConnection
            kw["context"] = self._ssl()
        else:
            cls = http.client.HTTPConnection
        timeout = deadline.cap(self.connect_timeout)
        if proxy is None:
            conn = cls(target.host, target.port, timeout=timeout, **kw)
        else:
            conn = cls(proxy.hostname or "", proxy.port or 8080, timeout=timeout, **kw)
            if target.scheme == "https":
                conn.set_tunnel(target.host, target.port, headers=_proxy_auth(proxy))
        conn.connect()  # under the connect timeout (TLS handshake included)
        self._pool.opened += 1
        return conn, False, request_target

    def _send(
        self, method: str, target: _Target, headers: Dict[str, str], data: Optional[bytes], deadline: _Deadline
    ) -> Tuple[int, str, Any]:
        proxy_headers = {}
        proxy = _proxy_for(target)
        if proxy is not None and target.scheme == "http":
            proxy_headers = _proxy_auth(proxy)
        while True:
            conn, reused, request_target = self._connection(target, deadline)
            try:
                if conn.sock is not None:
                    conn.sock.settimeout(deadline.cap(self.timeout))
                conn.request(method, request_target, body=data, headers={**headers, **proxy_headers})
                resp = conn.getresponse()
                body = resp.read()
            except _STALE:
                conn.close()
                if reused:
                    continue  # the idle connection had been closed by the server; once more on a new one
                raise
            except BaseException:
                conn.close()
                raise
            if resp.will_close:
                conn.close()
            else:
                self._pool.give_back(target.origin, conn)
            return resp.status, body.decode("utf-8", "replace"), resp.headers

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
        target, headers, data = self._prepare(path, body, auth)
        deadline = _Deadline(self.deadline)
        attempts = self.max_retries + 1 if retry else 1
        what = f"{method} {path}"
        for attempt in range(attempts):
            try:
                status, text, answer_headers = self._send(method, target, headers, data, deadline)
            except _TRANSIENT as e:
                step = self._after_transport_error(e, attempt, attempts, deadline, what)
            else:
                outcome = self._after_answer(status, text, answer_headers, exact, attempt, attempts, deadline, what)
                if not isinstance(outcome, _Retry):
                    return outcome
                step = outcome
            time.sleep(step.delay)
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
        body = self._intercept_body(action, payload, idempotency_key, actor, reasoning, source)
        status, data = self.request("POST", "/v1/intercept", body)
        return Run.from_json(data, replayed=status == 200)

    def status(self, run_id: RunRef) -> Run:
        """Returns the current state of a run (``GET /v1/runs/{id}``), with its deliveries."""
        _, data = self.request("GET", f"/v1/runs/{_quoted(run_id)}")
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
        _, data = self.request("POST", f"/v1/runs/{_quoted(run_id)}/executed", {"execution_result": execution_result})
        return Run.from_json(data)

    def report_failed(self, run_id: RunRef, execution_error: str) -> Run:
        """Reports that performing the action failed (``POST /v1/runs/{id}/failed``).

        ``execution_error`` must be a non-empty string of at most 8 KiB.

        Raises:
            ConflictError: The run is not executable, or already has a
                different report.
        """
        _, data = self.request("POST", f"/v1/runs/{_quoted(run_id)}/failed", {"execution_error": execution_error})
        return Run.from_json(data)

    def receipt(self, run_id: RunRef) -> Receipt:
        """Fetches the signed receipt of a run (``GET /v1/runs/{id}/receipt``)."""
        # Read exactly: the receipt is checked against its signature later.
        _, data = self.request("GET", f"/v1/runs/{_quoted(run_id)}/receipt", exact=True)
        return self._receipt(data)

    def receipt_keys(self) -> List[ReceiptKey]:
        """Returns the gate's public receipt keys (``GET /v1/receipt-keys``, no key needed)."""
        _, data = self.request("GET", "/v1/receipt-keys", auth=False)
        return self._keys(data)

    def list_runs(
        self,
        *,
        governance_status: Optional[GovernanceStatus] = None,
        execution_status: Optional[ExecutionStatus] = None,
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
        path = self._runs_path(governance_status, execution_status, action, actor, limit, cursor)
        _, data = self.request("GET", path)
        return self._runs_page(data)

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
