"""``loosenings(old, new)``: a change applies at once in service mode only when it only tightens. Each field in both
directions, effective rules (tool, class, default), globs, and a walk of the model that fails when a field is added
without a judgement in tighten.py."""

from __future__ import annotations

import typing

import pytest
import yaml
from pydantic import BaseModel

from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.policy import tighten
from binance_mcp.policy.loader import parse_text
from binance_mcp.policy.model import Limits, Policy
from binance_mcp.policy.tighten import JUDGED, UNPROVEN, loosenings

SPOT = "binance_spot_place_order"
FUT = "binance_futures_place_order"
T = f"tools.{SPOT}"
F = f"tools.{FUT}"
READ = [t.name for t in ALL_TOOLS if t.risk == "read"]
DESTRUCTIVE = [t.name for t in ALL_TOOLS if t.risk == "destructive"]


def policy(tools: dict | None = None, account: dict | None = None, **top) -> Policy:
    """A policy as a file would say it (through the loader, so every case is a policy the server accepts)."""
    doc = {"version": 1, "default": "deny", "classes": {"read": "allow"}, **top}
    if tools is not None:
        doc["tools"] = tools
    if account is not None:
        doc["account"] = account
    return parse_text(yaml.safe_dump(doc), "p.yaml").policy


def spot(**rule) -> Policy:
    return policy({SPOT: {"action": "allow", **rule}})


def fut(**limits) -> Policy:
    return policy({FUT: {"action": "allow", "limits": limits}})


def acct(**account) -> Policy:
    return policy(account=account)


# (case, old, new): the new policy is at least as strict, so nothing waits for a human
TIGHTER = [
    ("identical", spot(limits={"max_notional_usd": 500}), spot(limits={"max_notional_usd": 500})),
    ("a lower cap", spot(limits={"max_notional_usd": 1000}), spot(limits={"max_notional_usd": 500})),
    ("a cap added", spot(), spot(limits={"max_notional_usd": 500})),
    ("approvals on the console only", spot(approval_above={"notional_usd": 500}),
     spot(approval_above={"notional_usd": 500, "channel": "console"})),
    ("allow -> require_approval", spot(), policy({SPOT: "require_approval"})),
    ("allow -> deny", spot(), policy({SPOT: "deny"})),
    ("require_approval -> deny", policy({SPOT: "require_approval"}), policy({SPOT: "deny"})),
    ("deny drops every limit", spot(limits={"max_notional_usd": 5}, rate_limit="1/minute"), policy({SPOT: "deny"})),
    ("default allow -> deny", policy(default="allow"), policy(default="deny")),
    ("shadow -> enforce", policy(mode="shadow"), policy(mode="enforce")),
    ("an exact symbol an old glob matched", spot(limits={"symbols": ["BTCUSDT", "ETH*"]}),
     spot(limits={"symbols": ["ETHUSDT", "BTCUSDT"]})),
    ("the same glob", spot(limits={"symbols": ["ETH*"]}), spot(limits={"symbols": ["ETH*"]})),
    ("anything under an old *", spot(limits={"symbols": ["*"]}), spot(limits={"symbols": ["X*", "BTCUSDT"]})),
    ("an allow-list added", spot(), spot(limits={"symbols": ["BTCUSDT"]})),
    ("an empty allow-list", spot(limits={"symbols": ["BTCUSDT"]}), spot(limits={"symbols": []})),
    ("a deny-list grows", spot(limits={"deny_symbols": ["DOGE*"]}), spot(limits={"deny_symbols": ["DOGE*", "SHIB*"]})),
    ("an exact deny under a new glob", spot(limits={"deny_symbols": ["DOGEUSDT"]}),
     spot(limits={"deny_symbols": ["DOGE*"]})),
    ("fewer sides", spot(limits={"sides": ["BUY", "SELL"]}), spot(limits={"sides": ["BUY"]})),
    ("fewer order types", spot(limits={"order_types": ["LIMIT", "MARKET"]}), spot(limits={"order_types": ["LIMIT"]})),
    ("fewer calls per window", spot(rate_limit="10/minute"), spot(rate_limit="5/minute")),
    ("a longer window", spot(rate_limit="10/minute"), spot(rate_limit="10/hour")),
    ("a rate limit added", spot(), spot(rate_limit="10/minute")),
    ("a lower approval threshold", spot(approval_above={"notional_usd": 1000}),
     spot(approval_above={"notional_usd": 500})),
    ("an approval threshold added", spot(), spot(approval_above={"notional_usd": 500})),
    ("require_approval makes a threshold moot", spot(approval_above={"notional_usd": 500}),
     policy({SPOT: "require_approval"})),
    ("reduce_only added", fut(), fut(reduce_only=True)),
    ("a lower leverage cap", fut(max_leverage=10), fut(max_leverage=5)),
    ("fewer open orders", fut(max_open_orders=5), fut(max_open_orders=0)),
    ("a reason reworded", policy({SPOT: {"action": "deny", "reason": "no"}}),
     policy({SPOT: {"action": "deny", "reason": "not today"}})),
    ("a rule moved from a class to the tool, same effect",
     policy(classes={"read": "allow", "financial": {"action": "allow", "rate_limit": "5/minute"}}),
     policy({SPOT: {"action": "allow", "rate_limit": "5/minute"}},
            classes={"read": "allow", "financial": {"action": "allow", "rate_limit": "5/minute"}})),
    ("a deny rule removed, the default denies too", policy({SPOT: "deny"}), policy()),
    ("account caps lower", acct(daily_notional_usd=1000, max_leverage=10, rate_limit="20/minute"),
     acct(daily_notional_usd=500, max_leverage=5, rate_limit="10/minute")),
    ("a kill switch added, scope all", acct(), acct(kill_switch_file="/run/STOP", kill_switch_scope="all")),
    ("a dead man's switch added, then shorter", acct(dead_man_switch={"seconds": 120}),
     acct(dead_man_switch={"seconds": 60})),
    ("protections stricter",
     acct(protections={"max_daily_loss_usd": 200, "max_drawdown_pct": 10, "max_gross_exposure_usd": 5000,
                       "cooldown_after_close": 60, "loss_streak": {"losses": 3, "window": 3600, "cooldown": 600}}),
     acct(protections={"max_daily_loss_usd": 100, "max_drawdown_pct": 5, "max_gross_exposure_usd": 1000,
                       "cooldown_after_close": 120, "loss_streak": {"losses": 2, "window": 7200, "cooldown": 1800}})),
    ("protections added", acct(), acct(protections={"max_daily_loss_usd": 100})),
]


