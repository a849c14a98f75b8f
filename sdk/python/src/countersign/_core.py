"""What :class:`Client` and :class:`AsyncClient` share: configuration, request
building, retry decisions and the decoding of answers. No I/O happens here."""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import ssl
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ._version import __version__
from .canonical import dumps, loads_exact
from .errors import (
    ConfigurationError,
    CountersignError,
    DeadlineExceeded,
    GateUnavailable,
    error_from_response,
)
from .models import ExecutionStatus, GovernanceStatus, Receipt, ReceiptKey, Run

logger = logging.getLogger("countersign")

#: The gate's address when neither ``base_url`` nor ``COUNTERSIGN_URL`` is set.
DEFAULT_URL = "http://127.0.0.1:8080"
#: The environment variable holding the API key.
ENV_API_KEY = "COUNTERSIGN_API_KEY"
#: The environment variable holding the gate's address.
ENV_URL = "COUNTERSIGN_URL"

RunRef = Union[str, Run]

# Errors that mean "no usable answer arrived": the request may or may not have
# reached the gate, so it is only retried where a repeat is harmless (every
# SDK call is: reads, intercepts with an idempotency key, identical reports).
_TRANSIENT = (OSError, http.client.HTTPException, socket.timeout, TimeoutError, EOFError)


def _run_id(run: RunRef) -> str:
    rid = run.run_id if isinstance(run, Run) else run
    if not isinstance(rid, str) or not rid:
        raise ValueError("run_id must be a non-empty string")
    return rid


def _quoted(run: RunRef) -> str:
    return urllib.parse.quote(_run_id(run), safe="")


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


@dataclass(frozen=True)
class _Target:
    """Where one request goes: the origin to connect to and the request line's target."""

    scheme: str
    host: str
    port: int
    target: str

    @property
    def origin(self) -> Tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def _split_url(url: str) -> _Target:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{url!r} must be an http:// or https:// URL")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    target = parsed.path or "/"
    if parsed.query:
        target += "?" + parsed.query
    return _Target(parsed.scheme, parsed.hostname, port, target)


class _Deadline:
    """The overall time budget of one call (``None``: unlimited)."""

    def __init__(self, seconds: Optional[float]) -> None:
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> Optional[float]:
        return None if self.at is None else self.at - time.monotonic()

    def cap(self, seconds: float) -> float:
        """``seconds``, or less when the deadline is nearer."""
        left = self.remaining()
        return seconds if left is None else max(0.001, min(seconds, left))

    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0


class _Retry:
    """Tells the retry loop to wait ``delay`` seconds and try again."""

    def __init__(self, delay: float) -> None:
        self.delay = delay


