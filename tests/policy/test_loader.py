"""Loading policies: YAML and JSON, the short forms, and load errors that name the file, line and key.

The broken examples in policies/broken/ are data: each NAME.yaml is loaded and every line of NAME.expected
must appear in its load error.
"""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.policy import engine
from binance_mcp.policy.engine import Call, Counters, Facts
from binance_mcp.policy.loader import MAX_BYTES, PolicyLoadError, load_file, parse_text

BROKEN = Path(__file__).resolve().parents[2] / "policies" / "broken"
BROKEN_FILES = sorted(BROKEN.glob("*.yaml"))
SPOT = "binance_spot_place_order"


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(PolicyLoadError) as info:
        load_file(path)
    assert info.value.path == str(path)
    return info.value.errors


def decide(policy, tool: str) -> str:
    return engine.decide(policy, Call(tool, {}), Facts(), Counters()).code


def test_yaml_and_json_load_to_the_same_policy(tmp_path):
    text = """\
        version: 1
        default: deny
        classes: {read: allow}
        tools:
          binance_spot_place_order:
            rate_limit: {max: 10, window: 60}
            limits: {symbols: [btcusdt, "ETH*"], max_notional_usd: 500.5}
        """
    as_json = {"version": 1, "default": "deny", "classes": {"read": "allow"},
               "tools": {SPOT: {"rate_limit": {"max": 10, "window": 60},
                                "limits": {"symbols": ["btcusdt", "ETH*"], "max_notional_usd": 500.5}}}}
    from_yaml = load_file(write(tmp_path, text)).policy
    from_json = load_file(write(tmp_path, json.dumps(as_json), "p.json")).policy
    assert from_yaml == from_json
    assert from_yaml.tools[SPOT].limits.symbols == ["BTCUSDT", "ETH*"]
    assert from_yaml.tools[SPOT].limits.max_notional_usd == Decimal("500.5")


def test_policylayer_policy_loads_as_published():
    loaded = parse_text('{"version": "1", "default": "deny", "tools": {"binance_spot_balances": {}}}', "pl.json")
    assert loaded.policy.version == 1
    codes = {spec.name: decide(loaded.policy, spec.name) for spec in ALL_TOOLS}
    assert codes.pop("binance_spot_balances") == "ALLOWED"
    assert codes.pop("binance_policy_status") == "ALLOWED"  # the policy's own status tool is always there
    assert set(codes.values()) == {"TOOL_DENIED"}


@pytest.mark.parametrize(("text", "max_", "window"), [
    ("10/minute", 10, 60), ("5/10s", 5, 10), ("100 / hour", 100, 3600), ("1/day", 1, 86400),
])
def test_rate_limit_strings(text, max_, window):
    policy = parse_text(f"version: 1\naccount: {{rate_limit: '{text}'}}\n", "p.yaml").policy
    assert (policy.account.rate_limit.max, policy.account.rate_limit.window) == (max_, window)


@pytest.mark.parametrize(("value", "action"), [("allow", "allow"), ("deny", "deny"), ("{}", "allow"), ("", "allow"),
                                               ("require_approval", "require_approval")])
def test_rule_short_forms(value, action):
    policy = parse_text(f"version: 1\ntools:\n  {SPOT}: {value}\n", "p.yaml").policy
    assert policy.tools[SPOT].action == action


def test_line_numbers_are_recorded_for_keys():
    loaded = parse_text("# comment\nversion: 1\ntools:\n  binance_spot_balances: {}\n", "p.yaml")
    assert loaded.line_of("tools", "binance_spot_balances") == 4