@pytest.mark.parametrize(("old", "new"), [c[1:] for c in TIGHTER], ids=[c[0] for c in TIGHTER])
def test_a_change_that_only_tightens_has_no_loosening(old, new):
    assert loosenings(old, new) == []


# (case, old, new, the lines): each names the rule path and old -> new
LOOSER = [
    ("a higher cap", spot(limits={"max_notional_usd": 500}), spot(limits={"max_notional_usd": 1000}),
     [f"{T}.limits.max_notional_usd: 500 -> 1000 (higher)"]),
    ("a cap removed", spot(limits={"max_notional_usd": 500}), spot(),
     [f"{T}.limits.max_notional_usd: 500 -> removed"]),
    ("a daily cap, a deviation cap, a decimal", spot(limits={"daily_notional_usd": 100, "max_price_deviation_pct": 1.5}),
     spot(limits={"daily_notional_usd": 100.5, "max_price_deviation_pct": 2}),
     [f"{T}.limits.daily_notional_usd: 100 -> 100.5 (higher)",
      f"{T}.limits.max_price_deviation_pct: 1.5 -> 2 (higher)"]),
    ("deny -> allow", policy({SPOT: "deny"}), spot(), [f"{T}.action: deny -> allow"]),
    ("deny -> require_approval", policy({SPOT: "deny"}), policy({SPOT: "require_approval"}),
     [f"{T}.action: deny -> require_approval"]),
    ("require_approval -> allow", policy({SPOT: "require_approval"}), spot(),
     [f"{T}.action: require_approval -> allow"]),
    ("enforce -> shadow", policy(), policy(mode="shadow"), ["mode: enforce -> shadow"]),
    ("a symbol added", spot(limits={"symbols": ["BTCUSDT"]}), spot(limits={"symbols": ["BTCUSDT", "ETHUSDT"]}),
     [f"{T}.limits.symbols: adds ETHUSDT"]),
    ("an exact symbol widened to a glob", spot(limits={"symbols": ["ETHUSDT"]}), spot(limits={"symbols": ["ETH*"]}),
     [f"{T}.limits.symbols: adds ETH* ({UNPROVEN}: ETH* may match more)"]),
    ("a narrower glob cannot be shown", spot(limits={"symbols": ["ETH*"]}), spot(limits={"symbols": ["ETHB*"]}),
     [f"{T}.limits.symbols: adds ETHB* ({UNPROVEN}: ETHB* may match more)"]),
    ("an exact symbol no old glob matches", spot(limits={"symbols": ["ETH*"]}), spot(limits={"symbols": ["BTCUSDT"]}),
     [f"{T}.limits.symbols: adds BTCUSDT"]),
    ("an allow-list removed", spot(limits={"symbols": ["BTCUSDT"]}), spot(),
     [f"{T}.limits.symbols: [BTCUSDT] -> removed (anything allowed)"]),
    ("a deny glob narrowed to a symbol", spot(limits={"deny_symbols": ["DOGE*"]}),
     spot(limits={"deny_symbols": ["DOGEUSDT"]}), [f"{T}.limits.deny_symbols: no longer denies DOGE*"]),
    ("a deny-list removed", spot(limits={"deny_symbols": ["DOGE*"]}), spot(),
     [f"{T}.limits.deny_symbols: [DOGE*] -> removed (nothing denied)"]),
    ("a side added", spot(limits={"sides": ["BUY"]}), spot(limits={"sides": ["BUY", "SELL"]}),
     [f"{T}.limits.sides: adds SELL"]),
    ("an order type added", spot(limits={"order_types": ["LIMIT"]}), spot(limits={"order_types": ["LIMIT", "MARKET"]}),
     [f"{T}.limits.order_types: adds MARKET"]),
    ("more calls", spot(rate_limit="5/minute"), spot(rate_limit="10/minute"), [f"{T}.rate_limit.max: 5 -> 10 (more calls)"]),
    ("a shorter window", spot(rate_limit="5/minute"), spot(rate_limit="5/second"),
     [f"{T}.rate_limit.window: 60 -> 1 (shorter window)"]),
    ("fewer calls in a shorter window", spot(rate_limit="10/minute"), spot(rate_limit="5/second"),
     [f"{T}.rate_limit.window: 60 -> 1 (shorter window)"]),
    ("the same rate, more calls in a longer window", spot(rate_limit="10/minute"), spot(rate_limit="20/2minute"),
     [f"{T}.rate_limit.max: 10 -> 20 (more calls)"]),
    ("a rate limit removed", spot(rate_limit="5/minute"), spot(), [f"{T}.rate_limit: {{max: 5, window: 60}} -> removed"]),
    ("a higher approval threshold", spot(approval_above={"notional_usd": 500}), spot(approval_above={"notional_usd": 900}),
     [f"{T}.approval_above.notional_usd: 500 -> 900 (higher)"]),
    ("an approval threshold removed", spot(approval_above={"notional_usd": 500}), spot(),
     [f"{T}.approval_above: {{notional_usd: 500}} -> removed"]),
    ("the console no longer required", spot(approval_above={"notional_usd": 500, "channel": "console"}),
     spot(approval_above={"notional_usd": 500}),
     [f"{T}.approval_above.channel: console -> none (a form answered in the client counts again over stdio)"]),
    ("the console channel changed to any", spot(approval_above={"notional_usd": 500, "channel": "console"}),
     spot(approval_above={"notional_usd": 500, "channel": "any"}),
     [f"{T}.approval_above.channel: console -> any (a form answered in the client counts again over stdio)"]),
    ("reduce_only off", fut(reduce_only=True), fut(reduce_only=False), [f"{F}.limits.reduce_only: true -> false"]),
    ("reduce_only removed", fut(reduce_only=True), fut(), [f"{F}.limits.reduce_only: true -> removed"]),
    ("leverage, open orders, position", fut(max_leverage=5, max_open_orders=2, max_position_notional_usd=100),
     fut(max_leverage=6, max_open_orders=3, max_position_notional_usd=101),
     [f"{F}.limits.max_open_orders: 2 -> 3 (higher)", f"{F}.limits.max_leverage: 5 -> 6 (higher)",
      f"{F}.limits.max_position_notional_usd: 100 -> 101 (higher)"]),
    ("account caps", acct(daily_notional_usd=500, max_leverage=5), acct(max_leverage=10),
     ["account.daily_notional_usd: 500 -> removed", "account.max_leverage: 5 -> 10 (higher)"]),
    ("an account rate limit", acct(rate_limit="10/minute"), acct(rate_limit="10/second"),
     ["account.rate_limit.window: 60 -> 1 (shorter window)"]),
    ("the kill switch removed", acct(kill_switch_file="/run/STOP"), acct(), ["account.kill_switch_file: removed"]),
    ("the kill switch moved", acct(kill_switch_file="/run/STOP"), acct(kill_switch_file="/run/GO"),
     ["account.kill_switch_file: /run/STOP -> /run/GO (a file at the old path no longer stops trading)"]),
    ("kill switch scope all -> exposure", acct(kill_switch_scope="all"), acct(),
     ["account.kill_switch_scope: all -> exposure"]),
    ("the dead man's switch removed", acct(dead_man_switch={"seconds": 60}), acct(),
     ["account.dead_man_switch: {seconds: 60} -> removed"]),
    ("the dead man's switch longer", acct(dead_man_switch={"seconds": 60}), acct(dead_man_switch={"seconds": 600}),
     ["account.dead_man_switch.seconds: 60 -> 600 (longer)"]),
    ("protections looser",
     acct(protections={"max_daily_loss_usd": 100, "max_drawdown_pct": 5, "max_gross_exposure_usd": 1000,
                       "cooldown_after_close": 120, "loss_streak": {"losses": 2, "window": 7200, "cooldown": 1800}}),
     acct(protections={"max_daily_loss_usd": 200, "max_drawdown_pct": 10, "max_gross_exposure_usd": 5000,
                       "cooldown_after_close": 60, "loss_streak": {"losses": 3, "window": 3600, "cooldown": 600}}),
     ["account.protections.max_daily_loss_usd: 100 -> 200 (higher)",
      "account.protections.max_drawdown_pct: 5 -> 10 (higher)",
      "account.protections.loss_streak.losses: 2 -> 3 (more losses)",
      "account.protections.loss_streak.window: 7200 -> 3600 (shorter window)",
      "account.protections.loss_streak.cooldown: 1800 -> 600 (shorter)",
      "account.protections.max_gross_exposure_usd: 1000 -> 5000 (higher)",
      "account.protections.cooldown_after_close: 120 -> 60 (shorter)"]),
    ("protections removed",
     acct(protections={"max_drawdown_pct": 5, "loss_streak": {"losses": 2, "window": 60, "cooldown": 60}}), acct(),
     ["account.protections.max_drawdown_pct: 5 -> removed",
      "account.protections.loss_streak: {losses: 2, window: 60, cooldown: 60} -> removed"]),
    ("a tool's rule moved into a looser class rule",
     policy({SPOT: {"action": "allow", "limits": {"max_notional_usd": 500}}},
            classes={"read": "allow", "financial": "allow"}),
     policy(classes={"read": "allow", "financial": "allow"}),
     [f"{SPOT} (its rule moved from {T} to classes.financial): limits.max_notional_usd: 500 -> removed"]),
    ("a tool's deny removed, the default allows",
     policy({SPOT: "deny"}, default="allow", classes={"read": "allow", "financial": "deny", "destructive": "deny"}),
     policy(default="allow", classes={"read": "allow", "destructive": "deny"}),
     [f"{t.name} (its rule moved from {'tools.' + t.name if t.name == SPOT else 'classes.financial'} to default): "
      "action: deny -> allow" for t in ALL_TOOLS if t.risk == "financial"]),
]


