"""The state store's schema, as numbered migrations applied in order at start-up (both backends).

Each migration is portable DDL: SQLite's types TEXT, REAL and INTEGER, ``IF NOT EXISTS`` on every CREATE, one
statement per ``;``. ``for_postgres`` turns it into PostgreSQL's dialect in one place (REAL -> DOUBLE PRECISION,
INTEGER -> BIGINT); a migration whose PostgreSQL form needs more than that gives it as ``postgres``.

Adding a table or a column: append ``Migration(N + 1, "what it adds", DDL)`` to ``MIGRATIONS``. Never edit a
migration that has shipped: stores out there recorded it as applied. A store records what it has in
``schema_version``; a server refuses a store whose version is newer than ``LATEST`` (docs/deployment.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    postgres: str | None = None  # the PostgreSQL text, when the portable one does not translate

    def statements(self, dialect: str) -> list[str]:
        text = (self.postgres or for_postgres(self.sql)) if dialect == "postgres" else self.sql
        return [s.strip() for s in text.split(";") if s.strip()]


def for_postgres(sql: str) -> str:
    """Portable DDL in PostgreSQL's types: REAL is 4 bytes there (a timestamp would lose its seconds)."""
    return re.sub(r"\bINTEGER\b", "BIGINT", re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql))


# The schema as binance-mcp 0.1 created it with CREATE TABLE IF NOT EXISTS, before migrations existed (a file
# made then is adopted: see sqlite.py).
INITIAL = """
CREATE TABLE IF NOT EXISTS daily_sums (day TEXT NOT NULL, key TEXT NOT NULL, total TEXT NOT NULL,
    PRIMARY KEY (day, key));
CREATE TABLE IF NOT EXISTS reservations (call_id TEXT NOT NULL, day TEXT NOT NULL, key TEXT NOT NULL,
    amount TEXT NOT NULL, tool TEXT NOT NULL, created_at TEXT NOT NULL, status TEXT NOT NULL,
    PRIMARY KEY (call_id, key));
CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, tool TEXT NOT NULL, args_hash TEXT NOT NULL,
    summary TEXT NOT NULL, rule TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, decided_at TEXT, consumed_at TEXT, decided_by TEXT);
CREATE INDEX IF NOT EXISTS approvals_hash ON approvals (args_hash, status);
CREATE TABLE IF NOT EXISTS inflight (call_id TEXT PRIMARY KEY, account TEXT NOT NULL, tool TEXT NOT NULL,
    market TEXT, symbol TEXT, side TEXT, position_side TEXT, quantity TEXT, reduces INTEGER NOT NULL,
    client_order_id TEXT, conditional INTEGER NOT NULL, owner TEXT NOT NULL, created_at REAL NOT NULL,
    status TEXT NOT NULL, released_seq INTEGER, released_at REAL, outcome TEXT, notional TEXT);
CREATE INDEX IF NOT EXISTS inflight_account ON inflight (account, status, released_seq);
CREATE TABLE IF NOT EXISTS rate_hits (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rate_hits_key ON rate_hits (key, at);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS equity_days (account TEXT NOT NULL, day TEXT NOT NULL, first TEXT NOT NULL,
    first_at REAL NOT NULL, peak TEXT NOT NULL, peak_at REAL NOT NULL, last TEXT NOT NULL, last_at REAL NOT NULL,
    PRIMARY KEY (account, day));
CREATE TABLE IF NOT EXISTS protection_trips (account TEXT NOT NULL, day TEXT NOT NULL, name TEXT NOT NULL,
    code TEXT NOT NULL, at REAL NOT NULL, detail TEXT NOT NULL, reset_at REAL, PRIMARY KEY (account, day, name));
CREATE TABLE IF NOT EXISTS protection_resets (account TEXT NOT NULL, at REAL NOT NULL, by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS traded (account TEXT NOT NULL, market TEXT NOT NULL, symbol TEXT NOT NULL,
    at REAL NOT NULL, PRIMARY KEY (account, market, symbol));
CREATE TABLE IF NOT EXISTS policy_changes (path TEXT NOT NULL, sha256 TEXT NOT NULL, source TEXT NOT NULL,
    lines TEXT NOT NULL, status TEXT NOT NULL, seen_at REAL NOT NULL, confirmed_at REAL, confirmed_by TEXT,
    PRIMARY KEY (path, sha256));
CREATE TABLE IF NOT EXISTS agents (name TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, policy TEXT,
    created_at TEXT NOT NULL, created_by TEXT NOT NULL, revoked_at TEXT, revoked_by TEXT);
"""
# SQLite orders approvals made in one second by their rowid; PostgreSQL has none, so the table gets one.
INITIAL_PG = for_postgres(INITIAL) + """
ALTER TABLE approvals ADD COLUMN IF NOT EXISTS rowid BIGINT GENERATED ALWAYS AS IDENTITY;
"""
# Columns a pre-migration file may lack (the code then added them at open): (table, column, declaration).
LEGACY_ADDED_COLUMNS = (("inflight", "notional", "TEXT"),)

