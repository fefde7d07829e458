"""Load on the HTTP service (``binance-mcp serve --http``): many agents at once, reads and orders.

Four processes on 127.0.0.1: the simulator (``binance-mcp simulator --controls --tick-seconds 0``: frozen prices;
its rate limits lifted through ``/_sim/limits`` so thousands of calls stay legal), the service (``binance-mcp serve
--http 127.0.0.1:0`` in testnet mode with the simulator's key and secret, its own state directory and policy), the
bare baseline (bench/bare_http_server.py: FastMCP's Streamable HTTP app under uvicorn, one tool that returns a
constant), and this process: every client, on one asyncio loop. Each agent is added with the real ``binance-mcp
agents add`` and gets its own token and its own fastmcp Streamable HTTP client.

1. Read load, in interleaved rounds (the order of the kinds rotates every round; --seconds is each kind's total):
   ours     N agents' clients call ``binance_spot_price`` BTCUSDT on the service, all at once, each as fast as its
            answers come (closed loop): token check, Host/Origin check, FastMCP, the guard, the audit line, one
            GET /api/v3/ticker/price to the simulator, the result model.
   direct   N python-binance AsyncClients call ``get_symbol_ticker`` on the simulator the same way: the exchange
            request alone, under the same concurrency.
   bare     N fastmcp clients call the bare server's one tool the same way.
   nothing  ``await`` of a local coroutine with the bare tool's body, timed alone: the harness's zero.
   Ratio = (ours - direct) / (bare - nothing) on the medians of the latencies (bench/call_overhead.py's definition,
   here over Streamable HTTP under concurrent load). Target: at most 1.3.
2. Order load: the same agents place resting spot LIMIT BUYs (far under the market, so nothing fills and the book
   does not move; agent i buys 0.001 x (1 + i % 3) BTC) under the service policy's ``account: daily_notional_usd``
   cap, shared by all agents, for --order-seconds. Checked on the simulator's own order list (GET allOrders),
   never on the service's answers: the accepted orders' notional, priced as the policy counts it (quantity x the
   higher of the limit and the ask; prices are frozen, and the ask is read before and after), never exceeds the
   cap, and the cap is reached (what is left is less than the smallest order). Every call must be accepted or
   denied with DAILY_NOTIONAL_OVER_LIMIT, and every order the simulator holds must have been answered as placed.

Exit 0 when every check passes (timings are reported, never judged by the exit status); 1 when a check fails: a call
failed for anything but the cap, the cap was exceeded or not reached, an agent made no call. ``--json FILE`` writes
the raw facts (the simulator's orders, the ask, every agent's answers) for tests/service/test_http_load_quick.py.

    /work/main/.venv/bin/python bench/http_load.py [--quick] [--seconds N] [--agents N] [--rounds R]
                                                   [--order-seconds N] [--cap USD] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import _common  # noqa: F401 - puts the repository on sys.path
from _common import machine, median, pct, table, temp_dir, verdict
from _http_procs import cpu_seconds, lift_limits, service, simulator, spawn

TARGET = Decimal("1.3")
SYMBOL = "BTCUSDT"
LIMIT_PRICE = "60000"  # far under the simulator's ~97,000: the order rests
CAP_CODE = "DAILY_NOTIONAL_OVER_LIMIT"


def policy(cap: int) -> str:
    return f"version: 1\ndefault: allow\naccount:\n  daily_notional_usd: {cap}\n"


def quantity(i: int) -> str:
    return str(Decimal("0.001") * (1 + i % 3))


def code_of(result) -> str:
    return result.content[0].text.split(":")[0] if result.is_error else "OK"


def http_client(url: str, token: str | None):
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return Client(StreamableHttpTransport(url, headers=headers))


def direct_client(base_url: str, key: str, secret: str):
    from binance import AsyncClient

    c = AsyncClient(key, secret, requests_params={"timeout": 30})
    c.API_URL = base_url + "/api"
    c.FUTURES_URL = base_url + "/fapi"
    return c


class Tally:
    """One kind's calls: latencies (ms) and answer codes, per agent."""

    def __init__(self, n: int) -> None:
        self.ms: list[float] = []
        self.codes = [Counter() for _ in range(n)]
        self.wall = 0.0
        self.cpu: Counter = Counter()  # CPU seconds spent meanwhile: "clients" (this process), "server", "simulator"

    def calls(self) -> int:
        return sum(sum(c.values()) for c in self.codes)


