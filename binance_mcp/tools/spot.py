"""Spot trading tools: place, cancel, cancel all, open orders, order and trade history."""

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
    TimeMs,
    ToolDef,
    client_id,
    dec_str,
    header,
    iso,
)

SpotType = Literal["MARKET", "LIMIT", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT",
                   "LIMIT_MAKER"]
PRICE_TYPES = ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
TIF_TYPES = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
CLIENT_ID = r"^[a-zA-Z0-9_-]{1,36}$"
DAY_MS = 86_400_000


class SpotOrderArgs(Args):
    symbol: Symbol
    side: Literal["BUY", "SELL"]
    type: SpotType
    quantity: Positive | None = Field(None, description="base quantity")
    quoteOrderQty: Positive | None = Field(None, description="quote amount instead of quantity")
    price: Positive | None = None
    timeInForce: Literal["GTC", "IOC", "FOK"] | None = Field(None, description="LIMIT and *_LIMIT; default GTC")
    stopPrice: Positive | None = None
    newClientOrderId: client_id(CLIENT_ID) | None = None

    @model_validator(mode="after")
    def _by_type(self) -> SpotOrderArgs:
        t = self.type
        if t == "MARKET":
            if (self.quantity is None) == (self.quoteOrderQty is None):
                raise ValueError("a MARKET order takes exactly one of quantity or quoteOrderQty")
        else:
            if self.quoteOrderQty is not None:
                raise ValueError("quoteOrderQty is only for MARKET orders; use quantity")
            if self.quantity is None:
                raise ValueError(f"a {t} order needs quantity")
        if t in PRICE_TYPES and self.price is None:
            raise ValueError(f"a {t} order needs price")
        if t not in PRICE_TYPES and self.price is not None:
            raise ValueError(f"a {t} order takes no price (the exchange fills it at market)")
        if t in STOP_TYPES and self.stopPrice is None:
            raise ValueError(f"a {t} order needs stopPrice")
        if t not in STOP_TYPES and self.stopPrice is not None:
            raise ValueError(f"a {t} order takes no stopPrice")
        if t not in TIF_TYPES and self.timeInForce is not None:
            raise ValueError("timeInForce applies only to LIMIT, STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT")
        return self


class Fill(BaseModel):
    price: Dec
    qty: Dec
    commission: Dec
    commissionAsset: str


class SpotOrder(Result):
    """An order as the open-order and history tools list it."""

    symbol: str
    orderId: int
    clientOrderId: str
    side: str
    type: str
    status: str
    price: Dec | None = None
    origQty: Dec
    executedQty: Dec
    cummulativeQuoteQty: Dec
    stopPrice: Dec | None = None
    time: int
    timeIso: str


class PlaceResult(Result):
    """What placing found out (the order's terms are the call's own arguments)."""

    orderId: int
    clientOrderId: str
    status: str
    executedQty: Dec
    cummulativeQuoteQty: Dec
    fills: list[Fill]
    note: str | None = None  # set when the answer was lost and the order was found by its client id (it says so)


class CancelResult(Result):
    """A cancelled order: its ids and how much of it had filled (its status is CANCELED: a cancel that did not
    happen is an error)."""

    orderId: int
    clientOrderId: str
    executedQty: Dec


def order_from(o: dict, model: type[Result] = SpotOrder, **extra) -> Result:
    t = o.get("transactTime") or o.get("time")
    full = dict(
        symbol=o["symbol"], orderId=int(o["orderId"]),
        clientOrderId=o.get("origClientOrderId") or o.get("clientOrderId", ""),
        side=o.get("side"), type=o.get("type"), status=o.get("status"),
        price=D(o.get("price")) or None, origQty=D(o.get("origQty")), executedQty=D(o.get("executedQty")),
        cummulativeQuoteQty=D(o.get("cummulativeQuoteQty")), stopPrice=D(o.get("stopPrice")) or None,
        time=int(t or 0), timeIso=iso(int(t or 0)) or "",
    )
    return model.pick(full, **extra)


