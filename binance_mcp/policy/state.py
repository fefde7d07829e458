"""Persistent guard state: daily notional sums, in-flight calls, rate-limit hits (and approvals, protections,
agents, policy changes), in SQLite (WAL) in the state directory or in PostgreSQL (binance_mcp/store/).

Every decision that reserves runs in one write transaction (``commit``): it reads the daily sums, the rate-limit
hits and the in-flight orders, runs the pure engine on them, and writes the reservation only if the engine allowed
the call. A write transaction holds the store's one write lock from its first read (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: an advisory lock), so no other call, in this process, another one, or another host on the same
database, can interleave, and two calls cannot both pass a limit that only one fits under. Amounts are Decimal,
stored as text.

This class is synchronous: the guard runs it in one worker thread (``StoreWorker``), never on the event loop.
A store locked by another process raises ``StateBusy`` after a short busy timeout; the worker retries it
after an asynchronous pause, so other calls are not held up meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from binance_mcp.policy.agent_state import AgentState
from binance_mcp.policy.confirm_state import ConfirmState
from binance_mcp.policy.console_state import ConsoleState
from binance_mcp.policy.decision import rate_slot
from binance_mcp.policy.protection_state import ProtectionState
from binance_mcp.policy.request_keys import RequestKeyState
from binance_mcp.store import backend_for, state_url
from binance_mcp.store.errors import SchemaTooNew, StateBusy, StateError

log = logging.getLogger("binance_mcp.policy.state")

__all__ = ["FROM_ENV", "Pending", "Room", "SchemaTooNew", "StateBusy", "StateError", "StateStore", "StoreWorker", "utc_day"]
RELEASED_KEEP_S = 3600.0  # released in-flight rows are kept this long (a decision older than that re-reads)
RATE_KEEP_S = 86400.0  # the longest rate-limit window
BUSY_TIMEOUT_S = 0.1  # one attempt's wait for another process's write lock; the worker retries asynchronously
FROM_ENV: Any = "from BINANCE_MCP_STATE_URL"  # a store's url by default: that variable's (unset: SQLite)


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Pending:
    """An order allowed and not yet answered by the exchange, or answered after a decision read its facts.

    ``quantity`` None means "the whole position" (closePosition, binance_futures_close_position)."""

    call_id: str
    tool: str
    market: str | None
    symbol: str | None
    side: str | None
    position_side: str | None
    quantity: Decimal | None
    reduces: bool
    client_order_id: str | None = None
    conditional: bool = False
    created_at: float = 0.0
    owner: str = ""
    notional: Decimal | None = None  # USD counted for it when allowed (gross exposure); None: not priced

    @classmethod
    def from_row(cls, row: tuple) -> Pending:
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], None if row[6] is None else Decimal(row[6]),
                   bool(row[7]), row[8], bool(row[9]), row[10], row[11], None if row[12] is None else Decimal(row[12]))


PENDING_COLS = ("call_id, tool, market, symbol, side, position_side, quantity, reduces, client_order_id, conditional, "
                "created_at, owner, notional")


@dataclass
class Room:
    """What a decision inside ``commit`` reads: pending orders, today's sums, seconds until rate limits free."""

    pending: list[Pending]
    daily_used: dict[str, Decimal]
    rate_wait: dict[str, float]
    trips: dict[str, dict] | None = None  # protections tripped today (see ``trips``), read in the same transaction


