"""USD-M futures endpoints beyond futures.py: modify an order (``PUT /fapi/v1/order``), batch orders (``POST`` and
``DELETE /fapi/v1/batchOrders``), isolated position margin (``POST /fapi/v1/positionMargin``), the account's
commission rate and the open interest, on the same account and orders."""

from __future__ import annotations

import json
from decimal import Decimal

from binance_mcp.simulator.errors import BinanceError
from binance_mcp.simulator.futures import FuturesExchange
from binance_mcp.simulator.futures_models import MAKER_RATE, OPEN, TAKER_RATE, ZERO
from binance_mcp.simulator.params import Params

MAX_BATCH_ORDERS = 5
MAX_BATCH_CANCELS = 10


def _as_param(value: object) -> str:
    """A batch item's JSON value as the string a query parameter would carry."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_list(p: Params, name: str, maximum: int) -> list:
    raw = p.raw(name)
    try:
        items = json.loads(raw) if raw is not None else None
    except ValueError:
        items = None
    if not isinstance(items, list) or not items:
        raise BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")
    if len(items) > maximum:
        raise BinanceError(-1130, f"Data sent for parameter '{name}' is not valid: at most {maximum} items.")
    return items


def modify(fx: FuturesExchange, p: Params, now: int) -> dict:
    """Binance's order modify: a LIMIT order that is still open gets a new price and quantity (both sent), keeps
    its orderId, loses its queue place, and trades at once if the new price crosses the book."""
    spec = fx.spec(p.raw("symbol"))
    side = p.enum("side", ("BUY", "SELL"), -1117, "Invalid side.", required=True)
    if (p.raw("priceMatch") or "NONE") != "NONE":
        raise BinanceError(-1106, "Parameter 'priceMatch' sent when not required.")
    qty = p.decimal("quantity", required=True)
    price = p.decimal("price", required=True)
    assert qty is not None and price is not None
    order = fx._find(p, spec.symbol, BinanceError(-2013, "Order does not exist."))
    if order.status not in OPEN:
        raise BinanceError(-2013, "Order does not exist.")
    if side != order.side:
        raise BinanceError(-1117, "Invalid side.")
    if qty == order.orig_qty and price == order.price:
        raise BinanceError(-5027, "No need to modify the order.")
    fx._check_qty_price(spec, qty, price, market=False)
    if qty <= order.executed_qty:
        raise BinanceError(-4003, "Quantity must be greater than the order's executed quantity.")
    mark = fx.market.mark_price(spec.symbol)
    if side == "BUY" and price > mark * spec.multiplier_up:
        raise BinanceError(-4016, "Price is higher than mark price multiplier cap.")
    if side == "SELL" and price < mark * spec.multiplier_down:
        raise BinanceError(-4024, "Price is lower than mark price multiplier floor.")
    last = fx.market.futures_last(spec.symbol)
    bids, asks = fx.market.feed.symbols[spec.symbol].book(1, price=last, tick=spec.tick_size, step=spec.step_size)
    crosses = price >= asks[0][0] if side == "BUY" else price <= bids[0][0]
    if order.time_in_force == "GTX" and crosses:
        raise BinanceError(-5022, "Due to the order could not be executed as maker, the Post Only order will be "
                                  "rejected. The order will not be recorded in the order history")
    if not order.reduces:
        lev = fx.leverage[spec.symbol]
        more = ((qty - order.executed_qty) * price - order.remaining * order.price) / lev
        if more > 0 and more > fx.totals()["available"]:
            raise BinanceError(-2019, "Margin is insufficient.")
    order.orig_qty, order.price, order.update_time = qty, price, now
    fx.update_time = now
    if crosses:
        fx._work(order, spec, now)
    return order.as_dict(spec, with_time=False)


def batch_place(fx: FuturesExchange, p: Params, now: int, allowed: frozenset[str]) -> list[dict]:
    """Up to five orders, each placed as by POST /fapi/v1/order; each slot holds the order or its error."""
    items = _json_list(p, "batchOrders", MAX_BATCH_ORDERS)
    out: list[dict] = []
    for item in items:
        try:
            if not isinstance(item, dict):
                raise BinanceError(-1130, "Data sent for parameter 'batchOrders' is not valid.")
            values = {k: _as_param(v) for k, v in item.items()}
            unknown = [k for k in values if k not in allowed]
            if unknown:
                raise BinanceError(-1104, f"Not all sent parameters were read; read '{len(values) - len(unknown)}' "
                                          f"parameter(s) but was sent '{len(values)}'.")
            out.append(fx.place(Params(values), now))
        except BinanceError as exc:
            out.append(exc.body())
    return out


def batch_cancel(fx: FuturesExchange, p: Params, now: int) -> list[dict]:
    """Up to ten cancels by orderIdList or origClientOrderIdList; each slot holds the order or its error."""
    spec = fx.spec(p.raw("symbol"))
    # ccxt and python-binance send these two names in lower case, and Binance reads them so: accept both spellings
    for name in ("orderIdList", "origClientOrderIdList"):
        if name.lower() in p and name not in p:
            p.values[name] = p.values[name.lower()]
    if "orderIdList" not in p and "origClientOrderIdList" not in p:
        raise BinanceError(-1102, "Param 'orderIdList' or 'origClientOrderIdList' must be sent, but both were "
                                  "empty/null!")
    by_id = "orderIdList" in p
    items = _json_list(p, "orderIdList" if by_id else "origClientOrderIdList", MAX_BATCH_CANCELS)
    out: list[dict] = []
    for item in items:
        key = "orderId" if by_id else "origClientOrderId"
        try:
            out.append(fx.cancel(Params({"symbol": spec.symbol, key: _as_param(item)}), now))
        except BinanceError as exc:
            out.append(exc.body())
    return out


def position_margin(fx: FuturesExchange, p: Params, now: int) -> dict:
    """Add (type 1) or remove (type 2) margin of an isolated position."""
    spec = fx.spec(p.raw("symbol"))
    ps = fx._position_side(p)
    amount = p.decimal("amount", required=True)
    kind = p.enum("type", ("1", "2"), -1100, "Illegal characters found in parameter 'type'; legal range is '1, 2'.",
                  required=True)
    assert amount is not None
    if amount <= 0:
        raise BinanceError(-1102, "Mandatory parameter 'amount' was not sent, was empty/null, or malformed.")
    pos = fx.positions.get((spec.symbol, ps))
    if fx.margin_type[spec.symbol] != "ISOLATED" or pos is None or not pos.amt:
        raise BinanceError(-4049, "Add margin only support for isolated position.")
    if kind == "1":
        if amount > fx.totals()["available"]:
            raise BinanceError(-2019, "Margin is insufficient.")
        pos.margin_added += amount
    else:
        n = fx._pos_numbers(pos)
        isolated = abs(pos.amt) * pos.entry / fx.leverage[spec.symbol] + pos.margin_added + n["upnl"]
        if amount > max(isolated - n["im"], ZERO):
            raise BinanceError(-4051, "Isolated balance insufficient.")
        pos.margin_added -= amount
    pos.update_time = fx.update_time = now
    return {"amount": float(amount), "code": 200, "msg": "Successfully modify position margin.", "type": int(kind)}


def commission_rate(fx: FuturesExchange, p: Params) -> dict:
    spec = fx.spec(p.raw("symbol"))
    return {"symbol": spec.symbol, "makerCommissionRate": str(MAKER_RATE), "takerCommissionRate": str(TAKER_RATE)}


def own_open_interest(fx: FuturesExchange, symbol: str) -> Decimal:
    return sum((abs(pos.amt) for (s, _), pos in fx.positions.items() if s == symbol), ZERO)
