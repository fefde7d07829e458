"""Test controls under ``/_sim/``: prices, balances, feed steps, clock skew, faults, limits, state.

They exist only when the simulator is started for tests or paper mode (``controls=True``); a real
Binance has nothing like them, and no client of ours calls them outside tests and the demo.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from aiohttp import web

from binance_mcp.simulator.feed import fmt
from binance_mcp.simulator.state import FAULT_KINDS, SIM_KEY, Fault, Simulator


def _sim(request: web.Request) -> Simulator:
    return request.app[SIM_KEY]


def _bad(msg: str) -> web.Response:
    return web.json_response({"error": msg}, status=400)


async def _body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    data = await request.json()
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _dec(value: object, name: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{name} must be a number") from exc
    if not d.is_finite() or d <= 0:
        raise ValueError(f"{name} must be a positive number")
    return d


def _state(sim: Simulator) -> dict:
    sim.expire_countdowns()  # a countdown that ran out has cancelled its orders before anyone looks
    spot_orders = sum(1 for e in sim.log if e["path"] == "/api/v3/order" and e["method"] == "POST")
    return {
        "server_time": sim.now_ms(), "skew_ms": sim.clock.skew_ms,
        "requests": len(sim.log), "last_seq": sim.log[-1]["seq"] if sim.log else 0,
        "order_requests": {"spot": spot_orders,
                           "futures": sum(1 for e in sim.log if e["method"] == "POST"
                                          and e["path"] in ("/fapi/v1/order", "/fapi/v1/algoOrder"))},
        "orders": {"spot": len(sim.spot.orders), "futures": len(sim.futures.orders), "algo": len(sim.futures.algo)},
        "prices": {s: fmt(f.price) for s, f in sim.feed.symbols.items()},
        "futures": {s: {"last": fmt(sim.market.futures_last(s)), "mark": fmt(sim.market.mark_price(s))}
                    for s in sim.market.basis},
        "weight": {m: w.used for m, w in sim.limiter.weight.items()},
        "faults": [f.as_dict() for f in sim.faults],
        "countdowns": sim.countdowns.as_dict(sim.now_ms()),
    }


def add_control_routes(app: web.Application) -> None:
    async def guarded(request: web.Request, fn) -> web.Response:
        try:
            return await fn(request, _sim(request))
        except (ValueError, KeyError, TypeError) as exc:
            return _bad(str(exc))

    async def state(request: web.Request, sim: Simulator) -> web.Response:
        return web.json_response(_state(sim))

    async def requests(request: web.Request, sim: Simulator) -> web.Response:
        since = int(request.query.get("since", "0"))
        return web.json_response([e for e in sim.log if e["seq"] > since])

    async def price(request: web.Request, sim: Simulator) -> web.Response:
        body = await _body(request)
        market = body.get("market", "spot")
        if market not in ("spot", "futures"):
            raise ValueError("market must be spot or futures")
        symbol = str(body["symbol"]).upper()
        value = _dec(body["price"], "price") if "price" in body else None
        mark = _dec(body["mark"], "mark") if "mark" in body else None
        if market == "spot" and value is None:
            raise ValueError("price is required for the spot market")
        try:
            sim.set_price(symbol, value, market, mark)
        except KeyError as exc:
            raise ValueError(f"unknown {market} symbol {symbol}") from exc
        return web.json_response(_state(sim))

    async def advance(request: web.Request, sim: Simulator) -> web.Response:
        body = await _body(request)
        steps = int(body.get("steps", 1))
        if steps < 0 or steps > 100000:
            raise ValueError("steps must be 0..100000")
        sim.feed.advance(steps)
        sim.on_prices()
        return web.json_response(_state(sim))

    async def balances(request: web.Request, sim: Simulator) -> web.Response:
        body = await _body(request)
        replace = bool(body.get("replace", False))
        for market, target in (("spot", sim.spot), ("futures", sim.futures)):
            if market in body:
                values = {str(k).upper(): Decimal(str(v)) for k, v in dict(body[market]).items()}
                target.set_balances(values, replace=replace)
        return web.json_response(_state(sim))

    async def clock(request: web.Request, sim: Simulator) -> web.Response:
        body = await _body(request)
        if "advance_ms" in body:  # move the simulator's clock forward (countdowns, timestamps): no sleeping
            advance = int(body["advance_ms"])
            if advance < 0:
                raise ValueError("advance_ms must be >= 0 (set skew_ms to move the clock back)")
            sim.clock.skew_ms += advance
        else:
            sim.clock.skew_ms = int(body.get("skew_ms", 0))
        return web.json_response(_state(sim))

    async def faults_add(request: web.Request, sim: Simulator) -> web.Response:
        body = await _body(request)
        kind = body.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        fault = Fault(kind=kind, path=str(body.get("path", "/")), method=body.get("method"),
                      count=int(body.get("count", 1)), latency_ms=int(body.get("latency_ms", 0)),
                      status=int(body.get("status", 0)))
        sim.faults.append(fault)
        return web.json_response(_state(sim))

    async def faults_clear(request: web.Request, sim: Simulator) -> web.Response:
        sim.faults.clear()
        return web.json_response(_state(sim))

    async def limits(request: web.Request, sim: Simulator) -> web.Response:
        body = await _body(request)
        if body.pop("reset_counters", False):
            sim.limiter.reset()
        sim.limiter.configure(**body)
        return web.json_response(_state(sim))

    async def reset(request: web.Request, sim: Simulator) -> web.Response:
        sim.reset()
        return web.json_response(_state(sim))

    for method, path, fn in [
        ("GET", "/_sim/state", state), ("GET", "/_sim/requests", requests), ("POST", "/_sim/price", price),
        ("POST", "/_sim/advance", advance), ("POST", "/_sim/balances", balances), ("POST", "/_sim/clock", clock),
        ("POST", "/_sim/faults", faults_add), ("DELETE", "/_sim/faults", faults_clear),
        ("POST", "/_sim/limits", limits), ("POST", "/_sim/reset", reset),
    ]:
        app.router.add_route(method, path, _bind(guarded, fn))


def _bind(guarded, fn):
    async def route(request: web.Request) -> web.Response:
        return await guarded(request, fn)

    return route
