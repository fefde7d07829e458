"""`binance-mcp demo` as a subprocess: it runs a real paper session over stdio and shows every step."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env


def demo_command() -> list[str]:
    script = Path(sys.executable).with_name("binance-mcp")  # the console script installed next to python
    return [str(script), "demo"] if script.exists() else [sys.executable, "-m", "binance_mcp", "demo"]


def test_demo_runs_every_step(tmp_path):
    env = clean_env(HOME=str(tmp_path))  # HOME: nothing may land in the real home directory
    proc = subprocess.run(demo_command(), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    expected = [  # (the step, what it must show)
        (r"Spot balances", r"<- USDT: free [\d,.]+, locked [\d,.]+"),
        (r"BTC price", r"<- BTCUSDT last price [\d,.]+ USDT"),
        (r"limit buy", r"<- order \d+ NEW: it rests on the book"),
        (r"Open orders", r"<- \d+: BUY 0\.001 @ [\d.]+ \(NEW\)"),
        (r"Cancel it", r"<- order \d+ CANCELED"),
        (r"leverage on BTCUSDT to 5x", r"<- leverage 5x"),
        (r"Open a small long", r"<- FILLED: bought 0\.002 at [\d,.]+"),
        (r"Futures positions", r"<- BTCUSDT LONG 0\.002 entry"),
        (r"Close the position", r"<- SELL 0\.002 reduce-only at [\d,.]+: FILLED"),
        (r"Connection diagnostics", r"<- connected=True exchange=paper host=127\.0\.0\.1:\d+"),
    ]
    position = 0
    for step, shown in expected:  # in this order
        m = re.compile(step).search(out, position)
        assert m, f"step {step!r} missing after position {position}:\n{out}"
        r = re.compile(shown).search(out, m.end())
        assert r, f"{shown!r} not shown for step {step!r}:\n{out}"
        position = r.end()
    assert re.search(r"Connected over stdio to binance-mcp serve \(paper mode\): \d+ tools listed", out)
    assert re.search(r"Done in [\d.]+ s", out)
    assert "Traceback" not in out + proc.stderr