class _BaseClient:
    """Configuration and protocol logic shared by the sync and async clients."""

    def __init__(
        self,
        api_key: Optional[str],
        base_url: Optional[str],
        timeout: float,
        max_retries: int,
        *,
        connect_timeout: float,
        deadline: Optional[float],
        backoff_base: float,
        backoff_max: float,
        max_retry_after: float,
        user_agent: Optional[str],
        ssl_context: Optional[ssl.SSLContext],
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        if not key:
            raise ConfigurationError(
                f"no API key: pass api_key=... or set {ENV_API_KEY} "
                f"(the client reads {ENV_API_KEY} and {ENV_URL}; {ENV_URL} defaults to {DEFAULT_URL}); "
                "create a key with: countersign keys create --workspace default --role agent",
                code="missing_api_key",
            )
        url = base_url if base_url is not None else os.environ.get(ENV_URL) or DEFAULT_URL
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"base_url {url!r} must be an http:// or https:// URL")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if not value > 0:
                raise ValueError(f"{name} must be more than 0 seconds")
        if deadline is not None and not deadline > 0:
            raise ValueError("deadline must be more than 0 seconds, or None for no deadline")
        self.api_key: str = key
        self.base_url = url.rstrip("/")
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.deadline = None if deadline is None else float(deadline)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_retry_after = float(max_retry_after)
        self.user_agent = user_agent or f"countersign-python/{__version__}"
        self.ssl_context = ssl_context

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key='set')"

    # ------------------------------------------------------------------ requests

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter for retry number ``attempt`` (0-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))

    def _ssl(self) -> ssl.SSLContext:
        if self.ssl_context is None:
            self.ssl_context = ssl.create_default_context()
        return self.ssl_context

    def _prepare(self, path: str, body: Any, auth: bool) -> Tuple[_Target, Dict[str, str], Optional[bytes]]:
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        data = dumps(body).encode("utf-8") if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return _split_url(url), headers, data

    @staticmethod
    def _cause(exc: BaseException) -> BaseException:
        reason = getattr(exc, "reason", None)  # urllib-style wrappers carry the real error here
        return reason if isinstance(reason, BaseException) else exc

    def _unreachable(self, exc: BaseException, deadline: _Deadline) -> CountersignError:
        reason = self._cause(exc)
        timed_out = isinstance(reason, (socket.timeout, TimeoutError))
        text = str(reason) or ("timed out" if timed_out else type(reason).__name__)
        return GateUnavailable(f"cannot reach the gate at {self.base_url}: {text}", code="unreachable")

    def _deadline_error(self, deadline: _Deadline, last: Optional[BaseException]) -> DeadlineExceeded:
        detail = f" (last error: {last})" if last is not None else ""
        return DeadlineExceeded(
            f"no answer from the gate at {self.base_url} within the {deadline.seconds:g}s deadline{detail}"
        )

    def _after_transport_error(
        self, exc: BaseException, attempt: int, attempts: int, deadline: _Deadline, what: str
    ) -> _Retry:
        """Decides what a failed attempt (no HTTP answer) leads to: raise or retry."""
        err = self._unreachable(exc, deadline)
        if isinstance(self._cause(exc), ssl.SSLCertVerificationError):
            raise err from exc  # retrying won't help
        if deadline.expired():
            raise self._deadline_error(deadline, err) from exc
        if attempt == attempts - 1:
            raise err from exc
        delay = self._backoff(attempt)
        left = deadline.remaining()
        if left is not None and delay >= left:
            raise self._deadline_error(deadline, err) from exc
        logger.info("%s failed (%s); retry %d in %.2fs", what, err.message, attempt + 1, delay)
        return _Retry(delay)

    def _after_answer(
        self,
        status: int,
        text: str,
        headers: Any,
        exact: bool,
        attempt: int,
        attempts: int,
        deadline: _Deadline,
        what: str,
    ) -> Union[Tuple[int, Any], _Retry]:
        """Decodes an HTTP answer: the result, a typed error raised, or a retry."""
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
        if not (status >= 500 or status == 429) or attempt == attempts - 1:
            raise err
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                raise err
            delay = retry_after + random.uniform(0, min(0.25, self.backoff_base))
        else:
            delay = self._backoff(attempt)
        left = deadline.remaining()
        if left is not None and delay >= left:
            raise err  # the next attempt could not finish in time; the gate's own answer says most
        logger.info("%s answered %d; retry %d in %.2fs", what, status, attempt + 1, delay)
        return _Retry(delay)

    # ------------------------------------------------------------------ API bodies

    @staticmethod
    def _intercept_body(
        action: str,
        payload: Mapping[str, Any],
        idempotency_key: Optional[str],
        actor: Optional[str],
        reasoning: Optional[str],
        source: Any,
    ) -> Dict[str, Any]:
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
        return body

    @staticmethod
    def _runs_path(
        governance_status: Optional[GovernanceStatus],
        execution_status: Optional[ExecutionStatus],
        action: Optional[str],
        actor: Optional[str],
        limit: Optional[int],
        cursor: Optional[str],
    ) -> str:
        params = {
            "governance_status": governance_status,
            "execution_status": execution_status,
            "action": action,
            "actor": actor,
            "limit": None if limit is None else str(limit),
            "cursor": cursor,
        }
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return "/v1/runs" + (f"?{query}" if query else "")

    @staticmethod
    def _runs_page(data: Any) -> Tuple[List[Run], Optional[str]]:
        data = data or {}
        runs = [Run.from_json(r) for r in data.get("runs", []) if isinstance(r, dict)]
        cursor = data.get("next_cursor")
        return runs, cursor if isinstance(cursor, str) else None

    @staticmethod
    def _keys(data: Any) -> List[ReceiptKey]:
        return [ReceiptKey.from_json(k) for k in (data or {}).get("keys", []) if isinstance(k, dict)]

    @staticmethod
    def _receipt(data: Any) -> Receipt:
        return Receipt.from_json(data)
