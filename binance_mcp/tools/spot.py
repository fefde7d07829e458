"""Spot trading tools: place, cancel, cancel all, open orders, order and trade history."""

from __future__ import annotations

from decimal import Decimal
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
    dec_str,
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
    quoteOrderQty: Positive | None = Field(None, description="MARKET only: quote amount to spend/receive instead "
                                                             "of quantity")
    price: Positive | None = Field(None, description="LIMIT, LIMIT_MAKER, STOP_LOSS_LIMIT, TAKE_PROFIT_LIMIT")
    timeInForce: Literal["GTC", "IOC", "FOK"] | None = Field(None, description="LIMIT and *_LIMIT only; default GTC")
    stopPrice: Positive | None = Field(None, description="STOP_LOSS* and TAKE_PROFIT* only")
    newClientOrderId: str | None = Field(None, pattern=CLIENT_ID)

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
    commission_asset: str
    trade_id: int | None = None


class SpotOrder(Result):
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    status: str
    price: Dec
    quantity: Dec
    executed_qty: Dec
    cumulative_quote_qty: Dec
    avg_price: Dec | None = None
    stop_price: Dec | None = None
    time_in_force: str
    time: int
    time_iso: str


class PlaceResult(SpotOrder):
    fills: list[Fill] = []
    note: str | None = Field(None, description="set when the answer was lost and the order was found by its "
                                               "client id")


def order_from(o: dict) -> dict:
    executed = D(o.get("executedQty"))
    quote = D(o.get("cummulativeQuoteQty"))
    t = o.get("transactTime") or o.get("time")
    return dict(
        symbol=o["symbol"], order_id=int(o["orderId"]),
        client_order_id=o.get("origClientOrderId") or o.get("clientOrderId", ""),
        side=o.get("side"), type=o.get("type"), status=o.get("status"),
        price=D(o.get("price")), quantity=D(o.get("origQty")), executed_qty=executed, cumulative_quote_qty=quote,
        avg_price=(quote / executed).quantize(Decimal("0.00000001")) if executed else None,
        stop_price=D(o["stopPrice"]) if D(o.get("stopPrice")) else None, time_in_force=o.get("timeInForce"),
        time=int(t or 0), time_iso=iso(int(t or 0)) or "",
    )


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
                  commission_asset=f["commissionAsset"], trade_id=f.get("tradeId")) for f in o.get("fills", [])]
    return PlaceResult(**order_from(o), fills=fills, note=note)


class CancelArgs(Args):
    symbol: Symbol
    orderId: int | None = Field(None, ge=1)
    origClientOrderId: str | None = Field(None, pattern=CLIENT_ID)

    @model_validator(mode="after")
    def _one(self) -> CancelArgs:
        if self.orderId is None and self.origClientOrderId is None:
            raise ValueError("give orderId or origClientOrderId (see binance_spot_open_orders)")
        return self


async def cancel_order(args: CancelArgs, deps: Deps) -> SpotOrder:
    o = await deps.exchange.call("cancel_order", f"Cancelling spot order on {args.symbol}", symbol=args.symbol,
                                 orderId=args.orderId, origClientOrderId=args.origClientOrderId)
    return SpotOrder(**order_from(o))


class SymbolArgs(Args):
    symbol: Symbol


class CancelAllResult(Result):
    symbol: str
    cancelled: list[SpotOrder]
    count: int


async def cancel_all(args: SymbolArgs, deps: Deps) -> CancelAllResult:
    try:
        rows = await deps.exchange.call("cancel_all_open_orders", f"Cancelling all spot orders on {args.symbol}",
                                        symbol=args.symbol)
    except ExchangeRejected as exc:
        if exc.binance_code == -2011:  # Binance's answer when nothing is open: a normal empty result
            rows = []
        else:
            raise
    orders = [SpotOrder(**order_from(o)) for o in rows if "orderId" in o]
    return CancelAllResult(symbol=args.symbol, cancelled=orders, count=len(orders))


class OpenOrdersArgs(Args):
    symbol: Symbol | None = None
    limit: Limit1000 = 100


