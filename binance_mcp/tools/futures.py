"""USD-M futures trading tools: orders (regular and conditional), cancels, history, leverage, margin type, close."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from binance_mcp.errors import ExchangeRejected
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
    dec_str,
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
    quantity: Positive | None = Field(None, description="contracts in base asset; not with closePosition")
    price: Positive | None = Field(None, description="LIMIT, STOP, TAKE_PROFIT")
    stopPrice: Positive | None = Field(None, description="trigger price of STOP*/TAKE_PROFIT*")
    timeInForce: Literal["GTC", "IOC", "FOK", "GTX"] | None = Field(None, description="LIMIT/STOP/TAKE_PROFIT; "
                                                                                      "GTX = post-only")
    positionSide: Literal["BOTH", "LONG", "SHORT"] | None = Field(None, description="LONG/SHORT in hedge mode only")
    reduceOnly: bool | None = Field(None, description="only shrink the position (one-way mode)")
    closePosition: bool | None = Field(None, description="STOP_MARKET/TAKE_PROFIT_MARKET: close the whole position "
                                                         "when triggered")
    newClientOrderId: str | None = Field(None, pattern=CLIENT_ID)

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
    symbol: str
    order_id: int | None = Field(None, description="regular orders")
    algo_id: int | None = Field(None, description="conditional orders (STOP*, TAKE_PROFIT*)")
    client_order_id: str
    conditional: bool
    side: str
    position_side: str | None = None
    type: str
    status: str
    price: Dec | None = None
    quantity: Dec | None = None
    executed_qty: Dec | None = None
    avg_price: Dec | None = None
    stop_price: Dec | None = None
    reduce_only: bool | None = None
    close_position: bool | None = None
    time_in_force: str | None = None
    update_time: int | None = None
    update_time_iso: str | None = None
    note: str | None = None


def regular_from(o: dict) -> FuturesOrder:
    stop = D(o.get("stopPrice"))
    return FuturesOrder(
        symbol=o["symbol"], order_id=int(o["orderId"]), client_order_id=o.get("clientOrderId", ""),
        conditional=False, side=o["side"], position_side=o.get("positionSide"),
        type=o.get("origType") or o["type"], status=o["status"], price=D(o.get("price")),
        quantity=D(o.get("origQty")), executed_qty=D(o.get("executedQty")),
        avg_price=D(o.get("avgPrice")) if D(o.get("avgPrice")) else None, stop_price=stop or None,
        reduce_only=o.get("reduceOnly"), close_position=o.get("closePosition"), time_in_force=o.get("timeInForce"),
        update_time=o.get("updateTime"), update_time_iso=iso(o.get("updateTime")),
    )


def algo_from(a: dict) -> FuturesOrder:
    t = a.get("updateTime") or a.get("createTime")
    return FuturesOrder(
        symbol=a["symbol"], algo_id=int(a["algoId"]), client_order_id=a.get("clientAlgoId", ""), conditional=True,
        side=a["side"], position_side=a.get("positionSide"), type=a.get("orderType") or a.get("type", ""),
        status=a.get("algoStatus", ""), price=D(a.get("price")), quantity=D(a.get("quantity")),
        stop_price=D(a.get("triggerPrice")), reduce_only=a.get("reduceOnly"), close_position=a.get("closePosition"),
        time_in_force=a.get("timeInForce"), update_time=t, update_time_iso=iso(t),
    )


async def place_order(args: FuturesOrderArgs, deps: Deps) -> FuturesOrder:
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
        return algo_from(a).model_copy(update={"note": note})
    params["newClientOrderId"] = cid
    params["newOrderRespType"] = "RESULT"
    o, note = await place_once(deps.exchange, "futures_create_order", what, cid, "futures_get_order",
                               {"symbol": args.symbol, "origClientOrderId": cid}, **params)
    return regular_from(o).model_copy(update={"note": note})


class FuturesCancelArgs(Args):
    symbol: Symbol
    orderId: int | None = Field(None, ge=1, description="orderId, or algoId of a conditional order")
    origClientOrderId: str | None = Field(None, pattern=CLIENT_ID)

    @model_validator(mode="after")
    def _one(self) -> FuturesCancelArgs:
        if self.orderId is None and self.origClientOrderId is None:
            raise ValueError("give orderId or origClientOrderId (see binance_futures_open_orders)")
        return self


async def cancel_order(args: FuturesCancelArgs, deps: Deps) -> FuturesOrder:
    what = f"Cancelling futures order on {args.symbol}"
    try:
        o = await deps.exchange.call("futures_cancel_order", what, symbol=args.symbol, orderId=args.orderId,
                                     origClientOrderId=args.origClientOrderId)
        return regular_from(o)
    except ExchangeRejected as exc:
        if exc.binance_code not in (-2011, -2013):
            raise
        not_regular = exc
    # Not a regular open order: try the conditional (algo) order with the same id. The algo endpoints take no
    # symbol, so the order found must be checked against it: never cancel another symbol's order.
    params = {"algoId": args.orderId} if args.orderId is not None else {"clientAlgoId": args.origClientOrderId}
    try:
        existing = await deps.exchange.call("futures_get_order", what, **params)
    except ExchangeRejected as exc:
        if exc.binance_code == -2013:  # neither a regular nor a conditional order: report the cancel's answer
            raise not_regular from None
        raise
    if existing.get("symbol") != args.symbol:
        raise not_regular
    await deps.exchange.call("futures_cancel_order", what, **params)
    existing["algoStatus"] = "CANCELED"
    return algo_from(existing)


class FuturesCancelAllResult(Result):
    symbol: str
    cancelled: list[FuturesOrder]
    count: int


async def cancel_all(args: SymbolArgs, deps: Deps) -> FuturesCancelAllResult:
    what = f"Cancelling all futures orders on {args.symbol}"
    regular = await deps.exchange.call("futures_get_open_orders", what, symbol=args.symbol)
    algo = await deps.exchange.call("futures_get_open_orders", what, symbol=args.symbol, conditional=True)
    if regular:
        await deps.exchange.call("futures_cancel_all_open_orders", what, symbol=args.symbol)
    if algo:
        await deps.exchange.call("futures_cancel_all_open_orders", what, symbol=args.symbol, conditional=True)
    cancelled = [regular_from({**o, "status": "CANCELED"}) for o in regular]
    cancelled += [algo_from({**a, "algoStatus": "CANCELED"}) for a in algo]
    return FuturesCancelAllResult(symbol=args.symbol, cancelled=cancelled, count=len(cancelled))


class FuturesOpenArgs(Args):
    symbol: Symbol | None = None
    limit: Limit1000 = 100


class FuturesOrderList(Result):
    orders: list[FuturesOrder]
    count: int
    total: int
    truncated: bool


async def open_orders(args: FuturesOpenArgs, deps: Deps) -> FuturesOrderList:
    what = "Reading open futures orders"
    regular = await deps.exchange.call("futures_get_open_orders", what, symbol=args.symbol)
    algo = await deps.exchange.call("futures_get_open_orders", what, symbol=args.symbol, conditional=True)
    orders = [regular_from(o) for o in regular] + [algo_from(a) for a in algo]
    shown = orders[: args.limit]
    return FuturesOrderList(orders=shown, count=len(shown), total=len(orders), truncated=len(orders) > len(shown))


class FuturesHistoryArgs(HistoryArgs):
    max_window: ClassVar[tuple[int, str]] = (WEEK_MS, "7 days")


async def order_history(args: FuturesHistoryArgs, deps: Deps) -> FuturesOrderList:
    rows = await deps.exchange.call("futures_get_all_orders", f"Reading futures orders of {args.symbol}",
                                    symbol=args.symbol, orderId=args.orderId, startTime=args.startTime,
                                    endTime=args.endTime, limit=args.limit)
    orders = [regular_from(o) for o in rows]
    return FuturesOrderList(orders=orders, count=len(orders), total=len(orders), truncated=len(orders) >= args.limit)


class FuturesTradesArgs(TradesArgs):
    max_window: ClassVar[tuple[int, str]] = (WEEK_MS, "7 days")


class FuturesTrade(BaseModel):
    id: int
    order_id: int
    side: str
    position_side: str
    price: Dec
    qty: Dec
    quote_qty: Dec
    realized_pnl: Dec
    commission: Dec
    commission_asset: str
    maker: bool
    time: int
    time_iso: str | None


class FuturesTradeList(Result):
    symbol: str
    trades: list[FuturesTrade]
    count: int
    truncated: bool


async def trade_history(args: FuturesTradesArgs, deps: Deps) -> FuturesTradeList:
    rows = await deps.exchange.call("futures_account_trades", f"Reading futures trades of {args.symbol}",
                                    symbol=args.symbol, startTime=args.startTime, endTime=args.endTime,
                                    fromId=args.fromId, limit=args.limit)
    trades = [FuturesTrade(id=t["id"], order_id=t["orderId"], side=t["side"], position_side=t.get("positionSide", ""),
                           price=D(t["price"]), qty=D(t["qty"]), quote_qty=D(t["quoteQty"]),
                           realized_pnl=D(t.get("realizedPnl")), commission=D(t["commission"]),
                           commission_asset=t["commissionAsset"], maker=t["maker"], time=t["time"],
                           time_iso=iso(t["time"])) for t in rows]
    return FuturesTradeList(symbol=args.symbol, trades=trades, count=len(trades), truncated=len(trades) >= args.limit)


class LeverageArgs(Args):
    symbol: Symbol
    leverage: int = Field(ge=1, le=125, description="1-125; the symbol's bracket may cap it lower")


class LeverageResult(Result):
    symbol: str
    leverage: int
    max_notional: Dec = Field(description="largest position notional allowed at this leverage")


async def change_leverage(args: LeverageArgs, deps: Deps) -> LeverageResult:
    r = await deps.exchange.call("futures_change_leverage", f"Setting {args.symbol} leverage to {args.leverage}x",
                                 symbol=args.symbol, leverage=args.leverage)
    return LeverageResult(symbol=r["symbol"], leverage=int(r["leverage"]), max_notional=D(r.get("maxNotionalValue")))


class MarginTypeArgs(Args):
    symbol: Symbol
    marginType: Literal["ISOLATED", "CROSSED"]


class MarginTypeResult(Result):
    symbol: str
    margin_type: str
    changed: bool = Field(description="false when it was already set (a no-op, not an error)")


async def set_margin_type(args: MarginTypeArgs, deps: Deps) -> MarginTypeResult:
    try:
        await deps.exchange.call("futures_change_margin_type", f"Setting {args.symbol} margin type to "
                                 f"{args.marginType}", symbol=args.symbol, marginType=args.marginType)
    except ExchangeRejected as exc:
        if exc.binance_code == -4046:
            return MarginTypeResult(symbol=args.symbol, margin_type=args.marginType, changed=False)
        raise
    return MarginTypeResult(symbol=args.symbol, margin_type=args.marginType, changed=True)


class CloseArgs(Args):
    symbol: Symbol
    positionSide: Literal["BOTH", "LONG", "SHORT"] | None = Field(None, description="omit to close every side")


class CloseResult(Result):
    symbol: str
    closed: list[FuturesOrder]
    count: int
    note: str | None = None


async def close_position(args: CloseArgs, deps: Deps) -> CloseResult:
    what = f"Closing the {args.symbol} futures position"
    rows = await deps.exchange.call("futures_position_information", what, symbol=args.symbol)
    targets = [r for r in rows if D(r.get("positionAmt")) != 0
               and (args.positionSide is None or r.get("positionSide", "BOTH") == args.positionSide)]
    if not targets:
        return CloseResult(symbol=args.symbol, closed=[], count=0, note="no open position to close")
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
        closed.append(regular_from(o).model_copy(update={"note": note}))
    return CloseResult(symbol=args.symbol, closed=closed, count=len(closed))


TOOLS = [
    ToolDef("binance_futures_place_order", "Place a USD-M futures order. MARKET/LIMIT are regular orders; STOP, "
            "TAKE_PROFIT (need price) and STOP_MARKET, TAKE_PROFIT_MARKET are conditional orders triggered at "
            "stopPrice. Returns the order state.", FuturesOrderArgs, FuturesOrder, place_order),
    ToolDef("binance_futures_cancel_order", "Cancel one futures order, regular or conditional, by orderId (or algo "
            "id) or origClientOrderId.", FuturesCancelArgs, FuturesOrder, cancel_order),
    ToolDef("binance_futures_cancel_all_orders", "Cancel every open futures order on one symbol, regular and "
            "conditional; reports each.", SymbolArgs, FuturesCancelAllResult, cancel_all),
    ToolDef("binance_futures_open_orders", "Open futures orders, regular and conditional, for one symbol or all.",
            FuturesOpenArgs, FuturesOrderList, open_orders),
    ToolDef("binance_futures_order_history", "Futures orders of one symbol in all statuses; window at most 7 days.",
            FuturesHistoryArgs, FuturesOrderList, order_history),
    ToolDef("binance_futures_trade_history", "Futures fills on one symbol with realized PnL and commission; window "
            "at most 7 days.", FuturesTradesArgs, FuturesTradeList, trade_history),
    ToolDef("binance_futures_change_leverage", "Set the initial leverage of one futures symbol; returns the "
            "leverage and the max position notional it allows.", LeverageArgs, LeverageResult, change_leverage),
    ToolDef("binance_futures_set_margin_type", "Switch a futures symbol between ISOLATED and CROSSED margin; "
            "already set is a no-op.", MarginTypeArgs, MarginTypeResult, set_margin_type),
    ToolDef("binance_futures_close_position", "Flatten the position(s) on a symbol at market with reduce-only "
            "orders of the exact size; reports each.", CloseArgs, CloseResult, close_position),
]
