"""Per-call overhead of the whole server (stdio, FastMCP, validation, policy guard, audit) over a raw exchange call.

One simulator (binance_mcp.simulator.runner.start_in_thread, frozen prices, rate limits lifted so thousands of
calls stay legal) runs in a thread of this process. This process is the only client. Measured, interleaved in
rounds (the order of the kinds rotates every round, each kind runs --per calls per round, samples pooled):

  direct-read   await AsyncClient.get_symbol_ticker(symbol=BTCUSDT): python-binance straight to the simulator,
                one GET /api/v3/ticker/price on a kept-alive aiohttp connection (the same client class, settings
                and URL our adapter uses).
  ours-read     client.call_tool("binance_spot_price", {"symbol": "BTCUSDT"}) to `python -m binance_mcp serve` over
                stdio in custom mode (BINANCE_MCP_BASE_URL = that simulator), policy `version: 1 / default: allow`,
                fresh state dir: JSON-RPC over the pipe, FastMCP dispatch, argument validation, the guard (policy,
                facts: none, decision, audit line written and flushed: since 3436b51 a read is not fsynced), the
                same GET, result model, JSON out, and the fastmcp client's own result parsing.
  direct-order  await AsyncClient.create_order(LIMIT BUY 0.001 BTCUSDT @ 60000 GTC, FULL, client id): one POST
                /api/v3/order (rests on the book: far under the market). Cancelled right after, untimed.
  ours-order    client.call_tool("binance_spot_place_order", same order) to a second server whose policy is
                `default: allow` plus binance_spot_place_order.limits.max_notional_usd: 1000. Up to 8f36d8c the
                notional of a LIMIT BUY was quantity x price: no price request, one POST. Since e7e0fd5 an order is
                priced where it can fill (the higher of its limit and the ask) with prices at most 0.3 s old and
                dropped when an order on the symbol is answered, and the book is checked against the last price:
                GET /api/v3/depth?limit=5 + GET /api/v3/ticker/price + the POST, on every order. Cancelled after,
                untimed, through the same server. The guard decides and reserves in one state-store transaction
                (604d816), in a worker thread, and fsyncs the "sending" record (one fsync per trading call).
  direct-order-priced  the same three requests as ours-order now makes, straight: get_order_book(limit=5),
                get_symbol_ticker, create_order. (ours-order - direct-order-priced) is our overhead with the
                exchange requests equal on both sides.
  bare          client.call_tool("echo", {"x": "hi"}) to bench/bare_server.py (FastMCP, one trivial tool) over stdio.
  nothing       await echo("hi") on a local coroutine with the bare tool's body, timed the same way: what the
                bare tool's work costs without any server -- the harness's zero (timer + one await).
  (ablations, informative: the same calls to bench/ours_variant.py, i.e. our server with one part switched off)
  ours-*-nofsync  the audit lines are written and flushed but not fsynced (for the read, which is no longer
                  fsynced, this server differs from ours-read in nothing: its gap to ours-read is the noise floor)
  ours-*-noguard  no policy guard at all (OpenGuard): FastMCP + our tool layer + exchange adapter
  ours-order-nolimit  the order to a server with the read server's policy (`default: allow`, no limit): the
                  guard's whole path (decision, commit transaction, in-flight record, fsync, settle), no facts
  (--old DIR, the code before a change, started from DIR with the same environment, interleaved in the same
  rounds: the before and after side meet the same machine load)
  old-read / old-order  as ours-read / ours-order, with DIR's `python -m binance_mcp serve`
  ours-read-raw / bare-raw   call_tool_mcp instead of call_tool: without fastmcp's client-side result parsing
  ours-status   binance_policy_status on the read server: guarded and audited, no exchange request
  ping          client.ping() to the bare server: one JSON-RPC round trip over stdio that runs no tool (not in the
                ratio; printed to split the bare cost into transport and FastMCP's tools/call machinery).

Ratio = (ours - direct) / (bare - nothing), on medians, for the read and the order path. Target: at most 1.15,
i.e. our server (guard, validation, audit, result models, larger schemas) adds at most 15 % to what a bare
FastMCP tool call costs over stdio. With --old, the same ratio for the old server, and the difference: the target
"does not regress" compares the two (a ratio moves by +-0.1-0.2 from run to run here: judge over several runs).

    /work/main/.venv/bin/python bench/call_overhead.py [--quick] [--rounds R] [--per K] [--no-ablations] [--profile]
                                                       [--old DIR]

--profile afterwards runs bench/ours_variant.py --profile (the real server process under cProfile, from its 21st
tool call on) for 1,000 reads and 1,000 place + cancel pairs, and prints its cumulative profile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from pathlib import Path

import _common  # noqa: F401 - puts the repository on sys.path
from _common import REPO, bench_env, machine, median, old_tree, pct, table, temp_dir, tree_state, verdict
from binance import AsyncClient
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from binance_mcp.simulator.config import SimConfig
from binance_mcp.simulator.runner import start_in_thread

TARGET = 1.15
NO_REGRESSION = 0.10  # with --old: the new ratio may exceed the old one by this much (this harness's noise floor)
SYMBOL = "BTCUSDT"
ORDER = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "60000", "timeInForce": "GTC"}
ALLOW_ALL = "version: 1\ndefault: allow\n"
NOTIONAL = ("version: 1\ndefault: allow\ntools:\n  binance_spot_place_order:\n    action: allow\n    limits:\n"
            "      max_notional_usd: 1000\n")


def sim_config() -> SimConfig:
    return SimConfig(controls=True, tick_seconds=0, spot_weight_per_minute=10**9, futures_weight_per_minute=10**9,
                     spot_orders_per_10s=10**9, spot_orders_per_day=10**9, futures_orders_per_10s=10**9,
                     futures_orders_per_minute=10**9)


def ours_client(sim, tmp: Path, name: str, policy_text: str, *switches: str, tree: Path | None = None) -> Client:
    """`binance-mcp serve` over stdio in custom mode; with switches, bench/ours_variant.py (an ablation). ``tree``:
    the checkout whose code the server runs (default: the code measured)."""
    pol = tmp / f"{name}.yaml"
    pol.write_text(policy_text)
    env = bench_env(tree, BINANCE_MCP_BASE_URL=sim.base_url, BINANCE_API_KEY=sim.api_key,
                    BINANCE_API_SECRET=sim.api_secret, BINANCE_MCP_POLICY=str(pol),
                    BINANCE_MCP_STATE_DIR=str(tmp / f"state-{name}"))
    args = [str(REPO / "bench" / "ours_variant.py"), *switches] if switches else ["-m", "binance_mcp", "serve"]
    return Client(StdioTransport(command=sys.executable, args=args, env=env, cwd=str(tmp), keep_alive=False,
                                 log_file=tmp / f"{name}.stderr.log"), mode="legacy")


def bare_client(tmp: Path) -> Client:
    return Client(StdioTransport(command=sys.executable, args=[str(REPO / "bench" / "bare_server.py")],
                                 env=bench_env(), cwd=str(tmp), keep_alive=False, log_file=tmp / "bare.stderr.log"), mode="legacy")


async def echo(x: str) -> str:  # the bare tool's body, called without a server
    return x


def direct_client(sim) -> AsyncClient:
    c = AsyncClient(sim.api_key, sim.api_secret, requests_params={"timeout": 10})
    c.API_URL = sim.base_url + "/api"
    c.FUTURES_URL = sim.base_url + "/fapi"
    return c


def cid() -> str:
    return "bench" + uuid.uuid4().hex[:24]


def read_call(client: Client):
    async def call():
        r = await client.call_tool("binance_spot_price", {"symbol": SYMBOL})
        assert r.structured_content["prices"][0]["symbol"] == SYMBOL

    return call


def order_call(client: Client):
    async def call():
        r = await client.call_tool("binance_spot_place_order", ORDER)
        return r.structured_content["orderId"]

    async def cancel(order_id):
        await client.call_tool("binance_spot_cancel_order", {"symbol": SYMBOL, "orderId": order_id})

    return call, cancel


async def validation_ms(client: Client, tool: str, args: dict, n: int = 500) -> float:
    """What the client (mcp ClientSession.validate_tool_result) spends validating one result of ``tool`` against
    its outputSchema with the session's own cached, compiled validator: timed here on a real result."""
    from jsonschema import exceptions as jsonschema_exceptions

    r = await client.call_tool_mcp(tool, args)
    session = client.session
    validator = session._output_schema_validator(tool, session._tool_output_schemas[tool])
    data = r.structured_content
    t = time.perf_counter()
    for _ in range(n):
        assert jsonschema_exceptions.best_match(validator.iter_errors(data)) is None
    return (time.perf_counter() - t) / n * 1000


