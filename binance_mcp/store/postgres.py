"""The shared backend: every table of the state store in one PostgreSQL database, for several servers (on one
host or several) trading one account. psycopg 3, synchronous, used only from the store's worker thread.

Atomicity across hosts: every write transaction first takes one transaction-scoped advisory lock
(``pg_advisory_xact_lock(WRITE_LOCK)``), then runs at READ COMMITTED. That is SQLite's ``BEGIN IMMEDIATE`` on a
network: the transactions that reserve (read the sums, the rate hits and the orders in flight, decide, write)
run one at a time over every server on the database, and each statement after the lock sees every write committed
before it (the lock is released only once the previous holder's commit is visible). Nothing can interleave, so
no cap that only one of two calls fits under is passed by both, and no transaction retries for a serialisation
failure. Reads run at REPEATABLE READ, READ ONLY: one consistent snapshot, never waiting for a writer. The cost is
one lock wait per write, on decisions that take a millisecond or two (bench/README.md). docs/deployment.md argues
it against SERIALIZABLE.

The shared SQL is written once, with SQLite's ``?`` placeholders: ``Connection`` translates it (``?`` -> ``%s``,
a literal ``%`` doubled) and is all that the store's functions see of psycopg."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from binance_mcp.store import migrations
from binance_mcp.store.errors import StateBusy, StateError

WRITE_LOCK = 0x62696E616E6365  # "binance": the one advisory lock key every write transaction takes
CONNECT_TIMEOUT_S = 3
SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(value: str | None) -> bool:
    return bool(value) and value.strip().lower().startswith(SCHEMES)


def describe(url: str) -> str:
    """The URL without its password (for messages and the status): postgresql://user@host:port/db."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - a URL psycopg cannot read: say as little as possible of it
        return "postgresql://(unreadable URL)"
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{user}{info.get('host') or 'localhost'}{port}/{info.get('dbname') or ''}"


def password_of(url: str) -> str | None:
    try:
        from psycopg.conninfo import conninfo_to_dict

        return conninfo_to_dict(url).get("password") or None
    except Exception:  # noqa: BLE001
        return None


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """SQLite's placeholders in psycopg's: the shared SQL has no ``?`` inside a literal."""
    return sql.replace("%", "%%").replace("?", "%s")


class Connection:
    """What a store function gets as ``db`` on PostgreSQL: ``execute(sql, params)`` returning a cursor (fetchone,
    fetchall, rowcount, iteration), as sqlite3's connection does."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: tuple | list = ()) -> Any:
        return self.conn.execute(translate(sql), tuple(params)) if params else self.conn.execute(sql)


class PostgresBackend:
    dialect = "postgres"

    def __init__(self, url: str, busy_timeout: float = 2.0) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self.where = describe(url)
        self._secret = password_of(url)
        self._db: Any = None
        self._lock = threading.Lock()  # close() may come from another thread than the worker's

    def _text(self, exc: BaseException) -> str:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return text.replace(self._secret, "****") if self._secret else text

    def _conn(self) -> Any:
        if self._db is None:
            import psycopg

            try:
                db = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                     application_name="binance-mcp")
            except psycopg.Error as exc:
                raise StateError(f"the state database {self.where} cannot be reached: {self._text(exc)}") from exc
            try:
                db.execute(f"SET lock_timeout = {max(1, int(self.busy_timeout * 1000))}")
                self._migrate(db)
            except psycopg.Error as exc:
                db.close()
                raise self._error(exc, "opened") from exc
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _migrate(self, db: Any) -> None:
        row = db.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        if row[0] and db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == migrations.LATEST:
            return
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            migrations.apply(Connection(db), self.dialect, self.where, datetime.now(timezone.utc).isoformat())

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except Exception:  # noqa: BLE001 - a connection already gone
                pass

    def _error(self, exc: BaseException, doing: str) -> StateError:
        from psycopg import errors

        if isinstance(exc, (errors.LockNotAvailable, errors.SerializationFailure, errors.DeadlockDetected)):
            return StateBusy(f"the state database {self.where} is locked by another server ({doing})")
        return StateError(f"the state database {self.where} cannot be {doing}: {self._text(exc)}")

    def transaction(self, fn: Callable[[Connection], Any], doing: str, write: bool, lock: bool = True,
                    wait: bool = True) -> Any:
        """Run ``fn(db)`` in one transaction: the write lock first for writes (unless ``lock`` is False: an append
        that reads nothing), a read-only snapshot for reads."""
        import psycopg

        try:
            db = self._conn()
            # one round trip each: BEGIN with the lock (or the snapshot), then COMMIT
            begin = "BEGIN" + ("" if wait else "; SET LOCAL synchronous_commit = off")
            db.execute((f"{begin}; SELECT pg_advisory_xact_lock({WRITE_LOCK})" if lock else begin) if write
                       else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                out = fn(Connection(db))
                db.execute("COMMIT")
                return out
            except BaseException:
                try:
                    db.execute("ROLLBACK")
                except psycopg.Error:
                    self.close()
                raise
        except psycopg.Error as exc:
            failed = self._error(exc, doing)
            if isinstance(failed, StateBusy):  # the lock wait timed out: the transaction is aborted, end it
                try:
                    self._db.execute("ROLLBACK")
                except (psycopg.Error, AttributeError):
                    self.close()
            else:  # reconnect on the next call (the server may be back by then)
                self.close()
            raise failed from exc