async def place_order(args: SpotOrderArgs, deps: Deps) -> PlaceResult:
    params = {
        "symbol": args.symbol, "side": args.side, "type": args.type, "newOrderRespType": "FULL",
        "newClientOrderId": args.newClientOrderId or client_order_id(),
    }
    for name in ("quantity", "quoteOrderQty", "price", "stopPrice"):
        value = getattr(args, name)
        if value is not None:
            params[name] = dec_str(value)
    if args.type in TIF_TYPES:
        params["timeInForce"] = args.timeInForce or "GTC"
    what = f"Spot {args.type} {args.side} order on {args.symbol}"
    cid = params["newClientOrderId"]
    o, note = await place_once(deps.exchange, "create_order", what, cid, "get_order",
                               {"symbol": args.symbol, "origClientOrderId": cid}, **params)
    fills = [Fill(price=D(f["price"]), qty=D(f["qty"]), commission=D(f["commission"]),
                  commissionAsset=f["commissionAsset"]) for f in o.get("fills", [])]
    return order_from(o, PlaceResult, fills=fills, note=note)


class CancelArgs(Args):
    symbol: Symbol
    orderId: int | None = Field(None, ge=1)
    origClientOrderId: client_id(CLIENT_ID) | None = None

    @model_validator(mode="after")
    def _one(self) -> CancelArgs:
        if self.orderId is None and self.origClientOrderId is None:
            raise ValueError("give orderId or origClientOrderId (see binance_spot_open_orders)")
        return self


async def cancel_order(args: CancelArgs, deps: Deps) -> CancelResult:
    o = await deps.exchange.call("cancel_order", f"Cancelling spot order on {args.symbol}", symbol=args.symbol,
                                 orderId=args.orderId, origClientOrderId=args.origClientOrderId)
    return order_from(o, CancelResult)


class SymbolArgs(Args):
    symbol: Symbol


class CancelAllResult(Result):
    cancelled: list[CancelResult]


async def cancel_all(args: SymbolArgs, deps: Deps) -> CancelAllResult:
    try:
        rows = await deps.exchange.call("cancel_all_open_orders", f"Cancelling all spot orders on {args.symbol}",
                                        symbol=args.symbol)
    except ExchangeRejected as exc:
        if exc.binance_code == -2011:  # Binance's answer when nothing is open: a normal empty result
            rows = []
        else:
            raise
    orders = [order_from(o, CancelResult) for o in rows if "orderId" in o]
    return CancelAllResult(cancelled=orders)


class OpenOrdersArgs(Args):
    symbol: Symbol | None = None
    limit: Limit1000 = 100


class OrderList(Result):
    orders: list[SpotOrder]
    total: int
    truncated: bool


async def open_orders(args: OpenOrdersArgs, deps: Deps) -> OrderList:
    rows = await deps.exchange.call("get_open_orders", "Reading open spot orders", symbol=args.symbol)
    orders = [order_from(o) for o in rows]
    shown = orders[: args.limit]
    return OrderList(orders=shown, total=len(orders), truncated=len(orders) > len(shown))


def check_window(start: int | None, end: int | None, max_ms: int, label: str) -> None:
    if start is not None and end is not None:
        if end < start:
            raise ValueError("endTime must not be before startTime")
        if end - start > max_ms:
            raise ValueError(f"startTime..endTime may span at most {label}")


class HistoryArgs(Args):
    """Order history of one symbol; ``max_window`` is the market's longest startTime..endTime span."""

    max_window: ClassVar[tuple[int, str]] = (DAY_MS, "24 hours")
    symbol: Symbol
    orderId: int | None = Field(None, ge=1, description="this id and later")
    startTime: TimeMs | None = None
    endTime: TimeMs | None = None
    limit: Limit1000 = 500

    @model_validator(mode="after")
    def _window(self) -> HistoryArgs:
        check_window(self.startTime, self.endTime, *self.max_window)
        return self


