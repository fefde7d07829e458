"""Decision latency of the policy engine alone: binance_mcp.policy.engine.needs() and decide().

No I/O, no event loop, no loader in the timed path: policies are parsed once with loader.parse_text, Facts
and Counters are built once, then each call is timed on its own with time.perf_counter_ns (the timer's own
cost, measured and printed as "timer floor", is included in every sample).

Cases
  spot-trader / order   policies/spot-trader.yaml, binance_spot_place_order LIMIT BUY 0.001 BTCUSDT @ 97000
                        (97 USD: passes symbols, sides, order_types, max_notional, daily caps, deviation, open
                        orders, both rate limits and the 250 USD approval threshold -> ALLOWED; the longest path)
  spot-trader / read    the same policy, binance_spot_price (class rule read: allow)
  200-rule / order      a generated policy with 200 rule entries (see make_200_rule_policy) and the same order;
                        the order's symbol matches the LAST of 120 allow globs and none of 41 deny globs
  200-rule / read       the same policy, binance_spot_price

    /work/venv/bin/python bench/engine_latency.py [--quick] [--n N]
"""

from __future__ import annotations

import argparse
import gc
import time
from decimal import Decimal

import _common  # noqa: F401 - puts the repository on sys.path
from _common import REPO, machine, pct, table, verdict

from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.policy import engine
from binance_mcp.policy.engine import Call, Counters, Facts
from binance_mcp.policy.loader import parse_text

TARGET_P50_US = 20.0

ORDER = Call("binance_spot_place_order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001",
                                          "price": "97000", "timeInForce": "GTC"})
READ = Call("binance_spot_price", {"symbol": "BTCUSDT", "limit": 100})


def order_facts() -> Facts:
    return Facts(notional_usd=Decimal("97.000"), quantity=Decimal("0.001"), reference_price=Decimal("97010.00"),
                 price_deviation_pct=Decimal("0.0103"), open_orders=3)


def counters() -> Counters:
    return Counters(daily_used={"tool:binance_spot_place_order": Decimal("350.5"), "account": Decimal("350.5")},
                    rate_wait={"tool:binance_spot_place_order": 0.0, "account": 0.0}, kill_switch=False)


def make_200_rule_policy() -> tuple[str, int]:
    """A policy with 200 rule entries: 36 tool rules (every tool), 3 class rules, 120 symbol allow globs and
    41 deny globs on the order tool. Returns (yaml text, number of rule entries)."""
    allow = [f"X{i:03d}*" for i in range(119)] + ["BTC*"]  # the order's symbol matches only the last one
    deny = [f"Y{i:03d}*" for i in range(41)]
    lines = ["version: 1", "default: deny", "classes:", "  read: allow", "  destructive: allow",
             "  financial: {action: deny, reason: generated}", "tools:"]
    for spec in ALL_TOOLS:
        if spec.name == "binance_spot_place_order":
            lines += [f"  {spec.name}:", "    action: allow", "    rate_limit: {max: 1000, window: 60}",
                      "    approval_above: {notional_usd: 250}", "    limits:",
                      f"      symbols: [{', '.join(allow)}]", f"      deny_symbols: [{', '.join(deny)}]",
                      "      sides: [BUY, SELL]", "      order_types: [LIMIT, LIMIT_MAKER, MARKET]",
                      "      max_notional_usd: 500", "      daily_notional_usd: 2000",
                      "      max_price_deviation_pct: 3", "      max_open_orders: 10"]
        elif spec.risk == "read":
            lines += [f"  {spec.name}:", "    action: allow", "    rate_limit: {max: 600, window: 60}"]
        else:
            lines += [f"  {spec.name}:", "    action: deny", f"    reason: generated rule for {spec.name}"]
    lines += ["account:", "  daily_notional_usd: 2000", "  rate_limit: {max: 1200, window: 60}"]
    return "\n".join(lines) + "\n", len(ALL_TOOLS) + 3 + len(allow) + len(deny)


def timer_floor(n: int) -> float:
    pc = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t0 = pc()
        samples.append(pc() - t0)
    return pct(samples, 50) / 1000


def measure(fn, n: int, warm: int = 2000) -> list[float]:
    for _ in range(warm):
        fn()
    pc = time.perf_counter_ns
    out = [0.0] * n
    for i in range(n):
        t0 = pc()
        fn()
        out[i] = pc() - t0
    return [x / 1000 for x in out]  # microseconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20,000 samples per case instead of 200,000")
    ap.add_argument("--n", type=int, default=None, help="samples per case and function")
    args = ap.parse_args()
    n = args.n or (20_000 if args.quick else 200_000)

    spot = parse_text((REPO / "policies" / "spot-trader.yaml").read_text(), "spot-trader.yaml").policy
    text, nrules = make_200_rule_policy()
    big = parse_text(text, "generated-200.yaml").policy
    facts, ctr, none = order_facts(), counters(), Facts()

    cases = [("spot-trader", "order", spot, ORDER, facts), ("spot-trader", "read", spot, READ, none),
             (f"{nrules}-rule", "order", big, ORDER, facts), (f"{nrules}-rule", "read", big, READ, none)]
    for _, _, pol, call, f in cases:  # every case must take the path described above
        d = engine.decide(pol, call, f, ctr)
        assert d.code == "ALLOWED", (call.tool, d.text())

    rows = []
    results = {}
    gc.collect()
    # Interleave: every case and function once per round, several rounds, samples pooled.
    rounds = 5
    pooled: dict[tuple, list[float]] = {}
    for _ in range(rounds):
        for pname, cname, pol, call, f in cases:
            for fname, fn in (("needs", lambda p=pol, c=call: engine.needs(p, c)),
                              ("decide", lambda p=pol, c=call, f=f: engine.decide(p, c, f, ctr)),
                              ("needs+decide", lambda p=pol, c=call, f=f: (engine.needs(p, c),
                                                                           engine.decide(p, c, f, ctr)))):
                pooled.setdefault((pname, cname, fname), []).extend(measure(fn, n // rounds, warm=500))
    for (pname, cname, fname), s in pooled.items():
        p50, p99 = pct(s, 50), pct(s, 99)
        results[(pname, cname, fname)] = (p50, p99)
        rows.append([f"{pname} / {cname}", fname, p50, p99, pct(s, 99.9), len(s)])

    floor = timer_floor(100_000)
    print(f"engine_latency  {machine()}")
    print(f"samples: {n} per row (5 interleaved rounds), timer floor (empty perf_counter_ns pair): {floor:.3f} us\n")
    print(table(["case", "function", "p50 us", "p99 us", "p99.9 us", "n"], rows))
    worst = max(v[0] for k, v in results.items() if k[2] == "decide")
    print(f"\ntarget: decide() p50 under {TARGET_P50_US:g} us in every case -> worst p50 {worst:.2f} us: "
          f"{verdict(worst < TARGET_P50_US)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
