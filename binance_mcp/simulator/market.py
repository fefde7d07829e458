"""Public market data for spot and futures: exchange info, tickers, depth, klines, mark price and funding."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal

from binance_mcp.simulator.errors import BinanceError, bad_symbol
from binance_mcp.simulator.feed import DAY, HOUR, INTERVALS_MS, Candle, Feed, fmt, quantize_down
from binance_mcp.simulator.params import Params
from binance_mcp.simulator.symbols import (
    FUTURES_SYMBOLS,
    SPOT_SYMBOLS,
    FuturesSymbol,
    SpotSymbol,
    decimals_of,
)

ZERO = Decimal(0)
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
FUNDING_INTERVAL = 8 * HOUR
# Trade ids of the synthetic history: the 24 h ticker's firstId..lastId must be positive ids, and a day of
# synthetic 1-minute candles holds far fewer trades than this.
TRADE_ID_BASE = 100_000_000
FUTURES_ORDER_TYPES = ("LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET")
FUTURES_TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX")


def to_tick(value: Decimal, tick: Decimal) -> Decimal:
    """The nearest multiple of ``tick``: futures prices are derived from spot x (1 + basis), and a basis set
    from a target price must give that price back exactly (rounding down lost a tick to Decimal noise)."""
    return (value / tick).to_integral_value(rounding=ROUND_HALF_EVEN) * tick


def spot_rate_limits(cfg) -> list[dict]:
    return [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": cfg.spot_weight_per_minute},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": cfg.spot_orders_per_10s},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": cfg.spot_orders_per_day},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
    ]


def futures_rate_limits(cfg) -> list[dict]:
    return [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": cfg.futures_weight_per_minute},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": cfg.futures_orders_per_minute},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": cfg.futures_orders_per_10s},
    ]


def spot_symbol_info(s: SpotSymbol) -> dict:
    return {
        "symbol": s.symbol, "status": "TRADING", "baseAsset": s.base, "baseAssetPrecision": s.base_precision,
        "quoteAsset": s.quote, "quotePrecision": s.quote_precision, "quoteAssetPrecision": s.quote_precision,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                       "TAKE_PROFIT_LIMIT"],
        # Only what the simulator does (a client that reads these flags must not try the rest): no iceberg
        # orders, order lists, trailing stops or amends; cancel-replace is there (spot_extra.py).
        "icebergAllowed": False, "ocoAllowed": False, "otoAllowed": False, "opoAllowed": False,
        "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False, "cancelReplaceAllowed": True,
        "amendAllowed": False, "pegInstructionsAllowed": False, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": s.quote == "USDT",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": fmt(s.tick_size), "maxPrice": fmt(Decimal("1000000")),
             "tickSize": fmt(s.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": fmt(s.min_qty), "maxQty": fmt(s.max_qty), "stepSize": fmt(s.step_size)},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": fmt(ZERO), "maxQty": fmt(s.market_max_qty),
             "stepSize": fmt(ZERO)},
            {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
             "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": str(s.multiplier_up),
             "bidMultiplierDown": str(s.multiplier_down), "askMultiplierUp": str(s.multiplier_up),
             "askMultiplierDown": str(s.multiplier_down), "avgPriceMins": 5},
            {"filterType": "NOTIONAL", "minNotional": fmt(s.min_notional), "applyMinToMarket": True,
             "maxNotional": fmt(s.max_notional), "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": s.max_num_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": s.max_num_algo_orders},
        ],
        "permissions": [], "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"],
    }


def futures_symbol_info(s: FuturesSymbol) -> dict:
    return {
        "symbol": s.symbol, "pair": s.symbol, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000, "status": "TRADING", "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000", "baseAsset": s.base, "quoteAsset": s.quote, "marginAsset": s.quote,
        "pricePrecision": s.price_precision, "quantityPrecision": s.quantity_precision,
        "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
        "settlePlan": 0, "triggerProtect": "0.0500", "liquidationFee": "0.012500", "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": str(s.tick_size), "maxPrice": "4529764",
             "tickSize": str(s.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": str(s.min_qty), "maxQty": str(s.max_qty), "stepSize": str(s.step_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": str(s.min_qty), "maxQty": str(s.market_max_qty),
             "stepSize": str(s.step_size)},
            {"filterType": "MAX_NUM_ORDERS", "limit": s.max_num_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": s.max_num_algo_orders},
            {"filterType": "MIN_NOTIONAL", "notional": str(s.min_notional)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": str(s.multiplier_up),
             "multiplierDown": str(s.multiplier_down), "multiplierDecimal": "4"},
        ],
        # The types the simulator trades (LIMIT and MARKET on /fapi/v1/order, the four conditional ones on
        # /fapi/v1/algoOrder) and the time-in-force values it honours: no TRAILING_STOP_MARKET, no GTD.
        "orderTypes": list(FUTURES_ORDER_TYPES),
        "timeInForce": list(FUTURES_TIME_IN_FORCE),
    }


def kline_row(c: Candle, interval: str, places: int = 8, scale: Decimal = Decimal(1), tick: Decimal | None = None,
              volumes: bool = True) -> list:
    from binance_mcp.simulator.feed import _bucket_end

    def px(v: Decimal) -> str:
        v = v * scale
        if tick is not None:
            v = to_tick(v, tick)
        return fmt(v, places)

    z = fmt(ZERO, places)
    return [
        c.open_time, px(c.open), px(c.high), px(c.low), px(c.close),
        fmt(c.volume) if volumes else z, _bucket_end(c.open_time, interval),
        fmt(c.quote_volume * scale) if volumes else z, c.trades if volumes else 0,
        fmt(c.taker_base) if volumes else z, fmt(c.taker_quote * scale) if volumes else z, "0",
    ]


class MarketData:
    """Public endpoints of both markets, computed from the feed."""

    def __init__(self, feed: Feed, cfg) -> None:
        self.feed = feed
        self.cfg = cfg
        self.basis = {s: spec.basis for s, spec in FUTURES_SYMBOLS.items()}
        self.mark_basis = {s: spec.basis * Decimal("0.8") for s, spec in FUTURES_SYMBOLS.items()}

    # -- prices -----------------------------------------------------------------------------
    def spot_price(self, symbol: str) -> Decimal:
        return self.feed.price(symbol)

    def futures_last(self, symbol: str) -> Decimal:
        spec = FUTURES_SYMBOLS[symbol]
        return max(to_tick(self.feed.price(symbol) * (1 + self.basis[symbol]), spec.tick_size), spec.tick_size)

    def mark_price(self, symbol: str) -> Decimal:
        return (self.feed.price(symbol) * (1 + self.mark_basis[symbol])).quantize(Decimal("0.00000001"))

    def index_price(self, symbol: str) -> Decimal:
        return self.feed.price(symbol).quantize(Decimal("0.00000001"))

    def funding_rate(self, symbol: str) -> Decimal:
        """Binance's formula: premium + clamp(0.01 % - premium, -0.05 %, +0.05 %)."""
        premium = (self.mark_price(symbol) - self.index_price(symbol)) / self.index_price(symbol)
        interest = Decimal("0.0001")
        clamp = min(max(interest - premium, Decimal("-0.0005")), Decimal("0.0005"))
        return (premium + clamp).quantize(Decimal("0.00000001"))

    def set_futures_prices(self, symbol: str, last: Decimal | None = None, mark: Decimal | None = None) -> None:
        spot = self.feed.price(symbol)
        if last is not None:
            self.basis[symbol] = last / spot - 1
        if mark is not None:
            self.mark_basis[symbol] = mark / spot - 1

    @staticmethod
    def next_funding_time(now: int) -> int:
        return (now // FUNDING_INTERVAL + 1) * FUNDING_INTERVAL

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _spot_symbols(p: Params) -> list[str]:
        symbol, symbols = p.raw("symbol"), p.raw("symbols")
        if symbol is not None and symbols is not None:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        if symbol is not None:
            if symbol not in SPOT_SYMBOLS:
                raise bad_symbol()
            return [symbol]
        if symbols is not None:
            try:
                names = json.loads(symbols)
            except ValueError as exc:
                raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.") from exc
            if not isinstance(names, list) or any(n not in SPOT_SYMBOLS for n in names):
                raise bad_symbol()
            return names
        return list(SPOT_SYMBOLS)

    @staticmethod
    def _futures_symbols(p: Params) -> tuple[list[str], bool]:
        symbol = p.raw("symbol")
        if symbol is not None:
            if symbol not in FUTURES_SYMBOLS:
                raise bad_symbol()
            return [symbol], True
        return list(FUTURES_SYMBOLS), False

    # -- spot -------------------------------------------------------------------------------
    def exchange_info(self, p: Params, now: int) -> dict:
        names = self._spot_symbols(p)
        return {"timezone": "UTC", "serverTime": now, "rateLimits": spot_rate_limits(self.cfg),
                "exchangeFilters": [], "symbols": [spot_symbol_info(SPOT_SYMBOLS[n]) for n in names]}

    def ticker_price(self, p: Params) -> dict | list:
        names = self._spot_symbols(p)
        rows = [{"symbol": n, "price": fmt(self.spot_price(n))} for n in names]
        return rows[0] if p.raw("symbol") else rows

    def _stats(self, symbol: str, now: int, scale: Decimal = Decimal(1), tick: Decimal | None = None,
               places: int = 8, qty_places: int = 8, futures: bool = False) -> dict:
        f = self.feed.symbols[symbol]
        minutes = f.minutes()
        # The rolling 24 h: the 1-minute candles that opened at or after now - 24 h, as klines with
        # startTime = openTime return them (the candle that opened before openTime is outside the window).
        window = [c for c in minutes if c.open_time >= now - DAY]
        before = [c for c in minutes if c.open_time < window[0].open_time] if window else []

        def sc(v: Decimal) -> Decimal:
            v = v * scale
            return to_tick(v, tick) if tick is not None else v

        last = sc(f.price)
        open_ = sc(window[0].open) if window else last
        high = max([sc(c.high) for c in window] + [last])
        low = min([sc(c.low) for c in window] + [last])
        volume = sum((c.volume for c in window), ZERO)
        quote_volume = sum((c.quote_volume for c in window), ZERO) * scale
        trades = sum(c.trades for c in window)
        change = last - open_
        return {
            "symbol": symbol, "priceChange": fmt(change, places),
            "priceChangePercent": fmt(change / open_ * 100 if open_ else ZERO, 3),
            "weightedAvgPrice": fmt(quote_volume / volume if volume else last, places),
            "prevClosePrice": fmt(sc(before[-1].close) if before else open_, places),
            "lastPrice": fmt(last, places), "lastQty": fmt(self._last_qty(symbol, futures), qty_places),
            "openPrice": fmt(open_, places), "highPrice": fmt(high, places), "lowPrice": fmt(low, places),
            "volume": fmt(volume, qty_places), "quoteVolume": fmt(quote_volume), "openTime": now - DAY, "closeTime": now,
            "firstId": TRADE_ID_BASE + f.trade_id - trades + 1 if trades else -1,
            "lastId": TRADE_ID_BASE + f.trade_id if trades else -1,
            "count": trades,
        }

    def _last_qty(self, symbol: str, futures: bool) -> Decimal:
        """The quantity of the newest public trade (public_trades.py), in this market's step."""
        from binance_mcp.simulator import public_trades

        (newest,) = public_trades.recent(self.feed.symbols[symbol], 1) or [None]
        if newest is None:
            return ZERO
        step = max(FUTURES_SYMBOLS[symbol].step_size, SPOT_SYMBOLS[symbol].step_size) if futures else \
            SPOT_SYMBOLS[symbol].step_size
        return max(quantize_down(newest.qty, step), step)

    def ticker_24hr(self, p: Params, now: int) -> dict | list:
        from binance_mcp.simulator.market_extra import MarketExtras, mini

        names = self._spot_symbols(p)
        kind = MarketExtras.ticker_type(p)
        rows = []
        for n in names:
            row = self._stats(n, now)
            if kind == "MINI":
                rows.append(mini(row))
                continue
            bids, asks = self.feed.symbols[n].book(1)
            row.update({"bidPrice": fmt(bids[0][0]), "bidQty": fmt(bids[0][1]), "askPrice": fmt(asks[0][0]),
                        "askQty": fmt(asks[0][1])})
            rows.append(row)
        return rows[0] if p.raw("symbol") else rows

    def depth(self, p: Params, futures: bool = False, now: int = 0) -> dict:
        symbol = p.require("symbol")
        table = FUTURES_SYMBOLS if futures else SPOT_SYMBOLS
        if symbol not in table:
            raise bad_symbol()
        limit = p.integer("limit", default=500 if futures else 100)
        allowed = (5, 10, 20, 50, 100, 500, 1000) if futures else DEPTH_LIMITS
        if limit not in allowed and not (not futures and 1 <= (limit or 0) <= 5000):
            raise BinanceError(-1100 if futures else -1130, "Illegal characters found in parameter 'limit'; legal "
                               f"range is '{', '.join(map(str, allowed))}'.")
        assert limit is not None
        f = self.feed.symbols[symbol]
        if futures:
            spec = FUTURES_SYMBOLS[symbol]
            bids, asks = f.book(limit, price=self.futures_last(symbol), tick=spec.tick_size, step=spec.step_size)
            places = decimals_of(spec.tick_size)
            qplaces = decimals_of(spec.step_size)
            out = {"lastUpdateId": f.trade_id, "E": now, "T": now}
        else:
            bids, asks = f.book(limit)
            places, qplaces = 8, 8
            out = {"lastUpdateId": f.trade_id}
        out["bids"] = [[fmt(px, places), fmt(q, qplaces)] for px, q in bids]
        out["asks"] = [[fmt(px, places), fmt(q, qplaces)] for px, q in asks]
        return out

    def _kline_args(self, p: Params, maximum: int = 1000) -> tuple[str, int | None, int | None, int]:
        interval = p.require("interval")
        if interval not in INTERVALS_MS:
            raise BinanceError(-1120, "Invalid interval.")
        start, end = p.integer("startTime"), p.integer("endTime")
        if start is not None and end is not None and end < start:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        return interval, start, end, p.limit(500, maximum)

    def klines(self, p: Params) -> list[list]:
        symbol = p.require("symbol")
        if symbol not in SPOT_SYMBOLS:
            raise bad_symbol()
        interval, start, end, limit = self._kline_args(p)
        candles = self.feed.symbols[symbol].klines(interval, start, end, limit)
        return [kline_row(c, interval) for c in candles]

    # -- futures ----------------------------------------------------------------------------
    def futures_exchange_info(self, now: int) -> dict:
        return {
            "timezone": "UTC", "serverTime": now, "futuresType": "U_MARGINED",
            "rateLimits": futures_rate_limits(self.cfg), "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"},
                       {"asset": "BTC", "marginAvailable": True, "autoAssetExchange": "0"},
                       {"asset": "BNB", "marginAvailable": True, "autoAssetExchange": "0"}],
            "symbols": [futures_symbol_info(s) for s in FUTURES_SYMBOLS.values()],
        }

    def futures_ticker_price(self, p: Params, now: int) -> dict | list:
        names, single = self._futures_symbols(p)
        rows = [{"symbol": n, "price": fmt(self.futures_last(n), FUTURES_SYMBOLS[n].price_precision), "time": now}
                for n in names]
        return rows[0] if single else rows

    def premium_index(self, p: Params, now: int) -> dict | list:
        names, single = self._futures_symbols(p)
        rows = [{
            "symbol": n, "markPrice": fmt(self.mark_price(n)), "indexPrice": fmt(self.index_price(n)),
            "estimatedSettlePrice": fmt(self.index_price(n)), "lastFundingRate": fmt(self.funding_rate(n)),
            "interestRate": "0.00010000", "nextFundingTime": self.next_funding_time(now), "time": now,
        } for n in names]
        return rows[0] if single else rows

    def futures_ticker_24hr(self, p: Params, now: int) -> dict | list:
        names, single = self._futures_symbols(p)
        rows = []
        for n in names:
            spec = FUTURES_SYMBOLS[n]
            row = self._stats(n, now, scale=1 + self.basis[n], tick=spec.tick_size, places=spec.price_precision,
                              qty_places=spec.quantity_precision, futures=True)
            del row["prevClosePrice"]
            rows.append(row)
        return rows[0] if single else rows

    def futures_klines(self, p: Params, mark: bool = False) -> list[list]:
        symbol = p.require("symbol")
        if symbol not in FUTURES_SYMBOLS:
            raise bad_symbol()
        spec = FUTURES_SYMBOLS[symbol]
        interval, start, end, limit = self._kline_args(p, maximum=1500)
        scale = 1 + (self.mark_basis[symbol] if mark else self.basis[symbol])
        places = 8 if mark else spec.price_precision
        return [kline_row(c, interval, places=places, scale=scale, tick=None if mark else spec.tick_size,
                          volumes=not mark)
                for c in self.feed.symbols[symbol].klines(interval, start, end, limit)]
