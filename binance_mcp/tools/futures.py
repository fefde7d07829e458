"""USD-M futures trading tools: orders (regular and conditional), cancels, history, leverage, margin type, close."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from binance_mcp.errors import ExchangeRejected, InputError
from binance_mcp.exchange.orders import client_order_id, place_once
from binance_mcp.tools.deps import Deps
from binance_mcp.tools.models import (
    Args,
    D,
    Dec,
    Limit1000,
    Positive,
    Result,
    Symbol,
    ToolDef,
    client_id,
    dec_str,
    header,
    iso,
)
from binance_mcp.tools.spot import HistoryArgs, SymbolArgs, TradesArgs

FuturesType = Literal["MARKET", "LIMIT", "STOP", "TAKE_PROFIT", "STOP_MARKET", "TAKE_PROFIT_MARKET"]
CONDITIONAL = ("STOP", "TAKE_PROFIT", "STOP_MARKET", "TAKE_PROFIT_MARKET")
PRICE_TYPES = ("LIMIT", "STOP", "TAKE_PROFIT")
# Binance also allows ":" and "/", but python-binance signs the raw value while the body carries it
# percent-encoded, so such an id fails as a bad signature (-1022). Only characters that encode to themselves.
CLIENT_ID = r"^[\.A-Za-z0-9_-]{1,36}$"
WEEK_MS = 7 * 86_400_000


class FuturesOrderArgs(Args):
    symbol: Symbol
    side: Literal["BUY", "SELL"]
    type: FuturesType
    quantity: Positive | None = Field(None, description="base asset; not with closePosition")
    price: Positive | None = None
    stopPrice: Positive | None = None
    timeInForce: Literal["GTC", "IOC", "FOK", "GTX"] | None = Field(None, description="GTX = post-only")
    positionSide: Literal["BOTH", "LONG", "SHORT"] | None = Field(None, description="LONG/SHORT in hedge mode only")
    reduceOnly: bool | None = Field(None, description="only shrink the position (one-way mode)")
    closePosition: bool | None = Field(None, description="*_MARKET: close the whole position when triggered")
    newClientOrderId: client_id(CLIENT_ID) | None = None

    @model_validator(mode="after")
    def _by_type(self) -> FuturesOrderArgs:
        t = self.type
        if self.closePosition:
            if t not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
                raise ValueError("closePosition is only for STOP_MARKET and TAKE_PROFIT_MARKET")
            if self.quantity is not None:
                raise ValueError("closePosition closes the whole position: remove quantity")
            if self.reduceOnly:
                raise ValueError("closePosition cannot be combined with reduceOnly")
        elif self.quantity is None:
            raise ValueError(f"a {t} order needs quantity (or closePosition for STOP_MARKET/TAKE_PROFIT_MARKET)")
        if t in PRICE_TYPES and self.price is None:
            raise ValueError(f"a {t} order needs price")
        if t not in PRICE_TYPES and self.price is not None:
            raise ValueError(f"a {t} order takes no price")
        if t in CONDITIONAL and self.stopPrice is None:
            raise ValueError(f"a {t} order needs stopPrice (its trigger)")
        if t not in CONDITIONAL and self.stopPrice is not None:
            raise ValueError(f"a {t} order takes no stopPrice")
        if t not in PRICE_TYPES and self.timeInForce is not None:
            raise ValueError("timeInForce applies only to LIMIT, STOP and TAKE_PROFIT")
        if self.reduceOnly and self.positionSide in ("LONG", "SHORT"):
            raise ValueError("reduceOnly is not used in hedge mode: the positionSide says which position to reduce")
        return self


class FuturesOrder(Result):
    """An order as the open-order and history tools list it: a regular one has an orderId, a conditional one
    (STOP*, TAKE_PROFIT*) an algoId."""

    symbol: str
    orderId: int | None = None
    algoId: int | None = None
    clientOrderId: str
    side: str
    positionSide: str | None = None
    type: str
    status: str
    price: Dec | None = None
    origQty: Dec | None = None
    executedQty: Dec | None = None
    avgPrice: Dec | None = None
    stopPrice: Dec | None = None
    reduceOnly: bool | None = None
    closePosition: bool | None = None
    updateTime: int | None = None
    updateTimeIso: str | None = None


class PlacedOrder(Result):
    """What placing found out (the order's terms are the call's own arguments)."""

    orderId: int | None = None
    algoId: int | None = None
    clientOrderId: str
    status: str
    executedQty: Dec | None = None
    avgPrice: Dec | None = None
    note: str | None = None  # set when the answer was lost and the order was found by its client id (it says so)


class CancelledOrder(Result):
    """A cancelled order: its ids and how much of it had filled (its status is CANCELED: a cancel that did not
    happen is an error)."""

    orderId: int | None = None
    algoId: int | None = None
    clientOrderId: str
    executedQty: Dec | None = None


class ClosingOrder(Result):
    """An order that closed (part of) a position: its side and size are the server's, so they are given."""

    orderId: int
    clientOrderId: str
    side: str
    positionSide: str | None = None
    status: str
    executedQty: Dec
    avgPrice: Dec | None = None
    note: str | None = None


