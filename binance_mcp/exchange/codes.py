"""Binance's error codes: one table, and everything the server decides from a code.

Each row says what the agent is told (``remedy`` and ``advice``, used by ``translate``), whether a
read that got this code is retried (``retry_read``, the adapter's bounded read retry) and whether
Binance says the request may have been carried out anyway (``fate_unknown``: the guard keeps the
reservation; the exactly-once placement looks the order up instead of reporting a refusal). The HTTP
status counts too, in the helpers below: a 5xx (or 408) leaves the outcome unknown whatever the code
(Binance: "the execution status is UNKNOWN and could have been a success").

A code that is not in the table is an ordinary refusal: with a 4xx status, nothing happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from binance_mcp.errors import (
    FIX_INPUT,
    HUMAN,
    RETRY_LATER,
    BinanceMcpError,
    ExchangeRejected,
    ExchangeUnavailable,
)


@dataclass(frozen=True)
class Code:
    """One Binance error code. The agent reads:
    "<what> was rejected by Binance: <msg> (Binance code <code>). <advice>"

    - ``retry_read``: a transient failure on Binance's side; a read is retried a bounded number of times.
    - ``fate_unknown``: Binance says the request may still have been executed ("execution status unknown").
    """

    code: int
    remedy: str
    advice: str
    retry_read: bool = False
    fate_unknown: bool = False

    @property
    def answer_lost(self) -> bool:
        """For an order: the answer does not say whether it was placed, so it is looked up by client id.

        Every code with an unknown fate, and every transient server failure (``retry_read``): an order
        that met -1008 is looked up too. That costs a lookup or two and never hides a placed order.
        """
        return self.fate_unknown or self.retry_read


# -1008 (spot: "Server is currently overloaded with other requests. Please try again in a few
# minutes."; futures: "Request throttled by system-level protection.") is NOT fate_unknown: Binance
# refused the request under load, it did not lose it. So the guard releases the reservation of a 4xx
# -1008 (a 503 -1008 keeps it: every 5xx is unknown). It is retry_read, which also makes it
# answer_lost for orders: the placement still looks the order up by client id rather than trust the
# refusal (the conservative choice; it ends in ORDER_NOT_PLACED when nothing is found).
# -1000 and -1001 are fate_unknown: Binance does not say the request was refused, only that it failed.
# -1006 and -1007 are fate_unknown in Binance's own words. They are not retry_read (as before this
# table), although a read could safely be sent again; with a 5xx status they are retried anyway.
_ROWS = (
    Code(-1000, RETRY_LATER, "Binance had an unknown internal error; retry in a few seconds.",
         retry_read=True, fate_unknown=True),
    Code(-1001, RETRY_LATER, "Binance's backend is having trouble; retry in a few seconds.",
         retry_read=True, fate_unknown=True),
    Code(-1003, RETRY_LATER, "The request-weight limit is used up; wait the given seconds, then retry once. "
                             "Do not retry in a loop."),
    Code(-1006, RETRY_LATER, "Binance could not tell whether the request was carried out (execution "
                             "status unknown). A read can be sent again; before repeating a change (an "
                             "order, a cancel, a setting), check whether it took effect (open orders, order "
                             "history, positions).",
         fate_unknown=True),
    Code(-1007, RETRY_LATER, "Binance timed out waiting for its backend; whether the request was sent on and "
                             "carried out is unknown. A read can be sent again; before repeating a change "
                             "(an order, a cancel, a setting), check whether it took effect (open orders, "
                             "order history, positions).",
         fate_unknown=True),
    Code(-1008, RETRY_LATER, "Binance is overloaded; retry in a few seconds.",
         retry_read=True),  # not fate_unknown: see the comment above the table
    Code(-1013, FIX_INPUT, "The order breaks one of the symbol's filters (tick size, step size, min "
                           "notional or price band); check it with binance_check_order_precision and adjust "
                           "price or quantity."),
    Code(-1015, RETRY_LATER, "Too many new orders in the current window; wait the given seconds before the "
                             "next order."),
    Code(-1021, RETRY_LATER, "The request timestamp was outside Binance's receive window even after a clock "
                             "resync; check the machine's clock (binance_account_status shows the drift), "
                             "then retry."),
    Code(-1022, HUMAN, "The signature does not match: the API secret (or the private key) does not belong to "
                       "this API key. A human must fix BINANCE_API_SECRET or BINANCE_API_PRIVATE_KEY_FILE."),
    Code(-1100, FIX_INPUT, "A parameter has characters Binance does not accept; send plain decimal numbers."),
    Code(-1102, FIX_INPUT, "A mandatory parameter is missing for this order type; add it."),
    Code(-1104, FIX_INPUT, "A parameter was sent that this endpoint does not read; remove it."),
    Code(-1106, FIX_INPUT, "A parameter was sent that this order type does not take; remove it."),
    Code(-1111, FIX_INPUT, "Too many decimals; round price to the tick size and quantity to the step size "
                           "(binance_check_order_precision gives the nearest valid values)."),
    Code(-1114, FIX_INPUT, "timeInForce is not used by this order type; remove it."),
    Code(-1115, FIX_INPUT, "Invalid timeInForce; use GTC, IOC or FOK (GTX for futures post-only)."),
    Code(-1116, FIX_INPUT, "Invalid order type for this market."),
    Code(-1117, FIX_INPUT, "Invalid side; use BUY or SELL."),
    Code(-1121, FIX_INPUT, "Unknown symbol on this market; list valid symbols with binance_exchange_info."),
    Code(-1127, FIX_INPUT, "The time window is too long; narrow startTime/endTime."),
    Code(-1128, FIX_INPUT, "These optional parameters cannot be combined; drop one."),
    Code(-1999, HUMAN, "Paper mode only (not a Binance code): the live paper feed cannot read the market; "
                       "nothing was done. Tell the user: restore the network, or run `binance-mcp paper reset "
                       "--feed synthetic` for a synthetic paper account."),
    Code(-2010, FIX_INPUT, "The matching engine rejected the order; see the message for why."),
    Code(-2011, FIX_INPUT, "The order is unknown or no longer open (filled, cancelled or expired); list "
                           "open orders to see what can be cancelled."),
    Code(-2013, FIX_INPUT, "No such order on this symbol; check the order id and symbol."),
    Code(-2014, HUMAN, "The API key is malformed. A human must fix BINANCE_API_KEY."),
    Code(-2015, HUMAN, "The API key is unknown, lacks the permission for this action, or this IP is not "
                       "allowed. A human must check the key's permissions (spot / futures trading) and IP "
                       "restriction."),
    Code(-2019, FIX_INPUT, "Not enough margin; reduce the quantity or the leverage, or add funds to the "
                           "futures wallet."),
    Code(-2021, FIX_INPUT, "The stop price would trigger immediately; put it on the other side of the "
                           "current price."),
    Code(-2022, FIX_INPUT, "A reduce-only order needs an open position on the opposite side, and may not "
                           "exceed it."),
    Code(-2025, FIX_INPUT, "Too many open orders on this symbol; cancel some first."),
    Code(-2027, FIX_INPUT, "The position is too large for this leverage; lower the leverage first or reduce "
                           "the position."),
    Code(-4002, FIX_INPUT, "Price above the symbol's maximum price."),
    Code(-4003, FIX_INPUT, "Quantity must be greater than zero."),
    Code(-4004, FIX_INPUT, "Quantity below the symbol's minimum quantity (binance_exchange_info "
                           "market=futures)."),
    Code(-4005, FIX_INPUT, "Quantity above the symbol's maximum quantity; split the order."),
    Code(-4013, FIX_INPUT, "Price below the symbol's minimum price."),
    Code(-4014, FIX_INPUT, "Price is not a multiple of the tick size; round it "
                           "(binance_check_order_precision)."),
    Code(-4015, FIX_INPUT, "newClientOrderId is not valid: at most 36 characters of letters, digits, . : / "
                           "_ -."),
    Code(-4016, FIX_INPUT, "Limit price too far above the mark price; bring it closer to the market."),
    Code(-4023, FIX_INPUT, "Quantity is not a multiple of the step size; round it "
                           "(binance_check_order_precision)."),
    Code(-4024, FIX_INPUT, "Limit price too far below the mark price; bring it closer to the market."),
    Code(-4028, FIX_INPUT, "This leverage is not allowed for this symbol; choose a value within its "
                           "bracket."),
    Code(-4045, FIX_INPUT, "Too many conditional orders on this symbol; cancel some first."),
    Code(-4046, FIX_INPUT, "The margin type is already set to this value."),
    Code(-4047, FIX_INPUT, "Margin type cannot change while the symbol has open orders; cancel them first."),
    Code(-4048, FIX_INPUT, "Margin type cannot change while a position is open on the symbol; close it "
                           "first."),
    Code(-4049, FIX_INPUT, "Margin can be added to or removed from an isolated position only; set the "
                           "symbol's margin type to ISOLATED and open a position first."),
    Code(-4051, FIX_INPUT, "The isolated position would keep less than its initial margin; remove less "
                           "margin."),
    Code(-4059, FIX_INPUT, "The position mode is already set to this value."),
    Code(-4061, FIX_INPUT, "positionSide does not match the account's position mode: use BOTH (or omit it) "
                           "in one-way mode, LONG or SHORT in hedge mode."),
    Code(-4116, FIX_INPUT, "This newClientOrderId is already used by an open order; use a new one."),
    Code(-4120, FIX_INPUT, "This order type must go through Binance's algo-order endpoint."),
    Code(-4137, FIX_INPUT, "closePosition orders take no quantity; remove quantity."),
    Code(-4164, FIX_INPUT, "Order notional below the symbol's minimum; increase the quantity (reduce-only "
                           "orders are exempt)."),
    Code(-5021, FIX_INPUT, "The FOK order could not be filled completely at once, so nothing was filled."),
    Code(-5022, FIX_INPUT, "The post-only (GTX) order would have taken liquidity, so it was rejected; move "
                           "the price away from the market."),
    Code(-5027, FIX_INPUT, "The order already has this price and quantity; send a different one to modify "
                           "it."),
)

CODES: MappingProxyType[int, Code] = MappingProxyType({row.code: row for row in _ROWS})

RETRY_READ_CODES = frozenset(row.code for row in _ROWS if row.retry_read)
FATE_UNKNOWN_CODES = frozenset(row.code for row in _ROWS if row.fate_unknown)
ANSWER_LOST_CODES = frozenset(row.code for row in _ROWS if row.answer_lost)


def fate_unknown(code: int | None) -> bool:
    """Binance says a request answered with this code may have been carried out. Unknown codes: False."""
    row = CODES.get(code) if code is not None else None
    return row is not None and row.fate_unknown


def retryable_read(error: BinanceMcpError) -> bool:
    """Worth retrying a read: no answer, a server-side (5xx) failure, or a transient code of the table."""
    if isinstance(error, ExchangeUnavailable):
        return error.request_sent  # a refused connection will be refused again: no retry
    if isinstance(error, ExchangeRejected):
        return (error.http_status or 0) >= 500 or error.binance_code in RETRY_READ_CODES
    return False


def answer_lost(error: BaseException) -> bool:
    """An order request whose answer does not say whether the order exists: look it up by client id."""
    if isinstance(error, ExchangeUnavailable):
        return True
    if isinstance(error, ExchangeRejected):
        status = error.http_status or 0
        return status >= 500 or status == 408 or error.binance_code in ANSWER_LOST_CODES
    return False


def definitely_not_executed(exc: ExchangeRejected) -> bool:
    """True when the exchange refused the request, so nothing happened: HTTP 4xx other than 408, with a
    code whose fate is not unknown."""
    status = exc.http_status
    return status is not None and 400 <= status < 500 and status != 408 and not fate_unknown(exc.binance_code)
