"""Persistent guard state in SQLite (WAL): daily notional sums with per-call reservations (and approvals).

Every check-and-reserve runs in one ``BEGIN IMMEDIATE`` transaction, so two calls (or two processes)
cannot both pass a cap that only one fits under. Amounts are Decimal, stored as text.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS daily_sums (day TEXT NOT NULL, key TEXT NOT NULL, total TEXT NOT NULL,
    PRIMARY KEY (day, key));
CREATE TABLE IF NOT EXISTS reservations (call_id TEXT NOT NULL, day TEXT NOT NULL, key TEXT NOT NULL,
    amount TEXT NOT NULL, tool TEXT NOT NULL, created_at TEXT NOT NULL, status TEXT NOT NULL,
    PRIMARY KEY (call_id, key));
CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, tool TEXT NOT NULL, args_hash TEXT NOT NULL,
    summary TEXT NOT NULL, rule TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, decided_at TEXT, consumed_at TEXT, decided_by TEXT);
CREATE INDEX IF NOT EXISTS approvals_hash ON approvals (args_hash, status);
"""


class StateError(Exception):
    """The state store cannot be read or written: financial calls are denied (fail closed)."""


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


class StateStore:
    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(str(self.path), timeout=2.0, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(SCHEMA)
            except (sqlite3.Error, OSError) as exc:
                raise StateError(f"the state database {self.path} cannot be opened: {exc}") from exc
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def check_writable(self) -> None:
        """Raise StateError unless the database opens, is not corrupt at a glance, and takes a write lock."""
        with self._lock:
            try:
                db = self._conn()
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute("SELECT 1 FROM daily_sums LIMIT 1").fetchone()
                    db.execute("SELECT 1 FROM approvals LIMIT 1").fetchone()
                finally:
                    db.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise StateError(f"the state database {self.path} cannot be used ({exc}); calls that trade are "
                                 "denied until a human fixes or removes it") from exc

    def today(self) -> str:
        return utc_day(self.clock())

    def used(self, keys: list[str], day: str | None = None) -> dict[str, Decimal]:
        day = day or self.today()
        with self._lock:
            try:
                db = self._conn()
                out = {k: Decimal(0) for k in keys}
                for key, total in db.execute(
                    f"SELECT key, total FROM daily_sums WHERE day = ? AND key IN ({','.join('?' * len(keys))})",
                    (day, *keys),
                ):
                    out[key] = Decimal(total)
                return out
            except sqlite3.Error as exc:
                raise StateError(f"the state database {self.path} cannot be read: {exc}") from exc

    def reserve(self, call_id: str, tool: str, amount: Decimal, caps: dict[str, Decimal | None]
                ) -> tuple[bool, str | None, Decimal]:
        """Reserve ``amount`` under every key of ``caps`` atomically. Returns (ok, key that overflowed, its used)."""
        day = self.today()
        now = datetime.fromtimestamp(self.clock(), tz=timezone.utc).isoformat()
        with self._lock:
            try:
                db = self._conn()
                db.execute("BEGIN IMMEDIATE")
                try:
                    totals: dict[str, Decimal] = {}
                    for key, cap in caps.items():
                        row = db.execute("SELECT total FROM daily_sums WHERE day = ? AND key = ?", (day, key)).fetchone()
                        used = Decimal(row[0]) if row else Decimal(0)
                        if cap is not None and used + amount > cap:
                            db.execute("ROLLBACK")
                            return False, key, used
                        totals[key] = used
                    for key, used in totals.items():
                        db.execute("INSERT INTO daily_sums (day, key, total) VALUES (?, ?, ?) ON CONFLICT (day, key) "
                                   "DO UPDATE SET total = excluded.total", (day, key, str(used + amount)))
                        db.execute("INSERT INTO reservations VALUES (?, ?, ?, ?, ?, ?, 'reserved')",
                                   (call_id, day, key, str(amount), tool, now))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                return True, None, Decimal(0)
            except sqlite3.Error as exc:
                raise StateError(f"the state database {self.path} cannot be written: {exc}") from exc

    def release(self, call_id: str) -> None:
        with self._lock:
            try:
                db = self._conn()
                db.execute("BEGIN IMMEDIATE")
                try:
                    rows = db.execute("SELECT day, key, amount FROM reservations WHERE call_id = ? AND status = "
                                      "'reserved'", (call_id,)).fetchall()
                    for day, key, amount in rows:
                        db.execute("UPDATE reservations SET status = 'released' WHERE call_id = ? AND key = ?",
                                   (call_id, key))
                        row = db.execute("SELECT total FROM daily_sums WHERE day = ? AND key = ?", (day, key)).fetchone()
                        total = (Decimal(row[0]) if row else Decimal(0)) - Decimal(amount)
                        db.execute("UPDATE daily_sums SET total = ? WHERE day = ? AND key = ?",
                                   (str(max(total, Decimal(0))), day, key))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StateError(f"the state database {self.path} cannot be written: {exc}") from exc
