"""USD-M futures records of the simulator: positions, regular orders and conditional (algo) orders."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from binance_mcp.simulator.feed import fmt
from binance_mcp.simulator.symbols import FuturesSymbol

ZERO = Decimal(0)
MAKER_RATE = Decimal("0.0002")
TAKER_RATE = Decimal("0.0005")
CONDITIONAL = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
OPEN = ("NEW", "PARTIALLY_FILLED")
CANCEL_ALL_DONE = {"code": 200, "msg": "The operation of cancel all open order is done."}

def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)

@dataclass
class Position:
    symbol: str
    side: str  # BOTH, LONG, SHORT
    amt: Decimal = ZERO
    entry: Decimal = ZERO
    update_time: int = 0
    margin_added: Decimal = ZERO  # isolated margin added (or, negative, removed) by /fapi/v1/positionMargin

    def apply(self, dq: Decimal, price: Decimal, now: int) -> Decimal:
        """Add signed ``dq`` at ``price``; return the realised PnL."""
        realised = ZERO
        if self.amt and _sign(self.amt) != _sign(dq):  # a reduction releases its share of the added margin
            left = max(abs(self.amt) - abs(dq), ZERO)
            self.margin_added = (self.margin_added * left / abs(self.amt)).quantize(Decimal("0.00000001"))
        if self.amt == 0 or _sign(self.amt) == _sign(dq):
            total = abs(self.amt) + abs(dq)
            self.entry = (self.entry * abs(self.amt) + price * abs(dq)) / total
            self.amt += dq
        else:
            closed = min(abs(dq), abs(self.amt))
            realised = (price - self.entry) * closed * _sign(self.amt)
            new = self.amt + dq
            if new == 0:
                self.entry = ZERO
            elif _sign(new) != _sign(self.amt):
                self.entry = price
            self.amt = new
        self.update_time = now
        return realised

@dataclass
class FuturesOrder:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    position_side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    reduce_only: bool
    time: int
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_time: int = 0
    orig_type: str = ""
    stop_price: Decimal = ZERO
    close_position: bool = False

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def reduces(self) -> bool:
        """Reduce-only, close-position, or a hedge-mode close (SELL on LONG, BUY on SHORT): it may only shrink
        its position, never open or flip it, and it reserves no margin."""
        return (self.reduce_only or self.close_position or (self.position_side == "LONG" and self.side == "SELL")
                or (self.position_side == "SHORT" and self.side == "BUY"))

    def as_dict(self, spec: FuturesSymbol, with_time: bool = True) -> dict:
        pp, qp = spec.price_precision, spec.quantity_precision
        avg = self.cum_quote / self.executed_qty if self.executed_qty else ZERO
        out = {
            "orderId": self.order_id, "symbol": self.symbol, "status": self.status,
            "clientOrderId": self.client_order_id, "price": fmt(self.price, pp), "avgPrice": fmt(avg, pp),
            "origQty": fmt(self.orig_qty, qp), "executedQty": fmt(self.executed_qty, qp),
            "cumQty": fmt(self.executed_qty, qp), "cumQuote": fmt(self.cum_quote, 8),
            "timeInForce": self.time_in_force, "type": self.type, "reduceOnly": self.reduce_only,
            "closePosition": self.close_position, "side": self.side, "positionSide": self.position_side,
            "stopPrice": fmt(self.stop_price, pp), "workingType": "CONTRACT_PRICE", "priceProtect": False,
            "origType": self.orig_type or self.type, "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0, "updateTime": self.update_time,
        }
        if with_time:
            out["time"] = self.time
        return out

@dataclass
class AlgoOrder:
    algo_id: int
    client_algo_id: str
    symbol: str
    side: str
    position_side: str
    order_type: str
    time_in_force: str
    quantity: Decimal
    trigger_price: Decimal
    price: Decimal
    working_type: str
    close_position: bool
    reduce_only: bool
    create_time: int
    status: str = "NEW"
    update_time: int = 0
    trigger_time: int = 0
    actual_order_id: str = ""

    def as_dict(self, spec: FuturesSymbol) -> dict:
        pp, qp = spec.price_precision, spec.quantity_precision
        return {
            "algoId": self.algo_id, "clientAlgoId": self.client_algo_id, "algoType": "CONDITIONAL",
            "orderType": self.order_type, "symbol": self.symbol, "side": self.side,
            "positionSide": self.position_side, "timeInForce": self.time_in_force,
            "quantity": fmt(self.quantity, qp), "algoStatus": self.status,
            "actualOrderId": self.actual_order_id, "triggerPrice": fmt(self.trigger_price, pp),
            "price": fmt(self.price, pp), "icebergQuantity": None, "tpTriggerPrice": "0.000", "tpPrice": "0.000",
            "slTriggerPrice": "0.000", "slPrice": "0.000", "tpOrderType": "", "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingType": self.working_type, "priceMatch": "NONE", "closePosition": self.close_position,
            "priceProtect": False, "reduceOnly": self.reduce_only, "activatePrice": "", "callbackRate": "",
            "createTime": self.create_time, "updateTime": self.update_time or self.create_time,
            "triggerTime": self.trigger_time, "goodTillDate": 0,
        }
