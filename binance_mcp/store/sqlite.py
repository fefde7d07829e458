"""The embedded backend: one SQLite file (WAL) in the state directory, shared by every process on the machine.

A write transaction is ``BEGIN IMMEDIATE``: it takes the file's one write lock before it reads anything, so the
transactions that reserve run one at a time across every process on the file. A lock held elsewhere past the busy
timeout raises StateBusy (the worker retries it asynchronously)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from binance_mcp.store import migrations
from binance_mcp.store.errors import StateBusy, StateError


def _busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SqliteBackend:
    dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout: float = 2.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.where = str(path)
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(str(self.path), timeout=self.busy_timeout, isolation_level=None,
                                     check_same_thread=False)
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute("PRAGMA synchronous=NORMAL")
                    self._migrate(db)
                except BaseException:
                    db.close()
                    raise
            except sqlite3.Error as exc:
                if _busy(exc):
                    raise StateBusy(f"the state database {self.path} is locked by another process") from exc
                raise StateError(f"the state database {self.path} cannot be opened: {exc}") from exc
            except OSError as exc:
                raise StateError(f"the state database {self.path} cannot be opened: {exc}") from exc
            self._db = db
        return self._db

    def _migrate(self, db: sqlite3.Connection) -> None:
        row = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone()
        if row is not None and db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == \
                migrations.LATEST:
            return  # the usual open: nothing to do, no write lock taken
        db.execute("BEGIN IMMEDIATE")
        try:
            migrations.apply(db, self.dialect, self.where, datetime.now(timezone.utc).isoformat())
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _error(self, exc: sqlite3.Error, doing: str) -> StateError:
        if _busy(exc):
            return StateBusy(f"the state database {self.path} is locked by another process ({doing})")
        return StateError(f"the state database {self.path} cannot be {doing}: {exc}")

    def transaction(self, fn: Callable[[sqlite3.Connection], Any], doing: str, write: bool, lock: bool = True,
                    wait: bool = True) -> Any:
        """Run ``fn(db)`` in one transaction (BEGIN IMMEDIATE for writes); commit unless it raises."""
        try:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                out = fn(db)
                db.execute("COMMIT")
                return out
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            if not _busy(exc) and self._db is not None:  # e.g. read-only now: reopen on the next call, so a
                self.close()  # store a human fixed is used again without a restart
            raise self._error(exc, doing) from exc
