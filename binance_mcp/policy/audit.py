"""The audit log: one JSON line per call, appended, flushed and fsynced before the result goes back."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


FROM_ENV: Any = "from BINANCE_MCP_STATE_URL"


class AuditLog:
    """The JSON lines file of this host; with a PostgreSQL state store (``url``, by default BINANCE_MCP_STATE_URL's)
    every record is copied to its audit table too (binance_mcp/store/audit_table.py)."""

    def __init__(self, path: Path, redact=lambda s: s, clock: Callable[[], float] = time.time,
                 url: str | None = FROM_ENV) -> None:
        self.path = path
        self.redact = redact
        self.clock = clock
        self._lock = threading.Lock()
        self._fh = None
        from binance_mcp.store import is_postgres_url, state_url

        if url is FROM_ENV:
            url = state_url()
        self.table = None
        if is_postgres_url(url):  # (a URL that is not one is refused by the settings and the store)
            from binance_mcp.store.audit_table import AuditTable

            self.table = AuditTable(url)

    def _open(self) -> None:
        if self._fh is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for speed
                self._end_line()
            except OSError as exc:
                raise OSError(f"the audit log {self.path} cannot be written: "
                              f"{exc.strerror or type(exc).__name__}") from exc

    def _end_line(self) -> None:
        """A record cut short (a crash or a full disk mid-write) must not swallow the next one: start a new line."""
        if os.fstat(self._fh.fileno()).st_size == 0:
            return
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                self._fh.write("\n")
                self._fh.flush()

    @property
    def is_open(self) -> bool:
        return self._fh is not None

    def ready(self) -> None:
        """Raise OSError unless records can be appended (checked before a call that changes anything runs)."""
        with self._lock:
            self._open()

    def append(self, record: dict, sync: bool = True) -> None:
        """Write and flush one record (a killed process loses nothing flushed); ``sync`` also fsyncs it, so it
        survives a power cut: the guard asks for that on the record written before a trading call is sent."""
        record.setdefault("time", datetime.fromtimestamp(self.clock(), timezone.utc).isoformat(
            timespec="milliseconds").replace("+00:00", "Z"))
        line = self.redact(json.dumps(record, default=_default, separators=(",", ":"), sort_keys=False))
        with self._lock:
            self._open()
            self._fh.write(line + "\n")
            self._fh.flush()
            if sync:
                os.fsync(self._fh.fileno())
            if self.table is not None:  # after the file: the file is the record a trading call waits for
                self.table.append(line, record)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            if self.table is not None:
                self.table.close()


def read(path: Path) -> list[dict]:
    out = []
    if not path.exists():
        return out
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
    return out
