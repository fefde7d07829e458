"""The paper exchange: the simulator with an account that lasts (store.py) and a feed chosen with the account,
synthetic (the seeded walk of feed.py) or live (an upstream's public market data: live.py, upstream.py).

``PaperExchange.run`` is the simulator pipeline's last step for each request:

- live feed, public market data: the upstream's answer (cached and budgeted), nothing computed here;
- live feed, account requests: the upstream data they need first (symbols and filters, the symbol's book and
  prices, the marks of open positions), outside the account's lock; orders and other changes fail with a clear
  error when the upstream cannot be reached, reads of the account go on with the last prices known;
- then one transaction on the stored account (store.py): load what another process wrote, settle funding and
  liquidations that are due (funding.py), run the request, write the account.

With the live feed a poller refreshes, every ``POLL_SECONDS``, the symbols that have resting orders or open
positions, so that resting orders fill, stops trigger, funding is paid and positions are liquidated while no
request comes in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal
from pathlib import Path

from binance_mcp.simulator import funding
from binance_mcp.simulator.config import SimConfig
from binance_mcp.simulator.countdown import Countdowns
from binance_mcp.simulator.errors import BinanceError
from binance_mcp.simulator.futures import FuturesExchange
from binance_mcp.simulator.futures_models import AlgoOrder, FuturesOrder, Position
from binance_mcp.simulator.income import IncomeLedger
from binance_mcp.simulator.live import LiveData, LiveFeed, LiveMarket, futures_spec_row, spot_spec_row
from binance_mcp.simulator.spot import SpotExchange, SpotOrder
from binance_mcp.simulator.state import Simulator
from binance_mcp.simulator.store import PaperStore, decode, encode, new_account_meta, peek
from binance_mcp.simulator.symbols import FUTURES_SYMBOLS, SPOT_SYMBOLS, FuturesSymbol, SpotSymbol
from binance_mcp.simulator.upstream import Upstream, UpstreamUnreachable

log = logging.getLogger("binance_mcp.simulator.paper")
POLL_SECONDS = 2.0
LOCAL_PUBLIC = ("/api/v3/ping", "/api/v3/time", "/fapi/v1/ping", "/fapi/v1/time")
ZERO = Decimal(0)


class FeedMismatch(Exception):
    """The stored account's feed (or upstream) is not the one the settings ask for."""


class _Defaults(dict):
    """Per-symbol settings (leverage, margin type) with Binance's defaults for a symbol not set yet."""

    def __init__(self, values: dict, default) -> None:
        super().__init__(values)
        self.default = default

    def __missing__(self, symbol: str):
        if symbol not in FUTURES_SYMBOLS:
            raise KeyError(symbol)
        value = self[symbol] = self.default(symbol)
        return value


def _default_leverage(symbol: str) -> int:
    return min(20, FUTURES_SYMBOLS[symbol].max_leverage)


def feed_label(meta: dict) -> str:
    """How ``binance_account_status`` and ``paper show`` name an account's feed."""
    if meta.get("feed") != "live":
        return "synthetic"
    from urllib.parse import urlparse

    up = meta.get("upstream") or {}
    hosts = [urlparse(up.get(m, "")).netloc for m in ("spot", "futures")]
    return "live " + (hosts[0] if hosts[0] == hosts[1] else ", ".join(hosts))