async def closed_loop(calls, seconds: float, tally: Tally, pids: dict[str, int]) -> None:
    """Every ``calls[i]`` in a loop of its own until the deadline; each answer's time and code go to ``tally``, and
    the CPU time of this process and of ``pids`` (name: pid) meanwhile."""
    pc = time.perf_counter

    async def worker(i: int, call) -> None:
        while pc() < deadline:
            t = pc()
            try:
                code = await call()
            except Exception as exc:  # noqa: BLE001 - a failed call is a finding, reported by its kind
                code = f"{type(exc).__name__}: {str(exc)[:160]}"
            tally.ms.append((pc() - t) * 1000)
            tally.codes[i][code] += 1

    cpu0 = {"clients": time.process_time()} | {k: cpu_seconds(p) for k, p in pids.items()}
    start = pc()
    deadline = start + seconds
    await asyncio.gather(*(worker(i, c) for i, c in enumerate(calls)))
    tally.wall += pc() - start
    cpu1 = {"clients": time.process_time()} | {k: cpu_seconds(p) for k, p in pids.items()}
    tally.cpu.update({k: cpu1[k] - cpu0[k] for k in cpu0})


def read_calls(ours, direct, bare) -> dict[str, list]:
    def ours_call(c):
        async def call():
            r = await c.call_tool("binance_spot_price", {"symbol": SYMBOL}, raise_on_error=False)
            if not r.is_error and r.structured_content["prices"][0]["symbol"] != SYMBOL:
                return "WRONG_ANSWER"
            return code_of(r)
        return call

    def direct_call(c):
        async def call():
            r = await c.get_symbol_ticker(symbol=SYMBOL)
            return "OK" if r["symbol"] == SYMBOL else "WRONG_ANSWER"
        return call

    def bare_call(c):
        async def call():
            r = await c.call_tool("price", {"symbol": SYMBOL}, raise_on_error=False)
            return "OK" if r.data == "97000.00" else code_of(r)
        return call

    return {"ours": [ours_call(c) for c in ours], "direct": [direct_call(c) for c in direct],
            "bare": [bare_call(c) for c in bare]}


async def nothing_ms(n: int = 20000) -> list[float]:
    async def price(symbol: str) -> str:  # the bare tool's body, without a server
        return "97000.00"

    pc = time.perf_counter
    out = []
    for _ in range(n):
        t = pc()
        await price(SYMBOL)
        out.append((pc() - t) * 1000)
    return out


async def sim_orders(sim_url: str, key: str, secret: str) -> tuple[list[dict], Decimal, Decimal]:
    """Every spot order the simulator holds on SYMBOL (its own list, paged by orderId) and its best ask, read before
    and after the list."""
    c = direct_client(sim_url, key, secret)
    try:
        ask_before = Decimal((await c.get_order_book(symbol=SYMBOL, limit=5))["asks"][0][0])
        rows, next_id = [], 1
        while True:
            page = await c.get_all_orders(symbol=SYMBOL, orderId=next_id, limit=1000)
            rows += page
            if len(page) < 1000:
                break
            next_id = page[-1]["orderId"] + 1
        ask_after = Decimal((await c.get_order_book(symbol=SYMBOL, limit=5))["asks"][0][0])
    finally:
        await c.close_connection()
    return rows, ask_before, ask_after


async def run(args, urls: dict, pids: dict, tokens: list[str], key: str, secret: str) -> dict:
    n = len(tokens)
    kinds = ["ours", "direct", "bare"]
    tallies = {k: Tally(n) for k in kinds}
    async with contextlib.AsyncExitStack() as stack:
        ours = [await stack.enter_async_context(http_client(urls["service"], t)) for t in tokens]
        bare = [await stack.enter_async_context(http_client(urls["bare"], None)) for _ in tokens]
        direct = [direct_client(urls["sim"], key, secret) for _ in tokens]
        for c in direct:
            stack.push_async_callback(c.close_connection)
        calls = read_calls(ours, direct, bare)
        for k in kinds:  # warm up: sessions, output schemas, connections, time sync, first-call validators
            for call in calls[k]:
                for _ in range(3):
                    await call()
        nothing = await nothing_ms()
        per = args.seconds / args.rounds
        for r in range(args.rounds):
            for k in kinds[r % 3:] + kinds[:r % 3]:
                await closed_loop(calls[k], per, tallies[k], {"server": pids["bare" if k == "bare" else "service"],
                                                              "simulator": pids["sim"]})
        orders = Tally(n)

        def order_call(i: int, c):
            async def call():
                r = await c.call_tool("binance_spot_place_order", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                                                                   "quantity": quantity(i), "price": LIMIT_PRICE},
                                      raise_on_error=False)
                return code_of(r)
            return call

        day = datetime.datetime.now(datetime.UTC).date()
        await closed_loop([order_call(i, c) for i, c in enumerate(ours)], args.order_seconds, orders,
                          {"server": pids["service"], "simulator": pids["sim"]})
        crossed = datetime.datetime.now(datetime.UTC).date() != day
    rows, ask_before, ask_after = await sim_orders(urls["sim"], key, secret)
    return {"tallies": tallies, "nothing": nothing, "orders": orders, "sim_orders": rows, "ask": ask_before,
            "ask_after": ask_after, "crossed_midnight": crossed}