async def run(rounds: int, per: int, ablations: bool, old: Path | None) -> dict[str, list[float]]:
    sim = start_in_thread(sim_config())
    tmp = temp_dir("bench-overhead-")
    direct = direct_client(sim)
    samples: dict[str, list[float]] = {}
    pc = time.perf_counter
    servers = {"read": (ALLOW_ALL, ()), "order": (NOTIONAL, ())}
    if ablations:
        servers |= {"read-nofsync": (ALLOW_ALL, ("--no-fsync",)), "read-noguard": (ALLOW_ALL, ("--no-guard",)),
                    "order-nofsync": (NOTIONAL, ("--no-fsync",)), "order-noguard": (NOTIONAL, ("--no-guard",)),
                    "order-nolimit": (ALLOW_ALL, ())}
    try:
        async with contextlib.AsyncExitStack() as stack:
            bare = await stack.enter_async_context(bare_client(tmp))
            ours = {name: await stack.enter_async_context(ours_client(sim, tmp, name, text, *sw))
                    for name, (text, sw) in servers.items()}
            olds = {}
            if old is not None:
                olds = {name: await stack.enter_async_context(ours_client(sim, tmp, f"old-{name}", text, tree=old))
                        for name, text in (("read", ALLOW_ALL), ("order", NOTIONAL))}
            for c in (bare, *ours.values(), *olds.values()):
                await c.list_tools()  # what a real client does first (and fastmcp needs the output schemas)

            def timed(call, after=None):
                async def k():
                    t = pc()
                    out = await call()
                    dt = pc() - t
                    if after is not None:
                        await after(out)  # untimed (a cancel)
                    return dt

                return k

            async def direct_read():
                await direct.get_symbol_ticker(symbol=SYMBOL)

            async def direct_order():
                o = await direct.create_order(symbol=SYMBOL, side="BUY", type="LIMIT", quantity="0.001",
                                              price="60000", timeInForce="GTC", newOrderRespType="FULL",
                                              newClientOrderId=cid())
                return o["orderId"]

            async def direct_cancel(order_id):
                await direct.cancel_order(symbol=SYMBOL, orderId=order_id)

            async def direct_order_priced():  # what ours-order sends since e7e0fd5: the book, the last price, the order
                await direct.get_order_book(symbol=SYMBOL, limit=5)
                await direct.get_symbol_ticker(symbol=SYMBOL)
                return await direct_order()

            async def bare_echo():
                r = await bare.call_tool("echo", {"x": "hi"})
                assert r.data == "hi"

            kinds = [("nothing", timed(lambda: echo("hi"))), ("ping", timed(bare.ping)), ("bare", timed(bare_echo)),
                     ("direct-read", timed(direct_read)), ("direct-order", timed(direct_order, direct_cancel)),
                     ("direct-order-priced", timed(direct_order_priced, direct_cancel))]
            async def bare_raw():
                await bare.call_tool_mcp("echo", {"x": "hi"})

            async def ours_read_raw():
                await ours["read"].call_tool_mcp("binance_spot_price", {"symbol": SYMBOL})

            async def ours_status():
                await ours["read"].call_tool("binance_policy_status", {})

            kinds += [("bare-raw", timed(bare_raw)), ("ours-read-raw", timed(ours_read_raw)),
                      ("ours-status", timed(ours_status))]
            for prefix, group in (("ours", ours), ("old", olds)):
                for name, client in group.items():
                    if name.startswith("read"):
                        kinds.append((f"{prefix}-{name}", timed(read_call(client))))
                    else:
                        kinds.append((f"{prefix}-{name}", timed(*order_call(client))))
            for _, fn in kinds:  # warm up: connections, time sync, caches, imports on first use
                for _ in range(5):
                    await fn()
            for r in range(rounds):
                order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
                for name, fn in order:
                    for _ in range(per):
                        samples.setdefault(name, []).append((await fn()) * 1000)
            samples["validate:ours-read"] = [await validation_ms(ours["read"], "binance_spot_price",
                                                                 {"symbol": SYMBOL})]
            samples["validate:ours-order"] = [await validation_ms_place(ours["order"])]
            samples["validate:ours-status"] = [await validation_ms(ours["read"], "binance_policy_status", {})]
            samples["validate:bare"] = [await validation_ms(bare, "echo", {"x": "hi"})]
    finally:
        await direct.close_connection()
        sim.stop()
    return samples


