"""Flatten, the console's emergency button: cancel every open order (spot, futures, futures conditional orders) and
close every futures position with a reduce-only MARKET order, through the exchange adapter of the process that
holds the keys. It is a human's action: the policy does not decide it (the kill switch, caps and rate limits would
stop a human trying to get out), but every step is audited, with the human's session.

Where it runs (docs/console.md "Flatten"): on the HTTP service, with the service's exchange adapter; in the
standalone ``binance-mcp console`` in testnet or live mode, with an adapter of its own built from the same settings
(the same keys); in paper mode the standalone console cannot flatten: the paper exchange lives inside the stdio
server's process, and a second one opened on its files would be a second, diverging exchange."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from binance_mcp.exchange.orders import new_client_order_id


class Flattener:
    def __init__(self, exchange: Any) -> None:
        self.exchange = exchange
        self.lock = asyncio.Lock()  # one flatten at a time in this process (a double click runs it once, then again)

    async def _step(self, steps: list[dict], action: str, method: str, what: str, **params: Any) -> Any:
        try:
            out = await self.exchange.call(method, what, **params)
        except Exception as exc:  # noqa: BLE001 - one failed step is reported; the others still run
            steps.append({"action": action or what, **_shown(params), "ok": False,
                          "error": str(getattr(exc, "message", None) or exc)[:300]})
            return None
        if action:
            steps.append({"action": action, **_shown(params), "ok": True})
        return out

    async def run(self) -> list[dict]:
        """Every step taken, in order: {action, symbol, ..., ok, error?}."""
        async with self.lock:
            return await self._run()

    async def _run(self) -> list[dict]:
        steps: list[dict] = []
        spot = await self._step(steps, "", "get_open_orders", "Reading open spot orders") or []
        for symbol in sorted({o["symbol"] for o in spot}):
            await self._step(steps, "cancel spot orders", "cancel_all_open_orders",
                             f"Cancelling all spot orders on {symbol}", symbol=symbol)
        regular = await self._step(steps, "", "futures_get_open_orders", "Reading open futures orders") or []
        for symbol in sorted({o["symbol"] for o in regular}):
            await self._step(steps, "cancel futures orders", "futures_cancel_all_open_orders",
                             f"Cancelling all futures orders on {symbol}", symbol=symbol)
        algo = await self._step(steps, "", "futures_get_open_orders", "Reading open futures conditional orders",
                                conditional=True) or []
        for symbol in sorted({o["symbol"] for o in algo}):
            await self._step(steps, "cancel futures conditional orders", "futures_cancel_all_open_orders",
                             f"Cancelling all futures conditional orders on {symbol}", symbol=symbol,
                             conditional=True)
        positions = await self._step(steps, "", "futures_position_information", "Reading futures positions") or []
        for p in positions:
            amount = Decimal(str(p.get("positionAmt", "0")))
            if amount == 0:
                continue
            side = "SELL" if amount > 0 else "BUY"
            params: dict[str, Any] = {"symbol": p["symbol"], "side": side, "type": "MARKET",
                                      "quantity": str(abs(amount)), "newClientOrderId": new_client_order_id()}
            if p.get("positionSide", "BOTH") in ("LONG", "SHORT"):  # hedge mode: the side closes, no reduceOnly
                params["positionSide"] = p["positionSide"]
            else:
                params["reduceOnly"] = "true"
            await self._step(steps, "close futures position", "futures_create_order",
                             f"Closing the {p['symbol']} futures position", **params)
        return steps


def _shown(params: dict) -> dict:
    return {k: v for k, v in params.items() if k != "newClientOrderId"}
