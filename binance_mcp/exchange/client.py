"""The exchange adapter around python-binance's ``AsyncClient``.

- The client is created lazily inside the running loop, on the first call that needs the exchange, so
  start-up never touches the network; paper mode starts the embedded simulator at that moment too.
- Server time is synced before the first signed request; on -1021 it resyncs once and retries once.
- exchangeInfo is cached per market with a TTL, so a tool costs no more weight than its data needs.
- Every failure becomes a ``BinanceMcpError`` that says what happened and what to do.
- Reads are retried on 5xx, timeouts and the transient codes of codes.py (bounded, with backoff and
  jitter); orders never are (see orders.py: a lost order answer is resolved by looking the order up by
  its client id).
- After a 429 or 418 no request is sent until Binance's ``Retry-After`` has passed.
- ``binance`` (python-binance and its imports) is loaded on the first exchange call, not at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from binance_mcp.errors import BinanceMcpError, ExchangeUnavailable
from binance_mcp.exchange.codes import retryable_read
from binance_mcp.exchange.translate import translate
from binance_mcp.settings import Settings

if TYPE_CHECKING:  # imported lazily at run time (start-up speed)
    from binance import AsyncClient
    from binance.exceptions import BinanceAPIException

log = logging.getLogger("binance_mcp.exchange")
EXCHANGE_INFO_TTL = 300.0
RECV_WINDOW_MS = 5000  # Binance's default; bounds how long a lost order request can still be accepted
READ_ATTEMPTS = 3
BACKOFF_BASE = 0.25
# python-binance methods that change state: never retried blindly.
MUTATING = frozenset({
    "create_order", "cancel_order", "cancel_all_open_orders", "futures_create_order", "futures_cancel_order",
    "futures_cancel_all_open_orders", "futures_change_leverage", "futures_change_margin_type",
    "futures_change_position_mode", "futures_countdown_cancel_all",
})
# Methods that place an order (the dead man's switch arms the symbol of each accepted futures order).
ORDER_METHODS = frozenset({"create_order", "futures_create_order", "futures_create_algo_order"})


class ExchangeBackoff(BinanceMcpError):
    """Binance asked for a pause (429/418 with Retry-After); nothing is sent until it has passed."""

    code = "EXCHANGE_RATE_LIMITED"
    remedy = "retry_later"


class PaperAccountError(BinanceMcpError):
    """The stored paper account cannot be opened as the settings ask (another feed, an unreadable file)."""

    code = "PAPER_ACCOUNT"


@dataclass
class Connectivity:
    """The last time sync: what ``binance_account_status`` reports."""

    offset_ms: int | None = None
    server_time: int | None = None


@dataclass
class _Cached:
    value: Any
    at: float


@dataclass
class Exchange:
    settings: Settings
    clock: Any = time.monotonic
    connectivity: Connectivity = field(default_factory=Connectivity)

    def __post_init__(self) -> None:
        self._client: AsyncClient | None = None
        self._lock: asyncio.Lock | None = None
        self._cache: dict[tuple, _Cached] = {}
        self._paper = None  # RunningSimulator in paper mode
        self.feed: str | None = None  # paper mode: the account's feed ("synthetic", "live <hosts>"), once started
        self.spot_url = self.settings.spot_url
        self.futures_url = self.settings.futures_url
        self.blocked_until = 0.0  # monotonic time before which Binance asked us not to call
        self.recv_window_s = RECV_WINDOW_MS / 1000
        self.sleep = asyncio.sleep
        from binance_mcp.exchange.keycheck import KeyCheck

        self.keycheck = KeyCheck(self.settings.mode, self.clock)
        self.order_listeners: list[Callable[[str, str], None]] = []  # (method, symbol) of each accepted order

    # -- lifecycle --------------------------------------------------------------------------
    async def _get_client(self) -> AsyncClient:
        if self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None:
                from binance import AsyncClient

                key, secret = await asyncio.to_thread(self._credentials)  # paper: start-up reads the account
                client = AsyncClient(key, secret, requests_params={"timeout": self.settings.timeout})
                if self.settings.mode != "paper" and self.settings.private_key is not None:
                    from binance_mcp.exchange.signing import use_private_key

                    use_private_key(client, self.settings.private_key)  # Ed25519 / RSA instead of HMAC
                client.REQUEST_TIMEOUT = self.settings.timeout
                client.REQUEST_RECVWINDOW = RECV_WINDOW_MS
                client.API_URL = self.spot_url
                client.FUTURES_URL = self.futures_url
                client.MARGIN_API_URL = self.sapi_url  # the key check: /sapi/v1/account/apiRestrictions
                self._client = client
        return self._client

    def _credentials(self) -> tuple[str, str | None]:
        """The API key and the HMAC secret (None when a private key signs)."""
        if self.settings.mode == "paper":
            if self._paper is None:
                self._start_paper()
            return self._paper.api_key, self._paper.api_secret
        assert self.settings.api_key is not None and self.settings.key_type is not None
        secret = self.settings.api_secret
        return self.settings.api_key.get_secret_value(), secret.get_secret_value() if secret is not None else None

    def _start_paper(self) -> None:
        from binance_mcp.simulator.config import SimConfig
        from binance_mcp.simulator.paper import FeedMismatch, PaperExchange, account_meta, feed_label
        from binance_mcp.simulator.runner import start_in_thread
        from binance_mcp.simulator.store import StoreError

        s = self.settings
        given = s.model_fields_set
        try:
            meta, stored = account_meta(s.state_dir, s.paper_feed, s.paper_upstream_urls, s.paper_balances,
                                        "paper_feed" in given, "paper_upstream" in given)
        except (FeedMismatch, StoreError) as exc:
            raise PaperAccountError(str(exc)) from None
        if stored is not None and "paper_balances" in given:
            log.warning("paper mode: BINANCE_MCP_PAPER_BALANCES applies to a new paper account; the one in %s goes "
                        "on (`binance-mcp paper reset --balances ...` starts afresh)", s.state_dir)
        balances = {k: Decimal(v) for k, v in meta["balances"].items()}
        cfg = SimConfig(spot_balances=dict(balances),
                        futures_balances={"USDT": balances["USDT"]} if "USDT" in balances else {},
                        controls=True, tick_seconds=s.paper_tick_seconds)
        self._paper = start_in_thread(sim=PaperExchange(cfg, s.state_dir, meta))
        self.feed = feed_label(meta)
        self.spot_url = self._paper.base_url + "/api"
        self.futures_url = self._paper.base_url + "/fapi"
        log.info("paper mode: simulator on %s, %s feed", self._paper.base_url, self.feed)

    async def close(self) -> None:
        if self._client is not None:
            try:
                await self._client.close_connection()
            except Exception:  # noqa: BLE001 - closing must not raise
                pass
            self._client = None
        if self._paper is not None:
            self._paper.stop()
            self._paper = None

    @property
    def sapi_url(self) -> str:
        """Binance's wallet API beside the spot API: https://api.binance.com/api -> .../sapi (python-binance would
        otherwise use its own hard-coded URL, whatever the mode or base URL)."""
        base = self.spot_url.rstrip("/")
        return (base[:-len("/api")] if base.endswith("/api") else base) + "/sapi"

    @property
    def host(self) -> str:
        from urllib.parse import urlparse

        if self.settings.mode == "paper" and self._paper is None:
            return "127.0.0.1 (paper exchange not started)"

        return urlparse(self.spot_url).netloc

    @property
    def where(self) -> str:
        """The exchange as error texts name it: the paper exchange's port is temporary (a new one each run), so
        it is never quoted to the agent; ``binance_account_status`` reports it for diagnostics."""
        return "the paper exchange" if self.settings.mode == "paper" else self.host

    # -- requests ---------------------------------------------------------------------------
    async def call(self, method: str, what: str, signed: bool = True, retry: bool | None = None,
                   check_key: bool = True, **params: Any) -> Any:
        """Call ``AsyncClient.<method>(**params)``; translate every failure. ``what`` names the action for errors.

        ``retry`` (default: reads yes, state changes no) retries 5xx answers and timeouts a bounded number of
        times with backoff and jitter. A -1021 (clock) is resynced and retried once in every case: Binance
        rejected that request before acting on it. Outside paper mode the key check (keycheck.py) passes before
        anything else is sent: ``check_key=False`` only for the check's own request.
        """
        import aiohttp
        from binance.exceptions import BinanceAPIException, BinanceRequestException

        wait = self.blocked_until - time.monotonic()
        if wait > 0:
            raise ExchangeBackoff(f"{what} was not sent: Binance asked for a pause after too many requests; "
                                  f"try again in {int(wait + 0.999)} s.", retry_after=wait)
        client = await self._get_client()
        if check_key and self.keycheck.needed and (self.keycheck.due() or not self.keycheck.passed):
            await self.keycheck.ensure(self)  # raises KeyLocked, or why the first check could not complete
        if signed and self.connectivity.offset_ms is None:
            try:
                await self.sync_time()
            except ExchangeUnavailable as exc:  # the request itself was never sent
                raise ExchangeUnavailable(False, exc.message.replace("Time sync", what, 1)) from None
        params = {k: v for k, v in params.items() if v is not None}
        retry = (method not in MUTATING) if retry is None else retry
        attempts = READ_ATTEMPTS if retry else 1
        # A read may retry, but all its attempts together stay within twice the configured timeout.
        deadline = time.monotonic() + self.settings.timeout * (2 if retry else 1)
        resynced = False
        attempt = 0
        while True:
            attempt += 1
            budget = min(self.settings.timeout, max(deadline - time.monotonic(), 0.05))
            try:
                result = await asyncio.wait_for(getattr(client, method)(**dict(params)), budget)
                if method in ORDER_METHODS and self.order_listeners:
                    self._tell_listeners(method, params)
                return result
            except BinanceAPIException as exc:
                if exc.code == -1021 and signed and not resynced:
                    resynced = True
                    attempt -= 1
                    await self.sync_time()
                    continue
                error = self._api_error(exc, what)
            except BinanceRequestException as exc:
                error = self._unavailable(what, f"the exchange answered with something that is not JSON "
                                                f"({str(exc.message)[:80]!r})")
            except aiohttp.ContentTypeError as exc:  # a 2xx answer that is not JSON (an HTML proxy page, say)
                error = self._unavailable(what, f"the exchange answered HTTP {exc.status} with a body that is not "
                                                "JSON")
            except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
                error = self._unavailable(what, f"no answer within {self.settings.timeout:g} s")
            except aiohttp.ClientConnectorError as exc:  # no connection: the request was never sent
                error = self._unavailable(what, f"cannot connect ({type(exc).__name__})", sent=False)
            except (aiohttp.ClientError, OSError) as exc:
                error = self._unavailable(what, f"connection failed ({type(exc).__name__})")
            if attempt >= attempts or not _transient(error):
                raise error from None
            delay = BACKOFF_BASE * (2 ** (attempt - 1)) * (1 + random.random())  # noqa: S311 - jitter
            if time.monotonic() + delay >= deadline:
                raise error from None
            log.info("%s: %s; retry %d/%d in %.2f s", what, error.message, attempt, attempts - 1, delay)
            await self.sleep(delay)

    def _tell_listeners(self, method: str, params: dict) -> None:
        symbol = params.get("symbol")
        for listener in list(self.order_listeners):
            try:
                listener(method, str(symbol) if symbol else "")
            except Exception:  # noqa: BLE001 - a listener must not turn an accepted order into an error
                log.exception("order listener failed")

    def _api_error(self, exc: BinanceAPIException, what: str):
        retry_after = None
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        value = headers.get("Retry-After") if hasattr(headers, "get") else None
        if value is not None:
            try:
                retry_after = float(value)
            except ValueError:
                retry_after = None
        if exc.code == 0:  # non-JSON error body
            error = self._unavailable(what, f"HTTP {exc.status_code} with a body that is not Binance JSON")
            error.http_status = exc.status_code  # type: ignore[attr-defined]  # a 404: an endpoint that is absent
            return error
        if exc.status_code in (418, 429):
            pause = retry_after if retry_after is not None else 60.0
            self.blocked_until = max(self.blocked_until, time.monotonic() + pause)
        msg = self.settings.redact(str(exc.message))
        return translate(exc.code, msg, exc.status_code, what, retry_after)

    def _unavailable(self, what: str, why: str, sent: bool = True) -> ExchangeUnavailable:
        return ExchangeUnavailable(sent, f"{what} did not complete: {self._named()} is unreachable: {why}. "
                                   "Nothing is known to have changed; check binance_account_status, then retry.")

    def _named(self) -> str:
        return self.where if self.settings.mode == "paper" else f"the exchange at {self.host}"

    async def sync_time(self) -> int:
        import aiohttp
        from binance.exceptions import BinanceAPIException, BinanceRequestException

        client = await self._get_client()
        before = time.time()
        try:
            server = await asyncio.wait_for(client.get_server_time(), self.settings.timeout)
        except BinanceAPIException as exc:
            raise self._api_error(exc, "Time sync") from None
        except (aiohttp.ContentTypeError, BinanceRequestException):
            raise self._unavailable("Time sync", "the exchange answered with something that is not JSON") from None
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise self._unavailable("Time sync", f"no answer within {self.settings.timeout:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise self._unavailable("Time sync", f"cannot connect ({type(exc).__name__})", sent=False) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise self._unavailable("Time sync", f"connection failed ({type(exc).__name__})") from None
        after = time.time()
        local_ms = int((before + after) / 2 * 1000)
        offset = int(server["serverTime"]) - local_ms
        client.timestamp_offset = offset
        self.connectivity.offset_ms = offset
        self.connectivity.server_time = int(server["serverTime"])
        return offset

    # -- cached reads -----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Has a call created the client (and, in paper mode, started the exchange)? Nothing before that."""
        return self._client is not None

    async def cached(self, key: tuple, ttl: float, method: str, what: str, signed: bool = False,
                     **params: Any) -> Any:
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit.at < ttl:
            return hit.value
        value = await self.call(method, what, signed=signed, **params)
        self._cache[key] = _Cached(value, self.clock())
        return value

    def forget(self, key: tuple) -> None:
        self._cache.pop(key, None)

    async def exchange_info(self, market: str) -> dict:
        if market == "futures":
            return await self.cached(("xinfo", "futures"), EXCHANGE_INFO_TTL, "futures_exchange_info",
                                     "Reading futures exchange info")
        return await self.cached(("xinfo", "spot"), EXCHANGE_INFO_TTL, "get_exchange_info",
                                 "Reading spot exchange info")

    async def symbol_info(self, market: str, symbol: str) -> dict:
        from binance_mcp.errors import InputError

        info = await self.exchange_info(market)
        for row in info.get("symbols", []):
            if row.get("symbol") == symbol:
                return row
        raise InputError(f"{symbol} is not a {market} symbol on {self.where}; list symbols with "
                         f"binance_exchange_info market={market}.", code="UNKNOWN_SYMBOL")


def _transient(error: BinanceMcpError) -> bool:
    """Worth retrying a read: no answer, a server-side (5xx) failure, or a ``retry_read`` code (codes.py)."""
    return retryable_read(error)
