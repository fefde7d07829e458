"""What the account protections cost: exchange requests and weight per order, and time per order, with every
protection on (policy PROTECTED) against none (policy NONE); and a burst of concurrent orders, which must cost one
account read, not one per order.

One simulator (start_in_thread, frozen prices, controls on) runs in this process; each policy gets a fresh server
built in-process (binance_mcp.server.build_server with the settings `binance-mcp serve` would load against
BINANCE_MCP_BASE_URL), called through fastmcp's in-memory Client: the same tools, guard and exchange adapter as over
stdio. Requests are read from the simulator's own log (GET /_sim/requests?since=<seq>).

Targets (ratios, not times):
- a burst of BURST concurrent orders reads the spot and futures accounts at most once each (plus once per order for
  nothing): account reads per burst <= 2;
- sequential orders within the 5 s reuse read the accounts once in all: extra requests of the 2nd..Nth order are
  only the trade history of the traded symbol (loss streak, cooldown: it is read again after every answered order);
- time per order with every protection <= 3 x without (median of ROUNDS x SEQUENTIAL orders, interleaved).

    /work/main/.venv/bin/python bench/protections_cost.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter

import _common  # noqa: F401 - puts the repository on sys.path
from _common import SimBench, machine, table, verdict

NONE = "version: 1\ndefault: allow\n"
PROTECTED = """\
version: 1
default: allow
account:
  protections:
    max_daily_loss_usd: 300
    max_drawdown_pct: 5
    loss_streak: {losses: 3, window: 3600, cooldown: 1800}
    max_gross_exposure_usd: 1000000
    cooldown_after_close: 300
"""
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"}  # rests
SEQUENTIAL, BURST, ROUNDS = 12, 20, 3
ACCOUNT_READS = {("GET", "/api/v3/account"), ("GET", "/fapi/v2/account")}


class Bench(SimBench):
    def __init__(self) -> None:
        super().__init__("bench-prot-")


def requests_of(entries: list[dict]) -> Counter:
    return Counter((e["method"], e["path"]) for e in entries if not e["path"].startswith("/_sim"))


def weight_of(entries: list[dict]) -> int:
    return sum(int(e.get("weight") or 0) for e in entries)


async def sequential(b: Bench, policy: str) -> tuple[list[Counter], list[int], list[float]]:
    b.sim.control("reset", {})
    reqs, weights, times = [], [], []
    async with b.server(policy) as client:
        await client.call_tool("binance_spot_price", {"symbol": "BTCUSDT"})  # the client exists: not counted
        for _ in range(SEQUENTIAL):
            before = b.seq()
            t = time.perf_counter()
            r = await client.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
            times.append(time.perf_counter() - t)
            assert not r.is_error, r.content[0].text
            log = b.log(before)
            reqs.append(requests_of(log))
            weights.append(weight_of(log))
    return reqs, weights, times


async def burst(b: Bench, policy: str) -> tuple[Counter, int]:
    b.sim.control("reset", {})
    async with b.server(policy) as client:
        await client.call_tool("binance_spot_price", {"symbol": "BTCUSDT"})
        before = b.seq()
        results = await asyncio.gather(*(client.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
                                         for _ in range(BURST)))
        assert not any(r.is_error for r in results), [r.content[0].text for r in results if r.is_error][:2]
        log = b.log(before)
    return requests_of(log), weight_of(log)


def fmt(c: Counter) -> str:
    return ", ".join(f"{p.rsplit('/', 1)[-1]}{'' if n == 1 else f' x{n}'}" for (m, p), n in sorted(c.items())
                     if (m, p) != ("POST", "/api/v3/order"))


async def main() -> None:
    b = Bench()
    print(machine())
    base_t, prot_t = [], []
    for _ in range(ROUNDS):  # interleaved, so load on the machine falls on both alike
        base_req, base_w, t = await sequential(b, NONE)
        base_t += t
        prot_req, prot_w, t = await sequential(b, PROTECTED)
        prot_t += t
    rows = [["no protections, 1st", sum(base_req[0].values()), base_w[0], fmt(base_req[0])],
            ["no protections, later", sum(base_req[-1].values()), base_w[-1], fmt(base_req[-1])],
            ["every protection, 1st", sum(prot_req[0].values()), prot_w[0], fmt(prot_req[0])],
            ["every protection, later", sum(prot_req[-1].values()), prot_w[-1], fmt(prot_req[-1])]]
    print(table(["order (spot LIMIT BUY, resting)", "requests", "weight", "requests (the order itself not listed)"],
                rows, f"{SEQUENTIAL} sequential orders, one server per policy (the last of {ROUNDS} rounds)"))
    later_account = sum(sum(n for k, n in c.items() if k in ACCOUNT_READS) for c in prot_req[1:])
    ratio = statistics.median(prot_t) / statistics.median(base_t)
    breq, bw = await burst(b, PROTECTED)
    burst_account = sum(n for k, n in breq.items() if k in ACCOUNT_READS)
    print(table(["burst", "requests", "weight", "account reads", "requests"],
                [[f"{BURST} concurrent orders, every protection", sum(breq.values()), bw, burst_account, fmt(breq)]]))
    print(f"median time per order: {statistics.median(base_t) * 1000:.1f} ms without, "
          f"{statistics.median(prot_t) * 1000:.1f} ms with every protection: ratio {ratio:.2f}")
    print(f"target: burst account reads <= 2: {burst_account} -> {verdict(burst_account <= 2)}")
    print(f"target: account reads in orders 2..{SEQUENTIAL} (all within 5 s of the first, else re-read): "
          f"{later_account} -> {verdict(later_account <= 2 * (1 + int(sum(prot_t) // 5)))}")
    print(f"target: time ratio <= 3: {ratio:.2f} -> {verdict(ratio <= 3)}")
    b.sim.stop()


if __name__ == "__main__":
    asyncio.run(main())
