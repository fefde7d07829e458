"""USD-M futures orders: regular orders on /fapi/v1/order and conditional orders on the algo endpoints,
fills, triggers on price moves, cancels and history. The account they act on is futures_account.py."""

from __future__ import annotations

import uuid
from decimal import Decimal

from binance_mcp.simulator.errors import BinanceError
from binance_mcp.simulator.feed import fmt
from binance_mcp.simulator.futures_account import FuturesAccount
from binance_mcp.simulator.futures_models import (
    CANCEL_ALL_DONE,
    CONDITIONAL,
    MAKER_RATE,
    OPEN,
    TAKER_RATE,
    ZERO,
    AlgoOrder,
    FuturesOrder,
    _sign,
)
from binance_mcp.simulator.market import FUTURES_TIME_IN_FORCE
from binance_mcp.simulator.matching import filled_qty, walk
from binance_mcp.simulator.params import FUTURES_CLIENT_ID_RE, Params, is_multiple, places
from binance_mcp.simulator.symbols import FUTURES_SYMBOLS, FuturesSymbol


class FuturesExchange(FuturesAccount):
    """The futures account plus its orders."""

    # -- orders -----------------------------------------------------------------------------
    def _position_side(self, p: Params) -> str:
        ps = p.enum("positionSide", ("BOTH", "LONG", "SHORT"), -4061,
                    "Order's position side does not match user's setting.") or "BOTH"
        if (self.dual and ps == "BOTH") or (not self.dual and ps != "BOTH"):
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        return ps

    def _check_qty_price(self, spec: FuturesSymbol, qty: Decimal | None, price: Decimal | None, market: bool,
                         names: tuple[str, str] = ("quantity", "price")) -> None:
        if qty is not None:
            if places(qty) > spec.quantity_precision:
                raise BinanceError(-1111, "Precision is over the maximum defined for this asset.")
            if qty <= 0:
                raise BinanceError(-4003, "Quantity less than or equal to zero.")
            if qty < spec.min_qty:
                raise BinanceError(-4004, "Quantity less than min quantity.")
            if qty > (spec.market_max_qty if market else spec.max_qty):
                raise BinanceError(-4005, "Quantity greater than max quantity.")
            if not is_multiple(qty, spec.step_size, spec.min_qty):
                raise BinanceError(-4023, "Qty not increased by step size.")
        if price is not None:
            if places(price) > spec.price_precision:
                raise BinanceError(-1111, "Precision is over the maximum defined for this asset.")
            if price < spec.tick_size:
                raise BinanceError(-4013, "Price less than min price.")
            if price > Decimal("4529764"):
                raise BinanceError(-4002, "Price greater than max price.")
            if not is_multiple(price, spec.tick_size, spec.tick_size):
                raise BinanceError(-4014, "Price not increased by tick size.")

    def _client_id(self, p: Params, name: str, existing: list[str]) -> str:
        cid = p.raw(name) or f"sim{uuid.uuid4().hex[:20]}"
        if not FUTURES_CLIENT_ID_RE.match(cid):
            raise BinanceError(-4015, "Client order id is not valid.")
        if cid in existing:
            raise BinanceError(-4116, "ClientOrderId is duplicated.")
        return cid

    def _reduce_check(self, symbol: str, side: str, ps: str, qty: Decimal) -> Decimal:
        """The position a reduce-only (or hedge-mode closing) order would shrink; -2022 if none."""
        pos = self.position(symbol, ps)
        if ps == "BOTH":
            ok = (side == "BUY" and pos.amt < 0) or (side == "SELL" and pos.amt > 0)
        else:
            ok = pos.amt != 0
        if not ok:
            raise BinanceError(-2022, "ReduceOnly Order is rejected.")
        return abs(pos.amt)

    def _opening_qty(self, symbol: str, side: str, ps: str, qty: Decimal) -> Decimal:
        if ps == "LONG":
            return qty if side == "BUY" else ZERO
        if ps == "SHORT":
            return qty if side == "SELL" else ZERO
        amt = self.position(symbol, "BOTH").amt
        dq = qty if side == "BUY" else -qty
        if amt == 0 or _sign(amt) == _sign(dq):
            return qty
        return max(qty - abs(amt), ZERO)

    def place(self, p: Params, now: int, test: bool = False) -> dict:
        spec = self.spec(p.raw("symbol"))
        side = p.enum("side", ("BUY", "SELL"), -1117, "Invalid side.", required=True)
        otype = p.require("type")
        if otype in CONDITIONAL:
            raise BinanceError(-4120, "Order type not supported for this endpoint. Please use the Algo Order API "
                                      "endpoints instead.")
        if otype not in ("LIMIT", "MARKET"):
            raise BinanceError(-1116, "Invalid orderType.")
        assert side
        ps = self._position_side(p)
        if self.dual and "reduceOnly" in p:
            raise BinanceError(-1106, "Parameter 'reduceOnly' sent when not required.")
        p.forbid("closePosition", "stopPrice", "activationPrice", "callbackRate")
        reduce_only = p.boolean("reduceOnly")
        resp_type = p.enum("newOrderRespType", ("ACK", "RESULT"), -1100,
                           "Illegal characters found in parameter 'newOrderRespType'.") or "ACK"
        qty = p.decimal("quantity", required=True)
        assert qty is not None
        if otype == "LIMIT":
            tif = p.enum("timeInForce", FUTURES_TIME_IN_FORCE, -1115, "Invalid timeInForce.", required=True)
            price = p.decimal("price", required=True)
        else:
            p.forbid("price", "timeInForce")
            tif, price = "GTC", None
        self._check_qty_price(spec, qty, price, market=otype == "MARKET")
        mark = self.market.mark_price(spec.symbol)
        if price is not None:
            if side == "BUY" and price > mark * spec.multiplier_up:
                raise BinanceError(-4016, f"Price is higher than mark price multiplier cap {fmt(mark * spec.multiplier_up, spec.price_precision)}.")
            if side == "SELL" and price < mark * spec.multiplier_down:
                raise BinanceError(-4024, f"Price is lower than mark price multiplier floor {fmt(mark * spec.multiplier_down, spec.price_precision)}.")
        closing = reduce_only or (ps == "LONG" and side == "SELL") or (ps == "SHORT" and side == "BUY")
        if not reduce_only and (price or mark) * qty < spec.min_notional:
            raise BinanceError(-4164, f"Order's notional must be no smaller than {spec.min_notional} (unless you "
                                      "choose reduce only).")
        if len(self.open_orders(spec.symbol)) >= spec.max_num_orders:
            raise BinanceError(-2025, "Reach max open order limit.")
        cid = self._client_id(p, "newClientOrderId", [o.client_order_id for o in self.open_orders()])
        if closing:
            available_to_close = self._reduce_check(spec.symbol, side, ps, qty)
            if ps != "BOTH" and qty > available_to_close:
                raise BinanceError(-2022, "ReduceOnly Order is rejected.")
        last = self.market.futures_last(spec.symbol)
        bids, asks = self.market.feed.symbols[spec.symbol].book(1000, price=last, tick=spec.tick_size,
                                                                 step=spec.step_size)
        book = asks if side == "BUY" else bids
        if otype == "LIMIT" and tif in ("GTX", "FOK"):
            assert price is not None
            crosses = price >= asks[0][0] if side == "BUY" else price <= bids[0][0]
            if tif == "GTX" and crosses:
                raise BinanceError(-5022, "Due to the order could not be executed as maker, the Post Only order "
                                          "will be rejected. The order will not be recorded in the order history")
            if tif == "FOK" and filled_qty(walk(book, qty=qty, limit_price=price, buy=side == "BUY")) < qty:
                raise BinanceError(-5021, "Due to the order could not be filled immediately, the FOK order has "
                                          "been rejected. The order will not be recorded in the order history")
        opening = ZERO if closing else self._opening_qty(spec.symbol, side, ps, qty)
        if opening:
            ref = price if price is not None else (asks[0][0] if side == "BUY" else bids[0][0])
            need = opening * max(ref, mark) / self.leverage[spec.symbol] + opening * ref * TAKER_RATE
            if need > self.totals()["available"]:
                raise BinanceError(-2019, "Margin is insufficient.")
        if test:
            return {}
        order = FuturesOrder(spec.symbol, next(self._ids), cid, side, ps, otype, tif or "GTC", price or ZERO, qty,
                             reduce_only, now, update_time=now)
        self.orders[order.order_id] = order
        ack = order.as_dict(spec, with_time=False)
        self._work(order, spec, now, book)
        return ack if resp_type == "ACK" else order.as_dict(spec, with_time=False)

    def _work(self, order: FuturesOrder, spec: FuturesSymbol, now: int, book: list | None = None) -> None:
        if book is None:
            last = self.market.futures_last(spec.symbol)
            bids, asks = self.market.feed.symbols[spec.symbol].book(1000, price=last, tick=spec.tick_size,
                                                                     step=spec.step_size)
            book = asks if order.side == "BUY" else bids
        qty = order.remaining
        if order.reduces:
            pos = self.position(order.symbol, order.position_side)
            if (order.side == "BUY" and pos.amt >= 0) or (order.side == "SELL" and pos.amt <= 0):
                order.status = "EXPIRED"
                order.update_time = now
                return
            qty = min(qty, abs(pos.amt))
        limit = order.price if order.type == "LIMIT" else None
        fills = walk(book, qty=qty, limit_price=limit, buy=order.side == "BUY")
        for price, q in fills:
            self._fill(order, price, q, now, maker=False)
        if order.remaining == 0 or (order.reduces and order.type == "MARKET" and order.executed_qty > 0):
            order.status = "FILLED"
        elif order.type == "MARKET" or order.time_in_force in ("IOC", "FOK"):
            order.status = "EXPIRED"
        else:
            order.status = "PARTIALLY_FILLED" if order.executed_qty else "NEW"

    def _fill(self, order: FuturesOrder, price: Decimal, qty: Decimal, now: int, maker: bool) -> None:
        pos = self.position(order.symbol, order.position_side)
        dq = qty if order.side == "BUY" else -qty
        realised = pos.apply(dq, price, now)
        commission = (price * qty * (MAKER_RATE if maker else TAKER_RATE)).quantize(Decimal("0.00000001"))
        self.wallet["USDT"] = self.wallet.get("USDT", ZERO) + realised - commission
        order.executed_qty += qty
        order.cum_quote += price * qty
        order.update_time = now
        self.update_time = now
        spec = FUTURES_SYMBOLS[order.symbol]
        trade_id = next(self._trade_ids)
        if realised:
            self.income.add(order.symbol, "REALIZED_PNL", realised, now, trade_id=trade_id)
        if commission:
            self.income.add(order.symbol, "COMMISSION", -commission, now, trade_id=trade_id)
        self.trades.append({
            "buyer": order.side == "BUY", "commission": fmt(commission), "commissionAsset": "USDT",
            "id": trade_id, "maker": maker, "orderId": order.order_id,
            "price": fmt(price, spec.price_precision), "qty": fmt(qty, spec.quantity_precision),
            "quoteQty": fmt(price * qty, 8), "realizedPnl": fmt(realised), "side": order.side,
            "positionSide": order.position_side, "symbol": order.symbol, "time": now,
        })

    # -- algo (conditional) orders ----------------------------------------------------------
    def place_algo(self, p: Params, now: int) -> dict:
        if p.require("algoType") != "CONDITIONAL":
            raise BinanceError(-1100, "Illegal characters found in parameter 'algoType'; legal range is 'CONDITIONAL'.")
        spec = self.spec(p.raw("symbol"))
        side = p.enum("side", ("BUY", "SELL"), -1117, "Invalid side.", required=True)
        otype = p.require("type")
        if otype not in ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"):
            raise BinanceError(-1116, "Invalid orderType.")
        assert side
        ps = self._position_side(p)
        close_position = p.boolean("closePosition")
        if self.dual and "reduceOnly" in p:
            raise BinanceError(-1106, "Parameter 'reduceOnly' sent when not required.")
        reduce_only = p.boolean("reduceOnly")
        working_type = p.enum("workingType", ("MARK_PRICE", "CONTRACT_PRICE"), -1100,
                              "Illegal characters found in parameter 'workingType'.") or "CONTRACT_PRICE"
        trigger = p.decimal("triggerPrice", required=True)
        assert trigger is not None
        qty = p.decimal("quantity")
        if close_position:
            if otype not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
                raise BinanceError(-1106, "Parameter 'closePosition' sent when not required.")
            if qty is not None:
                raise BinanceError(-4137, "Quantity must be zero with closePosition equals true")
            if reduce_only:
                raise BinanceError(-1106, "Parameter 'reduceOnly' sent when not required.")
            if self.dual and ((side == "BUY" and ps == "LONG") or (side == "SELL" and ps == "SHORT")):
                raise BinanceError(-4061, "Order's position side does not match user's setting.")
        elif qty is None:
            raise BinanceError(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        price = None
        tif = "GTC"
        if otype in ("STOP", "TAKE_PROFIT"):
            price = p.decimal("price", required=True)
            tif = p.enum("timeInForce", ("GTC", "IOC", "FOK", "GTX"), -1115, "Invalid timeInForce.") or "GTC"
        else:
            p.forbid("price")
        self._check_qty_price(spec, qty, trigger, market=otype.endswith("MARKET"))
        if price is not None:
            self._check_qty_price(spec, None, price, market=False)
        if not reduce_only and not close_position and qty is not None and (price or trigger) * qty < spec.min_notional:
            raise BinanceError(-4164, f"Order's notional must be no smaller than {spec.min_notional} (unless you "
                                      "choose reduce only).")
        if len(self.open_algo(spec.symbol)) >= spec.max_num_algo_orders:
            raise BinanceError(-4045, "Reach max stop order limit.")
        ref = self.market.mark_price(spec.symbol) if working_type == "MARK_PRICE" else self.market.futures_last(spec.symbol)
        if self._triggered(otype, side, trigger, ref):
            raise BinanceError(-2021, "Order would immediately trigger.")
        cid = self._client_id(p, "clientAlgoId", [a.client_algo_id for a in self.open_algo()])
        algo = AlgoOrder(next(self._algo_ids), cid, spec.symbol, side, ps, otype, tif, qty or ZERO, trigger,
                         price or ZERO, working_type, close_position, reduce_only, now, update_time=now)
        self.algo[algo.algo_id] = algo
        self.update_time = now
        return algo.as_dict(spec)

    @staticmethod
    def _triggered(otype: str, side: str, trigger: Decimal, price: Decimal) -> bool:
        if otype.startswith("STOP"):
            return price >= trigger if side == "BUY" else price <= trigger
        return price <= trigger if side == "BUY" else price >= trigger

    def _find_algo(self, p: Params) -> AlgoOrder:
        algo_id, cid = p.integer("algoId"), p.raw("clientAlgoId")
        if algo_id is None and cid is None:
            raise BinanceError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
        for a in self.algo.values():
            if (algo_id is not None and a.algo_id == algo_id) or (algo_id is None and a.client_algo_id == cid):
                return a
        raise BinanceError(-2013, "Order does not exist.")

    def cancel_algo(self, p: Params, now: int) -> dict:
        try:
            algo = self._find_algo(p)
        except BinanceError as exc:
            if exc.code == -2013:
                raise BinanceError(-2011, "Unknown order sent.") from exc
            raise
        if algo.status != "NEW":
            raise BinanceError(-2011, "Unknown order sent.")
        algo.status = "CANCELED"
        algo.update_time = now
        return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}

    def cancel_all_algo(self, p: Params, now: int) -> dict:
        spec = self.spec(p.raw("symbol"))
        for a in self.open_algo(spec.symbol):
            a.status = "CANCELED"
            a.update_time = now
        return dict(CANCEL_ALL_DONE)

    def get_algo(self, p: Params) -> dict:
        algo = self._find_algo(p)
        return algo.as_dict(FUTURES_SYMBOLS[algo.symbol])

    def open_algo_orders(self, p: Params) -> list[dict]:
        symbol = p.raw("symbol")
        if symbol is not None:
            self.spec(symbol)
        return [a.as_dict(FUTURES_SYMBOLS[a.symbol]) for a in self.open_algo(symbol)]

    def all_algo_orders(self, p: Params) -> list[dict]:
        spec = self.spec(p.raw("symbol"))
        limit = p.limit(500, 1000)
        rows = [a for a in self.algo.values() if a.symbol == spec.symbol]
        return [a.as_dict(spec) for a in rows][-limit:]

    # -- price moves ------------------------------------------------------------------------
    def on_prices(self, now: int) -> None:
        for algo in self.open_algo():
            ref = (self.market.mark_price(algo.symbol) if algo.working_type == "MARK_PRICE"
                   else self.market.futures_last(algo.symbol))
            if self._triggered(algo.order_type, algo.side, algo.trigger_price, ref):
                self._trigger(algo, now)
        for order in self.open_orders():
            if order.type != "LIMIT":
                continue
            last = self.market.futures_last(order.symbol)
            if (order.side == "BUY" and last <= order.price) or (order.side == "SELL" and last >= order.price):
                qty = order.remaining
                if order.reduces:
                    pos = self.position(order.symbol, order.position_side)
                    if (order.side == "BUY" and pos.amt >= 0) or (order.side == "SELL" and pos.amt <= 0):
                        order.status = "EXPIRED"
                        order.update_time = now
                        continue
                    qty = min(qty, abs(pos.amt))
                self._fill(order, order.price, qty, now, maker=True)
                order.status = "FILLED"

    def _trigger(self, algo: AlgoOrder, now: int) -> None:
        spec = FUTURES_SYMBOLS[algo.symbol]
        qty = algo.quantity
        if algo.close_position:
            pos = self.position(algo.symbol, algo.position_side)
            qty = abs(pos.amt)
        algo.trigger_time = now
        algo.update_time = now
        if qty <= 0:
            algo.status = "EXPIRED"
            return
        otype = "MARKET" if algo.order_type.endswith("MARKET") else "LIMIT"
        order = FuturesOrder(algo.symbol, next(self._ids), algo.client_algo_id, algo.side, algo.position_side,
                             otype, algo.time_in_force, algo.price, qty,
                             algo.reduce_only or algo.close_position, now, update_time=now,
                             orig_type=algo.order_type, stop_price=algo.trigger_price,
                             close_position=algo.close_position)
        self.orders[order.order_id] = order
        self._work(order, spec, now)
        algo.status = "FINISHED"
        algo.actual_order_id = str(order.order_id)

    # -- cancels and queries ----------------------------------------------------------------
    def _find(self, p: Params, symbol: str, unknown: BinanceError) -> FuturesOrder:
        order_id, cid = p.integer("orderId"), p.raw("origClientOrderId")
        if order_id is None and cid is None:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        for o in sorted(self.orders.values(), key=lambda o: o.status not in OPEN):
            if o.symbol == symbol and ((order_id is not None and o.order_id == order_id)
                                       or (order_id is None and o.client_order_id == cid)):
                return o
        raise unknown

    def cancel(self, p: Params, now: int) -> dict:
        spec = self.spec(p.raw("symbol"))
        order = self._find(p, spec.symbol, BinanceError(-2011, "Unknown order sent."))
        if order.status not in OPEN:
            raise BinanceError(-2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_time = now
        return order.as_dict(spec, with_time=False)

    def cancel_all(self, p: Params, now: int) -> dict:
        spec = self.spec(p.raw("symbol"))
        for o in self.open_orders(spec.symbol):
            o.status = "CANCELED"
            o.update_time = now
        return dict(CANCEL_ALL_DONE)

    def get_order(self, p: Params) -> dict:
        spec = self.spec(p.raw("symbol"))
        return self._find(p, spec.symbol, BinanceError(-2013, "Order does not exist.")).as_dict(spec)

    def get_open_orders(self, p: Params) -> list[dict]:
        symbol = p.raw("symbol")
        if symbol is not None:
            self.spec(symbol)
        return [o.as_dict(FUTURES_SYMBOLS[o.symbol]) for o in self.open_orders(symbol)]

    def all_orders(self, p: Params) -> list[dict]:
        spec = self.spec(p.raw("symbol"))
        start, end, order_id = p.integer("startTime"), p.integer("endTime"), p.integer("orderId")
        _window(start, end)
        limit = p.limit(500, 1000)
        rows = sorted((o for o in self.orders.values() if o.symbol == spec.symbol), key=lambda o: o.order_id)
        if order_id is not None:
            rows = [o for o in rows if o.order_id >= order_id]
        if start is not None:
            rows = [o for o in rows if o.time >= start]
        if end is not None:
            rows = [o for o in rows if o.time <= end]
        rows = rows[:limit] if (order_id is not None or start is not None) else rows[-limit:]
        return [o.as_dict(spec) for o in rows]

    def user_trades(self, p: Params) -> list[dict]:
        spec = self.spec(p.raw("symbol"))
        start, end, from_id, order_id = (p.integer("startTime"), p.integer("endTime"), p.integer("fromId"),
                                         p.integer("orderId"))
        _window(start, end)
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

def _window(start: int | None, end: int | None) -> None:
    if start is not None and end is not None:
        if end < start:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        if end - start > 7 * 86_400_000:
            raise BinanceError(-1127, "More than 7 days between startTime and endTime.")
