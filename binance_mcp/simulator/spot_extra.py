"""Spot endpoints beyond spot.py: cancel-replace (``POST /api/v3/order/cancelReplace``), the account's
commission rates (``GET /api/v3/account/commission``), and the refusals of what the simulator does not do
(order lists, amends), answered as Binance answers a symbol that does not allow them."""

from __future__ import annotations

from binance_mcp.simulator.errors import BinanceError, order_rejected
from binance_mcp.simulator.feed import fmt
from binance_mcp.simulator.params import Params
from binance_mcp.simulator.spot import MAKER_RATE, ORDER_TYPES, TAKER_RATE, ZERO, SpotExchange

CANCEL_PARAMS = ("cancelOrderId", "cancelOrigClientOrderId", "cancelNewClientOrderId", "cancelReplaceMode",
                 "cancelRestrictions", "orderRateLimitExceededMode")


class CancelReplaceError(BinanceError):
    """-2021 (partly failed, HTTP 409) or -2022 (failed, HTTP 400), with Binance's ``data`` of both halves."""

    def __init__(self, code: int, data: dict):
        msg = "Order cancel-replace partially failed." if code == -2021 else "Order cancel-replace failed."
        super().__init__(code, msg, status=409 if code == -2021 else 400)
        self.data = data

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg, "data": self.data}


def cancel_replace(spot: SpotExchange, p: Params, now: int) -> dict:
    spec = spot.spec(p.raw("symbol"))
    mode = p.enum("cancelReplaceMode", ("STOP_ON_FAILURE", "ALLOW_FAILURE"), -1100,
                  "Illegal characters found in parameter 'cancelReplaceMode'; legal range is "
                  "'STOP_ON_FAILURE, ALLOW_FAILURE'.", required=True)
    if "cancelOrderId" not in p and "cancelOrigClientOrderId" not in p:
        raise BinanceError(-1102, "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, but both were "
                                  "empty/null!")
    # The new order's own parameters are read before anything is cancelled: a malformed request changes nothing.
    p.enum("side", ("BUY", "SELL"), -1117, "Invalid side.", required=True)
    p.enum("type", ORDER_TYPES, -1116, "Invalid orderType.", required=True)
    for name, feature in (("icebergQty", "Iceberg orders"), ("trailingDelta", "Trailing stop orders")):
        if name in p:
            raise order_rejected(f"{feature} are not supported for this symbol.")
    cancel = {"symbol": spec.symbol}
    for ours, theirs in (("cancelOrderId", "orderId"), ("cancelOrigClientOrderId", "origClientOrderId"),
                         ("cancelNewClientOrderId", "newClientOrderId")):
        if ours in p:
            cancel[theirs] = p.values[ours]
    new = {k: v for k, v in p.values.items() if k not in CANCEL_PARAMS}
    cancel_result: dict | None = None
    cancel_error: BinanceError | None = None
    try:
        cancel_result = spot.cancel(Params(cancel), now)
    except BinanceError as exc:
        cancel_error = exc
    if cancel_error is not None and mode == "STOP_ON_FAILURE":
        raise CancelReplaceError(-2022, {"cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                                         "cancelResponse": cancel_error.body(), "newOrderResponse": None})
    new_result: dict | None = None
    new_error: BinanceError | None = None
    try:
        new_result = spot.place(Params(new), now)
    except BinanceError as exc:
        new_error = exc
    data = {"cancelResult": "FAILURE" if cancel_error else "SUCCESS",
            "newOrderResult": "FAILURE" if new_error else "SUCCESS",
            "cancelResponse": cancel_error.body() if cancel_error else cancel_result,
            "newOrderResponse": new_error.body() if new_error else new_result}
    if cancel_error is None and new_error is None:
        return data
    raise CancelReplaceError(-2022 if cancel_error and new_error else -2021, data)


def commission(spot: SpotExchange, p: Params) -> dict:
    spec = spot.spec(p.raw("symbol"))
    zero = {"maker": fmt(ZERO), "taker": fmt(ZERO), "buyer": fmt(ZERO), "seller": fmt(ZERO)}
    return {"symbol": spec.symbol,
            "standardCommission": {"maker": fmt(MAKER_RATE), "taker": fmt(TAKER_RATE), "buyer": fmt(ZERO),
                                   "seller": fmt(ZERO)},
            "specialCommission": dict(zero), "taxCommission": dict(zero),
            "discount": {"enabledForAccount": False, "enabledForSymbol": False, "discountAsset": "BNB",
                         "discount": fmt(ZERO)}}


def refuse(feature: str):
    """A handler for an endpoint of a feature exchangeInfo says the symbols do not allow."""

    def handler(spot: SpotExchange, p: Params) -> dict:
        spot.spec(p.raw("symbol"))
        raise order_rejected(f"{feature} are not supported for this symbol.")

    return handler
