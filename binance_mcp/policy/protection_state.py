"""The account protections' part of the state store: the UTC day's equity samples (first, peak, last), the trips,
the resets a human made, and the symbols each account traded (what the loss streak reads). A mixin of
``StateStore``: the same connection, lock and transactions (``transaction``, ``clock``, ``today``, ``day_of``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

ALL_ACCOUNTS = "*"  # a protections reset that applies to every account on the store


class ProtectionState:
    @staticmethod
    def _trips(db: Any, account: str, day: str) -> dict[str, dict]:
        rows = db.execute("SELECT name, code, at, detail FROM protection_trips WHERE account = ? AND day = ? AND "
                          "reset_at IS NULL", (account, day)).fetchall()
        return {name: {"code": code, "at": at, **json.loads(detail)} for name, code, at, detail in rows}

    def trips(self, account: str) -> dict[str, dict]:
        """The protections tripped today (UTC) and not reset: name -> code, time and the figures it tripped on."""
        day = self.today()
        return self.transaction(lambda db: self._trips(db, account, day), "read", write=False)

    def record_equity(self, account: str, equity: Decimal, checks: list[tuple[str, str, Callable]]
                      ) -> tuple[Decimal, Decimal, dict[str, dict]]:
        """Store an equity sample for today (UTC): the day's first, its peak, the last. Each of ``checks``
        (name, code, test(first, peak, now) -> detail dict or None) that the sample crosses is stored as a trip
        (kept until the next UTC day or a reset). Returns (first, peak, trips today), all in one transaction."""
        now = self.clock()
        day = self.day_of(now)

        def go(db):
            row = db.execute("SELECT first, peak FROM equity_days WHERE account = ? AND day = ?",
                             (account, day)).fetchone()
            if row is None:
                first = peak = equity
                db.execute("INSERT INTO equity_days VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (account, day, str(equity), now, str(equity), now, str(equity), now))
            else:
                first, peak = Decimal(row[0]), Decimal(row[1])
                if equity > peak:
                    peak = equity
                    db.execute("UPDATE equity_days SET peak = ?, peak_at = ? WHERE account = ? AND day = ?",
                               (str(peak), now, account, day))
                db.execute("UPDATE equity_days SET last = ?, last_at = ? WHERE account = ? AND day = ?",
                           (str(equity), now, account, day))
            tripped = self._trips(db, account, day)
            for name, code, test in checks:
                detail = None if name in tripped else test(first, peak, equity)
                if detail is not None:
                    db.execute("INSERT INTO protection_trips (account, day, name, code, at, detail) VALUES "
                               "(?, ?, ?, ?, ?, ?) ON CONFLICT (account, day, name) DO UPDATE SET code = "
                               "excluded.code, at = excluded.at, detail = excluded.detail, reset_at = NULL",
                               (account, day, name, code, now, json.dumps(detail, default=str)))
                    tripped[name] = {"code": code, "at": now, **detail}
            return first, peak, tripped

        return self.transaction(go)

    def equity_day(self, account: str) -> dict | None:
        """Today's equity samples (first, peak, last and their times), or None before the first."""
        day = self.today()

        def go(db):
            row = db.execute("SELECT first, first_at, peak, peak_at, last, last_at FROM equity_days WHERE account = ? "
                             "AND day = ?", (account, day)).fetchone()
            if row is None:
                return None
            return {"first": Decimal(row[0]), "first_at": row[1], "peak": Decimal(row[2]), "peak_at": row[3],
                    "last": Decimal(row[4]), "last_at": row[5]}

        return self.transaction(go, "read", write=False)

    def reset_protections(self, account: str | None, by: str) -> dict:
        """A human's ``binance-mcp protections reset``: today's trips are lifted, today's equity start and peak
        start again from the next sample, and losing closes and closes before now no longer count. ``account``
        None resets every account on this store. Returns what was reset."""
        now = self.clock()
        day = self.day_of(now)

        def go(db):
            where, args = ("", ()) if account is None else (" AND account = ?", (account,))
            lifted = db.execute(f"UPDATE protection_trips SET reset_at = ? WHERE day = ? AND reset_at IS NULL{where}",
                                (now, day, *args)).rowcount
            samples = db.execute(f"DELETE FROM equity_days WHERE day = ?{where}", (day, *args)).rowcount
            db.execute("INSERT INTO protection_resets VALUES (?, ?, ?)", (account or ALL_ACCOUNTS, now, by))
            return {"trips_lifted": lifted, "equity_days_cleared": samples, "at": now}

        return self.transaction(go)

    def last_reset(self, account: str) -> float:
        """When protections were last reset for this account (or for all): closes before it do not count."""
        row = self.transaction(lambda db: db.execute(
            "SELECT MAX(at) FROM protection_resets WHERE account IN (?, ?)", (account, ALL_ACCOUNTS)).fetchone(),
            "read", write=False)
        return float(row[0]) if row and row[0] is not None else 0.0

    def traded_since(self, account: str, since: float) -> list[tuple[str, str]]:
        """(market, symbol) of every symbol this account had an order allowed on since ``since``."""
        rows = self.transaction(lambda db: db.execute(
            "SELECT market, symbol FROM traded WHERE account = ? AND at >= ? ORDER BY market, symbol",
            (account, since)).fetchall(), "read", write=False)
        return [(m, s) for m, s in rows]