class PaperExchange(Simulator):
    def __init__(self, cfg: SimConfig, state_dir: Path, meta: dict) -> None:
        self.store = PaperStore(state_dir)
        self.meta = meta
        self.live: LiveData | None = None
        self.upstream: Upstream | None = None
        self._lock: asyncio.Lock | None = None
        self._poller: asyncio.Task | None = None
        self.next_funding: dict[str, int] = {}
        super().__init__(cfg)

    @property
    def feed_kind(self) -> str:
        return self.meta["feed"]

    # -- construction ---------------------------------------------------------------------------------------------
    def reset(self) -> None:
        if self.feed_kind != "live":
            super().reset()
        else:
            cfg = self.cfg
            up = self.meta["upstream"]
            if self.upstream is None:
                self.upstream = Upstream(up["spot"], up["futures"])
            SPOT_SYMBOLS.clear()  # until the upstream's exchangeInfo is read: this process lists only those
            FUTURES_SYMBOLS.clear()
            spot_feed, futures_feed = LiveFeed("spot", SPOT_SYMBOLS), LiveFeed("futures", FUTURES_SYMBOLS)
            self.feed = spot_feed  # type: ignore[assignment]
            self.market = LiveMarket(futures_feed, cfg, spot_feed)
            self.live = LiveData(self.upstream, spot_feed, futures_feed, self.market)
            self.spot = SpotExchange(self.feed, dict(cfg.spot_balances))  # type: ignore[arg-type]
            self.futures = FuturesExchange(self.market, dict(cfg.futures_balances))
            self.countdowns = Countdowns()  # countdownCancelAll (the dead man's switch), as Simulator.reset
            self.limiter.restore_defaults()
            self.clock.skew_ms = 0
            self.faults.clear()
        self.futures.leverage = _Defaults(self.futures.leverage, _default_leverage)
        self.futures.margin_type = _Defaults(self.futures.margin_type, lambda s: "CROSSED")
        self.next_funding = {}

    # -- the pipeline's last step ---------------------------------------------------------------------------------
    async def run(self, route, p, now: int) -> object:
        if not route.signed:  # public: the process's own feed, or the upstream's answer
            if self.live is None:
                self.tick()
            elif route.path not in LOCAL_PUBLIC:
                return await self._proxy(route, p)
            return route.handler(self, p, now)
        if self.live is not None:
            await self._prefetch(route, p)
            self._start_poller()
        async with self.transaction():
            self.tick()
            self.settle(self.now_ms())
            return route.handler(self, p, now)

    async def _proxy(self, route, p) -> object:
        assert self.upstream is not None
        market = route.market
        path = route.path[len("/api"):] if market == "spot" else route.path[len("/fapi"):]
        return await self.upstream.get(market, path, dict(p.values), weight=route.cost(p))

    async def _prefetch(self, route, p) -> None:
        """The upstream data a signed request needs. POSTs (orders, settings) fail without it; reads and cancels
        go on with what is known (the account itself needs no market data)."""
        assert self.live is not None
        strict = route.method == "POST"
        try:
            await self.live.specs(route.market)
            symbol = p.raw("symbol")
            depth = route.method == "POST" and route.path.endswith(("/order", "/order/test", "/algoOrder"))
            if route.market == "spot":
                if symbol and self.live.known("spot", symbol):
                    await self.live.refresh_spot(symbol, depth=depth)
            else:
                wanted = {s for (s, _), pos in self.futures.positions.items() if pos.amt}
                if symbol and self.live.known("futures", symbol):
                    await self.live.refresh_futures(symbol, depth=depth)
                    wanted.discard(symbol)
                for s in sorted(wanted):
                    if self.live.known("futures", s):
                        await self.live.refresh_futures(s, depth=False)
        except UpstreamUnreachable:
            if strict:
                raise
            log.info("paper exchange: %s %s goes on with the last known prices", route.method, route.path)

    @contextlib.asynccontextmanager
    async def transaction(self):
        if self._lock is None:
            self._lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        async with self._lock:
            data = await loop.run_in_executor(None, self.store.begin)
            try:
                if data is not None:
                    self.restore(data)
                yield
            finally:
                snapshot = self.snapshot()
                await loop.run_in_executor(None, self.store.commit, snapshot)

    # -- funding, liquidation, resting orders ---------------------------------------------------------------------
    def settle(self, now: int) -> None:
        try:
            funding.settle(self, now)
        except UpstreamUnreachable:  # no mark or rate known yet: settled once they are
            pass

    def on_prices(self) -> None:
        now = self.now_ms()
        for part in (self.spot, self.futures):
            try:
                part.on_prices(now)
            except UpstreamUnreachable:
                pass
        self.settle(now)

    def _start_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed poll is retried on the next one
                log.info("paper exchange: poll failed: %s", exc)

    async def poll_once(self) -> None:
        assert self.live is not None
        async with self.transaction():
            spot = sorted({o.symbol for o in self.spot.open_orders()})
            fut = sorted({o.symbol for o in self.futures.open_orders()} | {a.symbol for a in self.futures.open_algo()}
                         | {s for (s, _), pos in self.futures.positions.items() if pos.amt})
        if not spot and not fut:
            return
        for s in spot:
            await self.live.refresh_spot(s, depth=True)
        for s in fut:
            await self.live.refresh_futures(s, depth=False)
        async with self.transaction():
            self.on_prices()

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(BaseException):
                await self._poller
        if self.upstream is not None:
            await self.upstream.close()

    # -- the stored account ---------------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        s, f = self.spot, self.futures
        out = dict(self.meta)
        out["spot"] = {
            "balances": encode(s.balances), "orders": [encode(o) for o in s.orders.values()], "trades": s.trades,
            "next_order_id": peek(s._ids), "next_trade_id": peek(s._trade_ids), "update_time": s.update_time,
        }
        out["futures"] = {
            "wallet": encode(f.wallet), "dual": f.dual, "leverage": dict(f.leverage),
            "margin_type": dict(f.margin_type), "positions": [encode(p) for p in f.positions.values() if p.amt],
            "orders": [encode(o) for o in f.orders.values()], "algo": [encode(a) for a in f.algo.values()],
            "trades": f.trades, "income": f.income.dump(), "next_order_id": peek(f._ids),
            "next_algo_id": peek(f._algo_ids), "next_trade_id": peek(f._trade_ids), "update_time": f.update_time,
            "next_funding": dict(self.next_funding),
        }
        if self.live is None:
            out["prices"] = {"spot": {n: str(b.price) for n, b in self.feed.symbols.items()},
                             "basis": encode(self.market.basis), "mark_basis": encode(self.market.mark_basis)}
        else:
            used_spot = {o.symbol for o in s.orders.values()}
            used_fut = {o.symbol for o in f.orders.values()} | {a.symbol for a in f.algo.values()} | {
                p.symbol for p in f.positions.values() if p.amt}
            out["live"] = {
                "spot_specs": {n: spot_spec_row(SPOT_SYMBOLS[n]) for n in sorted(used_spot) if n in SPOT_SYMBOLS},
                "futures_specs": {n: futures_spec_row(FUTURES_SYMBOLS[n]) for n in sorted(used_fut)
                                  if n in FUTURES_SYMBOLS},
                "spot_last": {n: str(b.last) for n, b in self.live.spot.symbols.items() if b.last is not None},
                "futures_last": {n: str(b.last) for n, b in self.live.futures.symbols.items() if b.last is not None},
                "premium": dict(self.market.premium) if isinstance(self.market, LiveMarket) else {},
            }
        return out

    def restore(self, data: dict) -> None:
        if data.get("feed") != self.feed_kind or (self.live is not None and data.get("upstream") != self.meta["upstream"]):
            raise BinanceError(-1999, f"The paper account was replaced by one with the {feed_label(data)} feed "
                                      "(`binance-mcp paper reset` in another process); restart this server to use it.")
        self.meta = {k: data[k] for k in ("version", "id", "feed", "upstream", "created", "balances") if k in data}
        s, f = self.spot, self.futures
        sd, fd = data.get("spot", {}), data.get("futures", {})
        if self.live is not None:
            live = data.get("live", {})
            for n, row in live.get("spot_specs", {}).items():
                SPOT_SYMBOLS.setdefault(n, decode(SpotSymbol, row))
            for n, row in live.get("futures_specs", {}).items():
                from binance_mcp.simulator.live import BRACKETS
                from binance_mcp.simulator.symbols import _SOL_BRACKETS

                FUTURES_SYMBOLS.setdefault(n, decode(FuturesSymbol, row, brackets=BRACKETS.get(n, _SOL_BRACKETS)))
            for n, v in live.get("spot_last", {}).items():
                if n in SPOT_SYMBOLS and self.live.spot.symbols[n].last is None:
                    self.live.spot.symbols[n].last = Decimal(v)
            for n, v in live.get("futures_last", {}).items():
                if n in FUTURES_SYMBOLS and self.live.futures.symbols[n].last is None:
                    self.live.futures.symbols[n].last = Decimal(v)
            assert isinstance(self.market, LiveMarket)
            for n, row in live.get("premium", {}).items():
                self.market.premium.setdefault(n, row)
        else:
            prices = data.get("prices", {})
            for n, v in prices.get("spot", {}).items():
                if n in self.feed.symbols:
                    self.feed.symbols[n].price = Decimal(v)
            for name in ("basis", "mark_basis"):
                for n, v in prices.get(name, {}).items():
                    if n in FUTURES_SYMBOLS:
                        getattr(self.market, name)[n] = Decimal(v)
        s.balances = {a: [Decimal(x) for x in row] for a, row in sd.get("balances", {}).items()}
        s.orders = {o["order_id"]: decode(SpotOrder, o) for o in sd.get("orders", [])}
        s.trades = list(sd.get("trades", []))
        s._ids = _count(sd.get("next_order_id"), s._ids)
        s._trade_ids = _count(sd.get("next_trade_id"), s._trade_ids)
        s.update_time = int(sd.get("update_time", 0))
        f.wallet = {a: Decimal(v) for a, v in fd.get("wallet", {}).items()}
        f.dual = bool(fd.get("dual", False))
        f.leverage = _Defaults({k: int(v) for k, v in fd.get("leverage", {}).items()}, _default_leverage)
        f.margin_type = _Defaults(dict(fd.get("margin_type", {})), lambda sym: "CROSSED")
        f.positions = {}
        for row in fd.get("positions", []):
            pos = decode(Position, row)
            f.positions[(pos.symbol, pos.side)] = pos
        f.orders = {o["order_id"]: decode(FuturesOrder, o) for o in fd.get("orders", [])}
        f.algo = {a["algo_id"]: decode(AlgoOrder, a) for a in fd.get("algo", [])}
        f.trades = list(fd.get("trades", []))
        f.income = IncomeLedger.load(fd.get("income", []))
        f._ids = _count(fd.get("next_order_id"), f._ids)
        f._algo_ids = _count(fd.get("next_algo_id"), f._algo_ids)
        f._trade_ids = _count(fd.get("next_trade_id"), f._trade_ids)
        f.update_time = int(fd.get("update_time", 0))
        self.next_funding = {k: int(v) for k, v in fd.get("next_funding", {}).items()}


