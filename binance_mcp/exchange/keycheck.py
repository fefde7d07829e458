"""The key check: what the API key may do, read from Binance before the key is used for anything else.

``GET /sapi/v1/account/apiRestrictions`` (weight 1) says what the key may do, in Binance's field names. A key that
can withdraw (``enableWithdrawals``) or move funds to another account (``enableInternalTransfer``,
``permitsUniversalTransfer``) is more than an agent needs, and a leaked one empties the account: such a key *locks*
the server. Every call answers POLICY_ERROR naming the permission to remove, and nothing else is sent to the
exchange. A key with no IP restriction (``ipRestrict: false``) works, with a warning on stderr and in
``binance_policy_status``. Where the endpoint does not exist (Binance's testnets answer 404), that is said once
(log and status) and the server goes on.

When: in every mode but paper (testnet, live, and a custom base URL, which may relay to either), before the first
request of the process: over stdio there is no network at start-up, so ``Exchange.call`` runs it (after the time
sync it needs) before its first request, and refuses every request while the key is locked (the call that found
the lock fails with its text). From then on the ``KeyGate`` middleware (server.py) refuses every tool but
``binance_policy_status`` with the same text before its arguments or the policy are looked at. A call that needs
no exchange, or has invalid arguments, triggers no check. ``serve --http`` (not built yet) calls
``check_at_startup`` and exits with the lock's text.

Caching, for the process: a key that passed is checked again at the first call after an hour (a human may have
added a permission since; a re-check that cannot reach Binance keeps the last answer); a locked key is checked
again at most once a minute, when a call comes, so that removing the permission unlocks the server without a
restart; an absent endpoint is not asked again. A check that cannot complete (timeout, 5xx) is not cached: the
call fails with EXCHANGE_UNAVAILABLE, and the next call tries again. Nothing is sent before it has passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from binance_mcp.errors import HUMAN, BinanceMcpError

if TYPE_CHECKING:
    from binance_mcp.exchange.client import Exchange

log = logging.getLogger("binance_mcp.exchange")

WHAT = "Checking the API key's permissions"
METHOD = "get_account_api_permissions"  # python-binance: GET /sapi/v1/account/apiRestrictions
RECHECK_PASSED_S = 3600.0
RECHECK_LOCKED_S = 60.0
API_PAGE = "https://www.binance.com/en/my/settings/api-management"
# Binance's field -> what it lets the key do, and the switch on Binance's API management page.
FORBIDDEN: dict[str, tuple[str, str]] = {
    "enableWithdrawals": ("withdraw funds", "Enable Withdrawals"),
    "enableInternalTransfer": ("transfer funds between the master account and sub-accounts",
                               "Permits Internal Transfer"),
    "permitsUniversalTransfer": ("make universal transfers between accounts and wallets",
                                 "Permits Universal Transfer"),
}
SHOWN = ("ipRestrict", "enableReading", "enableSpotAndMarginTrading", "enableFutures", "enableMargin",
         "enableWithdrawals", "enableInternalTransfer", "permitsUniversalTransfer")
NO_IP_RESTRICTION = ("the API key has no IP restriction (ipRestrict is false): whoever obtains it can trade from "
                     f"anywhere. Restrict it to this machine's IP address on Binance's API management page ({API_PAGE}).")


class KeyLocked(BinanceMcpError):
    """The key may withdraw or transfer: the server refuses every call until the permission is removed."""

    code = "POLICY_ERROR"
    remedy = HUMAN


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def lock_text(bad: list[str]) -> str:
    what = "; ".join(f"{name} is on (it can {FORBIDDEN[name][0]})" for name in bad)
    switches = ", ".join(f'"{FORBIDDEN[name][1]}"' for name in bad)
    names = " and ".join(bad)
    return (f"the API key may move funds out of the account: {what}. This server does not use such a key: nothing "
            f"was sent to the exchange. A human must remove {names} from the key: on Binance's API management page "
            f"({API_PAGE}) edit the key and untick {switches} (or make a new key with only reading and trading). "
            f"The server checks the key again at the next call, at most once every {RECHECK_LOCKED_S:g} s.")


@dataclass
class KeyStatus:
    """What the check found (``binance_policy_status`` shows it)."""

    status: str = "not_checked"  # not_checked, passed, locked, absent (endpoint 404), not_needed (paper)
    permissions: dict[str, bool] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # the lock's text, or why the last check could not complete
    checked_at: str | None = None  # UTC

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        for key in ("permissions", "warnings", "error", "checked_at"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


class KeyCheck:
    """The check and its cached result for one exchange adapter (see the module's docstring)."""

    def __init__(self, mode: str, clock=time.monotonic, wall=time.time) -> None:
        self.needed = mode != "paper"
        self.clock = clock
        self.wall = wall
        self.result = KeyStatus(status="not_checked" if self.needed else "not_needed")
        self._next: float | None = None  # monotonic time of the next check; None: check before the next call
        self._lock: asyncio.Lock | None = None
        self._warned_ip = False

    @property
    def passed(self) -> bool:
        return self.result.status in ("passed", "absent", "not_needed")

    def due(self) -> bool:
        return self.needed and (self._next is None or self.clock() >= self._next)

    async def ensure(self, exchange: Exchange) -> None:
        """Check when due; raise KeyLocked while the key may withdraw or transfer, or the error of a first check
        that could not complete. Returns when the key may be used."""
        if self.due():
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self.due():
                    await self._check(exchange)
        if self.result.status == "locked":
            raise KeyLocked(self.result.error or lock_text([]))

    async def _check(self, exchange: Exchange) -> None:
        try:
            answer = await exchange.call(METHOD, WHAT, retry=False, check_key=False)
        except BinanceMcpError as exc:
            if getattr(exc, "http_status", None) == 404:
                self._absent()
                return
            if self.result.status in ("passed", "locked"):  # a re-check that failed keeps the last answer
                log.warning("re-checking the API key's permissions failed (%s); the last answer (%s) stands",
                            exc.message[:200], self.result.status)
                self._next = self.clock() + RECHECK_LOCKED_S
                return
            self.result.error = f"the key check could not complete: {exc.message}"
            raise
        self._judge(answer if isinstance(answer, dict) else {})

    def _absent(self) -> None:
        self.result = KeyStatus(status="absent", checked_at=_utc(self.wall()), warnings=[
            "this exchange has no GET /sapi/v1/account/apiRestrictions (Binance's testnets answer 404), so the "
            "key's permissions could not be checked; the server goes on without the check"])
        self._next = float("inf")
        log.warning("key check: %s", self.result.warnings[0])

    def _judge(self, answer: dict) -> None:
        perms = {k: answer[k] for k in SHOWN if isinstance(answer.get(k), bool)}
        # A forbidden field that is missing or not a boolean counts as on: fail closed.
        bad = [name for name in FORBIDDEN if answer.get(name) is not False]
        warnings = []
        if answer.get("ipRestrict") is not True:
            warnings.append(NO_IP_RESTRICTION)
            if not self._warned_ip:
                self._warned_ip = True
                log.warning("%s", NO_IP_RESTRICTION)
        now = self.clock()
        if bad:
            text = lock_text(bad)
            if self.result.status != "locked":
                log.error("the server is locked: %s", text)
            self.result = KeyStatus("locked", perms, warnings, text, _utc(self.wall()))
            self._next = now + RECHECK_LOCKED_S
            return
        if self.result.status == "locked":
            log.warning("the API key may no longer withdraw or transfer: the server is unlocked")
        self.result = KeyStatus("passed", perms, warnings, None, _utc(self.wall()))
        self._next = now + RECHECK_PASSED_S


async def check_at_startup(exchange: Exchange) -> KeyStatus:
    """For ``serve --http`` (issue 15), where the network may be used at start-up: run the check now. Raises
    KeyLocked (exit with its message) or the error of a check that could not complete (exit too: fail closed)."""
    await exchange.keycheck.ensure(exchange)
    return exchange.keycheck.result
