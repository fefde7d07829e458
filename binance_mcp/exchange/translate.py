"""Binance error codes -> errors that say what happened and what to do. One table, tested row by row."""

from __future__ import annotations

from binance_mcp.errors import FIX_INPUT, HUMAN, RETRY_LATER, ExchangeRejected

# code -> (remedy, advice). The agent sees: "<what>: <Binance msg> (Binance code <code>). <advice>"
ADVICE: dict[int, tuple[str, str]] = {
    -1000: (RETRY_LATER, "Binance had an unknown internal error; retry in a few seconds."),
    -1001: (RETRY_LATER, "Binance's backend is having trouble; retry in a few seconds."),
    -1003: (RETRY_LATER, "The request-weight limit is used up; wait the given seconds, then retry once. "
                         "Do not retry in a loop."),
    -1008: (RETRY_LATER, "Binance is overloaded; retry in a few seconds."),
    -1013: (FIX_INPUT, "The order breaks one of the symbol's filters (tick size, step size, min notional or "
                       "price band); check it with binance_check_order_precision and adjust price or quantity."),
    -1015: (RETRY_LATER, "Too many new orders in the current window; wait the given seconds before the next order."),
    -1021: (RETRY_LATER, "The request timestamp was outside Binance's receive window even after a clock resync; "
                         "check the machine's clock (binance_account_status shows the drift), then retry."),
    -1022: (HUMAN, "The signature does not match: the API secret does not belong to this API key. A human must "
                   "fix BINANCE_API_SECRET."),
    -1100: (FIX_INPUT, "A parameter has characters Binance does not accept; send plain decimal numbers."),
    -1102: (FIX_INPUT, "A mandatory parameter is missing for this order type; add it."),
    -1104: (FIX_INPUT, "A parameter was sent that this endpoint does not read; remove it."),
    -1106: (FIX_INPUT, "A parameter was sent that this order type does not take; remove it."),
    -1111: (FIX_INPUT, "Too many decimals; round price to the tick size and quantity to the step size "
                       "(binance_check_order_precision gives the nearest valid values)."),
    -1114: (FIX_INPUT, "timeInForce is not used by this order type; remove it."),
    -1115: (FIX_INPUT, "Invalid timeInForce; use GTC, IOC or FOK (GTX for futures post-only)."),
    -1116: (FIX_INPUT, "Invalid order type for this market."),
    -1117: (FIX_INPUT, "Invalid side; use BUY or SELL."),
    -1121: (FIX_INPUT, "Unknown symbol on this market; list valid symbols with binance_exchange_info."),
    -1127: (FIX_INPUT, "The time window is too long; narrow startTime/endTime."),
    -1128: (FIX_INPUT, "These optional parameters cannot be combined; drop one."),
    -2010: (FIX_INPUT, "The matching engine rejected the order; see the message for why."),
    -2011: (FIX_INPUT, "The order is unknown or no longer open (filled, cancelled or expired); list open orders "
                       "to see what can be cancelled."),
    -2013: (FIX_INPUT, "No such order on this symbol; check the order id and symbol."),
    -2014: (HUMAN, "The API key is malformed. A human must fix BINANCE_API_KEY."),
    -2015: (HUMAN, "The API key is unknown, lacks the permission for this action, or this IP is not allowed. A "
                   "human must check the key's permissions (spot / futures trading) and IP restriction."),
    -2019: (FIX_INPUT, "Not enough margin; reduce the quantity or the leverage, or add funds to the futures "
                       "wallet."),
    -2021: (FIX_INPUT, "The stop price would trigger immediately; put it on the other side of the current price."),
    -2022: (FIX_INPUT, "A reduce-only order needs an open position on the opposite side, and may not exceed it."),
    -2025: (FIX_INPUT, "Too many open orders on this symbol; cancel some first."),
    -2027: (FIX_INPUT, "The position is too large for this leverage; lower the leverage first or reduce the "
                       "position."),
    -4002: (FIX_INPUT, "Price above the symbol's maximum price."),
    -4003: (FIX_INPUT, "Quantity must be greater than zero."),
    -4004: (FIX_INPUT, "Quantity below the symbol's minimum quantity (binance_exchange_info market=futures)."),
    -4005: (FIX_INPUT, "Quantity above the symbol's maximum quantity; split the order."),
    -4013: (FIX_INPUT, "Price below the symbol's minimum price."),
    -4014: (FIX_INPUT, "Price is not a multiple of the tick size; round it (binance_check_order_precision)."),
    -4015: (FIX_INPUT, "newClientOrderId is not valid: at most 36 characters of letters, digits, . : / _ -."),
    -4016: (FIX_INPUT, "Limit price too far above the mark price; bring it closer to the market."),
    -4023: (FIX_INPUT, "Quantity is not a multiple of the step size; round it (binance_check_order_precision)."),
    -4024: (FIX_INPUT, "Limit price too far below the mark price; bring it closer to the market."),
    -4028: (FIX_INPUT, "This leverage is not allowed for this symbol; choose a value within its bracket."),
    -4045: (FIX_INPUT, "Too many conditional orders on this symbol; cancel some first."),
    -4046: (FIX_INPUT, "The margin type is already set to this value."),
    -4047: (FIX_INPUT, "Margin type cannot change while the symbol has open orders; cancel them first."),
    -4048: (FIX_INPUT, "Margin type cannot change while a position is open on the symbol; close it first."),
    -4059: (FIX_INPUT, "The position mode is already set to this value."),
    -4061: (FIX_INPUT, "positionSide does not match the account's position mode: use BOTH (or omit it) in one-way "
                       "mode, LONG or SHORT in hedge mode."),
    -4116: (FIX_INPUT, "This newClientOrderId is already used by an open order; use a new one."),
    -4120: (FIX_INPUT, "This order type must go through Binance's algo-order endpoint."),
    -4137: (FIX_INPUT, "closePosition orders take no quantity; remove quantity."),
    -4164: (FIX_INPUT, "Order notional below the symbol's minimum; increase the quantity (reduce-only orders are "
                       "exempt)."),
    -5021: (FIX_INPUT, "The FOK order could not be filled completely at once, so nothing was filled."),
    -5022: (FIX_INPUT, "The post-only (GTX) order would have taken liquidity, so it was rejected; move the price "
                       "away from the market."),
}

