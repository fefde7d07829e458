"""bench/http_load.py --quick as CI runs it: five agents with their own tokens reading and ordering at once through
the HTTP service against one shared account-level daily cap. Only correctness is asserted, never timing: the bench
exits 0, no call failed for anything but the cap, every agent made calls, and the notional of the orders the
simulator holds (recomputed here from the bench's copy of the simulator's own order list) stays under the cap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_load_keeps_the_account_cap_and_fails_nothing(tmp_path):
    out = tmp_path / "facts.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "BENCH_"))}
    done = subprocess.run([sys.executable, str(REPO / "bench" / "http_load.py"), "--quick", "--json", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checks: all passed" in done.stdout
    facts = json.loads(out.read_text())
    assert facts["problems"] == []
    assert facts["agents"] == 5
    for kind, per_agent in facts["read_codes"].items():
        assert len(per_agent) == 5
        assert all(set(codes) == {"OK"} and codes["OK"] > 0 for codes in per_agent), (kind, per_agent)
    orders = facts["order_codes"]
    assert len(orders) == 5 and all(sum(codes.values()) > 0 for codes in orders), orders
    assert {code for codes in orders for code in codes} == {"OK", "DAILY_NOTIONAL_OVER_LIMIT"}
    placed = facts["sim_orders"]
    assert sum(codes.get("OK", 0) for codes in orders) == len(placed)
    assert {(o["side"], o["type"]) for o in placed} == {("BUY", "LIMIT")}
    ask, cap = Decimal(facts["ask"]), Decimal(facts["cap"])
    notional = sum(Decimal(o["origQty"]) * max(Decimal(o["price"]), ask) for o in placed)
    assert notional <= cap
    assert cap - notional < Decimal("0.001") * ask  # reached: not even the smallest order (0.001 BTC) fits
