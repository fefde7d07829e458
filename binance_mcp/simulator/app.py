"""The aiohttp application: Binance's REST surface for /api (spot) and /fapi (USD-M futures).

Every request goes through one pipeline: faults -> rate limit -> parameters -> security (API key,
signature, timestamp) -> unknown-parameter check -> feed catch-up -> handler -> weight headers.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web

from binance_mcp.simulator import countdown, futures_extra, spot_extra
from binance_mcp.simulator.config import DEFAULT_API_RESTRICTIONS
from binance_mcp.simulator.controls import add_control_routes
from binance_mcp.simulator.errors import BinanceError, mandatory
from binance_mcp.simulator.market_extra import MarketExtras
from binance_mcp.simulator.params import Params
from binance_mcp.simulator.signatures import hmac_signature
from binance_mcp.simulator.state import SIM_KEY, Simulator

log = logging.getLogger("binance_mcp.simulator")
KEY_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")
SIGNED_EXTRA = {"timestamp", "recvWindow", "signature"}
MAX_RECV_WINDOW = 60000


@dataclass
class Route:
    method: str
    path: str
    handler: Callable[[Simulator, Params, int], object]
    signed: bool = False
    weight: Callable[[Params], int] | int = 1
    params: frozenset[str] = frozenset()
    order: bool = False

    @property
    def market(self) -> str:
        return "futures" if self.path.startswith("/fapi") else "spot"

    def cost(self, p: Params) -> int:
        return self.weight(p) if callable(self.weight) else self.weight


def _by_symbol(one: int, many: int) -> Callable[[Params], int]:
    return lambda p: one if "symbol" in p else many


def _spot_depth_weight(p: Params) -> int:
    try:
        limit = int(p.raw("limit") or 100)
    except ValueError:
        return 5
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _futures_depth_weight(p: Params) -> int:
    try:
        limit = int(p.raw("limit") or 500)
    except ValueError:
        return 2
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def _futures_kline_weight(p: Params) -> int:
    try:
        limit = int(p.raw("limit") or 500)
    except ValueError:
        return 1
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _fs(*names: str) -> frozenset[str]:
    return frozenset(names)


SPOT_ORDER_PARAMS = _fs("symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price",
                        "newClientOrderId", "strategyId", "strategyType", "stopPrice", "trailingDelta", "icebergQty",
                        "newOrderRespType", "selfTradePreventionMode")
FUTURES_ORDER_PARAMS = _fs("symbol", "side", "positionSide", "type", "timeInForce", "reduceOnly", "quantity", "price",
                           "newClientOrderId", "newOrderRespType", "priceMatch", "selfTradePreventionMode",
                           "goodTillDate", "closePosition", "stopPrice", "activationPrice", "callbackRate",
                           "workingType", "priceProtect")
ALGO_ORDER_PARAMS = _fs("algoType", "symbol", "side", "positionSide", "type", "timeInForce", "quantity", "price",
                        "triggerPrice", "workingType", "priceMatch", "closePosition", "priceProtect", "reduceOnly",
                        "activatePrice", "callbackRate", "clientAlgoId", "newOrderRespType",
                        "selfTradePreventionMode", "goodTillDate")
KLINE_PARAMS = _fs("symbol", "interval", "startTime", "endTime", "limit", "timeZone")
AGG_TRADE_PARAMS = _fs("symbol", "fromId", "startTime", "endTime", "limit")
OCO_PARAMS = _fs("symbol", "listClientOrderId", "side", "quantity", "aboveType", "aboveClientOrderId",
                 "aboveIcebergQty", "abovePrice", "aboveStopPrice", "aboveTrailingDelta", "aboveTimeInForce",
                 "aboveStrategyId", "aboveStrategyType", "belowType", "belowClientOrderId", "belowIcebergQty",
                 "belowPrice", "belowStopPrice", "belowTrailingDelta", "belowTimeInForce", "belowStrategyId",
                 "belowStrategyType", "newOrderRespType", "selfTradePreventionMode")
OTO_PARAMS = _fs("symbol", "listClientOrderId", "newOrderRespType", "selfTradePreventionMode", "workingType",
                 "workingSide", "workingClientOrderId", "workingPrice", "workingQuantity", "workingIcebergQty",
                 "workingTimeInForce", "workingStrategyId", "workingStrategyType", "pendingType", "pendingSide",
                 "pendingClientOrderId", "pendingPrice", "pendingStopPrice", "pendingTrailingDelta",
                 "pendingQuantity", "pendingIcebergQty", "pendingTimeInForce", "pendingStrategyId",
                 "pendingStrategyType")


def _extras(s: Simulator) -> MarketExtras:
    return MarketExtras(s.market)


def _rolling_weight(p: Params) -> int:
    """4 per symbol, at most 200 (``symbols`` is a JSON list; a malformed one is refused by the handler)."""
    raw = p.raw("symbols")
    n = raw.count(",") + 1 if raw else 1
    return min(4 * n, 200)


def _weight_by_limit(p: Params) -> int:
    try:
        limit = int(p.raw("limit") or 500)
    except ValueError:
        return 1
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _routes() -> list[Route]:
    R = Route
    return [
        # spot, public
        R("GET", "/api/v3/ping", lambda s, p, now: {}),
        R("GET", "/api/v3/time", lambda s, p, now: {"serverTime": now}),
        R("GET", "/api/v3/exchangeInfo", lambda s, p, now: s.market.exchange_info(p, now), weight=20,
          params=_fs("symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus")),
        R("GET", "/api/v3/ticker/price", lambda s, p, now: s.market.ticker_price(p), weight=_by_symbol(2, 4),
          params=_fs("symbol", "symbols", "symbolStatus")),
        R("GET", "/api/v3/ticker/24hr", lambda s, p, now: s.market.ticker_24hr(p, now), weight=_by_symbol(2, 80),
          params=_fs("symbol", "symbols", "type", "symbolStatus")),
        R("GET", "/api/v3/depth", lambda s, p, now: s.market.depth(p), weight=_spot_depth_weight,
          params=_fs("symbol", "limit", "symbolStatus")),
        R("GET", "/api/v3/klines", lambda s, p, now: s.market.klines(p), weight=2, params=KLINE_PARAMS),
        R("GET", "/api/v3/trades", lambda s, p, now: _extras(s).trades(p), weight=10, params=_fs("symbol", "limit")),
        R("GET", "/api/v3/aggTrades", lambda s, p, now: _extras(s).agg_trades(p), weight=2, params=AGG_TRADE_PARAMS),
        R("GET", "/api/v3/ticker/bookTicker", lambda s, p, now: _extras(s).book_ticker(p), weight=_by_symbol(2, 4),
          params=_fs("symbol", "symbols", "symbolStatus")),
        R("GET", "/api/v3/avgPrice", lambda s, p, now: _extras(s).avg_price(p, now), weight=2, params=_fs("symbol")),
        R("GET", "/api/v3/ticker", lambda s, p, now: _extras(s).rolling_ticker(p, now), weight=_rolling_weight,
          params=_fs("symbol", "symbols", "windowSize", "type", "symbolStatus")),
        # spot, signed
        R("POST", "/api/v3/order/cancelReplace", lambda s, p, now: spot_extra.cancel_replace(s.spot, p, now), True,
          1, SPOT_ORDER_PARAMS | set(spot_extra.CANCEL_PARAMS), order=True),
        R("GET", "/api/v3/account/commission", lambda s, p, now: spot_extra.commission(s.spot, p), True, 20,
          _fs("symbol")),
        # exchangeInfo says ocoAllowed, otoAllowed and amendAllowed are false: these answer that, not 404
        R("POST", "/api/v3/orderList/oco", lambda s, p, now: spot_extra.refuse("OCO orders")(s.spot, p), True, 1,
          OCO_PARAMS),
        R("POST", "/api/v3/orderList/oto", lambda s, p, now: spot_extra.refuse("OTO orders")(s.spot, p), True, 1,
          OTO_PARAMS),
        R("PUT", "/api/v3/order/amend/keepPriority", lambda s, p, now: spot_extra.refuse("Order amends")(s.spot, p),
          True, 4, _fs("symbol", "orderId", "origClientOrderId", "newClientOrderId", "newQty")),
        R("GET", "/api/v3/account", lambda s, p, now: s.spot.account(p, now), True, 20, _fs("omitZeroBalances")),
        R("POST", "/api/v3/order", lambda s, p, now: s.spot.place(p, now), True, 1, SPOT_ORDER_PARAMS, order=True),
        R("POST", "/api/v3/order/test", lambda s, p, now: s.spot.place(p, now, test=True), True, 1,
          SPOT_ORDER_PARAMS | {"computeCommissionRates"}),
        R("DELETE", "/api/v3/order", lambda s, p, now: s.spot.cancel(p, now), True, 1,
          _fs("symbol", "orderId", "origClientOrderId", "newClientOrderId", "cancelRestrictions")),
        R("GET", "/api/v3/order", lambda s, p, now: s.spot.get_order(p), True, 4,
          _fs("symbol", "orderId", "origClientOrderId")),
        R("DELETE", "/api/v3/openOrders", lambda s, p, now: s.spot.cancel_all(p, now), True, 1, _fs("symbol")),
        R("GET", "/api/v3/openOrders", lambda s, p, now: s.spot.get_open_orders(p), True, _by_symbol(6, 80),
          _fs("symbol")),
        R("GET", "/api/v3/allOrders", lambda s, p, now: s.spot.all_orders(p), True, 20,
          _fs("symbol", "orderId", "startTime", "endTime", "limit")),
        R("GET", "/api/v3/myTrades", lambda s, p, now: s.spot.my_trades(p), True, 20,
          _fs("symbol", "orderId", "startTime", "endTime", "fromId", "limit")),
        # futures, public
        R("GET", "/fapi/v1/ping", lambda s, p, now: {}),
        R("GET", "/fapi/v1/time", lambda s, p, now: {"serverTime": now}),
        R("GET", "/fapi/v1/exchangeInfo", lambda s, p, now: s.market.futures_exchange_info(now)),
        R("GET", "/fapi/v1/ticker/price", lambda s, p, now: s.market.futures_ticker_price(p, now),
          weight=_by_symbol(1, 2), params=_fs("symbol")),
        R("GET", "/fapi/v2/ticker/price", lambda s, p, now: s.market.futures_ticker_price(p, now),
          weight=_by_symbol(1, 2), params=_fs("symbol")),
        R("GET", "/fapi/v1/premiumIndex", lambda s, p, now: s.market.premium_index(p, now), params=_fs("symbol")),
        R("GET", "/fapi/v1/ticker/24hr", lambda s, p, now: s.market.futures_ticker_24hr(p, now),
          weight=_by_symbol(1, 40), params=_fs("symbol")),
        R("GET", "/fapi/v1/depth", lambda s, p, now: s.market.depth(p, futures=True, now=now),
          weight=_futures_depth_weight, params=_fs("symbol", "limit")),
        R("GET", "/fapi/v1/klines", lambda s, p, now: s.market.futures_klines(p), weight=_futures_kline_weight,
          params=KLINE_PARAMS),
        R("GET", "/fapi/v1/markPriceKlines", lambda s, p, now: s.market.futures_klines(p, mark=True),
          weight=_futures_kline_weight, params=KLINE_PARAMS),
        R("GET", "/fapi/v1/trades", lambda s, p, now: _extras(s).trades(p, futures=True), weight=5,
          params=_fs("symbol", "limit")),
        R("GET", "/fapi/v1/aggTrades", lambda s, p, now: _extras(s).agg_trades(p, futures=True), weight=20,
          params=AGG_TRADE_PARAMS),
        R("GET", "/fapi/v1/ticker/bookTicker", lambda s, p, now: _extras(s).futures_book_ticker(p, now),
          weight=_by_symbol(2, 5), params=_fs("symbol")),
        R("GET", "/fapi/v1/fundingRate", lambda s, p, now: _extras(s).funding_rate_history(p, now), weight=1,
          params=_fs("symbol", "startTime", "endTime", "limit")),
        R("GET", "/fapi/v1/fundingInfo", lambda s, p, now: _extras(s).funding_info(), weight=1),
        R("GET", "/fapi/v1/openInterest", lambda s, p, now: _extras(s).open_interest(
            p, now, futures_extra.own_open_interest(s.futures, p.raw("symbol") or "")), weight=1,
          params=_fs("symbol")),
        R("GET", "/fapi/v1/indexPriceKlines", lambda s, p, now: _extras(s).index_klines(p), weight=_weight_by_limit,
          params=_fs("pair", "interval", "startTime", "endTime", "limit")),
        R("GET", "/fapi/v1/premiumIndexKlines", lambda s, p, now: _extras(s).premium_klines(p),
          weight=_weight_by_limit, params=_fs("symbol", "interval", "startTime", "endTime", "limit")),
        # futures, signed
        R("PUT", "/fapi/v1/order", lambda s, p, now: futures_extra.modify(s.futures, p, now), True, 1,
          _fs("symbol", "orderId", "origClientOrderId", "side", "quantity", "price", "priceMatch", "modifyId"),
          order=True),
        R("POST", "/fapi/v1/batchOrders", lambda s, p, now: futures_extra.batch_place(
            s.futures, p, now, FUTURES_ORDER_PARAMS), True, 5, _fs("batchOrders"), order=True),
        R("DELETE", "/fapi/v1/batchOrders", lambda s, p, now: futures_extra.batch_cancel(s.futures, p, now), True, 1,
          _fs("symbol", "orderIdList", "origClientOrderIdList", "orderidlist", "origclientorderidlist")),
        R("POST", "/fapi/v1/positionMargin", lambda s, p, now: futures_extra.position_margin(s.futures, p, now),
          True, 1, _fs("symbol", "positionSide", "amount", "type")),
        R("GET", "/fapi/v1/commissionRate", lambda s, p, now: futures_extra.commission_rate(s.futures, p), True, 20,
          _fs("symbol")),
        R("GET", "/fapi/v2/account", lambda s, p, now: s.futures.account(p, now), True, 5),
        R("GET", "/fapi/v3/account", lambda s, p, now: s.futures.account(p, now, version=3), True, 5),
        R("GET", "/fapi/v2/balance", lambda s, p, now: s.futures.balance(p, now), True, 5),
        R("GET", "/fapi/v3/balance", lambda s, p, now: s.futures.balance(p, now), True, 5),
        R("GET", "/fapi/v2/positionRisk", lambda s, p, now: s.futures.position_risk_v2(p, now), True, 5,
          _fs("symbol")),
        R("GET", "/fapi/v3/positionRisk", lambda s, p, now: s.futures.position_risk_v3(p, now), True, 5,
          _fs("symbol")),
        R("POST", "/fapi/v1/order", lambda s, p, now: s.futures.place(p, now), True, 0, FUTURES_ORDER_PARAMS,
          order=True),
        R("POST", "/fapi/v1/order/test", lambda s, p, now: s.futures.place(p, now, test=True), True, 0,
          FUTURES_ORDER_PARAMS),
        R("POST", "/fapi/v1/algoOrder", lambda s, p, now: s.futures.place_algo(p, now), True, 0, ALGO_ORDER_PARAMS,
          order=True),
        R("DELETE", "/fapi/v1/order", lambda s, p, now: s.futures.cancel(p, now), True, 1,
          _fs("symbol", "orderId", "origClientOrderId")),
        R("DELETE", "/fapi/v1/allOpenOrders", lambda s, p, now: s.futures.cancel_all(p, now), True, 1,
          _fs("symbol")),
        R("DELETE", "/fapi/v1/algoOrder", lambda s, p, now: s.futures.cancel_algo(p, now), True, 1,
          _fs("symbol", "algoId", "clientAlgoId")),
        R("DELETE", "/fapi/v1/algoOpenOrders", lambda s, p, now: s.futures.cancel_all_algo(p, now), True, 1,
          _fs("symbol")),
        R("GET", "/fapi/v1/openOrders", lambda s, p, now: s.futures.get_open_orders(p), True, _by_symbol(1, 40),
          _fs("symbol")),
        R("GET", "/fapi/v1/openAlgoOrders", lambda s, p, now: s.futures.open_algo_orders(p), True,
          _by_symbol(1, 40), _fs("symbol", "algoType", "algoId")),
        R("GET", "/fapi/v1/order", lambda s, p, now: s.futures.get_order(p), True, 1,
          _fs("symbol", "orderId", "origClientOrderId")),
        R("GET", "/fapi/v1/algoOrder", lambda s, p, now: s.futures.get_algo(p), True, 1,
          _fs("symbol", "algoId", "clientAlgoId")),
        R("GET", "/fapi/v1/allOrders", lambda s, p, now: s.futures.all_orders(p), True, 5,
          _fs("symbol", "orderId", "startTime", "endTime", "limit")),
        R("GET", "/fapi/v1/allAlgoOrders", lambda s, p, now: s.futures.all_algo_orders(p), True, 5,
          _fs("symbol", "algoId", "startTime", "endTime", "page", "limit")),
        R("GET", "/fapi/v1/userTrades", lambda s, p, now: s.futures.user_trades(p), True, 5,
          _fs("symbol", "orderId", "startTime", "endTime", "fromId", "limit")),
        R("POST", "/fapi/v1/leverage", lambda s, p, now: s.futures.change_leverage(p, now), True, 1,
          _fs("symbol", "leverage")),
        R("POST", "/fapi/v1/marginType", lambda s, p, now: s.futures.change_margin_type(p, now), True, 1,
          _fs("symbol", "marginType")),
        R("GET", "/fapi/v1/positionSide/dual", lambda s, p, now: s.futures.get_dual(), True, 30),
        R("POST", "/fapi/v1/positionSide/dual", lambda s, p, now: s.futures.set_dual(p), True, 1,
          _fs("dualSidePosition")),
        R("GET", "/fapi/v1/leverageBracket", lambda s, p, now: s.futures.leverage_bracket(p), True, 1,
          _fs("symbol")),
        R("GET", "/fapi/v1/symbolConfig", lambda s, p, now: s.futures.symbol_config(p), True, 5, _fs("symbol")),
        R("GET", "/fapi/v1/income", lambda s, p, now: s.futures.income.query(p, now), True, 30,
          _fs("symbol", "incomeType", "startTime", "endTime", "page", "limit")),
        R("POST", "/fapi/v1/countdownCancelAll", lambda s, p, now: s.countdowns.set(s.futures, p, now), True,
          countdown.WEIGHT, _fs("symbol", "countdownTime")),
        # wallet (sapi), signed
        R("GET", "/sapi/v1/account/apiRestrictions", lambda s, p, now: api_restrictions(s), True, 1),
    ]


def api_restrictions(sim: Simulator) -> dict:
    """What the key may do (``--api-restrictions``); a 404 where the configuration says the endpoint is absent,
    as on Binance's testnets."""
    if sim.cfg.api_restrictions is None:
        raise BinanceError(-1000, "Unknown endpoint GET /sapi/v1/account/apiRestrictions.", status=404)
    return {**DEFAULT_API_RESTRICTIONS, **sim.cfg.api_restrictions}


