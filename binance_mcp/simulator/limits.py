"""Request weight and order-count limits, with Binance's 429 / 418 answers and headers."""

from __future__ import annotations

import time
from collections import deque

from binance_mcp.simulator.config import SimConfig
from binance_mcp.simulator.errors import BinanceError

LIMIT_FIELDS = ("spot_weight_per_minute", "futures_weight_per_minute", "spot_orders_per_10s", "spot_orders_per_day",
                "futures_orders_per_10s", "futures_orders_per_minute", "ban_after_429s", "ban_seconds")


class Window:
    """A counter over fixed windows aligned on the clock, as Binance's limiters are."""

    def __init__(self, seconds: int, limit: int) -> None:
        self.seconds = seconds
        self.limit = limit
        self.start = 0.0
        self.used = 0

    def _roll(self, now: float) -> None:
        start = now // self.seconds * self.seconds
        if start != self.start:
            self.start, self.used = start, 0

    def current(self, now: float) -> int:
        self._roll(now)
        return self.used

    def add(self, n: int, now: float) -> int:
        self._roll(now)
        self.used += n
        return self.used

    def retry_after(self, now: float) -> int:
        return max(1, int(self.start + self.seconds - now + 0.999))


class RateLimiter:
    """Weight per market (spot /api, futures /fapi) and order counts, shared by every client (one 'IP')."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.defaults = {name: getattr(cfg, name) for name in LIMIT_FIELDS}
        self.weight = {"spot": Window(60, cfg.spot_weight_per_minute),
                       "futures": Window(60, cfg.futures_weight_per_minute)}
        self.orders = {
            "spot": [("10S", Window(10, cfg.spot_orders_per_10s)), ("1D", Window(86400, cfg.spot_orders_per_day))],
            "futures": [("10S", Window(10, cfg.futures_orders_per_10s)),
                        ("1M", Window(60, cfg.futures_orders_per_minute))],
        }
        self.recent_429: deque[float] = deque()
        self.banned_until = 0.0

    def configure(self, **limits: int) -> None:
        for key, value in limits.items():
            if key not in LIMIT_FIELDS:
                raise KeyError(f"unknown limit {key!r}; known: {', '.join(LIMIT_FIELDS)}")
            if int(value) < 0:
                raise ValueError(f"{key} must be >= 0")
        for key, value in limits.items():
            setattr(self.cfg, key, int(value))
        self.weight["spot"].limit = self.cfg.spot_weight_per_minute
        self.weight["futures"].limit = self.cfg.futures_weight_per_minute
        self.orders["spot"][0][1].limit = self.cfg.spot_orders_per_10s
        self.orders["spot"][1][1].limit = self.cfg.spot_orders_per_day
        self.orders["futures"][0][1].limit = self.cfg.futures_orders_per_10s
        self.orders["futures"][1][1].limit = self.cfg.futures_orders_per_minute

    def restore_defaults(self) -> None:
        """Back to the limits the simulator was started with (the test controls may have lowered them)."""
        self.configure(**self.defaults)
        self.reset()

    def reset(self) -> None:
        for w in self.weight.values():
            w.used = 0
        for rows in self.orders.values():
            for _, w in rows:
                w.used = 0
        self.recent_429.clear()
        self.banned_until = 0.0

    def headers(self, market: str, now: float | None = None) -> dict[str, str]:
        now = time.time() if now is None else now
        used = str(self.weight[market].current(now))
        return {"X-MBX-USED-WEIGHT-1M": used, "X-MBX-USED-WEIGHT": used}

    def order_headers(self, market: str, now: float | None = None) -> dict[str, str]:
        now = time.time() if now is None else now
        return {f"X-MBX-ORDER-COUNT-{name}": str(w.current(now)) for name, w in self.orders[market]}

    def _too_many(self, now: float, err: BinanceError) -> BinanceError:
        while self.recent_429 and self.recent_429[0] < now - 60:
            self.recent_429.popleft()
        self.recent_429.append(now)
        if len(self.recent_429) > self.cfg.ban_after_429s:
            self.banned_until = now + self.cfg.ban_seconds
            return self._banned(now)
        return err

    def _banned(self, now: float) -> BinanceError:
        until_ms = int(self.banned_until * 1000)
        return BinanceError(
            -1003, f"Way too much request weight used; IP banned until {until_ms}. Please use WebSocket Streams "
                   "for live updates to avoid bans.", status=418,
            headers={"Retry-After": str(max(1, int(self.banned_until - now + 0.999)))})

    def charge(self, market: str, weight: int, now: float | None = None) -> None:
        """Count a request's weight; raise 418 while banned, 429 when over the limit."""
        now = time.time() if now is None else now
        if now < self.banned_until:
            raise self._banned(now)
        w = self.weight[market]
        if w.add(weight, now) > w.limit:
            raise self._too_many(now, BinanceError(
                -1003, f"Too much request weight used; current limit is {w.limit} request weight per 1 MINUTE. "
                       "Please use WebSocket Streams for live updates to avoid polling the API.",
                status=429, headers={"Retry-After": str(w.retry_after(now))}))

    def count_order(self, market: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for name, w in self.orders[market]:
            if w.current(now) + 1 > w.limit:
                label = {"10S": "10 SECOND", "1D": "1 DAY", "1M": "1 MINUTE"}[name]
                raise self._too_many(now, BinanceError(
                    -1015, f"Too many new orders; current limit is {w.limit} orders per {label}.", status=429,
                    headers={"Retry-After": str(w.retry_after(now))}))
        for _, w in self.orders[market]:
            w.add(1, now)
