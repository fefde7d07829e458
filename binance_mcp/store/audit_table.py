"""The audit records in the state store, when it is PostgreSQL: every server on the database appends its records to
one table (with its host name), so ``binance-mcp audit`` shows the account's whole trail from any host. The JSON lines
file stays, per host, and stays the record a trading call waits for (written and fsynced before it is sent); the
table is a copy, written after it: a row that cannot be written is logged, never a reason to refuse a call (a store
that cannot be written denies the trading calls on its own)."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

log = logging.getLogger("binance_mcp.store.audit")
COLS = "seq, host, at, tool, code, record"


class AuditTable:
    def __init__(self, url: str, busy_timeout: float = 2.0) -> None:
        from binance_mcp.policy.state import StateStore

        self.store = StateStore(Path("audit-table"), lambda: 0.0, busy_timeout=busy_timeout, url=url)
        self.host = socket.gethostname()
        self._failing = False

    def append(self, line: str, record: dict) -> None:
        """One record (``line``: its JSON, already redacted); a failure is logged once until the next success."""
        code = (record.get("decision") or {}).get("code")
        row = (self.host, record.get("time", ""), record.get("tool"), code, line)
        try:
            self.store.transaction(lambda db: db.execute(
                "INSERT INTO audit (host, at, tool, code, record) VALUES (?, ?, ?, ?, ?)", row), lock=False, wait=False)
            self._failing = False
        except Exception as exc:  # noqa: BLE001 - the file has the record; the copy is best effort
            if not self._failing:
                log.warning("an audit record could not be copied to the state store (%s); the audit log file has "
                            "it", exc)
            self._failing = True

    def read(self, tool: str | None = None, code: str | None = None, since: str | None = None,
             limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` records matching, oldest first, each with the host that wrote it."""
        where, args = [], []
        for column, value in (("tool", tool), ("code", code)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if since:
            where.append("at >= ?")
            args.append(since)
        sql = (f"SELECT host, record FROM audit {'WHERE ' + ' AND '.join(where) if where else ''} "
               "ORDER BY seq DESC LIMIT ?")
        rows = self.store.transaction(lambda db: db.execute(sql, (*args, limit)).fetchall(), "read", write=False)
        return [{**json.loads(record), "host": host} for host, record in reversed(rows)]

    def close(self) -> None:
        self.store.close()
