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

    /work/main/.venv/bin/python bench/engine_latency.py [--quick] [--n N] [--old DIR [--workers W]]

--old DIR measures the checkout DIR as well (e.g. the code before a change): the samples come from W worker
processes per tree (this script again, with BENCH_TREE set), started alternately new / old, so both trees meet
the same machine load; the table gives both p50s and their ratio. Without --old, one process, as before.
"""

from __future__ import annotations

import argparse
import gc
import time
from decimal import Decimal
from pathlib import Path

import _common  # noqa: F401 - puts the repository on sys.path
from _common import CODE, bench_env, machine, old_tree, pct, table, temp_dir, tree_state, verdict

from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.policy import engine
from binance_mcp.policy.engine import Call, Counters, Facts
from binance_mcp.policy.loader import parse_text

TARGET_P50_US = 20.0
NO_REGRESSION = 1.10  # with --old: new / old p50 above this counts as a regression (the run-to-run spread is ~5 %)

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


def collect(n: int, rounds: int = 5) -> tuple[dict[tuple, list[float]], int]:
    """Samples (microseconds) per (policy, call, function): every case and function once per round, pooled."""
    spot = parse_text((CODE / "policies" / "spot-trader.yaml").read_text(), "spot-trader.yaml").policy
    text, nrules = make_200_rule_policy()
    big = parse_text(text, "generated-200.yaml").policy
    facts, ctr, none = order_facts(), counters(), Facts()

    cases = [("spot-trader", "order", spot, ORDER, facts), ("spot-trader", "read", spot, READ, none),
             (f"{nrules}-rule", "order", big, ORDER, facts), (f"{nrules}-rule", "read", big, READ, none)]
    for _, _, pol, call, f in cases:  # every case must take the path described above
        d = engine.decide(pol, call, f, ctr)
        assert d.code == "ALLOWED", (call.tool, d.code, d.reason)

    gc.collect()
    pooled: dict[tuple, list[float]] = {}
    for _ in range(rounds):
        for pname, cname, pol, call, f in cases:
            for fname, fn in (("needs", lambda p=pol, c=call: engine.needs(p, c)),
                              ("decide", lambda p=pol, c=call, f=f: engine.decide(p, c, f, ctr)),
                              ("needs+decide", lambda p=pol, c=call, f=f: (engine.needs(p, c),
                                                                           engine.decide(p, c, f, ctr)))):
                pooled.setdefault((pname, cname, fname), []).extend(measure(fn, n // rounds, warm=500))
    return pooled, nrules


def compare(n: int, old: Path, workers: int) -> tuple[dict, dict, dict, dict]:
    """The same measurement in worker processes, alternating the code measured (CODE) and ``old`` process by
    process (the order swapped every pair), samples pooled per tree: both meet the same machine load."""
    import pickle
    import subprocess
    import sys

    tmp = temp_dir("bench-engine-")
    pooled: dict[str, dict] = {"new": {}, "old": {}}
    per_worker: dict[str, dict] = {"new": {}, "old": {}}
    for i in range(workers):
        pair = [("new", CODE), ("old", old)]
        for name, tree in (pair if i % 2 == 0 else pair[::-1]):
            out = tmp / f"{name}-{i}.pickle"
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(out),
                            "--n", str(n // workers)], env=bench_env(tree), check=True)
            got = pickle.loads(out.read_bytes())
            for key, samples in got.items():
                pooled[name].setdefault(key, []).extend(samples)
                per_worker[name].setdefault(key, []).append(pct(samples, 50))
    return pooled["new"], pooled["old"], per_worker["new"], per_worker["old"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20,000 samples per case instead of 200,000")
    ap.add_argument("--n", type=int, default=None, help="samples per case and function")
    ap.add_argument("--old", metavar="DIR", default=None,
                    help="also measure the checkout DIR (the code before a change): worker processes alternate "
                         "between the two trees, and the table compares them")
    ap.add_argument("--workers", type=int, default=6, help="with --old: worker processes per tree (6)")
    ap.add_argument("--worker", metavar="FILE", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = args.n or (20_000 if args.quick else 200_000)
    if args.worker:  # one worker of --old: the samples into FILE
        import pickle

        pooled, _ = collect(n)
        Path(args.worker).write_bytes(pickle.dumps(pooled))
        return 0
    old = old_tree(args.old)
    floor = timer_floor(100_000)
    if old is None:
        pooled, _ = collect(n)
        rows, results = [], {}
        for (pname, cname, fname), s in pooled.items():
            p50, p99 = pct(s, 50), pct(s, 99)
            results[(pname, cname, fname)] = (p50, p99)
            rows.append([f"{pname} / {cname}", fname, p50, p99, pct(s, 99.9), len(s)])
        print(f"engine_latency  {machine()}")
        print(f"samples: {n} per row (5 interleaved rounds), timer floor (empty perf_counter_ns pair): {floor:.3f} us\n")
        print(table(["case", "function", "p50 us", "p99 us", "p99.9 us", "n"], rows))
        worst = max(v[0] for k, v in results.items() if k[2] == "decide")
        print(f"\ntarget: decide() p50 under {TARGET_P50_US:g} us in every case -> worst p50 {worst:.2f} us: "
              f"{verdict(worst < TARGET_P50_US)}")
        return 0

    new_s, old_s, new_w, old_w = compare(n, old, args.workers)
    rows = []
    for key in new_s:
        a, b = new_s[key], old_s[key]
        rows.append([f"{key[0]} / {key[1]}", key[2], pct(a, 50), pct(b, 50), pct(a, 50) / pct(b, 50), pct(a, 99),
                     pct(b, 99), len(a)])
    print(f"engine_latency  {machine()}")
    print(f"old: {tree_state(old)} at {old}")
    print(f"samples: {n} per row and tree, from {args.workers} worker processes per tree alternating new/old (5 "
          f"interleaved rounds inside each); timer floor (empty perf_counter_ns pair): {floor:.3f} us\n")
    print(table(["case", "function", "new p50 us", "old p50 us", "new / old", "new p99", "old p99", "n"], rows))
    print("\ndecide() p50 per worker process (us), new | old:")
    for key in new_s:
        if key[2] == "decide":
            print(f"  {key[0]} / {key[1]}: {' '.join(f'{v:.2f}' for v in new_w[key])} | "
                  f"{' '.join(f'{v:.2f}' for v in old_w[key])}")
    worst_new = max(pct(v, 50) for k, v in new_s.items() if k[2] == "decide")
    worst_old = max(pct(v, 50) for k, v in old_s.items() if k[2] == "decide")
    print(f"\ntarget: decide() p50 under {TARGET_P50_US:g} us in every case -> worst p50 new {worst_new:.2f} us: "
          f"{verdict(worst_new < TARGET_P50_US)} (old {worst_old:.2f} us: {verdict(worst_old < TARGET_P50_US)})")
    for key in new_s:
        if key[2] == "decide":
            r = pct(new_s[key], 50) / pct(old_s[key], 50)
            print(f"no regression, decide() p50 new / old <= {NO_REGRESSION}: {key[0]} / {key[1]} {r:.2f}: "
                  f"{verdict(r <= NO_REGRESSION)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
