"""The shipped policies in policies/: they load, behave as their comments say, and pass their case tables."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.policy import engine
from binance_mcp.policy.engine import Call, Counters, Facts
from binance_mcp.policy.loader import builtin, load_file

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
SHIPPED = sorted([*POLICIES.glob("*.yaml"), *POLICIES.glob("*.json")])
CASES = sorted((POLICIES / "tests").glob("*.cases.yaml"))
D = Decimal
SPOT, FUT = "binance_spot_place_order", "binance_futures_place_order"
READ = [t.name for t in ALL_TOOLS if t.risk == "read"]
FINANCIAL = [t.name for t in ALL_TOOLS if t.risk == "financial"]
DESTRUCTIVE = [t.name for t in ALL_TOOLS if t.risk == "destructive"]


def policy(name: str):
    return load_file(POLICIES / name).policy


def decide(p, tool: str, args: dict | None = None, facts: Facts | None = None, counters: Counters | None = None):
    return engine.decide(p, Call(tool, args or {"symbol": "BTCUSDT"}), facts or Facts(), counters or Counters())


def test_the_four_shipped_policies_are_there():
    assert {p.name for p in SHIPPED} == {"futures-reduce-only.yaml", "read-only.yaml", "spot-trader.yaml",
                                         "policylayer-binance.json"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_policy_loads(path):
    loaded = load_file(path)
    assert loaded.policy.mode == "enforce" and loaded.policy.default == "deny"


# -- read-only (the built-in default) ---------------------------------------------------------
def test_builtin_default_is_the_read_only_file():
    shipped, file = builtin("read-only"), load_file(POLICIES / "read-only.yaml")
    assert shipped.policy == file.policy
    assert shipped.sha256 == file.sha256
    assert shipped.source == "built-in read-only"
    assert builtin().policy == file.policy


@pytest.mark.parametrize("tool", FINANCIAL + DESTRUCTIVE)
def test_read_only_denies_trading_and_says_how_to_enable_it(tool):
    d = decide(policy("read-only.yaml"), tool)
    assert d.code == "TOOL_DENIED"
    assert "a human must restart it with a policy that allows" in d.reason.lower()
    assert "BINANCE_MCP_POLICY=spot-trader " in d.reason  # a built-in name: works wherever the server runs
    assert engine.denied_outright(policy("read-only.yaml"), tool)


@pytest.mark.parametrize("tool", READ)
def test_read_only_allows_every_read_tool(tool):
    assert decide(policy("read-only.yaml"), tool).code == "ALLOWED"


# -- spot-trader ------------------------------------------------------------------------------
MKT = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}


@pytest.mark.parametrize(("args", "notional", "used", "code"), [
    (MKT, "250", {}, "ALLOWED"),  # up to the approval threshold: no human needed
    (MKT, "250.01", {}, "APPROVAL_REQUIRED"),  # above it: a human approves
    (MKT, "500", {}, "APPROVAL_REQUIRED"),  # the per-order cap itself still passes the limits
    (MKT, "500.01", {}, "NOTIONAL_OVER_LIMIT"),
    ({**MKT, "symbol": "ETHUSDT", "side": "SELL"}, "100", {}, "ALLOWED"),
    ({**MKT, "symbol": "SOLUSDT"}, "100", {}, "SYMBOL_NOT_ALLOWED"),  # a few symbols only
    ({**MKT, "type": "STOP_LOSS"}, "100", {}, "ORDER_TYPE_NOT_ALLOWED"),
    (MKT, "100", {f"tool:{SPOT}": "1900"}, "ALLOWED"),  # exactly the 2,000 USD daily cap
    (MKT, "100.01", {f"tool:{SPOT}": "1900"}, "DAILY_NOTIONAL_OVER_LIMIT"),
    (MKT, "100.01", {"account": "1900"}, "DAILY_NOTIONAL_OVER_LIMIT"),
])
def test_spot_trader_orders(args, notional, used, code):
    facts = Facts(notional_usd=D(notional), quantity=D(args["quantity"]), open_orders=0)
    counters = Counters(daily_used={k: D(v) for k, v in used.items()})
    assert decide(policy("spot-trader.yaml"), SPOT, args, facts, counters).code == code


def test_spot_trader_keeps_limit_prices_near_the_market_and_open_orders_few():
    p = policy("spot-trader.yaml")
    args = {**MKT, "type": "LIMIT", "price": "100000"}
    ok = Facts(notional_usd=D(100), price_deviation_pct=D(3), open_orders=9)
    assert decide(p, SPOT, args, ok).code == "ALLOWED"
    assert decide(p, SPOT, args, Facts(notional_usd=D(100), price_deviation_pct=D("3.01"), open_orders=0)).code \
        == "PRICE_DEVIATION"
    assert decide(p, SPOT, args, Facts(notional_usd=D(100), price_deviation_pct=D(0), open_orders=10)).code \
        == "OPEN_ORDERS_OVER_LIMIT"


def test_spot_trader_rate_limits_orders():
    counters = Counters(rate_wait={f"tool:{SPOT}": 4.2})
    d = decide(policy("spot-trader.yaml"), SPOT, MKT, Facts(notional_usd=D(10), open_orders=0), counters)
    assert (d.code, d.rule) == ("RATE_LIMITED", f"tools.{SPOT}.rate_limit")


@pytest.mark.parametrize("tool", ["binance_spot_cancel_order", "binance_spot_cancel_all_orders"])
def test_spot_trader_allows_spot_cancels_until_the_kill_switch(tool):
    p = policy("spot-trader.yaml")
    assert decide(p, tool).code == "ALLOWED"
    assert p.account.kill_switch_file
    assert decide(p, tool, counters=Counters(kill_switch=True)).code == "KILL_SWITCH"


@pytest.mark.parametrize("tool", [t for t in FINANCIAL + DESTRUCTIVE if "futures" in t])
def test_spot_trader_denies_futures(tool):
    d = decide(policy("spot-trader.yaml"), tool)
    assert d.code == "TOOL_DENIED"
    assert "futures" in d.reason.lower()


# -- futures-reduce-only ----------------------------------------------------------------------
FUT_SELL = {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.1", "reduceOnly": True}


def test_futures_reduce_only_allows_only_orders_that_shrink_a_position():
    p = policy("futures-reduce-only.yaml")
    assert engine.needs(p, Call(FUT, FUT_SELL)) == {"position"}
    assert decide(p, FUT, FUT_SELL, Facts(reduces_position=True)).code == "ALLOWED"
    d = decide(p, FUT, FUT_SELL, Facts(reduces_position=False))
    assert (d.code, d.rule) == ("REDUCE_ONLY_REQUIRED", f"tools.{FUT}.limits.reduce_only")


@pytest.mark.parametrize(("tool", "code"), [
    ("binance_futures_close_position", "ALLOWED"),
    ("binance_futures_change_leverage", "TOOL_DENIED"),
    ("binance_futures_set_margin_type", "TOOL_DENIED"),
    (SPOT, "TOOL_DENIED"),
    *[(t, "ALLOWED") for t in DESTRUCTIVE],
    *[(t, "ALLOWED") for t in READ],
])
def test_futures_reduce_only_tools(tool, code):
    d = decide(policy("futures-reduce-only.yaml"), tool)
    assert d.code == code
    if code == "TOOL_DENIED":
        assert "reduce-only policy" in d.reason


# -- policylayer ------------------------------------------------------------------------------
def test_policylayer_policy_allows_balances_only():
    p = policy("policylayer-binance.json")
    allowed = {t.name for t in ALL_TOOLS if decide(p, t.name).code == "ALLOWED"}
    assert allowed == {"binance_spot_balances", "binance_policy_status"}


# -- the case tables, through `binance-mcp policy test` ----------------------------------------
def run_cases(policy_path: Path, cases_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "binance_mcp", "policy", "test", str(policy_path), str(cases_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def policy_for(cases: Path) -> Path:
    stem = cases.name.removesuffix(".cases.yaml")
    return next(p for p in SHIPPED if p.stem == stem)


def test_every_shipped_policy_has_a_case_table():
    assert sorted(policy_for(c).name for c in CASES) == sorted(p.name for p in SHIPPED)


@pytest.mark.parametrize("cases", CASES, ids=[c.name for c in CASES])
def test_case_table_passes(cases):
    result = run_cases(policy_for(cases), cases)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith(" passed, 0 failed")
    assert "FAIL" not in result.stdout


@pytest.mark.parametrize(("case", "shown"), [
    ("{name: wrong code, tool: binance_spot_balances, args: {}, expect: TOOL_DENIED}",
     "FAIL  wrong code: expected TOOL_DENIED, got ALLOWED"),
    ("{name: wrong rule, tool: binance_spot_balances, args: {}, expect: ALLOWED, rule: default}",
     "FAIL  wrong rule: expected ALLOWED at default, got ALLOWED at classes.read"),
    ("{name: bad args, tool: binance_spot_orderbook, args: {}, expect: ALLOWED}", "got INVALID_CASE"),
    ("just a string", "FAIL  case 2: not a mapping"),
    ("{name: bad price, tool: binance_spot_price, args: {}, prices: {BTCUSDT: lots}, expect: ALLOWED}",
     "FAIL  bad price: expected ALLOWED, got INVALID_CASE"),
])
def test_a_wrong_case_fails_the_run(tmp_path, case, shown):
    cases = tmp_path / "wrong.cases.yaml"
    cases.write_text("- {name: right, tool: binance_spot_price, args: {}, expect: ALLOWED}\n"
                     f"- {case}\n", encoding="utf-8")
    result = run_cases(POLICIES / "read-only.yaml", cases)
    assert result.returncode == 1
    assert "PASS  right" in result.stdout
    assert shown in result.stdout
    assert result.stdout.rstrip().endswith("1 passed, 1 failed")
