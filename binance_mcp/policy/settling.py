"""After the exchange answered (or the client cancelled): settle a call's in-flight record and reservation, or leave
it to the sweep, then write its final audit record. A mixin of ``PolicyGuard`` (guard.py), which holds the state
store, its worker, the resolver, the protector and the recorder used here."""

from __future__ import annotations

import logging

from binance_mcp.policy import layers
from binance_mcp.policy.engine import DENY, Call, Decision
from binance_mcp.policy.layers import Layers
from binance_mcp.policy.state import Pending, StateError

log = logging.getLogger("binance_mcp.policy")


class Settling:
    async def _finish(self, call_id: str, call: Call, decision: Decision, loaded: Layers, outcome: dict,
                      started: float, shadow: bool, entry: Pending | None, *, settle: bool, give_back: bool) -> None:
        """The exchange answered: settle the in-flight record (or leave it to the sweep), then audit."""
        if entry is not None and entry.symbol and hasattr(self.facts, "invalidate"):
            self.facts.invalidate(entry.symbol)  # the next decision on this symbol reads its prices again
        if entry is not None and self.protector.reader is not None:
            self.protector.reader.invalidate(entry.market, entry.symbol, entry.side)  # its trades (closes)
        if entry is not None:
            if settle:
                try:
                    await self.store.run(self.state.settle, call_id, outcome, give_back)
                    if give_back and layers.daily_caps(loaded, call):
                        outcome["reservation"] = "released"
                except StateError as err:  # the call's own result matters more; settled on the exchange's word
                    log.error("could not settle the in-flight record of %s: %s", call_id, err)
                    outcome["reservation"] = "kept (settling failed)"
                    self.resolver.resolve_soon(entry)  # after the receive window (and again while the store is away)
            else:
                outcome["reservation"] = "kept until the order is found or known absent"
                self.resolver.resolve_soon(entry)
        self.live.discard(call_id)
        await self.recorder.record(call_id, call, decision, loaded, outcome, started, shadow)

    async def _cancelled(self, call_id: str, call: Call, loaded: Layers, entry: Pending | None, phase: str,
                         started: float) -> None:
        """The client (notifications/cancelled) or shutdown cancelled the call: release what it reserved that
        cannot have reached the exchange, and leave a final audit record."""
        outcome: dict = {"status": "cancelled", "phase": phase}
        try:
            if entry is not None and phase == "deciding":  # reserved, never sent
                await self.store.run(self.state.settle, call_id, outcome, True)
                outcome["reservation"] = "released"
            elif entry is not None and phase == "sending":
                if entry.client_order_id:
                    outcome["client_order_id"] = entry.client_order_id
                    outcome["may_have_been_sent"] = True
                if entry.market is None:
                    await self.store.run(self.state.settle, call_id, outcome, False)
                else:
                    outcome["reservation"] = "kept until the order is found or known absent"
                    self.resolver.resolve_soon(entry)
            elif entry is not None:  # answered, cancelled while settling
                await self.store.run(self.state.settle, call_id, outcome, False)
        except Exception as exc:  # noqa: BLE001 - the cancellation goes on; the sweep settles what is left
            log.error("cancelling %s: could not release its reservation: %s", call_id, exc)
        self.live.discard(call_id)
        await self.recorder.record(call_id, call, Decision(DENY, "CANCELLED", "guard", "cancelled by the client"), loaded,
                           outcome, started)