ROUTES = {(r.method, r.path): r for r in _routes()}


def _strip_signature(raw: str) -> str:
    return "&".join(part for part in raw.split("&") if part and not part.startswith("signature="))


sign = hmac_signature  # Binance's HMAC-SHA256 signature, lower-case hex (Ed25519 and RSA: signatures.py)


def signature_payload(raw_query: str, raw_body: str) -> str:
    """What the signature covers: the raw query string then the raw body, without ``signature`` and with no
    ``&`` between them (notes section 2)."""
    return _strip_signature(raw_query) + _strip_signature(raw_body)


def check_security(sim: Simulator, request_key: str | None, p: Params, raw_query: str, raw_body: str,
                   now: int, spot: bool) -> None:
    """API key, then mandatory timestamp/signature, then the signature by the key's type (HMAC, Ed25519 or RSA),
    then timing (the order in the notes, section 9)."""
    if not request_key or not KEY_RE.match(request_key):
        raise BinanceError(-2014, "API-key format invalid.", status=401)
    signer = next((s for key, s in sim.signers.items() if hmac.compare_digest(request_key, key)), None)
    if signer is None:
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
    for name in ("timestamp", "signature"):
        if name not in p:
            raise mandatory(name)
    if not signer.verify(signature_payload(raw_query, raw_body), p.raw("signature") or ""):
        raise BinanceError(-1022, "Signature for this request is not valid.")
    raw_window = p.raw("recvWindow")
    window = 5000.0
    if raw_window is not None:
        if not re.fullmatch(r"[0-9]{1,10}(\.[0-9]{1,3})?", raw_window):
            raise BinanceError(-1100, "Illegal characters found in parameter 'recvWindow'.")
        window = float(raw_window)
        if window > MAX_RECV_WINDOW:
            raise BinanceError(-1102, f"'recvWindow' contains unexpected value. Cannot be greater than {MAX_RECV_WINDOW}.")
    raw_ts = p.raw("timestamp") or ""
    if not re.fullmatch(r"[0-9]{1,20}", raw_ts):  # not str.isdigit(): it accepts "²", which int() refuses
        raise BinanceError(-1100, "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'.")
    ts = int(raw_ts)
    if spot and len(raw_ts) == 16:  # microseconds
        ts //= 1000
    if ts >= now + 1000:
        raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now - ts > window:
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def _dumps(obj: object) -> str:
    import json

    return json.dumps(obj, separators=(",", ":"))