# Messages of -2010 (one code, many meanings): substring -> advice.
NEW_ORDER_REJECTED = {
    "insufficient balance": "The free balance does not cover this order (open orders lock funds); reduce the "
                            "quantity or cancel open orders.",
    "duplicate order": "newClientOrderId is already used by an open order; use a new id.",
    "would trigger immediately": "stopPrice is on the wrong side of the market: for STOP_LOSS BUY and "
                                 "TAKE_PROFIT SELL it must be above the price, otherwise below.",
    "immediately match and take": "A LIMIT_MAKER must not cross the book: lower a BUY or raise a SELL price, or "
                                  "use LIMIT.",
    "market is closed": "The symbol is not trading now.",
}


def translate(code: int, msg: str, status: int | None, what: str, retry_after: float | None = None
              ) -> ExchangeRejected:
    remedy, advice = ADVICE.get(code, (FIX_INPUT if status and 400 <= status < 500 else RETRY_LATER,
                                       "See Binance's error code list for details."))
    if code == -2010:
        low = msg.lower()
        advice = next((a for key, a in NEW_ORDER_REJECTED.items() if key in low), advice)
    if status == 418:
        remedy = RETRY_LATER
        advice = "Binance banned this IP for repeated rate-limit violations; stop calling until the ban ends."
    if retry_after is not None:
        advice += f" Retry after {int(retry_after)} s."
    text = f"{what} was rejected by Binance: {msg} (Binance code {code}). {advice}"
    return ExchangeRejected(text, binance_code=code, http_status=status, remedy=remedy, retry_after=retry_after)
