"""The simulator's whole state: clock, feed, markets, accounts, limits, faults and the request log."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from aiohttp import web

from binance_mcp.simulator.config import SimConfig
from binance_mcp.simulator.countdown import Countdowns
from binance_mcp.simulator.feed import Clock, Feed
from binance_mcp.simulator.futures import FuturesExchange
from binance_mcp.simulator.limits import RateLimiter
from binance_mcp.simulator.market import MarketData
from binance_mcp.simulator.signatures import Signer, signers

FAULT_KINDS = ("latency", "error_5xx", "error_5xx_after", "drop_before", "drop_after", "non_json")


@dataclass
class Fault:
    """One injected fault: applies to requests whose path starts with ``path`` (and ``method``), ``count`` times
    (-1: until cleared)."""

    kind: str
    path: str = "/"
    method: str | None = None
    count: int = 1
    latency_ms: int = 0
    status: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.count != 0 and path.startswith(self.path) and (self.method is None or self.method == method)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "path": self.path, "method": self.method, "count": self.count,
                "latency_ms": self.latency_ms, "status": self.status}


class Simulator:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        # API key -> how its signatures are checked (ValueError for a public key that is not one)
        self.signers: dict[str, Signer] = signers(cfg.api_key, cfg.api_secret, cfg.ed25519_public_key,
                                                  cfg.rsa_public_key)
        self.clock = Clock()
        self.faults: list[Fault] = []
        self.log: deque[dict] = deque(maxlen=20000)
        self._seq = itertools.count(1)
        self.limiter = RateLimiter(cfg)
        self.reset()

    def reset(self) -> None:
        cfg = self.cfg
        self.feed = Feed(cfg.seed, self.clock, cfg.tick_seconds)
        self.market = MarketData(self.feed, cfg)
        from binance_mcp.simulator.spot import SpotExchange

        self.spot = SpotExchange(self.feed, dict(cfg.spot_balances))
        self.futures = FuturesExchange(self.market, dict(cfg.futures_balances))
        self.countdowns = Countdowns()
        self.limiter.restore_defaults()
        self.clock.skew_ms = 0
        self.faults.clear()

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def tick(self) -> None:
        """Advance the feed by the wall time elapsed, then fill and trigger what the move crossed."""
        if self.feed.catch_up():
            self.on_prices()
        self.expire_countdowns()

    def expire_countdowns(self) -> list[str]:
        """Fire the futures countdowns (countdownCancelAll) whose time has run out on the simulator's clock."""
        if not self.countdowns.armed:
            return []
        return self.countdowns.expire(self.futures, self.now_ms())

    async def run(self, route, p, now: int) -> object:
        """The pipeline's last step: catch the feed up, then the route's handler (paper.py adds the stored account
        and the live feed)."""
        self.tick()
        return route.handler(self, p, now)

    async def aclose(self) -> None:
        """Release what the simulator holds beyond its HTTP server (paper.py: the upstream session, the poller)."""

    def on_prices(self) -> None:
        now = self.now_ms()
        self.spot.on_prices(now)
        self.futures.on_prices(now)

    def set_price(self, symbol: str, price: Decimal | None, market: str = "spot", mark: Decimal | None = None) -> None:
        if market == "spot":
            if symbol not in self.feed.symbols:
                raise KeyError(symbol)
            assert price is not None
            self.feed.symbols[symbol].set_price(price)
        else:
            if symbol not in self.market.basis:
                raise KeyError(symbol)
            self.market.set_futures_prices(symbol, last=price, mark=mark)
        self.on_prices()

    def take_fault(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        for fault in self.faults:
            if fault.kind in kinds and fault.matches(method, path):
                if fault.count > 0:
                    fault.count -= 1
                return fault
        return None

    def record(self, entry: dict) -> None:
        entry["seq"] = next(self._seq)
        self.log.append(entry)


SIM_KEY: web.AppKey[Simulator] = web.AppKey("sim", Simulator)