def _count(value, current):
    import itertools

    return itertools.count(int(value)) if value is not None else current


# -- opening the account of a state directory ----------------------------------------------------------------------
def account_meta(state_dir: Path, feed: str, upstream: tuple[str, str], balances: dict[str, Decimal],
                 feed_given: bool, upstream_given: bool) -> tuple[dict, dict | None]:
    """The account to open: (meta, stored data or None). A stored account keeps its feed: a setting given
    explicitly that disagrees raises ``FeedMismatch`` with what to run."""
    stored = PaperStore(state_dir).read()
    want_upstream = {"spot": upstream[0], "futures": upstream[1]}
    if stored is None:
        return new_account_meta(feed, want_upstream if feed == "live" else None, balances), None
    path = PaperStore(state_dir).path
    if feed_given and stored.get("feed") != feed:
        raise FeedMismatch(
            f"the paper account in {path} uses the {feed_label(stored)} feed, but BINANCE_MCP_PAPER_FEED={feed}. An "
            f"account keeps its feed (positions are never repriced by another one): run `binance-mcp paper reset "
            f"--feed {feed}` to start a new {feed} account (this erases the current one), or remove the setting to "
            "keep trading this one.")
    if stored.get("feed") == "live" and upstream_given and stored.get("upstream") != want_upstream:
        raise FeedMismatch(
            f"the paper account in {path} reads live prices from {feed_label(stored)[5:]}, but "
            f"BINANCE_MCP_PAPER_UPSTREAM points at {upstream[0][:-4]}: run `binance-mcp paper reset --feed live` "
            "to start a new account on that upstream (this erases the current one), or remove the setting.")
    return {k: stored[k] for k in ("version", "id", "feed", "upstream", "created", "balances") if k in stored}, stored
