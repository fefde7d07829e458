"""The state store's backends: SQLite in the state directory (the embedded default), or PostgreSQL when several
servers share one account (``BINANCE_MCP_STATE_URL=postgresql://...``). Both give ``transaction(fn, doing, write)``
and ``close()``; the store's SQL (binance_mcp/policy/state.py and its mixins) is one text for both, and the schema
is the numbered migrations in ``migrations.py``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from binance_mcp.store.errors import SchemaTooNew, StateBusy, StateError
from binance_mcp.store.postgres import describe, is_postgres_url

URL_ENV = "BINANCE_MCP_STATE_URL"

__all__ = ["SchemaTooNew", "StateBusy", "StateError", "backend_for", "describe", "is_postgres_url", "state_url"]


def state_url(given: str | None = None) -> str | None:
    """The PostgreSQL URL in force: ``given`` (a flag), else BINANCE_MCP_STATE_URL; None means SQLite."""
    value = (given if given is not None else os.environ.get(URL_ENV, "")).strip()
    return value or None


def backend_for(path: Path, url: str | None, busy_timeout: float) -> Any:
    """The backend of a store: PostgreSQL at ``url`` when one is given, else the SQLite file ``path``."""
    if url:
        if not is_postgres_url(url):
            raise StateError(f"{URL_ENV} must be a postgresql:// URL (got a {url.split(':', 1)[0]!r} URL)")
        from binance_mcp.store.postgres import PostgresBackend

        return PostgresBackend(url, busy_timeout)
    from binance_mcp.store.sqlite import SqliteBackend

    return SqliteBackend(path, busy_timeout)


def start_problem(path: Path, url: str | None, strict: bool = False) -> str | None:
    """What start-up finds wrong with the store, migrating it first (under its lock): a schema newer than this
    binance-mcp knows (a server refuses to start on it), or, with ``strict`` (``serve --check``), any store that
    cannot be used. A SQLite file that does not exist yet is nothing wrong (the first call makes it)."""
    if not url and not path.exists():
        return None
    from binance_mcp.policy.state import StateStore

    store = StateStore(path, lambda: 0.0, url=url)
    try:
        store.write_probe() if strict else store.seq()
    except SchemaTooNew as exc:
        return str(exc)
    except StateError as exc:
        return str(exc) if strict else None
    finally:
        store.close()
    return None