async def validation_ms_place(client: Client, n: int = 500) -> float:
    """validation_ms for binance_spot_place_order (the order is cancelled afterwards)."""
    from jsonschema import exceptions as jsonschema_exceptions

    r = await client.call_tool_mcp("binance_spot_place_order", ORDER)
    await client.call_tool("binance_spot_cancel_order", {"symbol": SYMBOL,
                                                          "orderId": r.structured_content["orderId"]})
    session = client.session
    validator = session._output_schema_validator("binance_spot_place_order",
                                                 session._tool_output_schemas["binance_spot_place_order"])
    t = time.perf_counter()
    for _ in range(n):
        assert jsonschema_exceptions.best_match(validator.iter_errors(r.structured_content)) is None
    return (time.perf_counter() - t) / n * 1000


async def profile_server(n: int) -> str:
    """cProfile of the server process itself (bench/ours_variant.py --profile) over n read and n order calls."""
    import io
    import pstats

    sim = start_in_thread(sim_config())
    tmp = temp_dir("bench-overhead-prof-")
    out = io.StringIO()
    try:
        for name, text in (("read", ALLOW_ALL), ("order", NOTIONAL)):
            prof = tmp / f"{name}.prof"
            async with ours_client(sim, tmp, f"prof-{name}", text, "--profile", str(prof)) as c:
                await c.list_tools()
                if name == "read":
                    call = read_call(c)
                    for _ in range(n + 20):
                        await call()
                else:
                    place, cancel = order_call(c)
                    for _ in range(n + 10):
                        await cancel(await place())
            for _ in range(600):  # the stats are written when the server exits
                try:
                    pstats.Stats(str(prof))
                    break
                except (OSError, EOFError, ValueError, TypeError):
                    await asyncio.sleep(0.05)
            out.write(f"\n--- server process, {n} x {'binance_spot_price' if name == 'read' else 'place + cancel'}"
                      f" (cumulative; times include cProfile's overhead) ---\n")
            st = pstats.Stats(str(prof), stream=out)
            st.sort_stats("cumulative").print_stats(
                r"binance_mcp/|fastmcp/server/(server|low_level)|fastmcp/tools/base|mcp/server/stdio|posix.fsync|"
                r"json/__init__|sqlite3|binance/async_client|uuid4|posix.stat|model_validate|model_dump|tasks.py", 40)
    finally:
        sim.stop()
    return out.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="6 rounds of 5 calls per kind instead of 30 of 10")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--per", type=int, default=None)
    ap.add_argument("--no-ablations", action="store_true", help="skip the ours-*-nofsync / ours-*-noguard servers")
    ap.add_argument("--profile", action="store_true", help="also cProfile the server process (read and order)")
    ap.add_argument("--old", metavar="DIR", default=None,
                    help="also run DIR's server (the code before a change) as old-read / old-order, interleaved")
    args = ap.parse_args()
    old = old_tree(args.old)
    rounds = args.rounds or (6 if args.quick else 30)
    per = args.per or (5 if args.quick else 10)
    t0 = time.perf_counter()
    s = asyncio.run(run(rounds, per, not args.no_ablations, old))
    val = {k.split(":", 1)[1]: v[0] for k, v in list(s.items()) if k.startswith("validate:")}
    s = {k: v for k, v in s.items() if not k.startswith("validate:")}
    m = {k: median(v) for k, v in s.items()}
    order = ["nothing", "ping", "bare", "bare-raw", "ours-status", "direct-read", "ours-read", "old-read", "ours-read-raw",
             "ours-read-nofsync", "ours-read-noguard", "direct-order", "direct-order-priced", "ours-order", "old-order",
             "ours-order-nofsync", "ours-order-noguard", "ours-order-nolimit"]
    rows = [[k, median(v), pct(v, 10), pct(v, 90), pct(v, 99), len(v)] for k, v in s.items()]
    print(f"call_overhead  {machine()}")
    if old is not None:
        print(f"old-*: {tree_state(old)} at {old}")
    print(f"{rounds} interleaved rounds x {per} calls per kind; times in ms, measured in the client "
          f"(wall {time.perf_counter() - t0:.0f} s)\n")
    print(table(["kind", "median ms", "p10", "p90", "p99", "n"], sorted(rows, key=lambda r: order.index(r[0]))))
    base = m["bare"] - m["nothing"]
    print(f"\nbare - nothing = {base:.3f} ms  (of which the stdio JSON-RPC round trip, ping - nothing: "
          f"{m['ping'] - m['nothing']:.3f} ms; FastMCP tools/call beyond it, bare - ping: {m['bare'] - m['ping']:.3f} ms)")
    for path in ("read", "order"):
        add = m[f"ours-{path}"] - m[f"direct-{path}"]
        ratio = add / base
        print(f"{path:5}: ours - direct = {add:.3f} ms; (ours - direct) / (bare - nothing) = {ratio:.2f}  "
              f"-> target <= {TARGET}: {verdict(ratio <= TARGET)}")
        for variant in ("nofsync", "noguard", "nolimit"):
            k = f"ours-{path}-{variant}"
            if k in m:
                r = (m[k] - m[f"direct-{path}"]) / base
                what = "no limit, so no facts" if variant == "nolimit" else "part switched off"
                print(f"        {k:20} ratio {r:.2f}  ({what}: {m[f'ours-{path}'] - m[k]:+.3f} ms)")
        if path == "order":
            r = (m["ours-order"] - m["direct-order-priced"]) / base
            print(f"        vs direct-order-priced (the same 3 requests straight: book, last price, order): "
                  f"ours - direct = {m['ours-order'] - m['direct-order-priced']:.3f} ms, ratio {r:.2f}; the two "
                  f"price requests cost {m['direct-order-priced'] - m['direct-order']:+.3f} ms straight")
        if f"old-{path}" in m:
            r_old = (m[f"old-{path}"] - m[f"direct-{path}"]) / base
            print(f"        old-{path:15} ratio {r_old:.2f}  (new - old: {ratio - r_old:+.2f} in the ratio, "
                  f"{m[f'ours-{path}'] - m[f'old-{path}']:+.3f} ms per call) -> no regression (new - old <= "
                  f"{NO_REGRESSION}): {verdict(ratio - r_old <= NO_REGRESSION)}")
    st = (m["ours-status"] - m["nothing"]) / base
    print(f"ours-status (binance_policy_status: guarded, audited, no exchange request) vs bare echo: "
          f"{st:.2f} x  ({m['ours-status'] - m['bare']:+.3f} ms)")
    print(f"client-side outputSchema validation of one result (mcp ClientSession.validate_tool_result, part of every "
          f"measured call): spot_price {val['ours-read']:.3f} ms, place_order {val['ours-order']:.3f} ms, "
          f"policy_status {val['ours-status']:.3f} ms, bare echo {val['bare']:.3f} ms")
    sb = m["bare"] - val["bare"] - m["nothing"]
    for path in ("read", "order"):
        so = m[f"ours-{path}"] - val[f"ours-{path}"] - m[f"direct-{path}"]
        print(f"{path:5}: without the client's validation on both sides: ratio {so / sb:.2f}")
    raw = (m["ours-read-raw"] - m["direct-read"]) / (m["bare-raw"] - m["nothing"])
    print(f"read with call_tool_mcp (no fastmcp client-side result parsing): ratio {raw:.2f}; the client's parsing "
          f"costs {m['ours-read'] - m['ours-read-raw']:+.3f} ms for ours, {m['bare'] - m['bare-raw']:+.3f} ms for bare")
    if args.profile:
        print(asyncio.run(profile_server(200 if args.quick else 1000)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