class StateStore(ProtectionState, AgentState, ConfirmState, RequestKeyState, ConsoleState):
    """The state store of a state directory (``path``: its state.db) or, with ``url``, of a PostgreSQL database
    (the directory then keeps only the audit log and the paper account). ``url`` by default: BINANCE_MCP_STATE_URL
    (the CLIs that open a server's store read it so); None: SQLite whatever the environment says."""

    def __init__(self, path: Path, clock: Callable[[], float], busy_timeout: float = 2.0,
                 url: str | None = FROM_ENV) -> None:
        self.url = url = state_url() if url is FROM_ENV else url
        self.clock = clock
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self.path = path

    @property
    def path(self) -> Path:
        """The state directory's state.db (on PostgreSQL: where it would be; the directory holds the audit log)."""
        return self._path

    @path.setter
    def path(self, path: Path) -> None:
        self._path = path
        self.backend = backend_for(path, self.url, self.busy_timeout)

    @property
    def where(self) -> str:
        """The store as messages name it: the file, or the PostgreSQL URL without its password."""
        return self.backend.where

    @property
    def shared(self) -> bool:
        """True on PostgreSQL (servers on other hosts may share it)."""
        return self.backend.dialect == "postgres"

    def close(self) -> None:
        with self._lock:
            self.backend.close()

    def transaction(self, fn: Callable[[Any], Any], doing: str = "written", write: bool = True,
                    lock: bool = True, wait: bool = True) -> Any:
        """Run ``fn(db)`` in one transaction (holding the write lock for writes; ``lock=False``: an append that
        reads nothing, e.g. an audit row, needs no lock on PostgreSQL); commit unless it raises. ``wait=False``:
        on PostgreSQL the commit does not wait for its WAL flush (synchronous_commit off for it), for a write whose
        loss in a database crash is harmless (the audit table's copy: the JSONL file has the record); reservations
        and settles always wait."""
        with self._lock:
            return self.backend.transaction(fn, doing, write, lock, wait)

    def check_writable(self) -> None:
        """Raise StateError unless the database opens, is not corrupt at a glance, and takes a write lock."""
        try:
            self.transaction(lambda db: (db.execute("SELECT 1 FROM daily_sums LIMIT 1").fetchone(),
                                         db.execute("SELECT 1 FROM approvals LIMIT 1").fetchone()), "used")
        except StateBusy:
            raise
        except StateError as exc:
            raise StateError(f"{exc}; calls that trade are denied until a human fixes or removes it") from exc

    def write_probe(self) -> None:
        """The smallest committed write: one counter row bumped (fails on a read-only, full or immutable store)."""
        self.transaction(lambda db: db.execute("INSERT INTO counters (name, value) VALUES ('write_probe', 1) ON "
                                               "CONFLICT (name) DO UPDATE SET value = counters.value + 1"))

    def today(self) -> str:
        return utc_day(self.clock())

    @staticmethod
    def day_of(ts: float) -> str:
        return utc_day(ts)

    # -- daily sums -------------------------------------------------------------------------
    def used(self, keys: list[str], day: str | None = None) -> dict[str, Decimal]:
        day = day or self.today()
        return self.transaction(lambda db: self._used(db, keys, day), "read", write=False)

    @staticmethod
    def _used(db: Any, keys: list[str], day: str) -> dict[str, Decimal]:
        out = {k: Decimal(0) for k in keys}
        if keys:
            for key, total in db.execute(
                f"SELECT key, total FROM daily_sums WHERE day = ? AND key IN ({','.join('?' * len(keys))})",
                (day, *keys),
            ):
                out[key] = Decimal(total)
        return out

    def _add(self, db: Any, call_id: str, tool: str, amount: Decimal, keys: list[str],
             day: str) -> None:
        if amount < 0:  # an order can never decrease a daily sum
            raise StateError(f"refusing to add a negative amount ({amount}) to today's sums")
        now = datetime.fromtimestamp(self.clock(), tz=timezone.utc).isoformat()
        used = self._used(db, keys, day)
        for key in keys:
            db.execute("INSERT INTO daily_sums (day, key, total) VALUES (?, ?, ?) ON CONFLICT (day, key) "
                       "DO UPDATE SET total = excluded.total", (day, key, str(used[key] + amount)))
            db.execute("INSERT INTO reservations VALUES (?, ?, ?, ?, ?, ?, 'reserved')",
                       (call_id, day, key, str(amount), tool, now))

    def reserve(self, call_id: str, tool: str, amount: Decimal, caps: dict[str, Decimal | None]
                ) -> tuple[bool, str | None, Decimal]:
        """Reserve ``amount`` under every key of ``caps`` atomically. Returns (ok, key that overflowed, its used)."""
        day = self.today()

        def go(db):
            used = self._used(db, list(caps), day)
            for key, cap in caps.items():
                if cap is not None and used[key] + amount > cap:
                    return False, key, used[key]
            self._add(db, call_id, tool, amount, list(caps), day)
            return True, None, Decimal(0)

        return self.transaction(go)

    @staticmethod
    def _give_back(db: Any, call_id: str) -> None:
        rows = db.execute("SELECT day, key, amount FROM reservations WHERE call_id = ? AND status = 'reserved'",
                          (call_id,)).fetchall()
        for day, key, amount in rows:
            db.execute("UPDATE reservations SET status = 'released' WHERE call_id = ? AND key = ?", (call_id, key))
            row = db.execute("SELECT total FROM daily_sums WHERE day = ? AND key = ?", (day, key)).fetchone()
            total = (Decimal(row[0]) if row else Decimal(0)) - Decimal(amount)
            db.execute("UPDATE daily_sums SET total = ? WHERE day = ? AND key = ?",
                       (str(max(total, Decimal(0))), day, key))

    def release(self, call_id: str) -> None:
        """Give a call's daily-sum reservation back (the exchange refused the order, or never got it)."""
        self.transaction(lambda db: self._give_back(db, call_id))

    # -- in-flight calls and the decision that reserves --------------------------------------
    def seq(self) -> int:
        """The release counter: a decision notes it before reading its facts (see ``commit``)."""
        return self.transaction(self._seq, "read", write=False)

    @staticmethod
    def _seq(db: Any) -> int:
        row = db.execute("SELECT value FROM counters WHERE name = 'released'").fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _pending(db: Any, account: str, since_seq: int | None) -> list[Pending]:
        if since_seq is None:
            rows = db.execute(f"SELECT {PENDING_COLS} FROM inflight WHERE account = ? AND status = 'inflight' "
                              "AND market IS NOT NULL", (account,)).fetchall()
        else:
            # Two index lookups (an OR across the index columns would scan every released row of the last hour).
            rows = db.execute(f"SELECT {PENDING_COLS} FROM inflight WHERE account = ? AND status = 'inflight' AND "
                              f"market IS NOT NULL UNION ALL SELECT {PENDING_COLS} FROM inflight WHERE account = ? "
                              "AND status = 'released' AND released_seq > ? AND market IS NOT NULL",
                              (account, account, since_seq)).fetchall()
        return [Pending.from_row(r) for r in rows]

    def snapshot(self, account: str) -> tuple[int, list[Pending]]:
        """(release counter, orders in flight now): what a decision notes before reading exchange facts."""
        return self.transaction(lambda db: (self._seq(db), self._pending(db, account, None)), "read", write=False)

    def _rate_wait(self, db: Any, key: str, rl: Any, now: float) -> float:
        row = db.execute("SELECT at FROM rate_hits WHERE key = ? AND at > ? ORDER BY at DESC LIMIT 1 OFFSET ?",
                         (key, now - rl.window, rl.max - 1)).fetchone()
        return 0.0 if row is None else max(row[0] + rl.window - now, 0.0) or 1e-6

    def rate_usage(self, key: str, rl: Any) -> tuple[int, float]:
        """(calls in the current window, seconds until the next is allowed) for ``binance_policy_status``."""
        now = self.clock()

        def go(db):
            n = db.execute("SELECT COUNT(*) FROM rate_hits WHERE key = ? AND at > ?", (key, now - rl.window))
            return int(n.fetchone()[0]), self._rate_wait(db, key, rl, now)

        return self.transaction(go, "read", write=False)

    def view(self, keys: list[str], rates: list[tuple[str, Any]]) -> tuple[dict[str, Decimal], dict[str, float]]:
        """Today's sums under ``keys`` and the seconds until each rate limit frees, in one read."""
        now = self.clock()
        return self.transaction(lambda db: (self._used(db, keys, utc_day(now)), self._waits(db, rates, now)),
                                "read", write=False)

    def _waits(self, db: Any, rates: list[tuple[str, Any]], now: float) -> dict[str, float]:
        """Each limit's wait under decision.rate_slot(key, limit): a key may have a limit in two policies."""
        return {rate_slot(key, rl): self._rate_wait(db, key, rl, now) for key, rl in rates}

    def commit(self, account: str, since_seq: int | None, caps: dict[str, Decimal | None], amount: Decimal | None,
               rates: list[tuple[str, Any]], entry: Pending | None, decide: Callable[[Room], Any],
               trips: bool = False) -> Any:
        """Decide and reserve in one write transaction.

        Reads the orders that count as in flight for a decision that noted ``since_seq`` before its facts (still
        in flight, or released since: the facts may predate their answer), today's sums for ``caps`` and the
        rate-limit waits (and, with ``trips``, the protections tripped today), and calls ``decide(room)``. When it returns an allowed decision (``.allowed``), adds
        ``amount`` to the sums of ``caps`` (a cap of None is not checked again: shadow mode), records a rate hit
        under every key of ``rates``, and records ``entry`` as in flight. Otherwise writes nothing.
        """
        now = self.clock()
        day = utc_day(now)

        def go(db):
            room = Room(self._pending(db, account, since_seq) if entry is not None and entry.market else [],
                        self._used(db, list(caps), day),
                        self._waits(db, rates, now),
                        self._trips(db, account, day) if trips else None)
            decision = decide(room)
            if not getattr(decision, "allowed", False):
                return decision
            if caps and amount is not None:
                self._add(db, entry.call_id if entry else "", entry.tool if entry else "", amount, list(caps), day)
            for key in dict.fromkeys(key for key, _ in rates):  # one hit per key, however many limits it has
                db.execute("INSERT INTO rate_hits (key, at) VALUES (?, ?)", (key, now))
            if entry is not None:
                db.execute("INSERT INTO inflight (call_id, account, tool, market, symbol, side, position_side, "
                           "quantity, reduces, client_order_id, conditional, owner, created_at, status, notional) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'inflight', ?)",
                           (entry.call_id, account, entry.tool, entry.market, entry.symbol, entry.side,
                            entry.position_side, None if entry.quantity is None else str(entry.quantity),
                            int(entry.reduces), entry.client_order_id, int(entry.conditional), entry.owner, now,
                            None if entry.notional is None else str(entry.notional)))
                if entry.market and entry.symbol:  # the symbols the loss streak reads the trade history of
                    db.execute("INSERT INTO traded (account, market, symbol, at) VALUES (?, ?, ?, ?) ON CONFLICT "
                               "(account, market, symbol) DO UPDATE SET at = excluded.at",
                               (account, entry.market, entry.symbol, now))
            return decision

        return self.transaction(go)

    def settle(self, call_id: str, outcome: dict, give_back: bool) -> bool:
        """The exchange answered (or the call ended): the call is no longer in flight. ``give_back`` also returns
        its daily-sum reservation (the order was refused or never placed). False when it was not in flight."""
        now = self.clock()

        def go(db):
            seq = self._seq(db) + 1
            cur = db.execute("UPDATE inflight SET status = 'released', released_seq = ?, released_at = ?, outcome = ? "
                             "WHERE call_id = ? AND status = 'inflight'",
                             (seq, now, json.dumps(outcome, default=str)[:1000], call_id))
            if cur.rowcount:
                db.execute("INSERT INTO counters (name, value) VALUES ('released', ?) ON CONFLICT (name) DO UPDATE "
                           "SET value = excluded.value", (seq,))
            if give_back:
                self._give_back(db, call_id)
            return cur.rowcount == 1

        # Waits for its WAL flush like the reservation: the guard asks nobody about an order whose settle succeeded,
        # so a settle a crashed database forgot would keep its reservation until the periodic sweep
        # (tests/store/test_settle_durable.py).
        return self.transaction(go)

    def in_flight(self, account: str) -> list[Pending]:
        return self.transaction(lambda db: self._pending_all(db, account), "read", write=False)

    @staticmethod
    def _pending_all(db: Any, account: str) -> list[Pending]:
        rows = db.execute(f"SELECT {PENDING_COLS} FROM inflight WHERE account = ? AND status = 'inflight' "
                          "ORDER BY created_at", (account,)).fetchall()
        return [Pending.from_row(r) for r in rows]

    def prune(self) -> None:
        """Forget released in-flight rows and rate-limit hits that no decision can read any more."""
        now = self.clock()

        def go(db):
            db.execute("DELETE FROM inflight WHERE status = 'released' AND released_at < ?", (now - RELEASED_KEEP_S,))
            db.execute("DELETE FROM rate_hits WHERE at < ?", (now - RATE_KEEP_S,))

        self.transaction(go)


T = TypeVar("T")


class StoreWorker:
    """Runs the store's blocking calls in one worker thread (transactions stay simple: one at a time per process),
    retrying a database locked by another process with asynchronous pauses until ``patience`` runs out."""

    def __init__(self, patience: float = 5.0, pause: float = 0.05) -> None:
        self.patience = patience
        self.pause = pause
        self._pool: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:  # (re)created on use: an in-memory client enters the server's lifespan per session
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="binance-mcp-state")
        return self._pool

    async def run(self, fn: Callable[..., T], *args: Any, patience: float | None = None) -> T:
        """``fn(*args)`` in the worker thread. Raises StateBusy when the database stayed locked for ``patience``
        seconds (default: the worker's), StateError when it cannot be used."""
        loop = asyncio.get_running_loop()
        limit = self.patience if patience is None else patience
        deadline = loop.time() + limit
        while True:
            try:
                return await loop.run_in_executor(self.pool(), fn, *args)
            except StateBusy as exc:
                if loop.time() + self.pause >= deadline:
                    raise StateBusy(f"{exc}, for more than {limit:g} s") from None
            await asyncio.sleep(self.pause)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