def regular_from(o: dict, model: type[Result] = FuturesOrder, **extra) -> Any:
    return model.pick(dict(
        symbol=o["symbol"], orderId=int(o["orderId"]), clientOrderId=o.get("clientOrderId", ""),
        side=o["side"], positionSide=o.get("positionSide"),
        type=o.get("origType") or o["type"], status=o["status"], price=D(o.get("price")) or None,
        origQty=D(o.get("origQty")) or None, executedQty=D(o.get("executedQty")),
        avgPrice=D(o.get("avgPrice")) or None, stopPrice=D(o.get("stopPrice")) or None,
        reduceOnly=o.get("reduceOnly"), closePosition=o.get("closePosition"),
        updateTime=o.get("updateTime"), updateTimeIso=iso(o.get("updateTime")),
    ), **extra)


def algo_from(a: dict, model: type[Result] = FuturesOrder, **extra) -> Any:
    t = a.get("updateTime") or a.get("createTime")
    return model.pick(dict(
        symbol=a["symbol"], algoId=int(a["algoId"]), clientOrderId=a.get("clientAlgoId", ""),
        side=a["side"], positionSide=a.get("positionSide"), type=a.get("orderType") or a.get("type", ""),
        status=a.get("algoStatus", ""), price=D(a.get("price")) or None, origQty=D(a.get("quantity")) or None,
        stopPrice=D(a.get("triggerPrice")) or None, reduceOnly=a.get("reduceOnly"),
        closePosition=a.get("closePosition"), updateTime=t, updateTimeIso=iso(t),
    ), **extra)


async def place_order(args: FuturesOrderArgs, deps: Deps) -> PlacedOrder:
    cid = args.newClientOrderId or client_order_id()
    params: dict = {"symbol": args.symbol, "side": args.side, "type": args.type}
    for name in ("quantity", "price", "stopPrice"):
        value = getattr(args, name)
        if value is not None:
            params[name] = dec_str(value)
    if args.type in PRICE_TYPES:
        params["timeInForce"] = args.timeInForce or "GTC"
    if args.positionSide is not None:
        params["positionSide"] = args.positionSide
    if args.reduceOnly:
        params["reduceOnly"] = "true"
    if args.closePosition:
        params["closePosition"] = "true"
    what = f"Futures {args.type} {args.side} order on {args.symbol}"
    if args.type in CONDITIONAL:
        params["clientAlgoId"] = cid
        a, note = await place_once(deps.exchange, "futures_create_order", what, cid, "futures_get_order",
                                   {"clientAlgoId": cid}, **params)
        return algo_from(a, PlacedOrder, note=note)
    params["newClientOrderId"] = cid
    params["newOrderRespType"] = "RESULT"
    o, note = await place_once(deps.exchange, "futures_create_order", what, cid, "futures_get_order",
                               {"symbol": args.symbol, "origClientOrderId": cid}, **params)
    return regular_from(o, PlacedOrder, note=note)


class FuturesCancelArgs(Args):
    symbol: Symbol
    orderId: int | None = Field(None, ge=1)
    algoId: int | None = Field(None, ge=1)
    origClientOrderId: client_id(CLIENT_ID) | None = None

    @model_validator(mode="after")
    def _one(self) -> FuturesCancelArgs:
        if self.orderId is None and self.algoId is None and self.origClientOrderId is None:
            raise ValueError("give orderId, algoId or origClientOrderId (see binance_futures_open_orders)")
        if self.algoId is not None and (self.orderId is not None or self.origClientOrderId is not None):
            raise ValueError("algoId names the order on its own: remove orderId and origClientOrderId")
        return self


