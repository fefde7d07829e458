"""Binance error codes -> errors that say what happened and what to do, from the table in codes.py."""

from __future__ import annotations

from binance_mcp.errors import FIX_INPUT, RETRY_LATER, ExchangeRejected, UnknownSymbol
from binance_mcp.exchange.codes import CODES

UNKNOWN_SYMBOL = -1121  # "Invalid symbol.": reported as UNKNOWN_SYMBOL, like the server's own symbol check

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
    row = CODES.get(code)
    if row is not None:
        remedy, advice = row.remedy, row.advice
    else:
        remedy = FIX_INPUT if status and 400 <= status < 500 else RETRY_LATER
        advice = "See Binance's error code list for details."
    if code == -2010:
        low = msg.lower()
        advice = next((a for key, a in NEW_ORDER_REJECTED.items() if key in low), advice)
    if status == 418:
        remedy = RETRY_LATER
        advice = "Binance banned this IP for repeated rate-limit violations; stop calling until the ban ends."
    if retry_after is not None:
        advice += f" Retry after {int(retry_after)} s."
    text = f"{what} was rejected by Binance: {msg} (Binance code {code}). {advice}"
    kind = UnknownSymbol if code == UNKNOWN_SYMBOL else ExchangeRejected
    return kind(text, binance_code=code, http_status=status, remedy=remedy, retry_after=retry_after)