def check_orders(res: dict, cap: int, n: int) -> tuple[list[str], dict]:
    """The order phase's checks, on the simulator's order list: (problems, figures)."""
    problems = []
    ask = res["ask"]
    if res["ask_after"] != ask:
        problems.append(f"the simulator's ask moved during the check ({ask} -> {res['ask_after']}): prices must be "
                        "frozen for the notional to be recomputed")
    rows = res["sim_orders"]
    odd = [r for r in rows if (r["side"], r["type"], r["price"].rstrip("0").rstrip(".")) !=
           ("BUY", "LIMIT", LIMIT_PRICE)]
    if odd:
        problems.append(f"{len(odd)} order(s) on the simulator that the bench did not send: {odd[:2]}")
    notional = sum((Decimal(r["origQty"]) * max(Decimal(r["price"]), ask) for r in rows), Decimal(0))
    smallest = Decimal(quantity(0)) * max(Decimal(LIMIT_PRICE), ask)
    if notional > cap:
        problems.append(f"the cap was exceeded on the simulator: {len(rows)} orders worth {notional} USD > {cap}")
    elif cap - notional >= smallest and n >= 1:
        problems.append(f"the cap was not reached: {notional} of {cap} USD placed, {cap - notional} left, enough for "
                        f"another order of {smallest}; give the run more --order-seconds or a lower --cap")
    codes = sum(res["orders"].codes, Counter())
    other = {c: k for c, k in codes.items() if c not in ("OK", CAP_CODE)}
    if other:
        problems.append(f"order calls that failed for something other than the cap: {other}")
    if codes["OK"] != len(rows):
        problems.append(f"{codes['OK']} order calls answered OK, but the simulator holds {len(rows)} orders")
    if res["crossed_midnight"]:
        problems.append("the order phase crossed midnight UTC (the daily cap restarted): run it again")
    idle = [i for i, c in enumerate(res["orders"].codes) if not c]
    if idle:
        problems.append(f"agent(s) {idle} placed no order")
    span = (max(r["time"] for r in rows) - min(r["time"] for r in rows)) / 1000 if rows else float("nan")
    return problems, {"notional": notional, "orders": len(rows), "codes": codes, "span": span}


def cpu_per_call(t: Tally) -> list[float]:
    calls = t.calls() or 1
    return [t.cpu[k] * 1000 / calls for k in ("clients", "server", "simulator")]