# The audit trail in the store (PostgreSQL only writes it: a SQLite store has the JSONL file beside it).
AUDIT = """
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, host TEXT NOT NULL, at TEXT NOT NULL, tool TEXT,
    code TEXT, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at)
"""
AUDIT_PG = """
CREATE TABLE IF NOT EXISTS audit (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, host TEXT NOT NULL,
    at TEXT NOT NULL, tool TEXT, code TEXT, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at)
"""

# Sealing keys for 2026-07-28 request states (policy/request_keys.py), shared by every server on the store.
REQUEST_KEYS = """
CREATE TABLE IF NOT EXISTS request_state_keys (id TEXT PRIMARY KEY, secret TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, retired_at DOUBLE PRECISION);
"""
# The console's credential, sessions and one-time login links, and the kill flag (policy/console_state.py).
CONSOLE = """
CREATE TABLE IF NOT EXISTS console_credentials (name TEXT PRIMARY KEY, hash TEXT NOT NULL,
    set_at DOUBLE PRECISION NOT NULL, set_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS console_sessions (id_sha256 TEXT PRIMARY KEY, csrf TEXT NOT NULL, via TEXT NOT NULL,
    client TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS console_links (token_sha256 TEXT PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL, created_by TEXT NOT NULL, used_at DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS flags (name TEXT PRIMARY KEY, value TEXT NOT NULL, set_at DOUBLE PRECISION NOT NULL,
    set_by TEXT NOT NULL);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", INITIAL, INITIAL_PG),
    Migration(2, "audit records", AUDIT, AUDIT_PG),
    Migration(3, "request-state keys", REQUEST_KEYS),
    Migration(4, "console and kill flag", CONSOLE),
)
LATEST = MIGRATIONS[-1].version
assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1)), "migrations are numbered 1, 2, 3, ..."

VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                 "applied_at TEXT NOT NULL)")


def too_new(found: int, where: str) -> str:
    return (f"the state store {where} has schema version {found}, newer than this binance-mcp knows ({LATEST}): a "
            "newer binance-mcp migrated it. Upgrade binance-mcp here (every server on one store must know its "
            "schema); this one does not use the store meanwhile, so calls that trade are refused")


def apply(db, dialect: str, where: str, now: str) -> list[int]:
    """Bring the schema of ``db`` (a connection of either backend, inside a transaction that holds the store's write
    lock) up to ``LATEST``. Returns the versions applied. Raises SchemaTooNew on a newer store.

    A SQLite file made before migrations existed has the tables and no ``schema_version``: it is adopted as
    version 1 (the missing tables created, the columns added since then added), its rows untouched."""
    from binance_mcp.store.errors import SchemaTooNew

    db.execute(VERSION_TABLE if dialect == "sqlite" else for_postgres(VERSION_TABLE))
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    have = int(row[0]) if row and row[0] is not None else 0
    if have > LATEST:
        raise SchemaTooNew(too_new(have, where))
    applied = []
    for m in MIGRATIONS[have:]:
        for statement in m.statements(dialect):
            db.execute(statement)
        if m.version == 1 and dialect == "sqlite":
            for table, column, decl in LEGACY_ADDED_COLUMNS:
                if column not in {r[1] for r in db.execute(f"PRAGMA table_info({table})").fetchall()}:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        db.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)", (m.version, m.name, now))
        applied.append(m.version)
    return applied