async def cancel_order(args: FuturesCancelArgs, deps: Deps) -> CancelledOrder:
    what = f"Cancelling futures order on {args.symbol}"
    not_regular: ExchangeRejected | None = None
    if args.algoId is None:
        try:
            o = await deps.exchange.call("futures_cancel_order", what, symbol=args.symbol, orderId=args.orderId,
                                         origClientOrderId=args.origClientOrderId)
            return regular_from(o, CancelledOrder)
        except ExchangeRejected as exc:
            if exc.binance_code not in (-2011, -2013):
                raise
            not_regular = exc
    # A conditional (algo) order: by algoId, or not a regular open order with that id. The algo endpoints take no
    # symbol, so the order found must be checked against it: never cancel another symbol's order.
    algo_id = args.algoId if args.algoId is not None else args.orderId
    params = {"algoId": algo_id} if algo_id is not None else {"clientAlgoId": args.origClientOrderId}
    try:
        existing = await deps.exchange.call("futures_get_order", what, **params)
    except ExchangeRejected as exc:
        if exc.binance_code == -2013 and not_regular is not None:  # neither: report the cancel's answer
            raise not_regular from None
        raise
    if existing.get("symbol") != args.symbol:
        if not_regular is not None:
            raise not_regular
        raise InputError(f"{what}: there is no conditional order {algo_id} on {args.symbol} (that id belongs to "
                         "another symbol); nothing was cancelled. Check the id and symbol with "
                         "binance_futures_open_orders.")
    await deps.exchange.call("futures_cancel_order", what, **params)
    existing["algoStatus"] = "CANCELED"
    return algo_from(existing, CancelledOrder)


class FuturesCancelAllResult(Result):
    cancelled: list[CancelledOrder]


async def cancel_all(args: SymbolArgs, deps: Deps) -> FuturesCancelAllResult:
    what = f"Cancelling all futures orders on {args.symbol}"
    regular = await deps.exchange.call("futures_get_open_orders", what, symbol=args.symbol)
    algo = await deps.exchange.call("futures_get_open_orders", what, symbol=args.symbol, conditional=True)
    if regular:
        await deps.exchange.call("futures_cancel_all_open_orders", what, symbol=args.symbol)
    if algo:
        await deps.exchange.call("futures_cancel_all_open_orders", what, symbol=args.symbol, conditional=True)
    cancelled = [regular_from({**o, "status": "CANCELED"}, CancelledOrder) for o in regular]
    cancelled += [algo_from({**a, "algoStatus": "CANCELED"}, CancelledOrder) for a in algo]
    return FuturesCancelAllResult(cancelled=cancelled)


class FuturesOpenArgs(Args):
    symbol: Symbol | None = None
    limit: Limit1000 = 100


class FuturesOrderList(Result):
    orders: list[FuturesOrder]
    total: int
    truncated: bool


async def open_orders(args: FuturesOpenArgs, deps: Deps) -> FuturesOrderList:
    what = "Reading open futures orders"
    regular = await deps.exchange.call("futures_get_open_orders", what, symbol=args.symbol)
    algo = await deps.exchange.call("futures_get_open_orders", what, symbol=args.symbol, conditional=True)
    orders = [regular_from(o) for o in regular] + [algo_from(a) for a in algo]
    shown = orders[: args.limit]
    return FuturesOrderList(orders=shown, total=len(orders), truncated=len(orders) > len(shown))


class FuturesHistoryArgs(HistoryArgs):
    max_window: ClassVar[tuple[int, str]] = (WEEK_MS, "7 days")


async def order_history(args: FuturesHistoryArgs, deps: Deps) -> FuturesOrderList:
    rows = await deps.exchange.call("futures_get_all_orders", f"Reading futures orders of {args.symbol}",
                                    symbol=args.symbol, orderId=args.orderId, startTime=args.startTime,
                                    endTime=args.endTime, limit=args.limit)
    orders = [regular_from(o) for o in rows]
    return FuturesOrderList(orders=orders, total=len(orders), truncated=len(orders) >= args.limit)


class FuturesTradesArgs(TradesArgs):
    max_window: ClassVar[tuple[int, str]] = (WEEK_MS, "7 days")


# As spot's: numbers and flags first, then the strings.
FUTURES_TRADE_COLUMNS = ("id", "orderId", "time", "maker", "side", "positionSide", "price", "qty", "quoteQty",
                         "realizedPnl", "commission", "commissionAsset")
FuturesTrade = tuple[int, int, int, bool, str, str, Dec, Dec, Dec, Dec, Dec, str]


class FuturesTradeList(Result):
    """As the spot trades: rows, oldest first; page on with fromId = the last id + 1."""

    columns: header(*FUTURES_TRADE_COLUMNS)
    trades: list[FuturesTrade]
    total: int
    truncated: bool


async def trade_history(args: FuturesTradesArgs, deps: Deps) -> FuturesTradeList:
    rows = await deps.exchange.call("futures_account_trades", f"Reading futures trades of {args.symbol}",
                                    symbol=args.symbol, startTime=args.startTime, endTime=args.endTime,
                                    fromId=args.fromId, limit=args.limit)
    trades = [(int(t["id"]), int(t["orderId"]), int(t["time"]), bool(t["maker"]), t["side"], t.get("positionSide", ""),
               D(t["price"]), D(t["qty"]), D(t["quoteQty"]), D(t.get("realizedPnl")), D(t["commission"]),
               t["commissionAsset"]) for t in rows]
    return FuturesTradeList(columns=FUTURES_TRADE_COLUMNS, trades=trades, total=len(trades),
                            truncated=len(trades) >= args.limit)