class OrderList(Result):
    orders: list[SpotOrder]
    count: int
    total: int
    truncated: bool


async def open_orders(args: OpenOrdersArgs, deps: Deps) -> OrderList:
    rows = await deps.exchange.call("get_open_orders", "Reading open spot orders", symbol=args.symbol)
    orders = [SpotOrder(**order_from(o)) for o in rows]
    shown = orders[: args.limit]
    return OrderList(orders=shown, count=len(shown), total=len(orders), truncated=len(orders) > len(shown))


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
    orderId: int | None = Field(None, ge=1, description="orders with this id and later")
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
    orders = [SpotOrder(**order_from(o)) for o in rows]
    return OrderList(orders=orders, count=len(orders), total=len(orders), truncated=len(orders) >= args.limit)


class TradesArgs(Args):
    """Fills of one symbol; ``max_window`` as in HistoryArgs."""

    max_window: ClassVar[tuple[int, str]] = (DAY_MS, "24 hours")
    symbol: Symbol
    startTime: TimeMs | None = None
    endTime: TimeMs | None = None
    fromId: int | None = Field(None, ge=0, description="trade id to start from (not with startTime/endTime)")
    limit: Limit1000 = 500

    @model_validator(mode="after")
    def _window(self) -> TradesArgs:
        check_window(self.startTime, self.endTime, *self.max_window)
        if self.fromId is not None and (self.startTime is not None or self.endTime is not None):
            raise ValueError("fromId cannot be combined with startTime/endTime")
        return self


class Trade(BaseModel):
    id: int
    order_id: int
    price: Dec
    qty: Dec
    quote_qty: Dec
    commission: Dec
    commission_asset: str
    is_buyer: bool
    is_maker: bool
    time: int
    time_iso: str | None


class TradeList(Result):
    symbol: str
    trades: list[Trade]
    count: int
    truncated: bool


async def trade_history(args: TradesArgs, deps: Deps) -> TradeList:
    rows = await deps.exchange.call("get_my_trades", f"Reading spot trades of {args.symbol}", symbol=args.symbol,
                                    startTime=args.startTime, endTime=args.endTime, fromId=args.fromId,
                                    limit=args.limit)
    trades = [Trade(id=t["id"], order_id=t["orderId"], price=D(t["price"]), qty=D(t["qty"]),
                    quote_qty=D(t["quoteQty"]), commission=D(t["commission"]), commission_asset=t["commissionAsset"],
                    is_buyer=t["isBuyer"], is_maker=t["isMaker"], time=t["time"], time_iso=iso(t["time"]))
              for t in rows]
    return TradeList(symbol=args.symbol, trades=trades, count=len(trades), truncated=len(trades) >= args.limit)


TOOLS = [
    ToolDef("binance_spot_place_order", "Place a spot order. MARKET takes quantity or quoteOrderQty; LIMIT and "
            "LIMIT_MAKER need price; STOP_LOSS/TAKE_PROFIT need stopPrice, their *_LIMIT forms also price. Returns "
            "status and fills.", SpotOrderArgs, PlaceResult, place_order),
    ToolDef("binance_spot_cancel_order", "Cancel one open spot order by orderId or origClientOrderId.", CancelArgs,
            SpotOrder, cancel_order),
    ToolDef("binance_spot_cancel_all_orders", "Cancel every open spot order on one symbol; reports each cancelled "
            "order (none open is an empty result).", SymbolArgs, CancelAllResult, cancel_all),
    ToolDef("binance_spot_open_orders", "Open spot orders (NEW, PARTIALLY_FILLED), for one symbol or all.",
            OpenOrdersArgs, OrderList, open_orders),
    ToolDef("binance_spot_order_history", "Spot orders of one symbol in all statuses; window at most 24 h; page "
            "with orderId.", HistoryArgs, OrderList, order_history),
    ToolDef("binance_spot_trade_history", "The account's spot fills on one symbol: price, qty, commission, "
            "maker/buyer.", TradesArgs, TradeList, trade_history),
]