@pytest.mark.parametrize(("old", "new", "lines"), [c[1:] for c in LOOSER], ids=[c[0] for c in LOOSER])
def test_each_loosening_is_a_line_naming_the_rule_and_old_to_new(old, new, lines):
    assert loosenings(old, new) == lines


def test_a_looser_default_names_the_tools_it_governs():
    old = policy(classes={"read": "allow", "financial": "deny"})
    assert loosenings(old, policy(default="allow", classes={"read": "allow", "financial": "deny"})) == [
        f"default: deny -> allow (for {', '.join(DESTRUCTIVE)})"]


def test_a_looser_default_counts_even_when_no_tool_falls_under_it():
    every = {"read": "allow", "financial": "deny", "destructive": "deny"}
    assert loosenings(policy(classes=every), policy(default="allow", classes=every)) == ["default: deny -> allow"]


def test_a_class_rule_is_judged_for_the_tools_it_governs():
    old = policy(classes={"read": {"action": "allow", "rate_limit": "10/minute"}})
    (line,) = loosenings(old, policy(classes={"read": "allow"}))
    assert line == (f"classes.read.rate_limit: {{max: 10, window: 60}} -> removed (for {len(READ)} tools: "
                    f"{', '.join(READ[:5])} and {len(READ) - 5} more)")


