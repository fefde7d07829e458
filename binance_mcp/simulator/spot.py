"""The spot account and matching: balances free/locked, seven order types, fills, fees, history."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from binance_mcp.simulator.errors import INSUFFICIENT_BALANCE, BinanceError, bad_symbol, order_rejected
from binance_mcp.simulator.feed import Feed, fmt
from binance_mcp.simulator.matching import filled_qty, filled_quote, walk
from binance_mcp.simulator.params import CLIENT_ID_RE, Params, is_multiple, places
from binance_mcp.simulator.symbols import SPOT_SYMBOLS, SpotSymbol

ZERO = Decimal(0)
MAKER_RATE = Decimal("0.001")
TAKER_RATE = Decimal("0.001")
ORDER_TYPES = ("LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER")
STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
TIF_TYPES = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
PRICE_TYPES = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER")
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


@dataclass
class SpotOrder:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    stop_price: Decimal
    orig_quote_qty: Decimal
    time: int
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_time: int = 0
    is_working: bool = True
    working_time: int = -1
    lock_asset: str = ""
    locked: Decimal = ZERO
    fills: list[dict] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    def details(self) -> dict:
        return {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
            "clientOrderId": self.client_order_id, "price": fmt(self.price), "origQty": fmt(self.orig_qty),
            "executedQty": fmt(self.executed_qty), "cummulativeQuoteQty": fmt(self.cum_quote),
            "status": self.status, "timeInForce": self.time_in_force, "type": self.type, "side": self.side,
            "stopPrice": fmt(self.stop_price), "icebergQty": fmt(ZERO), "time": self.time,
            "updateTime": self.update_time, "isWorking": self.is_working, "workingTime": self.working_time,
            "origQuoteOrderQty": fmt(self.orig_quote_qty), "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def report(self, transact_time: int, resp_type: str) -> dict:
        out = {"symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
               "clientOrderId": self.client_order_id, "transactTime": transact_time}
        if resp_type == "ACK":
            return out
        out.update({
            "price": fmt(self.price), "origQty": fmt(self.orig_qty), "executedQty": fmt(self.executed_qty),
            "origQuoteOrderQty": fmt(self.orig_quote_qty), "cummulativeQuoteQty": fmt(self.cum_quote),
            "status": self.status, "timeInForce": self.time_in_force, "type": self.type, "side": self.side,
            "workingTime": self.working_time, "selfTradePreventionMode": "EXPIRE_MAKER",
        })
        if self.type in STOP_TYPES:
            out["stopPrice"] = fmt(self.stop_price)
        if resp_type == "FULL":
            out["fills"] = [dict(f) for f in self.fills]
        return out

    def cancel_report(self, cancel_client_id: str, transact_time: int) -> dict:
        out = {
            "symbol": self.symbol, "origClientOrderId": self.client_order_id, "orderId": self.order_id,
            "orderListId": -1, "clientOrderId": cancel_client_id, "transactTime": transact_time,
            "price": fmt(self.price), "origQty": fmt(self.orig_qty), "executedQty": fmt(self.executed_qty),
            "origQuoteOrderQty": fmt(self.orig_quote_qty), "cummulativeQuoteQty": fmt(self.cum_quote),
            "status": self.status, "timeInForce": self.time_in_force, "type": self.type, "side": self.side,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        if self.type in STOP_TYPES:
            out["stopPrice"] = fmt(self.stop_price)
        return out


class SpotExchange:
    """Spot state for the single simulated account."""

    def __init__(self, feed: Feed, balances: dict[str, Decimal]):
        self.feed = feed
        self.balances: dict[str, list[Decimal]] = {}
        self.set_balances(balances)
        self.orders: dict[int, SpotOrder] = {}
        self.trades: list[dict] = []
        self._ids = itertools.count(1_000_001)
        self._trade_ids = itertools.count(500_001)
        self.update_time = 0

    # -- balances ---------------------------------------------------------------------------
    def set_balances(self, balances: dict[str, Decimal], replace: bool = True) -> None:
        if replace:
            self.balances = {}
        for asset, amount in balances.items():
            row = self.balances.setdefault(asset.upper(), [ZERO, ZERO])
            row[0] = Decimal(amount)

    def free(self, asset: str) -> Decimal:
        return self.balances.get(asset, [ZERO, ZERO])[0]

    def _add(self, asset: str, free: Decimal = ZERO, locked: Decimal = ZERO) -> None:
        row = self.balances.setdefault(asset, [ZERO, ZERO])
        row[0] += free
        row[1] += locked

    def account(self, p: Params, now: int) -> dict:
        omit = p.boolean("omitZeroBalances")
        balances = []
        for asset in sorted(self.balances):
            free, locked = self.balances[asset]
            if omit and free == 0 and locked == 0:
                continue
            balances.append({"asset": asset, "free": fmt(free), "locked": fmt(locked)})
        return {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": fmt(MAKER_RATE), "taker": fmt(TAKER_RATE), "buyer": fmt(ZERO),
                                "seller": fmt(ZERO)},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": self.update_time or now, "accountType": "SPOT", "balances": balances,
            "permissions": ["SPOT"], "uid": 354937868,
        }

    # -- orders -----------------------------------------------------------------------------
    @staticmethod
    def spec(symbol: str | None) -> SpotSymbol:
        if symbol is None:
            raise BinanceError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        spec = SPOT_SYMBOLS.get(symbol)
        if spec is None:
            raise bad_symbol()
        return spec

    def open_orders(self, symbol: str | None = None) -> list[SpotOrder]:
        return [o for o in self.orders.values() if o.status in OPEN_STATUSES and (symbol is None or o.symbol == symbol)]

    def place(self, p: Params, now: int, test: bool = False) -> dict:
        spec = self.spec(p.raw("symbol"))
        side = p.enum("side", ("BUY", "SELL"), -1117, "Invalid side.", required=True)
        otype = p.enum("type", ORDER_TYPES, -1116, "Invalid orderType.", required=True)
        assert side and otype
        # exchangeInfo says icebergAllowed and allowTrailingStop are false: refuse rather than ignore them.
        if "icebergQty" in p:
            raise order_rejected("Iceberg orders are not supported for this symbol.")
        if "trailingDelta" in p:
            raise order_rejected("Trailing stop orders are not supported for this symbol.")
        resp_type = p.enum("newOrderRespType", ("ACK", "RESULT", "FULL"), -1100,
                           "Illegal characters found in parameter 'newOrderRespType'.") or (
            "FULL" if otype in ("MARKET", "LIMIT") else "ACK")
        tif = p.enum("timeInForce", ("GTC", "IOC", "FOK"), -1115, "Invalid timeInForce.")
        quantity = p.decimal("quantity")
        quote_qty = p.decimal("quoteOrderQty")
        price = p.decimal("price")
        stop_price = p.decimal("stopPrice")
        # Mandatory and forbidden parameters by type.
        if otype in TIF_TYPES and tif is None:
            raise BinanceError(-1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.")
        if otype not in TIF_TYPES and tif is not None:
            raise BinanceError(-1106, "Parameter 'timeInForce' sent when not required.")
        if otype == "MARKET":
            if quantity is None and quote_qty is None:
                raise BinanceError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
            if quantity is not None and quote_qty is not None:
                raise BinanceError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
        else:
            if quote_qty is not None:
                raise BinanceError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
            if quantity is None:
                raise BinanceError(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        if otype in PRICE_TYPES and price is None:
            raise BinanceError(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
        if otype not in PRICE_TYPES and price is not None:
            raise BinanceError(-1106, "Parameter 'price' sent when not required.")
        if otype in STOP_TYPES and stop_price is None:
            raise BinanceError(-1102, "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.")
        if otype not in STOP_TYPES and stop_price is not None:
            raise BinanceError(-1106, "Parameter 'stopPrice' sent when not required.")
        for name, value in (("quantity", quantity), ("quoteOrderQty", quote_qty), ("price", price),
                            ("stopPrice", stop_price)):
            if value is not None and places(value) > spec.base_precision:
                raise BinanceError(-1111, f"Parameter '{name}' has too much precision.")
        client_id = p.raw("newClientOrderId") or f"sim{uuid.uuid4().hex[:20]}"
        if not CLIENT_ID_RE.match(client_id):
            raise BinanceError(-1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                                      "'^[a-zA-Z0-9-_]{1,36}$'.")
        if any(o.client_order_id == client_id for o in self.open_orders()):
            raise order_rejected("Duplicate order sent.")

        feed = self.feed.symbols[spec.symbol]
        last = feed.price
        self._check_filters(spec, otype, side, quantity, quote_qty, price, stop_price, last)
        if otype in STOP_TYPES:
            assert stop_price is not None
            up = (otype.startswith("STOP_LOSS") and side == "BUY") or (otype.startswith("TAKE_PROFIT") and side == "SELL")
            if (up and stop_price <= last) or (not up and stop_price >= last):
                raise order_rejected("Order would trigger immediately.")
        bids, asks = feed.book(1000)
        book = asks if side == "BUY" else bids
        if otype == "LIMIT_MAKER":
            assert price is not None
            if (side == "BUY" and price >= asks[0][0]) or (side == "SELL" and price <= bids[0][0]):
                raise order_rejected("Order would immediately match and take.")

        # Balance needed.
        if otype == "MARKET":
            fills = walk(book, qty=quantity, quote=quote_qty, buy=side == "BUY", step=spec.step_size)
            need_asset, need = (spec.quote, filled_quote(fills)) if side == "BUY" else (spec.base, filled_qty(fills))
        else:
            assert quantity is not None
            ref = price if price is not None else stop_price
            assert ref is not None
            need_asset, need = (spec.quote, quantity * ref) if side == "BUY" else (spec.base, quantity)
        if self.free(need_asset) < need:
            raise order_rejected(INSUFFICIENT_BALANCE)
        if test:
            return self._test_commission() if p.boolean("computeCommissionRates") else {}

        order = SpotOrder(
            symbol=spec.symbol, order_id=next(self._ids), client_order_id=client_id, side=side, type=otype,
            time_in_force=tif or ("GTC" if otype in ("LIMIT_MAKER", "STOP_LOSS", "TAKE_PROFIT") else "GTC"),
            price=price or ZERO, orig_qty=quantity if quantity is not None else ZERO, stop_price=stop_price or ZERO,
            orig_quote_qty=quote_qty or ZERO, time=now, update_time=now, working_time=now,
        )
        self.orders[order.order_id] = order
        self.update_time = now
        if otype == "MARKET":
            order.orig_qty = quantity if quantity is not None else filled_qty(fills)
            self._take(order, fills, spec, now)
            order.status = "FILLED" if order.remaining == 0 else "EXPIRED"
        elif otype in STOP_TYPES:
            order.is_working = False
            order.working_time = -1
            self._lock(order, need_asset, need)
        else:
            self._lock(order, need_asset, need)
            self._work_limit(order, spec, now, book)
        return order.report(now, resp_type)

    @staticmethod
    def _test_commission() -> dict:
        """order/test with computeCommissionRates=true: the rates the order would pay (no BNB discount)."""
        rates = {"maker": fmt(MAKER_RATE), "taker": fmt(TAKER_RATE)}
        zero = {"maker": fmt(ZERO), "taker": fmt(ZERO)}
        return {"standardCommissionForOrder": rates, "specialCommissionForOrder": dict(zero),
                "taxCommissionForOrder": dict(zero),
                "discount": {"enabledForAccount": False, "enabledForSymbol": False, "discountAsset": "BNB",
                             "discount": fmt(ZERO)}}

    def _check_filters(self, spec: SpotSymbol, otype: str, side: str, quantity: Decimal | None,
                       quote_qty: Decimal | None, price: Decimal | None, stop_price: Decimal | None,
                       last: Decimal) -> None:
        def fail(name: str) -> BinanceError:
            return BinanceError(-1013, f"Filter failure: {name}")

        for value in (price, stop_price):
            if value is None:
                continue
            if value < spec.tick_size or value > Decimal("1000000") or not is_multiple(value, spec.tick_size):
                raise fail("PRICE_FILTER")
        if price is not None:
            lo, hi = last * spec.multiplier_down, last * spec.multiplier_up
            if not lo <= price <= hi:
                raise fail("PERCENT_PRICE_BY_SIDE")
        if quantity is not None:
            if quantity < spec.min_qty or quantity > spec.max_qty or not is_multiple(quantity, spec.step_size, spec.min_qty):
                raise fail("LOT_SIZE")
            if otype == "MARKET" and quantity > spec.market_max_qty:
                raise fail("MARKET_LOT_SIZE")
        notional = quote_qty if quote_qty is not None else (quantity or ZERO) * (price or stop_price or last)
        if notional < spec.min_notional or (otype != "MARKET" and notional > spec.max_notional):
            raise fail("NOTIONAL")
        open_on_symbol = self.open_orders(spec.symbol)
        if len(open_on_symbol) >= spec.max_num_orders:
            raise fail("MAX_NUM_ORDERS")
        if otype in STOP_TYPES and sum(o.type in STOP_TYPES for o in open_on_symbol) >= spec.max_num_algo_orders:
            raise fail("MAX_NUM_ALGO_ORDERS")

    def _lock(self, order: SpotOrder, asset: str, amount: Decimal) -> None:
        order.lock_asset, order.locked = asset, amount
        self._add(asset, free=-amount, locked=amount)

    def _unlock(self, order: SpotOrder) -> None:
        if order.locked:
            self._add(order.lock_asset, free=order.locked, locked=-order.locked)
            order.locked = ZERO

    def _work_limit(self, order: SpotOrder, spec: SpotSymbol, now: int, book: list | None = None) -> None:
        """A working LIMIT order: take what crosses now (IOC/FOK/GTC), rest the remainder or expire it."""
        if book is None:
            bids, asks = self.feed.symbols[spec.symbol].book(1000)
            book = asks if order.side == "BUY" else bids
        fills = walk(book, qty=order.remaining, limit_price=order.price, buy=order.side == "BUY")
        if order.time_in_force == "FOK" and filled_qty(fills) < order.remaining:
            fills = []
        if fills:
            self._unlock(order)
            rest = order.remaining - filled_qty(fills)
            self._take(order, fills, spec, now)
            if rest > 0 and order.time_in_force == "GTC":
                need = rest * order.price if order.side == "BUY" else rest
                self._lock(order, spec.quote if order.side == "BUY" else spec.base, need)
        if order.remaining == 0:
            order.status = "FILLED"
        elif order.time_in_force in ("IOC", "FOK"):
            self._unlock(order)
            order.status = "EXPIRED"
        else:
            order.status = "PARTIALLY_FILLED" if order.executed_qty > 0 else "NEW"

    def _take(self, order: SpotOrder, fills: list, spec: SpotSymbol, now: int) -> None:
        for price, qty in fills:
            self._fill(order, price, qty, spec, now, maker=False)

    def _fill(self, order: SpotOrder, price: Decimal, qty: Decimal, spec: SpotSymbol, now: int, maker: bool) -> None:
        rate = MAKER_RATE if maker else TAKER_RATE
        quote = price * qty
        if order.side == "BUY":
            commission, commission_asset = (qty * rate).quantize(Decimal("0.00000001")), spec.base
            self._pay(order, spec.quote, quote)
            self._add(spec.base, free=qty - commission)
        else:
            commission, commission_asset = (quote * rate).quantize(Decimal("0.00000001")), spec.quote
            self._pay(order, spec.base, qty)
            self._add(spec.quote, free=quote - commission)
        trade_id = next(self._trade_ids)
        order.executed_qty += qty
        order.cum_quote += quote
        order.update_time = now
        order.fills.append({"price": fmt(price), "qty": fmt(qty), "commission": fmt(commission),
                            "commissionAsset": commission_asset, "tradeId": trade_id})
        self.trades.append({
            "symbol": spec.symbol, "id": trade_id, "orderId": order.order_id, "orderListId": -1,
            "price": fmt(price), "qty": fmt(qty), "quoteQty": fmt(quote), "commission": fmt(commission),
            "commissionAsset": commission_asset, "time": now, "isBuyer": order.side == "BUY",
            "isMaker": maker, "isBestMatch": True,
        })
        self.update_time = now

    def _pay(self, order: SpotOrder, asset: str, amount: Decimal) -> None:
        """Spend ``amount`` of ``asset``: from the order's lock first, then from free."""
        from_lock = min(order.locked, amount) if order.lock_asset == asset else ZERO
        if from_lock:
            order.locked -= from_lock
            self._add(asset, locked=-from_lock)
        if amount - from_lock:
            self._add(asset, free=-(amount - from_lock))

    # -- price moves ------------------------------------------------------------------------
    def on_prices(self, now: int) -> None:
        """Fill resting limits the price crossed and trigger stop / take-profit orders."""
        for order in [o for o in self.orders.values() if o.status in OPEN_STATUSES]:
            spec = SPOT_SYMBOLS[order.symbol]
            last = self.feed.symbols[order.symbol].price
            bids, asks = self.feed.symbols[order.symbol].book(1)
            if not order.is_working:
                up = (order.type.startswith("STOP_LOSS") and order.side == "BUY") or (
                    order.type.startswith("TAKE_PROFIT") and order.side == "SELL")
                if (up and last >= order.stop_price) or (not up and last <= order.stop_price):
                    self._trigger(order, spec, now)
                continue
            if order.type in ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
                crossed = asks[0][0] <= order.price if order.side == "BUY" else bids[0][0] >= order.price
                if crossed:
                    self._fill(order, order.price, order.remaining, spec, now, maker=True)
                    self._unlock(order)  # a BUY filled at its own price leaves nothing locked
                    order.status = "FILLED"

    def _trigger(self, order: SpotOrder, spec: SpotSymbol, now: int) -> None:
        order.is_working = True
        order.working_time = now
        if order.type in ("STOP_LOSS", "TAKE_PROFIT"):
            self._unlock(order)
            bids, asks = self.feed.symbols[spec.symbol].book(1000)
            fills = walk(asks if order.side == "BUY" else bids, qty=order.remaining, buy=order.side == "BUY")
            need_asset, need = (spec.quote, filled_quote(fills)) if order.side == "BUY" else (spec.base, filled_qty(fills))
            if self.free(need_asset) < need:
                order.status = "EXPIRED"
                order.update_time = now
                return
            self._take(order, fills, spec, now)
            order.status = "FILLED" if order.remaining == 0 else "EXPIRED"
        else:
            if order.side == "BUY":  # re-lock at the limit price instead of the stop price
                self._unlock(order)
                self._lock(order, spec.quote, order.remaining * order.price)
            self._work_limit(order, spec, now)

    # -- cancels and queries ----------------------------------------------------------------
    def _find(self, p: Params, symbol: str, open_only: bool, unknown: BinanceError) -> SpotOrder:
        order_id = p.integer("orderId")
        client_id = p.raw("origClientOrderId")
        if order_id is None and client_id is None:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        candidates = [o for o in self.orders.values() if o.symbol == symbol]
        if order_id is not None:
            found = [o for o in candidates if o.order_id == order_id]
            if found and client_id is not None and found[0].client_order_id != client_id:
                raise unknown
        else:
            found = [o for o in candidates if o.client_order_id == client_id]
            found.sort(key=lambda o: o.status not in OPEN_STATUSES)  # prefer the open one
        if not found or (open_only and found[0].status not in OPEN_STATUSES):
            raise unknown
        return found[0]

    def cancel(self, p: Params, now: int) -> dict:
        spec = self.spec(p.raw("symbol"))
        order = self._find(p, spec.symbol, True, BinanceError(-2011, "Unknown order sent."))
        return self._cancel(order, p.raw("newClientOrderId") or f"sim{uuid.uuid4().hex[:20]}", now)

    def _cancel(self, order: SpotOrder, cancel_id: str, now: int) -> dict:
        self._unlock(order)
        order.status = "CANCELED"
        order.update_time = now
        self.update_time = now
        return order.cancel_report(cancel_id, now)

    def cancel_all(self, p: Params, now: int) -> list[dict]:
        spec = self.spec(p.raw("symbol"))
        orders = self.open_orders(spec.symbol)
        if not orders:
            raise BinanceError(-2011, "Unknown order sent.")
        return [self._cancel(o, f"sim{uuid.uuid4().hex[:20]}", now) for o in orders]

    def get_order(self, p: Params) -> dict:
        spec = self.spec(p.raw("symbol"))
        return self._find(p, spec.symbol, False, BinanceError(-2013, "Order does not exist.")).details()

    def get_open_orders(self, p: Params) -> list[dict]:
        symbol = p.raw("symbol")
        if symbol is not None:
            self.spec(symbol)
        return [o.details() for o in self.open_orders(symbol)]

    def all_orders(self, p: Params) -> list[dict]:
        spec = self.spec(p.raw("symbol"))
        start, end = p.integer("startTime"), p.integer("endTime")
        _check_window(start, end, 24)
        order_id = p.integer("orderId")
        limit = p.limit(500, 1000)
        rows = [o for o in self.orders.values() if o.symbol == spec.symbol]
        if order_id is not None:
            rows = [o for o in rows if o.order_id >= order_id]
        if start is not None:
            rows = [o for o in rows if o.time >= start]
        if end is not None:
            rows = [o for o in rows if o.time <= end]
        rows.sort(key=lambda o: o.order_id)
        rows = rows[:limit] if (order_id is not None or start is not None) else rows[-limit:]
        return [o.details() for o in rows]

    def my_trades(self, p: Params) -> list[dict]:
        spec = self.spec(p.raw("symbol"))
        start, end = p.integer("startTime"), p.integer("endTime")
        _check_window(start, end, 24)
        from_id, order_id = p.integer("fromId"), p.integer("orderId")
        if from_id is not None and (start is not None or end is not None):
            raise BinanceError(-1106, "Parameter 'startTime' sent when not required.")
        limit = p.limit(500, 1000)
        rows = [t for t in self.trades if t["symbol"] == spec.symbol]
        if order_id is not None:
            rows = [t for t in rows if t["orderId"] == order_id]
        if from_id is not None:
            rows = [t for t in rows if t["id"] >= from_id]
        if start is not None:
            rows = [t for t in rows if t["time"] >= start]
        if end is not None:
            rows = [t for t in rows if t["time"] <= end]
        return rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]


def _check_window(start: int | None, end: int | None, hours: int) -> None:
    if start is not None and end is not None:
        if end < start:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        if end - start > hours * 3_600_000:
            raise BinanceError(-1127, f"More than {hours} hours between startTime and endTime.")