@pytest.mark.parametrize(("text", "fragments"), [
    ("version: 1\nbogus: 1\n", ["p.yaml:2: bogus: unknown key"]),
    (f"version: 1\ntools:\n  {SPOT}:\n    acton: deny\n",
     [f"p.yaml:4: tools.{SPOT}.acton: unknown key (did you mean action?)"]),
    ("version: 1\ntools:\n  binance_spot_place_ordr: allow\n",
     ["p.yaml:3: tools.binance_spot_place_ordr: unknown tool (did you mean binance_spot_place_order"]),
    ("version: 1\nclasses:\n  trading: allow\n", ["p.yaml:3: classes.trading: unknown class"]),
    (f"version: 1\ntools:\n  {SPOT}:\n    limits:\n      max_open_orders: true\n",
     [f"p.yaml:5: tools.{SPOT}.limits.max_open_orders: Input should be a valid integer"]),
    ("version: 1\ntools:\n  binance_futures_place_order:\n    limits: {reduce_only: 'yes'}\n",
     ["p.yaml:4: tools.binance_futures_place_order.limits.reduce_only: Input should be a valid boolean"]),
    (f"version: 1\ntools:\n  {SPOT}:\n    limits:\n      daily_notional_usd: -0.01\n",
     [f"p.yaml:5: tools.{SPOT}.limits.daily_notional_usd: Input should be greater than or equal to 0"]),
    (f"version: 1\ntools:\n  {SPOT}:\n    limits: {{max_leverage: 3}}\n",
     [f"p.yaml:4: tools.{SPOT}.limits.max_leverage: cannot apply to {SPOT}"]),
    (f"version: 1\ntools:\n  {SPOT}:\n    limits: {{reduce_only: true}}\n",
     [f"p.yaml:4: tools.{SPOT}.limits.reduce_only: cannot apply to {SPOT}"]),
    ("version: 1\ntools:\n  binance_spot_price:\n    limits: {max_notional_usd: 3}\n",
     ["p.yaml:4: tools.binance_spot_price.limits.max_notional_usd: cannot apply"]),
    ("version: 1\ntools:\n  binance_account_info:\n    limits: {symbols: [BTCUSDT]}\n",
     ["p.yaml:4: tools.binance_account_info.limits.symbols: cannot apply"]),
    ("version: 1\ntools:\n  binance_spot_price:\n    approval_above: {notional_usd: 5}\n",
     ["p.yaml:4: tools.binance_spot_price.approval_above: only order tools have a notional"]),
    ("version: 1\nclasses:\n  financial:\n    approval_above: {notional_usd: 5}\n",
     ["p.yaml:4: classes.financial.approval_above: limits and approval_above belong to a tool rule"]),
    ("version: 1\ntools:\n  binance_spot_balances: {}\n  binance_spot_balances: deny\n",
     ["p.yaml:4: tools.binance_spot_balances: duplicate key (first on line 3)"]),
    ("version: 1\ndefault: allow\ndefault: deny\n", ["p.yaml:3: default: duplicate key (first on line 2)"]),
    ("version: 1\ntools: {binance_spot_balances: allow\n", ["p.yaml:3: not valid policy YAML"]),
    ("version: 1\n\ttools: {}\n", ["p.yaml:2: not valid policy YAML"]),
    ("- version: 1\n", ["p.yaml:1: the top level must be a mapping"]),
    ("just a sentence\n", ["p.yaml:1: the top level must be a mapping"]),
    ("", ["p.yaml: the file is empty"]),
    ("version: 2\n", ["p.yaml:1: version: Value error, version must be 1"]),
    ("version: 1\nmode: dry-run\n", ["p.yaml:2: mode: Input should be 'enforce' or 'shadow' (got 'dry-run')"]),
    ("version: 1\naccount: {rate_limit: 'lots'}\n", ["p.yaml:2: account.rate_limit: Value error, a rate limit is"]),
    ("version: 1\ntools: [binance_spot_balances]\n", ["p.yaml:2: tools: Input should be a valid dictionary"]),
    (f"version: 1\ntools:\n  {SPOT}:\n    limits: {{order_types: [LIMT]}}\n",
     [f"p.yaml:4: tools.{SPOT}.limits.order_types: 'LIMT' is not an order type of {SPOT}"]),
])
def test_load_errors_name_file_line_and_key(tmp_path, text, fragments):
    path = write(tmp_path, text)
    message = "\n".join(errors_of(path))
    for fragment in fragments:
        assert f"{path.parent}/{fragment}" in message


def test_every_problem_is_reported_at_once_in_line_order(tmp_path):
    path = write(tmp_path, f"""\
        version: 1
        defualt: deny
        tools:
          binance_spot_balanse: allow
          {SPOT}:
            limits: {{max_notional_usd: -1, max_leverage: 3}}
        """)
    errors = errors_of(path)
    assert [e.split(": ", 2)[1] for e in errors] == ["defualt", f"tools.{SPOT}.limits.max_notional_usd"]
    # consistency checks run once the shape is right, and again report everything together
    path = write(tmp_path, f"""\
        version: 1
        tools:
          binance_spot_balanse: allow
          {SPOT}:
            limits: {{max_leverage: 3, reduce_only: true}}
        """)
    errors = errors_of(path)
    assert len(errors) == 3
    assert [int(e.split(":")[1]) for e in errors] == [3, 5, 5]


