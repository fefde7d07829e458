"""Placing an order exactly once.

Every order carries a client order id chosen before it is sent. When the answer is lost (a timeout, a
dropped connection, a 5xx, a body that is not JSON), the adapter never sends the order again: it asks
the exchange for that client id. Binance rejects a request whose timestamp is older than its
``recvWindow`` when it reaches the matching engine, so once that window has passed, an order that is
still not found was never placed. The tool then reports what really happened: placed, not placed, or
unknown (with the id to check).
"""

from __future__ import annotations

import logging
import uuid
from contextvars import ContextVar
from typing import Any

from binance_mcp.errors import BinanceMcpError, ExchangeRejected, ExchangeUnavailable, OrderStatusUnknown
from binance_mcp.exchange.codes import answer_lost

log = logging.getLogger("binance_mcp.exchange.orders")
LOOKUP_MARGIN = 1.5  # seconds past the receive window before "not found" means "never placed"
LOOKUP_INTERVAL = 0.5
# The client order id the guard chose (and recorded as in flight) for the order this task is about to send.
CLIENT_ORDER_ID: ContextVar[str | None] = ContextVar("binance_mcp_client_order_id", default=None)


def new_client_order_id() -> str:
    """32 characters, valid on spot and futures alike."""
    return "bmcp" + uuid.uuid4().hex[:28]


def client_order_id(index: int | None = None) -> str:
    """The id for the order being placed: the guard's (suffixed with ``index`` for a tool that places several),
    else a new one."""
    chosen = CLIENT_ORDER_ID.get()
    if chosen is None:
        return new_client_order_id()
    return chosen if index is None else f"{chosen}{index}"


class OrderNotPlaced(BinanceMcpError):
    """The request failed and the exchange confirms it holds no such order: nothing was placed."""

    code = "ORDER_NOT_PLACED"
    remedy = "retry_later"
    nothing_placed = True


def _lost(exc: BaseException) -> bool:
    """Did the answer get lost (so the order may or may not exist)? No answer, a 5xx or 408, or a code of
    codes.py whose fate is unknown or that is a transient server failure (``Code.answer_lost``)."""
    return answer_lost(exc)


async def place_once(exchange: Any, method: str, what: str, cid: str, lookup_method: str, lookup: dict[str, Any],
                     **params: Any) -> tuple[dict, str | None]:
    """Send one order; on a lost answer, look it up by client id instead of sending again.

    Returns ``(order, note)``: the exchange's order and, when it had to be recovered, a note saying how.
    Raises OrderNotPlaced or OrderStatusUnknown when the answer was lost, ExchangeRejected when refused.
    """
    clock, sleep = exchange.clock, exchange.sleep  # injected: tests move time instead of waiting
    sent_at = clock()
    try:
        return await exchange.call(method, what, retry=False, **params), None
    except BaseException as exc:
        if isinstance(exc, ExchangeUnavailable) and not exc.request_sent:
            raise OrderNotPlaced(f"{what}: {exc.message} No connection could be made, so the order was not "
                                 "sent and nothing was placed.") from None
        if not _lost(exc):
            raise
        first = exc
    why = getattr(first, "message", str(first))
    log.warning("%s: answer lost (%s); looking the order up by client id %s", what, why, cid)
    deadline = sent_at + exchange.recv_window_s + LOOKUP_MARGIN
    lookup_error: BaseException | None = None
    while True:
        try:
            order = await exchange.call(lookup_method, f"{what} (looking it up by client id)", retry=True,
                                        **lookup)
            return order, (f"the answer to the order request was lost ({_short(why)}); the order was found on the "
                           f"exchange by its client id {cid}, so it was placed exactly once")
        except ExchangeRejected as exc:
            if exc.binance_code != -2013:  # anything but "no such order" leaves the status open
                lookup_error = exc
        except ExchangeUnavailable as exc:
            lookup_error = exc
        if clock() >= deadline:
            break
        await sleep(LOOKUP_INTERVAL)
    if lookup_error is None:
        raise OrderNotPlaced(
            f"{what}: the request failed ({_short(why)}) and the exchange has no order with client id {cid} after "
            "its receive window closed, so nothing was placed. It is safe to place the order again.")
    raise OrderStatusUnknown(
        f"{what}: the request failed ({_short(why)}) and the order could not be looked up "
        f"({_short(getattr(lookup_error, 'message', str(lookup_error)))}). It may or may not exist: do NOT place it "
        f"again; check open orders and order history for client order id {cid} first.")


def _short(text: str) -> str:
    return text if len(text) < 200 else text[:197] + "..."
