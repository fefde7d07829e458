"""The dead man's switch (policy ``account.dead_man_switch: {seconds: N}``): while the server runs, Binance's
``POST /fapi/v1/countdownCancelAll`` is kept armed on every USD-M futures symbol with open orders, so that if the
server or its host dies, Binance itself cancels those orders N seconds later.

It cancels EVERY open order on those symbols, including orders a human placed elsewhere (the app, the website,
another bot): that is how Binance's countdown works, per symbol and account. A clean shutdown disarms it
(``countdownTime=0`` on every armed symbol), so quitting the client cancels nothing.

How it learns which symbols have open orders (weights are Binance's, of 2400 a minute per IP on futures):
- right after each accepted futures order, its symbol is armed (countdownCancelAll: weight 10);
- every ``SCAN_S`` seconds (60) a scan reads the open regular and conditional orders of every symbol (GET
  /fapi/v1/openOrders and /fapi/v1/openAlgoOrders without a symbol: weight 40 each), arms the symbols found and
  disarms the armed symbols that have no open order left;
- every ``seconds / 3`` each armed symbol's countdown is renewed (weight 10 per symbol), so two renewals in a
  row may fail before the orders are cancelled.
With the default ``seconds: 120`` and one symbol that is 80 weight per scan plus 10 per 40 s: about 95 a minute,
4 % of the budget. Nothing is sent before the server's first exchange call (start-up stays free of network).

A renewal that fails is logged (one WARNING line, at most one a minute; the lines in between are counted) and
shown in ``binance_policy_status`` with the time of the last success; the next renewal tries again. The policy
is read on every pass, so a reload that turns the switch off disarms it and a new ``seconds`` is used at once.
Shadow mode changes nothing here: the switch is not a decision on a call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from binance_mcp.errors import BinanceMcpError

log = logging.getLogger("binance_mcp.policy")

SCAN_S = 60.0  # seconds between scans of the account's open futures orders
OFF_POLL_S = 30.0  # while the policy has no switch: how often a reload that adds one is noticed
WARN_EVERY_S = 60.0  # at most one WARNING line a minute about failed renewals
SIGTERM_DISARM_S = 5.0  # on SIGTERM, at most this long to disarm before the process exits
ARM_METHOD = "futures_countdown_cancel_all"
FUTURES_ORDER_METHODS = frozenset({"futures_create_order", "futures_create_algo_order"})
WARNING = ("it cancels EVERY open order on those symbols if the server dies, including orders a human placed "
           "elsewhere (the Binance app, the website, another bot); a clean shutdown disarms it")


def describe(policy: Any) -> str | None:
    """What ``policy check`` says about the switch: plainly, including what it cancels."""
    dms = policy.account.dead_man_switch
    if dms is None:
        return None
    return (f"dead man's switch: while the server runs, Binance's countdownCancelAll is kept armed "
            f"({dms.seconds} s, renewed every {dms.seconds / 3:g} s) on every futures symbol with open orders; "
            f"{WARNING}.")


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class DeadManSwitch:
    """The background task. ``policy``: the policy in force (the guard's ``current``); ``exchange``: the adapter."""

    def __init__(self, exchange: Any, policy: Callable[[], Awaitable[Any]], *,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.exchange = exchange
        self.policy = policy
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self.seconds: int | None = None  # the policy's, as of the last pass
        self.armed: dict[str, float] = {}  # symbol -> wall time of its last successful arming
        self.failures = 0  # renewals that failed since the last success
        self.last_error: str | None = None
        self.last_error_at: str | None = None
        self.last_scan: float | None = None
        self._warned_at: float | None = None
        self._suppressed = 0
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()  # one pass or arming at a time (binds to the loop on first use)
        self._pending: set[asyncio.Task] = set()

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self.exchange.order_listeners.append(self._on_order)
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        """Stop renewing and disarm every armed symbol (a clean shutdown cancels nothing)."""
        if self._on_order in self.exchange.order_listeners:
            self.exchange.order_listeners.remove(self._on_order)
        tasks = [t for t in (self._task, *self._pending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing must not raise
                pass
        self._task = None
        await self.disarm_all()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the switch must keep running; the bug is logged
                log.exception("dead man's switch: a pass failed")
            await self.sleep(self.interval())

    def interval(self) -> float:
        return self.seconds / 3 if self.seconds else OFF_POLL_S

    # -- one pass -----------------------------------------------------------------------------
    async def _seconds(self) -> int | None:
        try:
            loaded = await self.policy()
        except Exception as exc:  # noqa: BLE001 - keep the last known setting; the guard reports policy errors
            log.warning("dead man's switch: the policy could not be read (%s); keeping %s", exc, self.seconds)
            return self.seconds
        dms = loaded.policy.account.dead_man_switch
        return dms.seconds if dms is not None else None

    async def tick(self) -> None:
        """Read the policy; scan the open orders when due; renew every armed symbol."""
        self.seconds = await self._seconds()
        if self.seconds is None:
            if self.armed:
                log.warning("dead man's switch: turned off by the policy; disarming %s", ", ".join(sorted(self.armed)))
                await self.disarm_all()
            return
        if not self.exchange.connected:  # no exchange call yet: nothing of ours can be open, and start-up stays quiet
            return
        async with self._lock:
            now = self.clock()
            if self.last_scan is None or now - self.last_scan >= SCAN_S:
                symbols = await self._scan()
                if symbols is not None:
                    self.last_scan = now
                    for symbol in sorted(set(self.armed) - symbols):  # no open order left: nothing to protect
                        await self._send(symbol, 0)
                    for symbol in symbols:
                        self.armed.setdefault(symbol, 0.0)
            for symbol in sorted(self.armed):
                await self._send(symbol, self.seconds)

    async def _scan(self) -> set[str] | None:
        """Symbols with open futures orders, regular or conditional; None when they cannot be read."""
        try:
            regular = await self.exchange.call("futures_get_open_orders", "Reading open futures orders for the "
                                               "dead man's switch")
            algo = await self.exchange.call("futures_get_open_orders", "Reading open conditional futures orders "
                                            "for the dead man's switch", conditional=True)
        except BinanceMcpError as exc:
            self._failed(f"the open orders could not be read: {exc.message}")
            return None
        return {str(o["symbol"]) for o in [*(regular or []), *(algo or [])] if isinstance(o, dict) and o.get("symbol")}

    async def _send(self, symbol: str, seconds: int) -> bool:
        what = (f"Arming the dead man's switch on {symbol} ({seconds} s)" if seconds else
                f"Disarming the dead man's switch on {symbol}")
        try:
            await self.exchange.call(ARM_METHOD, what, retry=False, symbol=symbol, countdownTime=seconds * 1000)
        except BinanceMcpError as exc:
            self._failed(exc.message)
            return False
        if seconds:
            self.armed[symbol] = self.wall()
        else:
            self.armed.pop(symbol, None)
        if self.failures:
            log.warning("dead man's switch: renewing works again (after %d failure(s))", self.failures)
        self.failures = 0
        return True

    def _failed(self, text: str) -> None:
        self.failures += 1
        self.last_error = text[:400]
        self.last_error_at = _utc(self.wall())
        now = self.clock()
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY_S:
            more = f" ({self._suppressed} more since the last line)" if self._suppressed else ""
            log.warning("dead man's switch: %s%s", self.last_error[:300], more)
            self._warned_at, self._suppressed = now, 0
        else:
            self._suppressed += 1

    async def disarm_all(self) -> None:
        for symbol in sorted(self.armed):
            await self._send(symbol, 0)

    # -- orders placed through this server ----------------------------------------------------------
    def _on_order(self, method: str, symbol: str) -> None:
        """An accepted order (Exchange.call): arm its futures symbol at once unless it is armed. Decided under the
        pass's lock, not here: a scan that read the open orders just before this order may be disarming the
        symbol right now, and then it is armed again as soon as that pass ends."""
        if method not in FUTURES_ORDER_METHODS or not symbol or self.seconds is None:
            return
        try:
            task = asyncio.get_running_loop().create_task(self.arm_now(symbol))
        except RuntimeError:  # no running loop: the next scan finds the order
            return
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def arm_now(self, symbol: str) -> None:
        seconds = await self._seconds()
        if seconds is None:
            return
        async with self._lock:
            if symbol not in self.armed:
                await self._send(symbol, seconds)

    # -- SIGTERM ----------------------------------------------------------------------------------
    def disarm_on_sigterm(self) -> Callable[[], None]:
        """SIGTERM (how clients and service managers stop a server) ends the process at once, without the
        lifespan's cleanup; first disarm the switch (bounded by ``SIGTERM_DISARM_S``), then die of the signal as
        before. Returns the undo (for the lifespan's end). Only where the loop may have signal handlers (the main
        thread of a POSIX process); elsewhere a no-op."""
        import os
        import signal

        loop = asyncio.get_running_loop()

        def die() -> None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

        async def disarm_then_die() -> None:
            try:
                await asyncio.wait_for(self.disarm_all(), SIGTERM_DISARM_S)
            except BaseException:  # noqa: BLE001 - dying anyway; what could not be disarmed expires at Binance
                log.warning("dead man's switch: not every symbol could be disarmed before exiting on SIGTERM")
            finally:
                die()

        def on_term() -> None:
            if not self.armed:
                die()
                return
            loop.create_task(disarm_then_die())

        try:
            loop.add_signal_handler(signal.SIGTERM, on_term)
        except (RuntimeError, ValueError, NotImplementedError, AttributeError):  # not the main thread; Windows
            return lambda: None

        def undo() -> None:
            try:
                loop.remove_signal_handler(signal.SIGTERM)
            except (RuntimeError, ValueError):
                pass

        return undo

    # -- binance_policy_status ------------------------------------------------------------------------
    def view(self) -> dict[str, Any] | None:
        if self.seconds is None and not self.armed:
            return None
        out: dict[str, Any] = {"seconds": self.seconds, "armed": sorted(s for s, t in self.armed.items() if t),
                               "warning": WARNING}
        failing = sorted(s for s, t in self.armed.items() if not t)
        if failing:
            out["not_armed_yet"] = failing  # found by the scan, arming failed so far (see last_error)
        renewed = [t for t in self.armed.values() if t]
        if renewed:
            out["last_renewal"] = _utc(max(renewed))
        if self.failures:
            out["failures"] = self.failures
        if self.last_error:
            out["last_error"] = self.last_error
            out["last_error_at"] = self.last_error_at
        if not self.exchange.connected:
            out["note"] = "starts with the server's first exchange call"
        return out
