"""The SQLite store of pending proposals: what :mod:`countersign.pending` keeps
between proposing an action and executing it.

This module only stores; it never talks to the gate. Every change is one
atomic statement, and :meth:`SQLitePendingStore.claim` is a conditional
UPDATE, which is what lets several runner processes share one file and
still execute each approved run exactly once.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Union

from ._util import _loads
from .canonical import dumps

__all__ = ["PendingRecord", "SQLitePendingStore"]

logger = logging.getLogger("countersign")


@dataclass(frozen=True)
class PendingRecord:
    """One stored proposal.

    Attributes:
        run_id: The gate's run id.
        action: The action name; selects the executor.
        payload: What the executor receives.
        idempotency_key: The key the proposal was made with.
        governance_status: Last status seen by this store.
        created_at: When it was stored (Unix time).
        updated_at: Last change (Unix time).
        claimed_by: The runner executing it, or ``None``.
        claimed_at: When it was claimed (Unix time).
        outcome: ``"executed"`` or ``"failed"`` once the executor returned,
            while the report to the gate is still owed; else ``None``.
        outcome_value: The result (executed) or error text (failed).
        last_error: The last problem a runner had with it.
    """

    run_id: str
    action: str
    payload: Dict[str, Any]
    idempotency_key: Optional[str]
    governance_status: str
    created_at: float
    updated_at: float
    claimed_by: Optional[str]
    claimed_at: Optional[float]
    outcome: Optional[str]
    outcome_value: Any
    last_error: Optional[str]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS countersign_pending (
    run_id            TEXT PRIMARY KEY,
    action            TEXT NOT NULL,
    payload           TEXT NOT NULL,
    idempotency_key   TEXT,
    governance_status TEXT NOT NULL,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    claimed_by        TEXT,
    claimed_at        REAL,
    outcome           TEXT,
    outcome_value     TEXT,
    last_error        TEXT
)
"""


class SQLitePendingStore:
    """Pending proposals in an SQLite file, safe for several processes.

    The database runs in WAL mode with a busy timeout, and every change is a
    single atomic statement; :meth:`claim` is a conditional UPDATE, so
    exactly one caller wins it. A new connection is opened per operation, so
    one store object may be used from several threads, and processes may be
    forked after creating it.

    Args:
        path: The database file (created if missing; not ``":memory:"``,
            which could not be shared).
        busy_timeout: Seconds to wait for another process's write lock.
        decimals: Give executors numbers with a fraction as
            :class:`decimal.Decimal`, exactly as proposed (the default:
            money is not a float). ``False`` returns ``float`` instead, so
            a ``Decimal("1250.10")`` comes back as ``1250.1``.
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        *,
        busy_timeout: float = 30.0,
        decimals: bool = True,
    ) -> None:
        self.path = os.fspath(path)
        if self.path == ":memory:" or self.path.startswith("file::memory:"):
            raise ValueError("SQLitePendingStore needs a file path; an in-memory database cannot be shared")
        self.busy_timeout = float(busy_timeout)
        self.decimals = decimals
        with self._connect() as conn:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":  # pragma: no cover - e.g. network filesystems
                logger.warning("SQLite store %s could not switch to WAL mode (%s)", self.path, mode)
            conn.execute(_SCHEMA)

    def __repr__(self) -> str:
        return f"SQLitePendingStore({self.path!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            yield conn
        finally:
            conn.close()

    def _record(self, row: Any) -> PendingRecord:
        return PendingRecord(
            run_id=row[0],
            action=row[1],
            payload=_loads(row[2], exact=self.decimals),
            idempotency_key=row[3],
            governance_status=row[4],
            created_at=row[5],
            updated_at=row[6],
            claimed_by=row[7],
            claimed_at=row[8],
            outcome=row[9],
            outcome_value=_loads(row[10], exact=True),
            last_error=row[11],
        )

    _COLUMNS = (
        "run_id, action, payload, idempotency_key, governance_status, created_at, "
        "updated_at, claimed_by, claimed_at, outcome, outcome_value, last_error"
    )

    def save(
        self,
        run_id: str,
        action: str,
        payload: Mapping[str, Any],
        *,
        idempotency_key: Optional[str] = None,
        governance_status: str = "pending_approval",
    ) -> None:
        """Stores a proposal (or refreshes its status if already stored; a claim is kept)."""
        now = time.time()
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO countersign_pending (run_id, action, payload, idempotency_key, "
                "governance_status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(run_id) DO UPDATE SET governance_status = excluded.governance_status, "
                "updated_at = excluded.updated_at",
                (run_id, action, dumps(dict(payload)), idempotency_key, governance_status, now, now),
            )

    def get(self, run_id: str) -> Optional[PendingRecord]:
        """The stored record of ``run_id``, or ``None``."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {self._COLUMNS} FROM countersign_pending WHERE run_id = ?", (run_id,)
            ).fetchone()
        return self._record(row) if row else None

    def list(self) -> List[PendingRecord]:
        """Every stored record, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {self._COLUMNS} FROM countersign_pending ORDER BY created_at, run_id"
            ).fetchall()
        return [self._record(r) for r in rows]

    def __len__(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM countersign_pending").fetchone()[0])

    def claim(self, run_id: str, owner: str) -> bool:
        """Atomically marks ``run_id`` as being executed by ``owner``.

        Returns ``True`` for exactly one caller; ``False`` when the record is
        already claimed or no longer stored.
        """
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE countersign_pending SET claimed_by = ?, claimed_at = ?, updated_at = ? "
                "WHERE run_id = ? AND claimed_by IS NULL",
                (owner, time.time(), time.time(), run_id),
            )
            return cur.rowcount == 1

    def release(self, run_id: str, owner: Optional[str] = None) -> bool:
        """Removes a claim (only ``owner``'s, when given) whose outcome is not recorded.

        After a crash, call this once you know the action did *not* happen:
        the next runner pass executes it again.
        """
        sql = (
            "UPDATE countersign_pending SET claimed_by = NULL, claimed_at = NULL, updated_at = ? "
            "WHERE run_id = ? AND outcome IS NULL AND claimed_by IS NOT NULL"
        )
        params: List[Any] = [time.time(), run_id]
        if owner is not None:
            sql += " AND claimed_by = ?"
            params.append(owner)
        with self._connect() as conn:
            return conn.execute(sql, params).rowcount == 1

    def record_outcome(self, run_id: str, owner: str, outcome: str, value_json: str) -> bool:
        """Saves the executor's outcome (JSON text) before it is reported."""
        if outcome not in ("executed", "failed"):
            raise ValueError("outcome must be 'executed' or 'failed'")
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE countersign_pending SET outcome = ?, outcome_value = ?, updated_at = ? "
                "WHERE run_id = ? AND claimed_by = ?",
                (outcome, value_json, time.time(), run_id, owner),
            )
            return cur.rowcount == 1

    def update(self, run_id: str, *, governance_status: Optional[str] = None, last_error: Optional[str] = None) -> None:
        """Notes the last status seen and the last problem met."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE countersign_pending SET governance_status = COALESCE(?, governance_status), "
                "last_error = ?, updated_at = ? WHERE run_id = ?",
                (governance_status, last_error, time.time(), run_id),
            )

    def forget(self, run_id: str) -> None:
        """Deletes the record."""
        with self._connect() as conn:
            conn.execute("DELETE FROM countersign_pending WHERE run_id = ?", (run_id,))