async def order_history(args: HistoryArgs, deps: Deps) -> OrderList:
    rows = await deps.exchange.call("get_all_orders", f"Reading spot order history of {args.symbol}",
                                    symbol=args.symbol, orderId=args.orderId, startTime=args.startTime,
                                    endTime=args.endTime, limit=args.limit)
    orders = [order_from(o) for o in rows]
    return OrderList(orders=orders, total=len(orders), truncated=len(orders) >= args.limit)


class TradesArgs(Args):
    """Fills of one symbol; ``max_window`` as in HistoryArgs."""

    max_window: ClassVar[tuple[int, str]] = (DAY_MS, "24 hours")
    symbol: Symbol
    startTime: TimeMs | None = None
    endTime: TimeMs | None = None
    fromId: int | None = Field(None, ge=0, description="from this trade id on; not with startTime/endTime")
    limit: Limit1000 = 500

    @model_validator(mode="after")
    def _window(self) -> TradesArgs:
        check_window(self.startTime, self.endTime, *self.max_window)
        if self.fromId is not None and (self.startTime is not None or self.endTime is not None):
            raise ValueError("fromId cannot be combined with startTime/endTime")
        return self


# Numbers and flags first, then the strings (decimals and the asset): the row's schema says "string" once.
TRADE_COLUMNS = ("id", "orderId", "time", "isBuyer", "isMaker", "price", "qty", "quoteQty", "commission",
                 "commissionAsset")
Trade = tuple[int, int, int, bool, bool, Dec, Dec, Dec, Dec, str]


class TradeList(Result):
    """Binance's trade objects as rows, oldest first (their symbol is the call's); page on with fromId = the last
    id + 1."""

    columns: header(*TRADE_COLUMNS)
    trades: list[Trade]
    total: int
    truncated: bool


async def trade_history(args: TradesArgs, deps: Deps) -> TradeList:
    rows = await deps.exchange.call("get_my_trades", f"Reading spot trades of {args.symbol}", symbol=args.symbol,
                                    startTime=args.startTime, endTime=args.endTime, fromId=args.fromId,
                                    limit=args.limit)
    trades = [(int(t["id"]), int(t["orderId"]), int(t["time"]), bool(t["isBuyer"]), bool(t["isMaker"]), D(t["price"]),
               D(t["qty"]), D(t["quoteQty"]), D(t["commission"]), t["commissionAsset"]) for t in rows]
    return TradeList(columns=TRADE_COLUMNS, trades=trades, total=len(trades), truncated=len(trades) >= args.limit)


TOOLS = [
    ToolDef("binance_spot_place_order", "Place a spot order. MARKET: quantity or quoteOrderQty; LIMIT, LIMIT_MAKER: "
            "price; STOP_LOSS, TAKE_PROFIT: stopPrice (their *_LIMIT forms also price). Returns orderId, status, fills.", SpotOrderArgs, PlaceResult, place_order),
    ToolDef("binance_spot_cancel_order", "Cancel one open spot order by orderId or origClientOrderId.", CancelArgs,
            CancelResult, cancel_order),
    ToolDef("binance_spot_cancel_all_orders", "Cancel every open spot order on a symbol; lists each (none open: an "
            "empty list).", SymbolArgs, CancelAllResult, cancel_all),
    ToolDef("binance_spot_open_orders", "Open spot orders (NEW, PARTIALLY_FILLED), for one symbol or all.",
            OpenOrdersArgs, OrderList, open_orders),
    ToolDef("binance_spot_order_history", "Spot orders of a symbol in all statuses; window at most 24 h; page "
            "with orderId.", HistoryArgs, OrderList, order_history),
    ToolDef("binance_spot_trade_history", "Spot fills on a symbol, one row each: price, qty, commission, "
            "buyer/maker.", TradesArgs, TradeList, trade_history),
]