def report(args, res: dict, n: int) -> int:
    t, nothing = res["tallies"], res["nothing"]
    rows = []
    for k in ("ours", "direct", "bare"):
        x = t[k]
        fails = x.calls() - sum(c["OK"] for c in x.codes)
        rows.append([k, n, x.calls(), x.calls() / x.wall, median(x.ms), pct(x.ms, 90), pct(x.ms, 99), fails,
                     *cpu_per_call(x)])
    nan = float("nan")
    rows.append(["nothing", 1, len(nothing), nan, median(nothing), pct(nothing, 90), pct(nothing, 99), 0, nan, nan,
                 nan])
    o = res["orders"]
    rows.append(["orders", n, o.calls(), o.calls() / o.wall, median(o.ms), pct(o.ms, 90), pct(o.ms, 99),
                 o.calls() - sum(c["OK"] + c[CAP_CODE] for c in o.codes), *cpu_per_call(o)])
    print(table(["kind", "agents", "calls", "calls/s", "p50 ms", "p90", "p99", "failed", "CPU ms/call: clients",
                 "server", "simulator"], rows))
    print("(CPU ms/call: CPU time of this process (every client), of the server process (the service, or the bare "
          "server) and of the simulator, over the kind's load, divided by its calls; two cores in all)")
    m = {k: median(t[k].ms) for k in t}
    base = m["bare"] - median(nothing)
    ratio = (m["ours"] - m["direct"]) / base
    p99 = (pct(t["ours"].ms, 99) - pct(t["direct"].ms, 99)) / (pct(t["bare"].ms, 99) - pct(nothing, 99))
    print(f"\nread: ours - direct = {m['ours'] - m['direct']:.2f} ms, bare - nothing = {base:.2f} ms; "
          f"(ours - direct) / (bare - nothing) = {ratio:.2f} on p50 -> target <= {TARGET}: "
          f"{verdict(Decimal(str(ratio)) <= TARGET)}  (on p99: {p99:.2f}, informative)")
    print(f"calls/s: ours {t['ours'].calls() / t['ours'].wall:.0f}, bare {t['bare'].calls() / t['bare'].wall:.0f}, "
          f"direct {t['direct'].calls() / t['direct'].wall:.0f}")
    problems = []
    for k in ("ours", "direct", "bare"):
        bad = sum(t[k].codes, Counter())
        bad.pop("OK", None)
        if bad:
            problems.append(f"{k} read calls that failed: {dict(bad)}")
        idle = [i for i, c in enumerate(t[k].codes) if not c]
        if idle:
            problems.append(f"{k}: client(s) {idle} made no call")
    order_problems, fig = check_orders(res, args.cap, n)
    problems += order_problems
    print(f"orders: {fig['orders']} on the simulator, worth {fig['notional']} USD at the ask {res['ask']} "
          f"(cap {args.cap}), the first and the last {fig['span']:.1f} s apart; answers {dict(fig['codes'])}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "cap": args.cap, "ask": str(res["ask"]), "agents": n,
            "sim_orders": [{k: r[k] for k in ("orderId", "side", "type", "price", "origQty", "status")}
                           for r in res["sim_orders"]],
            "order_codes": [dict(c) for c in o.codes],
            "read_codes": {k: [dict(c) for c in t[k].codes] for k in t}, "problems": problems}, indent=1))
    for p in problems:
        print(f"FAILED: {p}")
    print("checks: " + ("all passed" if not problems else f"{len(problems)} failed"))
    return 1 if problems else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 agents, 3 s per kind in 1 round, 4 s of orders, cap 1500")
    ap.add_argument("--seconds", type=float, default=None, help="read load per kind in all (default 30)")
    ap.add_argument("--agents", type=int, default=None, help="concurrent agents (default 20)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds of the read load (default 3)")
    ap.add_argument("--order-seconds", type=float, default=None, help="order load (default 30)")
    ap.add_argument("--cap", type=int, default=None, help="account daily_notional_usd in USD (default 10000)")
    ap.add_argument("--nodelay", action="store_true", help="both servers with TCP_NODELAY on the listening socket "
                    "(bench/ours_variant.py --nodelay, bare_http_server.py --nodelay)")
    ap.add_argument("--json", default=None, help="write the raw facts of the checks to this file")
    args = ap.parse_args()
    q = args.quick
    args.seconds = args.seconds or (3 if q else 30)
    args.rounds = args.rounds or (1 if q else 3)
    args.order_seconds = args.order_seconds or (4 if q else 30)
    args.cap = args.cap or (1500 if q else 10000)
    n = args.agents or (5 if q else 20)
    if n < 1 or args.cap < 1 or args.seconds <= 0 or args.order_seconds <= 0:
        raise SystemExit("--agents, --cap, --seconds and --order-seconds must be positive")
    tmp = temp_dir("bench-http-load-")
    print(f"http_load  {machine()}")
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        sim_url, sim_pid, key, secret = stack.enter_context(simulator(tmp))
        lift_limits(sim_url)
        svc_url, svc_pid, tokens = stack.enter_context(service(tmp, sim_url, key, secret, policy(args.cap), n, args.nodelay))
        bare = [str(Path(__file__).with_name("bare_http_server.py"))] + (["--nodelay"] if args.nodelay else [])
        bare_url, bare_pid = stack.enter_context(spawn(bare, None, r"listening on (http://127\.0\.0\.1:\d+/mcp)",
                                                       tmp / "bare.log"))
        setup = time.perf_counter() - t0
        res = asyncio.run(run(args, {"service": svc_url, "bare": bare_url, "sim": sim_url},
                              {"service": svc_pid, "bare": bare_pid, "sim": sim_pid}, tokens, key, secret))
    print(f"{'TCP_NODELAY on both servers (--nodelay); ' if args.nodelay else ''}{n} agents; read load {args.seconds:g} s per kind in {args.rounds} interleaved round(s); order load "
          f"{args.order_seconds:g} s; all clients in this process on one asyncio loop, the servers and the simulator "
          f"in their own (setup {setup:.0f} s, wall {time.perf_counter() - t0:.0f} s)\n")
    return report(args, res, n)


if __name__ == "__main__":
    sys.exit(main())
