"""`binance-mcp policy check | explain | schema` as a policy author runs them: subprocesses, no exchange."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from binance_mcp.catalog import ALL_TOOLS
from tests.helpers import PROTECTED

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
SHIPPED = sorted([*POLICIES.glob("*.yaml"), *POLICIES.glob("*.json")])
SPOT = "binance_spot_place_order"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "binance_mcp", "policy", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def sections(stdout: str) -> dict[str, dict[str, list[str]]]:
    """`policy check` output -> {file: {tool: [risk, action..., rule, limits...]}}."""
    out: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in stdout.splitlines():
        if line and not line.startswith(" "):
            current = out.setdefault(line.split(": ")[0], {})
        elif line.startswith("  binance_") and current is not None:
            name, *rest = line.split()
            current[name] = rest
    return out


# -- check ------------------------------------------------------------------------------------
def test_check_prints_the_effective_rule_of_every_tool_for_each_shipped_policy():
    result = cli("check", *(str(p.relative_to(ROOT)) for p in SHIPPED))
    assert result.returncode == 0, result.stdout + result.stderr
    found = sections(result.stdout)
    assert set(found) == {str(p.relative_to(ROOT)) for p in SHIPPED}
    for path in SHIPPED:
        assert f"{path.relative_to(ROOT)}: OK (version 1, default deny, mode enforce" in result.stdout
        assert list(found[str(path.relative_to(ROOT))]) == [t.name for t in ALL_TOOLS]  # all 36, in order
    read_only = found["policies/read-only.yaml"]
    assert read_only[SPOT] == ["financial", "deny", "(hidden)", "classes.financial"]
    assert read_only["binance_spot_price"] == ["read", "allow", "classes.read"]
    spot = found["policies/spot-trader.yaml"][SPOT]
    assert spot[:3] == ["financial", "allow", f"tools.{SPOT}"]
    assert {"symbols=BTCUSDT,ETHUSDT", "max_notional_usd=500", "rate=10/60s", "approval_above=250USD"} <= set(spot)
    layer = found["policies/policylayer-binance.json"]
    assert layer["binance_spot_balances"] == ["read", "allow", "tools.binance_spot_balances"]
    assert layer["binance_account_info"] == ["read", "deny", "(hidden)", "default"]
    assert layer["binance_policy_status"] == ["read", "allow", "default"]


def test_check_on_a_broken_file_exits_non_zero_with_file_and_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\ntools:\n  binance_spot_place_order:\n    limits: {max_leverage: 5}\n")
    result = cli("check", "policies/read-only.yaml", str(broken))
    assert result.returncode == 1
    assert f"{broken}: INVALID" in result.stdout
    assert f"{broken}:4: tools.{SPOT}.limits.max_leverage: cannot apply to {SPOT}" in result.stdout
    assert "policies/read-only.yaml: OK" in result.stdout  # the good file is still checked


def test_check_on_a_shipped_broken_example():
    result = cli("check", "policies/broken/unknown-tool.yaml")
    assert result.returncode == 1
    assert "policies/broken/unknown-tool.yaml:4: tools.binance_spot_balance: unknown tool" in result.stdout


# -- explain ----------------------------------------------------------------------------------
MARKET_BUY = json.dumps({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0125"})


def explain(*args: str, policy: str = "policies/spot-trader.yaml") -> subprocess.CompletedProcess:
    return cli("explain", policy, *args)


def fields(stdout: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in stdout.splitlines())
            if k and not k.startswith(" ")}


def test_explain_prints_effect_code_rule_reason_and_steps():
    result = explain("--tool", SPOT, "--args", MARKET_BUY, "--price", "BTCUSDT=100000")
    assert result.returncode == 0, result.stderr
    out = fields(result.stdout)
    assert out["effect"] == "deny"
    assert out["code"] == "NOTIONAL_OVER_LIMIT"
    assert out["rule"] == f"tools.{SPOT}.limits.max_notional_usd"
    assert out["reason"] == ("order notional 1,250.00 USD is over the 500 USD limit of rule "
                             f"tools.{SPOT}.limits.max_notional_usd. Reduce quantity to at most 0.005.")
    assert "notional_usd=1250" in out["facts"]
    steps = result.stdout.split("steps:\n", 1)[1].splitlines()
    assert steps == ["  - kill switch: ok", f"  - tools.{SPOT}: allow: ok", f"  - tools.{SPOT}.limits.symbols: ok",
                     f"  - tools.{SPOT}.limits.sides: ok", f"  - tools.{SPOT}.limits.order_types: ok",
                     f"  - tools.{SPOT}.limits.max_notional_usd: NOTIONAL_OVER_LIMIT"]


def test_explain_without_a_price_says_which_price_to_pass():
    result = explain("--tool", SPOT, "--args", MARKET_BUY)
    assert result.returncode == 0, result.stderr
    out = fields(result.stdout)
    assert (out["effect"], out["code"]) == ("deny", "POLICY_ERROR")
    assert out["rule"] == f"tools.{SPOT}.limits.max_notional_usd"
    assert "pass --price BTCUSDT=<price>" in out["reason"]


def test_explain_without_a_price_still_reports_an_earlier_denial():
    args = json.dumps({"symbol": "DOGEUSDT", "side": "BUY", "type": "MARKET", "quantity": "100"})
    out = fields(explain("--tool", SPOT, "--args", args).stdout)
    assert (out["code"], out["rule"]) == ("SYMBOL_NOT_ALLOWED", f"tools.{SPOT}.limits.symbols")


def test_explain_without_the_conversion_price_names_it(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(f"version: 1\ntools:\n  {SPOT}:\n    limits: {{max_notional_usd: 100}}\n")
    args = json.dumps({"symbol": "ETHBTC", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "0.05"})
    out = fields(cli("explain", str(path), "--tool", SPOT, "--args", args, "--price", "ETHBTC=0.05").stdout)
    assert out["code"] == "POLICY_ERROR"
    assert "pass --price BTCUSDT=<price>" in out["reason"]
    out = fields(cli("explain", str(path), "--tool", SPOT, "--args", args, "--price", "ETHBTC=0.05", "--price", "BTCUSDT=0").stdout)
    assert (out["code"], out["rule"]) == ("POLICY_ERROR", f"tools.{SPOT}.limits.max_notional_usd")
    out = fields(cli("explain", str(path), "--tool", SPOT, "--args", args, "--price", "ETHBTC=0.05", "--price", "BTCUSDT=100000").stdout)
    assert out["code"] == "NOTIONAL_OVER_LIMIT"  # 0.05 BTC at 100,000 USD = 5,000 USD
    assert "5,000.00 USD" in out["reason"]


def test_explain_leverage_and_used_inputs(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\ntools:\n  binance_futures_place_order:\n    limits: {max_leverage: 5}\n"
                    "account: {daily_notional_usd: 1000}\n")
    args = json.dumps({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"})
    base = ("explain", str(path), "--tool", "binance_futures_place_order", "--args", args, "--price", "BTCUSDT=100000")
    assert fields(cli(*base, "--leverage", "BTCUSDT=6").stdout)["code"] == "LEVERAGE_OVER_LIMIT"
    assert fields(cli(*base, "--leverage", "BTCUSDT=5").stdout)["code"] == "ALLOWED"
    out = fields(cli(*base, "--leverage", "BTCUSDT=5", "--used", "account=900.01").stdout)
    assert (out["code"], out["rule"]) == ("DAILY_NOTIONAL_OVER_LIMIT", "account.daily_notional_usd")


@pytest.mark.parametrize(("args", "message"), [
    (("--tool", SPOT, "--args", "{not json"), "binance-mcp policy explain:"),
    (("--tool", SPOT, "--args", json.dumps({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                             "quantity": "1", "price": "1"})), "takes no price"),
    (("--tool", "binance_nothing", "--args", "{}"), "unknown tool 'binance_nothing'"),
    (("--tool", SPOT, "--args", MARKET_BUY, "--price", "BTCUSDT"), "is not KEY=VALUE"),
])
def test_explain_refuses_bad_input(args, message):
    result = explain(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_explain_on_a_broken_policy_shows_the_load_error():
    result = cli("explain", "policies/broken/negative-limit.yaml", "--tool", SPOT, "--args", MARKET_BUY)
    assert result.returncode == 2
    assert "policies/broken/negative-limit.yaml:5: tools.binance_spot_place_order.limits.max_notional_usd" in \
        result.stderr


# -- schema -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    result = cli("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_schema_validates_the_shipped_policies(validator, path):
    data = yaml.safe_load(path.read_text()) if path.suffix == ".yaml" else json.loads(path.read_text())
    assert [e.message for e in validator.iter_errors(data)] == []


@pytest.mark.parametrize("text", [
    "version: '1'\ntools: {binance_spot_balances: {}}\n",
    "version: 1\nclasses: {read: allow, financial: {action: require_approval}}\n",
    "version: 1\ntools:\n  binance_spot_balances:\naccount: {rate_limit: 10/minute}\n",
    f"version: 1\ntools:\n  {SPOT}: {{rate_limit: '5/10s', limits: {{max_notional_usd: 10.5}}}}\n",
    "version: 1\nclasses:\ntools:\naccount:\n",
])
def test_schema_accepts_the_short_forms_the_loader_reads(validator, text):
    assert [e.message for e in validator.iter_errors(yaml.safe_load(text))] == []


@pytest.mark.parametrize("text", [
    "version: 1\nbogus: 1\n",
    f"version: 1\ntools:\n  {SPOT}: {{limits: {{max_notionl_usd: 5}}}}\n",
    "version: 1\ntools: {binance_spot_balance: allow}\n",
    "version: 2\n",
    "version: 1\nclasses: {read: maybe}\n",
    f"version: 1\ntools:\n  {SPOT}: {{limits: {{max_notional_usd: -1}}}}\n",
])
def test_schema_rejects_what_the_loader_rejects(validator, text):
    assert list(validator.iter_errors(yaml.safe_load(text)))


@pytest.mark.parametrize(("rules", "warned"), [
    ("tools:\n  binance_futures_place_order: {limits: {max_leverage: 5}}\n", "binance_futures_change_leverage is allowed"),
    ("tools:\n  binance_futures_change_leverage: {limits: {max_leverage: 5}}\n", "binance_futures_place_order is allowed"),
])
def test_check_warns_when_leverage_is_capped_in_one_place_only(tmp_path, rules, warned):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\ndefault: allow\n" + rules)
    out = cli("check", str(path)).stdout
    assert "warning: max_leverage caps" in out and warned in out, out


@pytest.mark.parametrize("extra", [
    "account: {max_leverage: 5}\n",  # binds both
    "  binance_futures_change_leverage: {action: deny}\n",  # the other way is closed
    "  binance_futures_change_leverage: {limits: {max_leverage: 3}}\n",  # capped too
])
def test_check_does_not_warn_when_every_way_is_capped(tmp_path, extra):
    path = tmp_path / "p.yaml"
    rules = "tools:\n  binance_futures_place_order: {limits: {max_leverage: 5}}\n"
    path.write_text("version: 1\ndefault: allow\n" + (rules + extra if extra.startswith("  ") else rules + extra))
    out = cli("check", str(path)).stdout
    assert "OK" in out and "warning" not in out, out


# -- protections in check, explain and test -----------------------------------------------------
BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}  # 1,000 USD at 100,000


def test_policy_test_runs_protection_cases(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(PROTECTED)
    calm = {"equity_usd": 10000, "equity_start_usd": 10000, "gross_exposure_usd": 0}
    cases = [
        {"name": "calm day", "tool": SPOT, "args": BUY, "prices": {"BTCUSDT": 100000}, "account": calm,
         "expect": "ALLOWED"},
        {"name": "lost 301", "tool": SPOT, "args": BUY, "prices": {"BTCUSDT": 100000},
         "account": {**calm, "equity_usd": 9699}, "expect": "DAILY_LOSS_LIMIT",
         "rule": "account.protections.max_daily_loss_usd"},
        {"name": "5.1 % off the peak", "tool": SPOT, "args": BUY, "prices": {"BTCUSDT": 100000},
         "account": {**calm, "equity_peak_usd": 10540, "equity_usd": 10000}, "expect": "DRAWDOWN_LIMIT"},
        {"name": "tripped earlier", "tool": SPOT, "args": BUY, "prices": {"BTCUSDT": 100000},
         "account": {**calm, "tripped": ["max_drawdown_pct"]}, "expect": "DRAWDOWN_LIMIT"},
        {"name": "three losses", "tool": SPOT, "args": BUY, "prices": {"BTCUSDT": 100000},
         "account": {**calm, "losing_closes_ago": [60, 120, 180]}, "expect": "LOSS_STREAK_COOLDOWN"},
        {"name": "just closed", "tool": SPOT, "args": BUY, "prices": {"BTCUSDT": 100000},
         "account": {**calm, "closed_ago": 299}, "expect": "COOLDOWN"},
        {"name": "closed long ago", "tool": SPOT, "args": BUY, "prices": {"BTCUSDT": 100000},
         "account": {**calm, "closed_ago": 300}, "expect": "ALLOWED"},
        {"name": "gross over", "tool": SPOT, "args": BUY, "prices": {"BTCUSDT": 100000},
         "account": {**calm, "gross_exposure_usd": 4000.01}, "expect": "EXPOSURE_OVER_LIMIT"},
        {"name": "a sell into USDT is not exposure", "tool": SPOT, "args": {**BUY, "side": "SELL"},
         "prices": {"BTCUSDT": 100000}, "account": {"tripped": ["max_daily_loss_usd"]}, "expect": "ALLOWED"},
        {"name": "no equity given", "tool": SPOT, "args": BUY, "prices": {"BTCUSDT": 100000}, "expect": "POLICY_ERROR"},
    ]
    (tmp_path / "cases.yaml").write_text(yaml.safe_dump(cases))
    r = cli("test", str(policy), str(tmp_path / "cases.yaml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "10 passed, 0 failed" in r.stdout
    # A wrong expectation fails the run.
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump([{**cases[1], "expect": "ALLOWED"}]))
    assert cli("test", str(policy), str(tmp_path / "bad.yaml")).returncode == 1


def test_explain_says_which_account_figure_to_pass_and_check_lists_the_protections(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(PROTECTED)
    r = cli("explain", str(policy), "--tool", SPOT, "--args", json.dumps(BUY), "--price", "BTCUSDT=100000")
    assert r.returncode == 0 and "code:     POLICY_ERROR" in r.stdout
    assert "pass equity_usd and equity_start_usd in --account" in r.stdout
    r = cli("explain", str(policy), "--tool", SPOT, "--args", json.dumps(BUY), "--price", "BTCUSDT=100000",
            "--account", json.dumps({"equity_usd": 1, "bogus": 2}))
    assert r.returncode == 2 and "unknown account key(s) bogus" in r.stderr
    r = cli("check", str(policy))
    assert r.returncode == 0 and "account.protections: max_daily_loss_usd=300" in r.stdout