def test_a_class_rule_no_tool_falls_under_changes_nothing():
    """Every destructive tool has its own rule: the destructive class rule governs nothing, so loosening it does
    not loosen the policy."""
    own = {name: "deny" for name in DESTRUCTIVE}
    old = policy(own, classes={"read": "allow", "destructive": "deny"})
    assert loosenings(old, policy(own, classes={"read": "allow", "destructive": "allow"})) == []


def test_the_status_tool_is_always_allowed_so_its_action_is_not_judged():
    old = policy({"binance_policy_status": "deny"})
    assert loosenings(old, policy({"binance_policy_status": "allow"})) == []


def test_several_loosenings_each_get_a_line():
    old = policy({SPOT: {"action": "allow", "limits": {"symbols": ["BTCUSDT"], "max_notional_usd": 500}}},
                 account={"kill_switch_file": "/run/STOP"})
    new = policy({SPOT: {"action": "allow", "limits": {"symbols": ["BTCUSDT", "ETHUSDT"], "max_notional_usd": 1000}}},
                 default="allow", mode="shadow")
    assert loosenings(old, new) == [
        "default: deny -> allow (for 8 tools: binance_spot_cancel_order, binance_spot_cancel_all_orders, "
        "binance_futures_place_order, binance_futures_cancel_order, binance_futures_cancel_all_orders and 3 more)",
        "mode: enforce -> shadow",
        f"{T}.limits.symbols: adds ETHUSDT",
        f"{T}.limits.max_notional_usd: 500 -> 1000 (higher)",
        "account.kill_switch_file: removed",
    ]
    assert loosenings(new, old) == []  # and back is only tighter


