"""Orders whose fate is open: in-flight records that no answer settled (a lost answer, a killed process).

The sweep runs at start-up and every SWEEP_EVERY_S while the server runs; an order of unknown fate is also looked
up on its own once the exchange's receive window has closed. A record is settled only on what the exchange says:
an order found by its client id keeps its daily-sum reservation; one the exchange says does not exist gives it
back; one that cannot be looked up stays in flight (and keeps counting toward every limit)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from binance_mcp.policy.state import Pending, StateError

log = logging.getLogger("binance_mcp.policy")
SWEEP_EVERY_S = 30.0
RETRIES, RETRY_S = 10, 1.0  # a resolution the store refused is tried again this often, this far apart


class InflightResolver:
    def __init__(self, guard: Any, expected: tuple[type[BaseException], ...]) -> None:
        self.guard = guard
        self.expected = expected  # conditions, not bugs: one log line, no traceback
        self._sweeper: asyncio.Task | None = None

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing must not raise
                pass
            self._sweeper = None

    async def _sweep_forever(self) -> None:
        g = self.guard
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except self.expected as exc:
                log.warning("in-flight sweep: %s", g.redact(str(exc))[:300])
            except Exception:  # noqa: BLE001 - the sweep must keep running; the bug is logged once per pass
                log.exception("in-flight sweep failed")
            if not g.request_keys.ready:  # another server on the store may have made the request-state key since
                await g.load_request_keys(create=False)
            await g.sleep(SWEEP_EVERY_S)

    def window(self) -> float:
        return float(getattr(self.guard.facts, "receive_window", 6.5))

    def resolve_soon(self, entry: Pending) -> None:
        """Look an order of unknown fate up by its client id once the exchange's receive window has closed."""
        g = self.guard

        async def later() -> None:
            await g.sleep(self.window())
            for attempt in range(RETRIES + 1):  # a store that is away for a moment (restarted) is tried again
                try:
                    await self.sweep(only=entry.call_id)
                    return
                except StateError as exc:
                    if attempt == RETRIES:
                        log.warning("resolving %s: %s", entry.call_id, g.redact(str(exc))[:300])
                    else:
                        await g.sleep(RETRY_S)
                except Exception as exc:  # noqa: BLE001 - the periodic sweep tries again
                    log.warning("resolving %s: %s", entry.call_id, g.redact(str(exc))[:300])
                    return

        try:
            asyncio.get_running_loop().create_task(later())
        except RuntimeError:  # no loop (closing): the sweep at the next start resolves it
            pass

    async def sweep(self, only: str | None = None) -> int:
        """Settle in-flight records that no live call of this process owns and that are older than the receive
        window: found on the exchange by client id (keep the sums), or known absent (give them back). A record
        whose order cannot be looked up stays in flight. Returns how many were settled."""
        g = self.guard
        now = g.clock()
        rows = await g.store.run(g.state.in_flight, g.account)
        done = 0
        for p in rows:
            if only is not None and p.call_id != only:
                continue
            if only is None and (p.call_id in g.live or now - p.created_at < g.stale_after):
                continue
            if p.market is None:  # not an order: nothing on the exchange to find; it counts toward nothing
                found: bool | None = False
                give_back = False
            else:
                found = await self._find(p)
                give_back = found is False
            if found is None:
                continue
            outcome = {"status": "resolved", "found": found}
            await g.store.run(g.state.settle, p.call_id, outcome, give_back)
            await g.recorder.safe({"event": "inflight_resolved", "call_id": p.call_id, "tool": p.tool,
                                   "client_order_id": p.client_order_id, "found": found,
                                   "reservation": "released" if give_back else "kept"})
            done += 1
        if only is None:
            await g.store.run(g.state.prune)
        return done

    async def _find(self, p: Pending) -> bool | None:
        finder = getattr(self.guard.facts, "find_order", None)
        if finder is None or not p.client_order_id:
            return None
        cids = [p.client_order_id] if p.tool != "binance_futures_close_position" else \
            [f"{p.client_order_id}{i}" for i in range(2)]
        answers = [await finder(p.market, p.symbol, cid, p.conditional) for cid in cids]
        if any(a is True for a in answers):
            return True
        if all(a is False for a in answers):
            return False
        return None