def test_object_building_tags_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path, f"""\
        version: 1
        tools: !!python/object/apply:os.system ["touch {marker}"]
        default: !!python/name:os.system
        """)
    errors = errors_of(path)
    assert any(":2: tools: the YAML tag" in e and "python/object/apply:os.system" in e for e in errors)
    assert any(":3: default: the YAML tag" in e for e in errors)
    assert not marker.exists()


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("version: 1\n" + "# padding\n" * (MAX_BYTES // 10 + 1), encoding="utf-8")
    assert errors_of(path) == [f"{path}: the file is larger than 256 KiB; a policy is a short list of rules"]
    with pytest.raises(PolicyLoadError, match="larger than 256 KiB"):
        parse_text("x" * (MAX_BYTES + 1), "text")


@pytest.mark.parametrize("depth", [13, 5000])
def test_a_deeply_nested_document_is_refused(tmp_path, depth):
    path = write(tmp_path, "version: 1\ntools: " + "[" * depth + "]" * depth + "\n")
    assert "nested deeper than 12 levels" in "\n".join(errors_of(path))


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = write(tmp_path, "\n".join(lines) + "\n")  # 10**9 values once expanded
    assert "expands to more than 100000 values" in "\n".join(errors_of(path))


def test_unreadable_inputs(tmp_path):
    assert errors_of(tmp_path / "missing.yaml") == [f"{tmp_path}/missing.yaml: no such policy file"]
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("reason: caf\xe9\n".encode("latin-1"))
    assert errors_of(latin1) == [f"{latin1}: not UTF-8 text"]


def test_the_error_message_is_every_error_line():
    with pytest.raises(PolicyLoadError) as info:
        parse_text("version: 1\na: 1\nb: 2\n", "p.yaml")
    assert str(info.value).splitlines() == info.value.errors == [
        "p.yaml:2: a: unknown key; see `binance-mcp policy schema` for the keys a policy may use",
        "p.yaml:3: b: unknown key; see `binance-mcp policy schema` for the keys a policy may use"]


def test_there_are_broken_examples():
    assert len(BROKEN_FILES) >= 15
    assert {p.with_suffix(".expected") for p in BROKEN_FILES} == set(BROKEN.glob("*.expected"))


@pytest.mark.parametrize("path", BROKEN_FILES, ids=[p.stem for p in BROKEN_FILES])
def test_broken_example(path):
    message = "\n".join(errors_of(path))
    expected = [line for line in path.with_suffix(".expected").read_text().splitlines() if line.strip()]
    assert expected
    for fragment in expected:
        assert fragment in message
    assert all(line.startswith(f"{path}") for line in message.splitlines())


def test_a_kill_switch_path_expands_home_and_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KS_DIR", str(tmp_path / "ks"))
    policy = parse_text("version: 1\naccount: {kill_switch_file: ~/STOP}\n", "p.yaml").policy
    assert policy.account.kill_switch_file == str(tmp_path / "STOP")
    policy = parse_text("version: 1\naccount: {kill_switch_file: \"${KS_DIR}/STOP\"}\n", "p.yaml").policy
    assert policy.account.kill_switch_file == str(tmp_path / "ks" / "STOP")


@pytest.mark.parametrize(("path", "says"), [
    ("STOP", "must be an absolute path"),
    ("./config/STOP", "must be an absolute path"),
    ("$KS_UNSET_DIR/STOP", "KS_UNSET_DIR in kill_switch_file is not set"),
])
def test_a_kill_switch_path_that_cannot_be_resolved_is_a_load_error(monkeypatch, path, says):
    monkeypatch.delenv("KS_UNSET_DIR", raising=False)
    with pytest.raises(PolicyLoadError, match=says) as err:
        parse_text(f"version: 1\naccount:\n  kill_switch_file: {path}\n", "p.yaml")
    assert "p.yaml:3" in str(err.value)


@pytest.mark.parametrize("text", ["{}:", "?  -", "[1]: x"])
def test_a_key_that_is_not_a_plain_name_is_a_load_error(text):
    with pytest.raises(PolicyLoadError, match="a key must be a plain name"):
        parse_text(text, "p.yaml")
