"""What proving writability with a real write costs: StateStore.commit with an in-flight entry vs the old check.

Before the change, a trading call with no daily cap only checked the state database with BEGIN IMMEDIATE, two
counts and ROLLBACK (8fc6440's ``check_writable``), which a read-only connection passes (an immutable or 0444
state.db opens read-only without complaint) and a full disk passes too. Now every call that trades or cancels
writes its in-flight row in ``StateStore.commit`` (one BEGIN IMMEDIATE transaction that also reads the orders in
flight and today's sums), and ``settle`` marks it answered afterwards. This times, per call, on one StateStore
with the real schema in a temp dir on the disk the state directory would use (WAL, synchronous=NORMAL, as the
guard opens it):

  old check          BEGIN IMMEDIATE, SELECT count(*) x 2, ROLLBACK       (8fc6440, the reference)
  check_writable     BEGIN IMMEDIATE, SELECT ... LIMIT 1 x 2, COMMIT      (today's, still used before an approval)
  commit, no caps    an order's in-flight row, nothing else               (a trading call under a policy with no cap)
  commit, 2 caps     the same plus two daily sums and their reservations  (an order under a tool and account cap)
  commit, cancel     a cancel's in-flight row (no market: no pending read)
  settle             the answered call's row released, the counter bumped (paid after the exchange answered)

Kinds alternate in rounds (a batch of each, in rotating order); every call is timed on its own with
time.perf_counter_ns. The decision callback is trivial: what the engine costs is engine_latency.py's business.
Each commit is followed by its settle; the released row is then dropped (untimed), so the table holds no
backlog. A second table times the order's commit next to 0-10,000 rows released within the hour (kept that long
for decisions that noted an older release counter), which its pending-orders read scans.

    /work/venv/bin/python bench/state_write_cost.py [--quick] [--dir DIR]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from decimal import Decimal
from pathlib import Path

import _common  # noqa: F401 - puts the repository on sys.path
from _common import machine, median, pct, table, temp_dir

from binance_mcp.policy.state import Pending, StateStore


class _Allowed:
    allowed = True


ALLOWED = _Allowed()


def decide(room):
    return ALLOWED


def old_check(store: StateStore) -> None:
    """8fc6440's check_writable, verbatim apart from the error text."""
    with store._lock:
        db = store._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("SELECT count(*) FROM daily_sums").fetchone()
            db.execute("SELECT count(*) FROM approvals").fetchone()
        finally:
            db.execute("ROLLBACK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds")
    ap.add_argument("--dir", type=Path, help="where the database goes (default: a temp dir, removed at exit)")
    opts = ap.parse_args()
    rounds, batch = (6, 100) if opts.quick else (30, 300)
    where = opts.dir or temp_dir("state-write-cost-")
    where.mkdir(parents=True, exist_ok=True)
    store = StateStore(where / "state.db", time.time, busy_timeout=2.0)
    store.check_writable()  # schema created
    n = [0]

    def entry(market: str | None) -> Pending:
        n[0] += 1
        if market is None:
            return Pending(f"c{n[0]}", "binance_spot_cancel_order", None, "BTCUSDT", None, None, None, False)
        return Pending(f"o{n[0]}", "binance_spot_place_order", market, "BTCUSDT", "BUY", None, Decimal("0.001"),
                       False, f"bmcp{n[0]:028d}", False, time.time(), "bench")

    def timed(fn, *args) -> float:
        t = time.perf_counter_ns()
        fn(*args)
        return (time.perf_counter_ns() - t) / 1000

    caps = {"tool:binance_spot_place_order": Decimal("1e12"), "account": Decimal("1e12")}
    samples: dict[str, list[float]] = {}

    def commit(market: str | None, cap: dict) -> float:
        """One trading call's writes: commit (timed), settle after the answer (timed under "settle"), then its
        released row is dropped (not timed) so that the backlog of released rows stays where the run put it."""
        seq = store.seq() if market else None  # the guard notes it in a read of its own, before the facts
        e = entry(market)
        took = timed(store.commit, "default", seq, cap, Decimal("97") if market else None, [], e, decide)
        samples.setdefault("settle", []).append(timed(store.settle, e.call_id, {"status": "ok"}, False))
        store.transaction(lambda db: db.execute("DELETE FROM inflight WHERE call_id = ?", (e.call_id,)))
        return took

    kinds = {"old check": lambda: timed(old_check, store), "check_writable": lambda: timed(store.check_writable),
             "commit, no caps": lambda: commit("spot", {}), "commit, 2 caps": lambda: commit("spot", caps),
             "commit, cancel": lambda: commit(None, {})}
    floor = []
    for _ in range(1000):
        t = time.perf_counter_ns()
        floor.append(time.perf_counter_ns() - t)

    def run(names: list[str], rounds: int, batch: int) -> None:
        gc.disable()
        try:
            for r in range(rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    out = samples.setdefault(name, [])
                    for _ in range(batch):
                        out.append(kinds[name]())
        finally:
            gc.enable()

    run(list(kinds), rounds, batch)
    main_rows = dict(samples)

    # The order's commit reads every row of the account that was released in the last hour (the query uses only
    # the index's account column): its cost with a backlog of such rows, as a busy hour would leave them.
    backlog_rows = []
    for backlog in (0, 100, 1000, 10000):
        _fill(store, backlog)
        samples.clear()
        run(["old check", "commit, no caps"], max(rounds // 3, 2), batch)
        backlog_rows.append([backlog, median(samples["old check"]), median(samples["commit, no caps"]),
                             pct(samples["commit, no caps"], 99)])
    store.close()

    ref = median(main_rows["old check"])
    rows = [[name, len(xs), median(xs), pct(xs, 90), pct(xs, 99), max(xs), statistics.fmean(xs), median(xs) / ref]
            for name, xs in main_rows.items()]
    print(machine())
    print(f"database: {where / 'state.db'} ({_fs(where)}), WAL, synchronous=NORMAL; rounds {rounds} x batch {batch}; "
          f"timer floor {median(floor) / 1000:.3f} us")
    print()
    print(table(["kind", "n", "p50 us", "p90 us", "p99 us", "max us", "mean us", "p50 / old check"], rows,
                "Per call, microseconds, no released rows kept (each call timed on its own; kinds interleaved)"))
    print()
    print(table(["released rows in the last hour", "old check p50 us", "commit, no caps p50 us",
                 "commit, no caps p99 us"], backlog_rows, "The order's commit next to a backlog of released rows"))
    plain, caps_ = median(main_rows["commit, no caps"]), median(main_rows["commit, 2 caps"])
    cancel, settle = median(main_rows["commit, cancel"]), median(main_rows["settle"])
    print()
    print(f"A trading call under a policy with no cap: old check {ref:.1f} us -> commit {plain:.1f} us for an order, "
          f"{cancel:.1f} us for a cancel (+{plain - ref:.1f} / +{cancel - ref:.1f} us), plus settle {settle:.1f} us "
          "after the answer (p50s).")
    print(f"With two daily caps the order's commit is {caps_:.1f} us (its reservation was a write before the change "
          "too).")


def _fill(store: StateStore, backlog: int) -> None:
    """Exactly ``backlog`` released in-flight rows of the account, released within the hour but before any release
    counter a decision notes now (released_seq 0): the commit's read passes over them, returns none of them."""
    now = time.time()

    def go(db):
        db.execute("DELETE FROM inflight")
        db.executemany("INSERT INTO inflight VALUES (?, 'default', 'binance_spot_place_order', 'spot', 'BTCUSDT', "
                       "'BUY', NULL, '0.001', 0, ?, 0, 'bench', ?, 'released', ?, ?, '{}')",
                       [(f"b{i}", f"bmcpbacklog{i:020d}", now, 0, now) for i in range(backlog)])

    store.transaction(go)


def _fs(path: Path) -> str:
    best, kind = "", "?"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mnt, fstype, *_ = line.split()
            if str(path.resolve()).startswith(mnt) and len(mnt) > len(best):
                best, kind = mnt, fstype
    except OSError:
        pass
    return f"{kind} at {best}" if best else kind


if __name__ == "__main__":
    main()
