"""The live paper feed's source: Binance's public REST market data (no key), or any Binance-compatible base URL.

One ``Upstream`` per paper exchange, on the simulator's event loop:

- GET only, public endpoints only; the API key is never sent (there is none).
- Every answer is cached per (market, path, query) for the TTL of its kind (``TTL``); concurrent requests for
  the same key share one upstream request.
- Request weight is budgeted per market and minute, well inside Binance's public limits (``BUDGET``: a fifth of
  spot's 6,000 and a quarter of futures' 2,400); over budget, a cached answer is served however old it is, and
  without one the request is refused with -1003 and ``Retry-After`` (nothing waits).
- aiohttp with a bounded connect timeout and a bounded total: an unreachable upstream is ``UpstreamUnreachable``
  within ``connect_timeout``, never a hang. An upstream error answer (JSON ``{code, msg}``) is passed on as is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlparse

from binance_mcp.simulator.errors import BinanceError

log = logging.getLogger("binance_mcp.simulator.upstream")

# Paper-only code (not one of Binance's): the live feed's upstream cannot be reached. exchange/codes.py has its row.
UPSTREAM_UNREACHABLE = -1999
CONNECT_TIMEOUT = 3.0
TOTAL_TIMEOUT = 6.0
# Weight per minute the paper exchange spends on each upstream market.
BUDGET = {"spot": 1200, "futures": 600}
# Seconds an answer is reused, by endpoint (the freshness docs/paper-trading.md states).
TTL = {
    "exchangeInfo": 3600.0, "depth": 1.0, "trades": 1.0, "aggTrades": 1.0, "ticker/price": 1.0,
    "ticker/bookTicker": 1.0, "premiumIndex": 1.0, "ticker/24hr": 5.0, "ticker": 5.0, "avgPrice": 5.0,
    "klines": 5.0, "markPriceKlines": 5.0, "indexPriceKlines": 5.0, "premiumIndexKlines": 5.0,
    "fundingRate": 60.0, "fundingInfo": 3600.0, "openInterest": 10.0,
}
DEFAULT_TTL = 5.0


class UpstreamUnreachable(BinanceError):
    """The upstream did not answer (no connection, timeout, 5xx, not JSON): market data and trading refuse."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(UPSTREAM_UNREACHABLE,
                         f"The paper exchange's live market data ({what}) is unreachable: {why}. Nothing was done. "
                         "Reads of the paper account still work. Restore the network, or run `binance-mcp paper "
                         "reset --feed synthetic` to start a synthetic paper account (this erases the current one).",
                         status=400)


@dataclass
class _Entry:
    value: object
    at: float


class Upstream:
    def __init__(self, spot_url: str, futures_url: str, connect_timeout: float = CONNECT_TIMEOUT,
                 total_timeout: float = TOTAL_TIMEOUT, clock=time.monotonic) -> None:
        self.urls = {"spot": spot_url.rstrip("/"), "futures": futures_url.rstrip("/")}
        self.connect_timeout = connect_timeout
        self.total_timeout = max(total_timeout, connect_timeout)
        self.clock = clock
        self._cache: dict[tuple, _Entry] = {}
        self._inflight: dict[tuple, asyncio.Future] = {}
        self._spent: dict[str, list[tuple[float, int]]] = {"spot": [], "futures": []}
        self._session = None
        self.requests = 0  # sent upstream (tests and docs measure the cache with it)

    def host(self, market: str = "spot") -> str:
        return urlparse(self.urls[market]).netloc

    def describe(self) -> str:
        spot, fut = self.host("spot"), self.host("futures")
        return spot if spot == fut else f"{spot} and {fut}"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _budget_left(self, market: str, now: float) -> int:
        spent = self._spent[market]
        while spent and now - spent[0][0] >= 60:
            spent.pop(0)
        return BUDGET[market] - sum(w for _, w in spent)

    def cached(self, market: str, path: str, params: dict | None = None) -> object | None:
        entry = self._cache.get((market, path, _query(params)))
        return entry.value if entry is not None else None

    async def get(self, market: str, path: str, params: dict | None = None, weight: int = 1,
                  ttl: float | None = None) -> object:
        """The upstream's JSON answer to GET <market url><path>?<params>, cached and budgeted."""
        key = (market, path, _query(params))
        if ttl is None:
            ttl = TTL.get(path.split("/", 2)[-1], DEFAULT_TTL)
        now = self.clock()
        entry = self._cache.get(key)
        if entry is not None and now - entry.at < ttl:
            return entry.value
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        if self._budget_left(market, now) < weight:
            if entry is not None:
                return entry.value
            raise BinanceError(-1003, "The paper exchange's budget of upstream market-data requests is used up "
                                      "for this minute; retry in a few seconds.", status=429,
                               headers={"Retry-After": "10"})
        self._spent[market].append((now, weight))
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await self._fetch(market, path, params)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(value)
            self._cache[key] = _Entry(value, self.clock())
            return value
        finally:
            self._inflight.pop(key, None)

    async def _fetch(self, market: str, path: str, params: dict | None) -> object:
        import aiohttp

        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.total_timeout, sock_connect=self.connect_timeout,
                                            connect=self.connect_timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        url = self.urls[market] + path
        if params:
            url += "?" + _query(params)
        what = f"{self.urls[market]}{path.split('?')[0]}"
        self.requests += 1
        try:
            async with self._session.get(url) as resp:
                body = await resp.read()
                status = resp.status
        except asyncio.TimeoutError:
            raise UpstreamUnreachable(what, f"no answer within {self.total_timeout:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamUnreachable(what, f"cannot connect within {self.connect_timeout:g} s "
                                            f"({type(exc).__name__})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamUnreachable(what, f"connection failed ({type(exc).__name__})") from None
        try:
            value = json.loads(body)
        except ValueError:
            raise UpstreamUnreachable(what, f"HTTP {status} with a body that is not JSON") from None
        if status >= 500:
            raise UpstreamUnreachable(what, f"HTTP {status}")
        if status >= 400:
            if isinstance(value, dict) and isinstance(value.get("code"), int):
                raise BinanceError(value["code"], str(value.get("msg", "")), status=status)
            raise UpstreamUnreachable(what, f"HTTP {status}")
        return value


def _query(params: dict | None) -> str:
    return urlencode(sorted((k, str(v)) for k, v in (params or {}).items()))