def _market_of(path: str) -> str | None:
    return "futures" if path.startswith("/fapi/") else "spot" if path.startswith(("/api/", "/sapi/")) else None


async def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer: the client sees a dropped connection."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError()


def _server_error(status: int) -> web.Response:
    if status == 503:
        body = {"code": -1008, "msg": "Server is currently overloaded with other requests. Please try again in a "
                                      "few minutes."}
    else:
        body = {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}
    return _json(body, status=status)


async def handle(request: web.Request) -> web.StreamResponse:
    sim: Simulator = request.app[SIM_KEY]
    method, path = request.method, request.path
    route = ROUTES.get((method, path))
    entry: dict = {"method": method, "path": path, "params": {}, "status": 0, "code": None, "weight": 0}
    try:
        # The whole request arrives first (as at Binance): a client that gives up while the exchange is slow
        # does not stop the exchange from acting on it.
        raw_body = ""
        if method in ("POST", "PUT", "DELETE"):
            raw_body = (await request.read()).decode("utf-8", "replace")
        fault = sim.take_fault(method, path, ("latency",))
        if fault is not None:
            await asyncio.sleep(fault.latency_ms / 1000)
        fault = sim.take_fault(method, path, ("drop_before", "error_5xx", "non_json"))
        if fault is not None:
            entry.update(status=-1, fault=fault.kind)
            sim.record(entry)
            if fault.kind == "drop_before":
                return await _drop(request)
            if fault.kind == "error_5xx":
                return _server_error(fault.status or 503)
            return web.Response(status=fault.status or 200, text="<html><body>502 Bad Gateway</body></html>",
                                content_type="text/html")
        if route is None:
            raise BinanceError(-1000 if path.startswith(("/api", "/fapi", "/sapi")) else -1, f"Unknown endpoint {method} {path}.",
                               status=404)
        raw_query = request.rel_url.raw_query_string  # as sent: the signature covers the encoded bytes
        values = dict(parse_qsl(raw_body, keep_blank_values=True))
        values.update(dict(parse_qsl(raw_query, keep_blank_values=True)))  # the query string wins
        p = Params(values)
        entry["params"] = {k: v for k, v in values.items() if k != "signature"}
        weight = route.cost(p)
        entry["weight"] = weight
        sim.limiter.charge(route.market, weight)
        now = sim.now_ms()
        if route.signed:
            check_security(sim, request.headers.get("X-MBX-APIKEY"), p, raw_query, raw_body, now,
                           route.market == "spot")
        allowed = route.params | (SIGNED_EXTRA if route.signed else frozenset())
        unknown = [k for k in values if k not in allowed]
        if unknown:
            raise BinanceError(-1104, f"Not all sent parameters were read; read '{len(values) - len(unknown)}' "
                                      f"parameter(s) but was sent '{len(values)}'.")
        if route.order:
            sim.limiter.count_order(route.market)
        result = await sim.run(route, p, now)
        headers = sim.limiter.headers(route.market)
        if route.order:
            headers.update(sim.limiter.order_headers(route.market))
        entry.update(status=200)
        fault = sim.take_fault(method, path, ("drop_after", "error_5xx_after"))
        if fault is not None:
            entry["fault"] = fault.kind
            sim.record(entry)
            if fault.kind == "drop_after":
                return await _drop(request)
            return _server_error(fault.status or 503)
        sim.record(entry)
        return _json(result, headers=headers)
    except BinanceError as exc:
        entry.update(status=exc.status, code=exc.code)
        sim.record(entry)
        headers = dict(exc.headers)
        market = route.market if route is not None else _market_of(path)
        if market is not None:
            headers.update(sim.limiter.headers(market))
        return _json(exc.body(), status=exc.status, headers=headers)
    except asyncio.CancelledError:
        raise
    except Exception:  # a simulator bug: answer like Binance's internal error, log the traceback
        log.exception("simulator error on %s %s", method, path)
        entry.update(status=500, code=-1001)
        sim.record(entry)
        return _server_error(500)


def make_app(sim: Simulator) -> web.Application:
    app = web.Application()
    app[SIM_KEY] = sim
    if sim.cfg.controls:
        add_control_routes(app)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
