"""``POST /fapi/v1/countdownCancelAll``: Binance's dead man's switch for USD-M futures, per symbol.

Binance's semantics: ``countdownTime`` is in milliseconds; each call replaces the symbol's countdown with a new one
(a heartbeat); ``0`` cancels it; when a countdown runs out, every open order of that symbol is cancelled, regular
and conditional (algo) orders alike, and the countdown is gone (a new call arms it again).

Expiry is measured on the simulator's clock (``Simulator.now_ms``: wall time plus the skew the ``/_sim/clock``
control sets), so a test moves time forward instead of sleeping. Countdowns are checked on every request and every
control call (``Simulator.tick``): the orders are gone before anyone can look at them, as at Binance, which checks
about every 10 ms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from binance_mcp.simulator.errors import BinanceError, mandatory
from binance_mcp.simulator.params import Params

WEIGHT = 10  # Binance's request weight of the endpoint


@dataclass
class Countdown:
    symbol: str
    countdown_ms: int
    armed_at: int

    @property
    def deadline(self) -> int:
        return self.armed_at + self.countdown_ms

    def as_dict(self, now: int) -> dict:
        return {"symbol": self.symbol, "countdownTime": self.countdown_ms, "armedAt": self.armed_at,
                "deadline": self.deadline, "remainingMs": max(self.deadline - now, 0)}


class Countdowns:
    """The armed countdowns by symbol, and a log of those that fired (for tests: what the exchange did)."""

    def __init__(self) -> None:
        self.armed: dict[str, Countdown] = {}
        self.fired: list[dict] = []
        self.calls = 0

    def set(self, futures, p: Params, now: int) -> dict:
        """The endpoint: arm, re-arm or cancel the countdown of ``symbol``."""
        spec = futures.spec(p.raw("symbol"))
        raw = p.raw("countdownTime")
        if raw is None:
            raise mandatory("countdownTime")
        if not re.fullmatch(r"[0-9]{1,19}", raw):
            raise BinanceError(-1100, "Illegal characters found in parameter 'countdownTime'; legal range is "
                                      "'^[0-9]{1,20}$'.")
        ms = int(raw)
        self.calls += 1
        if ms == 0:
            self.armed.pop(spec.symbol, None)
        else:
            self.armed[spec.symbol] = Countdown(spec.symbol, ms, now)
        return {"symbol": spec.symbol, "countdownTime": str(ms)}

    def expire(self, futures, now: int) -> list[str]:
        """Fire every countdown whose time has run out: cancel that symbol's open orders. Returns the symbols."""
        due = [c for c in self.armed.values() if now >= c.deadline]
        for c in due:
            del self.armed[c.symbol]
            cancelled = []
            for o in futures.open_orders(c.symbol):
                o.status = "CANCELED"
                o.update_time = now
                cancelled.append(o.order_id)
            algo = []
            for a in futures.open_algo(c.symbol):
                a.status = "CANCELED"
                a.update_time = now
                algo.append(a.algo_id)
            futures.update_time = now
            self.fired.append({"symbol": c.symbol, "deadline": c.deadline, "at": now, "orderIds": cancelled,
                               "algoIds": algo})
        return [c.symbol for c in due]

    def as_dict(self, now: int) -> dict:
        return {"armed": {s: c.as_dict(now) for s, c in sorted(self.armed.items())}, "fired": list(self.fired),
                "calls": self.calls}
