"""Exchange cost of every tool: REST requests and request weight per call, cold (first call) and warm (second).

One simulator (start_in_thread, frozen prices, controls on) runs in this process. For EACH of the 36 tools a
fresh server is built in-process (binance_mcp.server.build_server with the settings `binance-mcp serve` would
load in custom mode: BINANCE_MCP_BASE_URL = the simulator, its key and secret, policy `version: 1 / default:
allow`, a fresh state dir) and called through fastmcp's in-memory Client -- the same tools, guard and exchange
adapter as over stdio, without spawning 36 processes. So the "first call" is a cold process: no server-time
offset, no cached exchangeInfo, no cached prices. The second call, same arguments unless noted, follows at
once (caches warm). Between calls the simulator's request log is read: GET /_sim/requests?since=<seq>.

Anything the tool needs to exist (an open order to cancel, a position to close) is made beforehand straight on
the simulator with python-binance; those requests happen before the recorded sequence number.

Then the order tools under a limit (ORDER_CASES): the same order placed by a server without a limit and by one
whose policy has the limit (a notional limit on the spot and futures order tools and on close_position, a
position cap on the futures order tool), twice each within 2 s (fresh server per policy and case): extra
requests = (with limit) - (without). Target since e7e0fd5 (prices read fresh for every order: at most 0.3 s old,
dropped when an order on the symbol is answered): the extra requests are exactly what the limit's facts need
(ORDER_CASES), nothing else and nothing twice. The old target (at most 1 extra the first time, 0 the second, with
prices cached 2 s) is printed too; fresh prices give it up by design.

Flags: a request outside what the tool's data needs (EXPECTED below), exchangeInfo where it is not needed, a
cache that does not work (the second call repeats a cached request), the same request twice in one call.

    /work/main/.venv/bin/python bench/exchange_cost.py [--quick] [--verbose]

--quick runs the order-tool check on three orders instead of eight; every tool is always measured (the whole run
takes well under a minute). --verbose prints the requests of every tool, not only of the flagged ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter

import _common  # noqa: F401 - puts the repository on sys.path
from _common import SimBench, machine, table, verdict
from binance import AsyncClient
from fastmcp import Client

from binance_mcp.catalog import ALL_TOOLS

BTC, ETH = "BTCUSDT", "ETHUSDT"
ALLOW_ALL = "version: 1\ndefault: allow\n"
TIME = {("GET", "/api/v3/time"), ("GET", "/fapi/v1/time")}  # server-time sync before the first signed request

S_ACC, S_ORDER, S_OPEN = ("GET", "/api/v3/account"), ("POST", "/api/v3/order"), ("GET", "/api/v3/openOrders")
F_ACC3, F_ACC2 = ("GET", "/fapi/v3/account"), ("GET", "/fapi/v2/account")
F_POS2, F_POS3 = ("GET", "/fapi/v2/positionRisk"), ("GET", "/fapi/v3/positionRisk")
F_CFG, F_OPEN, F_ALGO = ("GET", "/fapi/v1/symbolConfig"), ("GET", "/fapi/v1/openOrders"), ("GET", "/fapi/v1/openAlgoOrders")
S_XI, F_XI = ("GET", "/api/v3/exchangeInfo"), ("GET", "/fapi/v1/exchangeInfo")
S_PRICE, S_DEPTH, F_MARK = ("GET", "/api/v3/ticker/price"), ("GET", "/api/v3/depth"), ("GET", "/fapi/v1/premiumIndex")
F_PRICE = {("GET", "/fapi/v1/ticker/price"), ("GET", "/fapi/v2/ticker/price")}

# What each tool's data needs (any request outside this set is flagged). exchangeInfo: only tools that need a
# symbol's filters. Time sync (TIME) is allowed on the first call of every tool that signs.
EXPECTED: dict[str, set] = {
    "binance_account_info": {S_ACC},
    "binance_spot_balances": {S_ACC},
    "binance_spot_place_order": {S_ORDER},
    "binance_spot_cancel_order": {("DELETE", "/api/v3/order")},
    "binance_spot_cancel_all_orders": {("DELETE", "/api/v3/openOrders")},
    "binance_spot_open_orders": {S_OPEN},
    "binance_spot_order_history": {("GET", "/api/v3/allOrders")},
    "binance_spot_trade_history": {("GET", "/api/v3/myTrades")},
    "binance_portfolio_account": {F_ACC3, F_ACC2},
    "binance_futures_positions": {F_POS2, F_POS3, F_CFG},
    "binance_futures_place_order": {("POST", "/fapi/v1/order"), ("POST", "/fapi/v1/algoOrder")},
    "binance_futures_cancel_order": {("DELETE", "/fapi/v1/order"), ("DELETE", "/fapi/v1/algoOrder"),
                                     ("GET", "/fapi/v1/order"), ("GET", "/fapi/v1/algoOrder")},
    "binance_futures_cancel_all_orders": {F_OPEN, F_ALGO, ("DELETE", "/fapi/v1/allOpenOrders"),
                                          ("DELETE", "/fapi/v1/algoOpenOrders")},
    "binance_futures_open_orders": {F_OPEN, F_ALGO},
    "binance_futures_order_history": {("GET", "/fapi/v1/allOrders"), ("GET", "/fapi/v1/allAlgoOrders")},
    "binance_futures_trade_history": {("GET", "/fapi/v1/userTrades")},
    "binance_futures_change_leverage": {("POST", "/fapi/v1/leverage")},
    "binance_futures_set_margin_type": {("POST", "/fapi/v1/marginType")},
    "binance_futures_close_position": {F_POS2, F_POS3, ("POST", "/fapi/v1/order")},
    "binance_spot_price": {S_PRICE},
    "binance_futures_price": F_PRICE | {F_MARK},
    "binance_spot_orderbook": {S_DEPTH},
    "binance_spot_klines": {("GET", "/api/v3/klines")},
    "binance_futures_klines": {("GET", "/fapi/v1/klines")},
    "binance_spot_24hr_ticker": {("GET", "/api/v3/ticker/24hr")},
    "binance_futures_24hr_ticker": {("GET", "/fapi/v1/ticker/24hr")},
    "binance_exchange_info": {S_XI},
    "binance_server_time": TIME,
    "binance_account_status": TIME,  # GET time answers "reachable?" and the clock drift: a ping adds nothing
    "binance_calculate_position_size": {S_XI},
    "binance_analyze_portfolio_risk": {F_ACC3, F_ACC2, F_POS2, F_POS3, F_CFG, S_ACC, S_PRICE},
    "binance_compare_spot_futures_price": {S_PRICE, F_MARK} | F_PRICE,
    "binance_calculate_funding_cost": {F_MARK},
    "binance_check_order_precision": {S_XI, S_PRICE},
    "binance_get_optimal_trade_size": {S_DEPTH, S_XI},
    "binance_policy_status": set(),
}
CACHED = {S_XI, F_XI}  # a warm second call should not send these again


def cid() -> str:
    return "bench" + uuid.uuid4().hex[:24]


class Bench(SimBench):
    def __init__(self) -> None:
        super().__init__("bench-xcost-")
        self.direct = AsyncClient(self.sim.api_key, self.sim.api_secret)
        self.direct.API_URL = self.sim.base_url + "/api"
        self.direct.FUTURES_URL = self.sim.base_url + "/fapi"

    async def call(self, client: Client, tool: str, args: dict) -> tuple[list[dict], str | None]:
        before = self.seq()
        r = await client.call_tool(tool, args, raise_on_error=False)
        err = r.content[0].text[:160] if r.is_error else None
        return self.log(before), err

    # -- fixtures, straight on the simulator ---------------------------------------------------
    async def spot_limit(self) -> int:
        o = await self.direct.create_order(symbol=BTC, side="BUY", type="LIMIT", quantity="0.001", price="60000",
                                           timeInForce="GTC", newClientOrderId=cid())
        return o["orderId"]

    async def futures_limit(self) -> int:
        o = await self.direct.futures_create_order(symbol=BTC, side="BUY", type="LIMIT", quantity="0.002",
                                                   price="60000", timeInForce="GTC", newClientOrderId=cid())
        return o["orderId"]

    async def futures_position(self) -> None:
        await self.direct.futures_create_order(symbol=BTC, side="BUY", type="MARKET", quantity="0.002",
                                               newClientOrderId=cid())


def cases(b: Bench):
    """tool -> async (call number 1 or 2) -> arguments (making what the call needs first)."""

    def same(args):
        async def f(i):
            return args
        return f

    async def cancel_spot(i):
        return {"symbol": BTC, "orderId": await b.spot_limit()}

    async def cancel_all_spot(i):
        await b.spot_limit()
        return {"symbol": BTC}

    async def cancel_fut(i):
        return {"symbol": BTC, "orderId": await b.futures_limit()}

    async def cancel_all_fut(i):
        await b.futures_limit()
        return {"symbol": BTC}

    async def close(i):
        await b.futures_position()
        return {"symbol": BTC}

    async def margin(i):
        return {"symbol": ETH, "marginType": "ISOLATED" if i == 1 else "CROSSED"}

    spot_order = {"symbol": BTC, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "60000"}
    fut_order = {"symbol": BTC, "side": "BUY", "type": "LIMIT", "quantity": "0.002", "price": "60000",
                 "timeInForce": "GTC"}
    return {
        "binance_account_info": same({}),
        "binance_spot_balances": same({}),
        "binance_spot_place_order": same(spot_order),
        "binance_spot_cancel_order": cancel_spot,
        "binance_spot_cancel_all_orders": cancel_all_spot,
        "binance_spot_open_orders": same({"symbol": BTC}),
        "binance_spot_order_history": same({"symbol": BTC}),
        "binance_spot_trade_history": same({"symbol": BTC}),
        "binance_portfolio_account": same({}),
        "binance_futures_positions": same({}),
        "binance_futures_place_order": same(fut_order),
        "binance_futures_cancel_order": cancel_fut,
        "binance_futures_cancel_all_orders": cancel_all_fut,
        "binance_futures_open_orders": same({"symbol": BTC}),
        "binance_futures_order_history": same({"symbol": BTC}),
        "binance_futures_trade_history": same({"symbol": BTC}),
        "binance_futures_change_leverage": same({"symbol": BTC, "leverage": 5}),
        "binance_futures_set_margin_type": margin,
        "binance_futures_close_position": close,
        "binance_spot_price": same({"symbol": BTC}),
        "binance_futures_price": same({"symbol": BTC}),
        "binance_spot_orderbook": same({"symbol": BTC}),
        "binance_spot_klines": same({"symbol": BTC, "interval": "1h", "limit": 100}),
        "binance_futures_klines": same({"symbol": BTC, "interval": "1h", "limit": 100}),
        "binance_spot_24hr_ticker": same({"symbol": BTC}),
        "binance_futures_24hr_ticker": same({"symbol": BTC}),
        "binance_exchange_info": same({"symbol": BTC}),
        "binance_server_time": same({}),
        "binance_account_status": same({}),
        "binance_calculate_position_size": same({"symbol": BTC, "riskAmount": "100", "entryPrice": "97000",
                                                 "stopLossPrice": "95000"}),
        "binance_analyze_portfolio_risk": same({}),
        "binance_compare_spot_futures_price": same({"symbol": BTC}),
        "binance_calculate_funding_cost": same({"symbol": BTC, "positionSize": "0.1", "holdHours": "24"}),
        "binance_check_order_precision": same({"symbol": BTC, "price": "97000.123", "quantity": "0.0012345"}),
        "binance_get_optimal_trade_size": same({"symbol": BTC, "side": "BUY"}),
        "binance_policy_status": same({}),
    }


def short(entries: list[dict]) -> str:
    c = Counter(f"{e['method']} {e['path'].replace('/api/v3/', 'api/').replace('/fapi/', 'fapi/')}" for e in entries)
    return ", ".join(f"{k}" + (f" x{v}" if v > 1 else "") for k, v in c.items()) or "-"


def flags(tool: str, first: list[dict], second: list[dict]) -> list[str]:
    out = []
    want = EXPECTED[tool]
    for label, entries, allow_time in (("1st", first, True), ("2nd", second, False)):
        keys = [(e["method"], e["path"]) for e in entries]
        extra = sorted({k for k in keys if k not in want and not (allow_time and k in TIME)})
        if extra:
            out.append(f"{label}: not needed: {', '.join(' '.join(k) for k in extra)}")
        if not allow_time and any(k in TIME for k in keys) and not (TIME & want):
            out.append(f"{label}: time sync again")
        dup = [k for k, v in Counter((e["method"], e["path"], json.dumps(
            {p: v for p, v in e["params"].items() if p not in ("timestamp", "recvWindow", "newClientOrderId")},
            sort_keys=True)) for e in entries).items() if v > 1]
        if dup:
            out.append(f"{label}: same request twice: {', '.join(d[0] + ' ' + d[1] for d in dup)}")
    if any((e["method"], e["path"]) in CACHED for e in second):
        out.append("2nd: exchangeInfo not served from the cache")
    return out


async def run_tools(b: Bench, verbose: bool) -> tuple[list[list], list[str]]:
    rows, problems = [], []
    for tool, make_args in cases(b).items():
        async with b.server(ALLOW_ALL) as client:
            logs, errs = [], []
            for i in (1, 2):
                args = await make_args(i)
                entries, err = await b.call(client, tool, args)
                logs.append(entries)
                errs.append(err)
        first, second = logs
        f = flags(tool, first, second)
        for i, err in enumerate(errs, 1):
            if err:
                f.append(f"call {i} failed: {err}")
        sync = sum(1 for e in first if (e["method"], e["path"]) in TIME and not (TIME & EXPECTED[tool]))
        rows.append([tool, len(first), sum(e["weight"] for e in first), sync, len(second),
                     sum(e["weight"] for e in second), "; ".join(f) if f else "ok"])
        if verbose or f:
            problems.append(f"{tool}\n    1st: {short(first)}\n    2nd: {short(second)}")
    return rows, problems


def limit_policy(tool: str, limits: str) -> str:
    return f"version: 1\ndefault: allow\ntools:\n  {tool}:\n    action: allow\n    limits:\n      {limits}\n"


F_DEPTH, F_DUAL = ("GET", "/fapi/v1/depth"), ("GET", "/fapi/v1/positionSide/dual")
# The order tools under a limit: what the guard's facts may read per call since e7e0fd5 (fresh prices: at most
# 0.3 s old and dropped when an order on the symbol is answered, so a second order reads them again; the book
# checked against the last or mark price; futures priced at the book side, never under the mark; position caps
# count the symbol's open orders, regular and conditional, and check the position mode, which is cached 30 s).
# Anything beyond these, or one of them twice in a call, is over-fetching. "before" is what 8f36d8c read (2 s price
# cache, no sanity check), for the notes.
ORDER_CASES = [
    ("spot MARKET BUY 0.001 BTCUSDT", "binance_spot_place_order",
     {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.001"},
     limit_policy("binance_spot_place_order", "max_notional_usd: 1000"), [S_DEPTH, S_PRICE]),
    ("spot LIMIT SELL 0.001 BTCUSDT @ 200000", "binance_spot_place_order",
     {"symbol": BTC, "side": "SELL", "type": "LIMIT", "quantity": "0.001", "price": "200000"},
     limit_policy("binance_spot_place_order", "max_notional_usd: 1000"), [S_DEPTH, S_PRICE]),
    ("spot LIMIT BUY 0.001 BTCUSDT @ 60000", "binance_spot_place_order",
     {"symbol": BTC, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "60000"},
     limit_policy("binance_spot_place_order", "max_notional_usd: 1000"), [S_DEPTH, S_PRICE]),
    ("spot MARKET BUY 0.01 ETHBTC (quote BTC)", "binance_spot_place_order",
     {"symbol": "ETHBTC", "side": "BUY", "type": "MARKET", "quantity": "0.01"},
     limit_policy("binance_spot_place_order", "max_notional_usd: 1000"), [S_DEPTH, S_PRICE, S_PRICE]),
    ("futures LIMIT BUY 0.002 BTCUSDT @ 60000", "binance_futures_place_order",
     {"symbol": BTC, "side": "BUY", "type": "LIMIT", "quantity": "0.002", "price": "60000", "timeInForce": "GTC"},
     limit_policy("binance_futures_place_order", "max_notional_usd: 100000"), [F_MARK, F_DEPTH]),
    ("futures MARKET BUY 0.002 BTCUSDT", "binance_futures_place_order",
     {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.002"},
     limit_policy("binance_futures_place_order", "max_notional_usd: 100000"), [F_MARK, F_DEPTH]),
    ("futures LIMIT BUY 0.002 @ 60000, position cap", "binance_futures_place_order",
     {"symbol": BTC, "side": "BUY", "type": "LIMIT", "quantity": "0.002", "price": "60000", "timeInForce": "GTC"},
     limit_policy("binance_futures_place_order", "max_position_notional_usd: 1000000"),
     [F_DUAL, F_POS3, F_MARK, F_OPEN, F_ALGO]),
    ("futures close_position BTCUSDT, notional limit", "binance_futures_close_position", None,
     limit_policy("binance_futures_close_position", "max_notional_usd: 1000000"), [F_POS3, F_MARK]),
]
CACHED_LONGER = {F_DUAL}  # the position mode: cached 30 s, so not read again by the second order
# "expected, not read" on a second call can be by design too: a conversion price (BTCUSDT for ETHBTC) is not
# dropped by an answered order on another symbol, so within 0.3 s it is served from the cache.


def _keys(entries: list[dict]) -> Counter:
    """Requests by (method, path); the two versions of positionRisk count as one (the adapter picks one)."""
    return Counter(F_POS3 if (e["method"], e["path"]) == F_POS2 else (e["method"], e["path"]) for e in entries)


def _fmt_keys(c: Counter) -> str:
    def one(m: str, p: str) -> str:
        p = p.replace("/api/v3/", "").replace("/fapi/v1/", "f/").replace("/fapi/v3/", "f/v3/")
        return p if m == "GET" else f"{m} {p}"

    return ", ".join(one(m, p) + (f" x{n}" if n > 1 else "") for (m, p), n in sorted(c.items())) or "-"


async def run_orders(b: Bench, quick: bool) -> tuple[list[list], bool, bool]:
    """Each order tool under a limit, against a server without one: two calls within 2 s each, on fresh servers.
    Returns (rows, no over-fetching, the old target met: at most 1 extra request, then 0)."""
    b.sim.control("balances", {"spot": {"BTC": "1", "USDT": "100000"}})
    cases = ORDER_CASES[:2] + ORDER_CASES[4:5] if quick else ORDER_CASES
    rows, lean, old_target = [], True, True
    for label, tool, order, policy, expected in cases:
        counts = {}
        for name, text in (("none", ALLOW_ALL), ("limit", policy)):
            async with b.server(text) as client:
                for warm in ("binance_server_time", "binance_account_info", "binance_portfolio_account"):
                    await client.call_tool(warm, {})  # the time sync of both markets, before anything counted
                calls = []
                t0 = time.monotonic()
                for _ in (1, 2):
                    if order is None:  # close_position: a position to close, made straight on the simulator
                        await b.futures_position()
                    entries, err = await b.call(client, tool, order or {"symbol": BTC})
                    assert not err, (label, name, err)
                    calls.append(entries)
                counts[name] = (*calls, time.monotonic() - t0)
        want = Counter(expected)
        for i, label_i in ((0, "1st"), (1, "2nd")):
            extra = _keys(counts["limit"][i]) - _keys(counts["none"][i])
            allowed = want if i == 0 else want - Counter({k: want[k] for k in CACHED_LONGER if k in want})
            over, missing = extra - allowed, allowed - extra
            n_extra = len(counts["limit"][i]) - len(counts["none"][i])
            w_extra = sum(e["weight"] for e in counts["limit"][i]) - sum(e["weight"] for e in counts["none"][i])
            lean &= not over
            if i == 0:
                first_n = n_extra
            else:
                old_target &= first_n <= 1 and n_extra == 0
            rows.append([label if i == 0 else "", label_i, len(counts["none"][i]), len(counts["limit"][i]), n_extra,
                         w_extra, _fmt_keys(extra), "over: " + _fmt_keys(over) if over else "ok",
                         _fmt_keys(missing) if missing else "-"])
        rows[-1][0] = f"  (both within {counts['limit'][2]:.2f} s)"
    return rows, lean, old_target


async def main_async(quick: bool, verbose: bool) -> None:
    b = Bench()
    t0 = time.perf_counter()
    try:
        rows, problems = await run_tools(b, verbose)
        nrows, lean, old_ok = await run_orders(b, quick)
    finally:
        await b.direct.close_connection()
        b.sim.stop()
    assert len(rows) == len(ALL_TOOLS), len(rows)
    print(f"exchange_cost  {machine()}")
    print(f"fresh in-process server per tool, simulator request log; wall {time.perf_counter() - t0:.0f} s\n")
    print(table(["tool", "1st req", "1st weight", "of which time sync", "2nd req", "2nd weight", "flags"], rows))
    flagged = [r for r in rows if r[-1] != "ok"]
    print(f"\n{len(flagged)} of {len(rows)} tools flagged" + (
        f"; requests of the flagged ones{' (and of all, --verbose)' if verbose else ''}:" if flagged or problems
        else "."))
    for p in problems:
        print("  " + p)
    print()
    print(table(["order tool under a limit (twice within 2 s)", "call", "req no limit", "req limit", "extra",
                 "extra weight", "extra requests (GET unless named; f/ = fapi/v1/)", "over-fetching", "expected, not read"],
                nrows, title="order tools with and without a limit (requests of one call; fresh server per policy)"))
    print(f"\norder tools target (no request beyond what the limit's facts need, none twice; see ORDER_CASES): "
          f"{verdict(lean)}; the old target (at most 1 extra request the first time, 0 the second, prices cached "
          f"2 s; given up in e7e0fd5 for fresh prices): {verdict(old_ok)}; tools target (no tool asks for more than "
          f"its data needs): {verdict(not flagged)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="notional check on two orders instead of four")
    ap.add_argument("--verbose", action="store_true", help="print the requests of every tool, not only flagged")
    args = ap.parse_args()
    asyncio.run(main_async(args.quick, args.verbose))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