class LeverageArgs(Args):
    symbol: Symbol
    leverage: int = Field(ge=1, le=125, description="the symbol's bracket may cap it lower")


class LeverageResult(Result):
    leverage: int
    maxNotionalValue: Dec


async def change_leverage(args: LeverageArgs, deps: Deps) -> LeverageResult:
    r = await deps.exchange.call("futures_change_leverage", f"Setting {args.symbol} leverage to {args.leverage}x",
                                 symbol=args.symbol, leverage=args.leverage)
    return LeverageResult(leverage=int(r["leverage"]), maxNotionalValue=D(r.get("maxNotionalValue")))


class MarginTypeArgs(Args):
    symbol: Symbol
    marginType: Literal["ISOLATED", "CROSSED"]


class MarginTypeResult(Result):
    changed: bool


async def set_margin_type(args: MarginTypeArgs, deps: Deps) -> MarginTypeResult:
    try:
        await deps.exchange.call("futures_change_margin_type", f"Setting {args.symbol} margin type to "
                                 f"{args.marginType}", symbol=args.symbol, marginType=args.marginType)
    except ExchangeRejected as exc:
        if exc.binance_code == -4046:
            return MarginTypeResult(changed=False)
        raise
    return MarginTypeResult(changed=True)


class CloseArgs(Args):
    symbol: Symbol
    positionSide: Literal["BOTH", "LONG", "SHORT"] | None = Field(None, description="omit to close every side")


class CloseResult(Result):
    closed: list[ClosingOrder]
    note: str | None = None


async def close_position(args: CloseArgs, deps: Deps) -> CloseResult:
    what = f"Closing the {args.symbol} futures position"
    rows = await deps.exchange.call("futures_position_information", what, symbol=args.symbol)
    targets = [r for r in rows if D(r.get("positionAmt")) != 0
               and (args.positionSide is None or r.get("positionSide", "BOTH") == args.positionSide)]
    if not targets:
        return CloseResult(closed=[], note="no open position to close")
    closed = []
    for i, r in enumerate(targets):
        amt = D(r["positionAmt"])
        ps = r.get("positionSide", "BOTH")
        params: dict = {"symbol": args.symbol, "side": "SELL" if amt > 0 else "BUY", "type": "MARKET",
                        "quantity": dec_str(abs(amt)), "newClientOrderId": client_order_id(i),
                        "newOrderRespType": "RESULT"}
        if ps == "BOTH":
            params["reduceOnly"] = "true"
        else:
            params["positionSide"] = ps
        cid = params["newClientOrderId"]
        o, note = await place_once(deps.exchange, "futures_create_order", what, cid, "futures_get_order",
                                   {"symbol": args.symbol, "origClientOrderId": cid}, **params)
        closed.append(regular_from(o, ClosingOrder, note=note))
    return CloseResult(closed=closed)


TOOLS = [
    ToolDef("binance_futures_place_order", "Place a USD-M futures order. LIMIT, STOP, TAKE_PROFIT need price. STOP* "
            "and TAKE_PROFIT* are conditional: triggered at stopPrice, answered with an algoId. Returns id, status, fill.", FuturesOrderArgs,
            PlacedOrder, place_order),
    ToolDef("binance_futures_cancel_order", "Cancel one futures order, regular or conditional, by orderId, algoId "
            "or origClientOrderId.", FuturesCancelArgs, CancelledOrder, cancel_order),
    ToolDef("binance_futures_cancel_all_orders", "Cancel every open futures order on a symbol, regular and "
            "conditional; lists each.", SymbolArgs, FuturesCancelAllResult, cancel_all),
    ToolDef("binance_futures_open_orders", "Open futures orders, regular and conditional, for one symbol or all.",
            FuturesOpenArgs, FuturesOrderList, open_orders),
    ToolDef("binance_futures_order_history", "Futures orders of a symbol in all statuses; window at most 7 days.",
            FuturesHistoryArgs, FuturesOrderList, order_history),
    ToolDef("binance_futures_trade_history", "Futures fills on a symbol, one row each, with realized PnL and "
            "commission; window at most 7 days.", FuturesTradesArgs, FuturesTradeList, trade_history),
    ToolDef("binance_futures_change_leverage", "Set a futures symbol's leverage; returns it and the max position "
            "notional it allows.", LeverageArgs, LeverageResult, change_leverage),
    ToolDef("binance_futures_set_margin_type", "Switch a futures symbol between ISOLATED and CROSSED margin; "
            "already set is a no-op (changed: false).", MarginTypeArgs, MarginTypeResult, set_margin_type),
    ToolDef("binance_futures_close_position", "Flatten the position(s) on a symbol at market with reduce-only "
            "orders of the exact size; lists each.", CloseArgs, CloseResult, close_position),
]