# -- every field of the model has a judgement -------------------------------------------------

def _models(annotation) -> list[type[BaseModel]]:
    """The model classes inside an annotation (X | None, dict[str, X], Annotated[...])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out += _models(arg)
    return out


def _walk(model: type[BaseModel], seen: set) -> list[tuple[type[BaseModel], str]]:
    if model in seen:
        return []
    seen.add(model)
    out = []
    for name, info in model.model_fields.items():
        out.append((model, name))
        for sub in _models(info.annotation):
            out += _walk(sub, seen)
    return out


def test_every_field_of_the_policy_model_has_a_judgement():
    fields = _walk(Policy, set())
    assert len(fields) > 40  # the walk reached the nested sections
    missing = [f"{m.__name__}.{n}" for m, n in fields if n not in JUDGED.get(m, {})]
    assert missing == [], (f"policy fields without a rule in binance_mcp/policy/tighten.py JUDGED: {missing}; say how "
                           "a change of each is judged (a change of an unjudged field counts as a loosening)")
    stale = [f"{m.__name__}.{n}" for m, names in JUDGED.items() for n in names if n not in m.model_fields]
    assert stale == []


def test_a_field_without_a_judgement_counts_as_a_loosening_when_it_changes(monkeypatch):
    judged = {k: v for k, v in JUDGED[Limits].items() if k != "max_notional_usd"}
    monkeypatch.setitem(tighten.JUDGED, Limits, judged)
    old, new = spot(limits={"max_notional_usd": 1000}), spot(limits={"max_notional_usd": 500})  # tighter, in truth
    assert loosenings(old, new) == [f"{T}.limits.max_notional_usd: 1000 -> 500 ({UNPROVEN})"]
    assert loosenings(old, old) == []  # unchanged is not a loosening


def test_the_model_walk_sees_through_optional_and_dict():
    assert _models(dict[str, Limits]) == [Limits]
    assert _models(Limits | None) == [Limits]
