"""The decision engine, table-driven: every code it reaches, the evaluation order and each limit's edge.

Each row is (policy snippet, tool, args, facts, counters, expected code, expected rule, a fragment the reason
must contain). Facts are built by hand: the engine is pure, so no exchange and no clock are involved.
"""

from __future__ import annotations

import textwrap
from decimal import Decimal

import pytest

from binance_mcp.policy import engine
from binance_mcp.policy.engine import Call, Counters, Facts
from binance_mcp.policy.guard import PolicyDenied
from binance_mcp.policy.loader import parse_text
from tests.helpers import PROTECTED

D = Decimal
SPOT, FUT, LEV = "binance_spot_place_order", "binance_futures_place_order", "binance_futures_change_leverage"
MKT = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
LMT = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "100"}
SP = f"tools.{SPOT}"
SPL = f"{SP}.limits"
FPL = f"tools.{FUT}.limits"


def load(snippet: str):
    return parse_text("version: 1\n" + textwrap.dedent(snippet), "test.yaml").policy


def spot(limits: str = "", rule: str = "", top: str = "") -> str:
    """A policy allowing spot orders: ``limits`` and other ``rule`` keys as YAML flow bodies, ``top`` level text."""
    body = ", ".join(x for x in (f"limits: {{{limits}}}" if limits else "", rule) if x)
    return f"tools:\n  {SPOT}: {{{body}}}\n{top}"


def F(notional=None, **kw) -> Facts:
    return Facts(notional_usd=None if notional is None else D(notional), **kw)


def C(kill=False, used=None, wait=None, tripped=None) -> Counters:
    return Counters(daily_used={k: D(v) for k, v in (used or {}).items()}, rate_wait=dict(wait or {}),
                    kill_switch=kill, tripped=dict(tripped or {}))


KILL = "account: {kill_switch_file: /tmp/STOP}\n"
DAILY_ACCT = "account: {daily_notional_usd: 2000}\n"
RL = f"tools:\n  {SPOT}: {{rate_limit: {{max: 10, window: 60}}}}\naccount: {{rate_limit: '120/minute'}}\n"

PR = "account.protections"
PROT = PROTECTED.removeprefix("version: 1\n")


def EQ(start="10000", now="10000", peak=None, streak=0.0, close=0.0, gross="100", adds=True) -> Facts:
    """Facts of a call under PROT: equity figures, cooldowns left, gross exposure after the order."""
    return Facts(notional_usd=D(1), adds_exposure=adds, equity_usd=D(now), equity_start_usd=D(start),
                 equity_peak_usd=D(peak or start), loss_cooldown_s=streak, close_cooldown_s=close,
                 gross_exposure_usd=D(0), gross_after_usd=D(gross))


ROWS = [
    # 1. kill switch: financial and destructive only, and it beats the tool's own denial
    ("kill-switch", "default: allow\n" + KILL, SPOT, MKT, F(), C(kill=True), "KILL_SWITCH",
     "account.kill_switch_file", "/tmp/STOP exists"),
    ("kill-switch-beats-deny", "default: deny\n" + KILL, "binance_spot_cancel_order", {"symbol": "BTCUSDT"}, F(),
     C(kill=True), "KILL_SWITCH", "account.kill_switch_file", "remove the file"),
    ("kill-switch-spares-reads", "default: allow\n" + KILL, "binance_spot_price", {}, F(), C(kill=True),
     "ALLOWED", "default", None),
    # 2. the tool's action: tool rule, else class rule, else default
    ("default-deny", "default: deny\n", SPOT, MKT, F(), C(), "TOOL_DENIED", "default",
     "A human must change the policy"),
    ("class-deny", "classes: {financial: deny}\n", FUT, MKT, F(), C(), "TOOL_DENIED", "classes.financial", None),
    ("tool-beats-class", f"classes: {{financial: deny}}\ntools: {{{SPOT}: allow}}\n", SPOT, MKT, F(), C(),
     "ALLOWED", SP, None),
    ("tool-deny-reason", f"default: allow\ntools: {{{SPOT}: {{action: deny, reason: 'Hands off.'}}}}\n", SPOT, MKT,
     F(), C(), "TOOL_DENIED", SP, "Hands off."),
    ("status-never-denied", "default: deny\nclasses: {read: deny}\n", "binance_policy_status", {}, F(), C(),
     "ALLOWED", "classes.read", None),
    # 3. limits: symbols (globs, upper-cased), deny_symbols, a missing optional symbol
    ("glob-allows", spot('symbols: ["eth*"]'), SPOT, {**MKT, "symbol": "ETHBTC"}, F(), C(), "ALLOWED", SP, None),
    ("glob-refuses", spot('symbols: ["ETH*"]'), SPOT, MKT, F(), C(), "SYMBOL_NOT_ALLOWED", f"{SPL}.symbols",
     "use one of those"),
    ("deny-symbols", spot('deny_symbols: ["*UPUSDT"]'), SPOT, {**MKT, "symbol": "BTCUPUSDT"}, F(), C(),
     "SYMBOL_NOT_ALLOWED", f"{SPL}.deny_symbols", "use another symbol"),
    ("deny-symbols-other", spot('deny_symbols: ["*UPUSDT"]'), SPOT, MKT, F(), C(), "ALLOWED", SP, None),
    ("missing-optional-symbol", "tools:\n  binance_spot_open_orders: {limits: {symbols: [BTCUSDT]}}\n",
     "binance_spot_open_orders", {}, F(), C(), "SYMBOL_NOT_ALLOWED", "tools.binance_spot_open_orders.limits.symbols",
     "give one of them as symbol"),
    ("missing-symbol-deny-list", "tools:\n  binance_spot_open_orders: {limits: {deny_symbols: [X*]}}\n",
     "binance_spot_open_orders", {}, F(), C(), "SYMBOL_NOT_ALLOWED",
     "tools.binance_spot_open_orders.limits.deny_symbols", "give a symbol"),
    ("side", spot("sides: [BUY]"), SPOT, {**MKT, "side": "SELL"}, F(), C(), "SIDE_NOT_ALLOWED", f"{SPL}.sides",
     "allowed: BUY"),
    ("order-type", spot("order_types: [LIMIT, LIMIT_MAKER]"), SPOT, MKT, F(), C(), "ORDER_TYPE_NOT_ALLOWED",
     f"{SPL}.order_types", "allowed: LIMIT, LIMIT_MAKER"),
    # notional: equal passes, a cent over fails
    ("notional-equal", spot("max_notional_usd: 500"), SPOT, MKT, F("500", quantity=D("0.01")), C(), "ALLOWED", SP,
     None),
    ("notional-over", spot("max_notional_usd: 500"), SPOT, MKT, F("500.01", quantity=D("0.01")), C(),
     "NOTIONAL_OVER_LIMIT", f"{SPL}.max_notional_usd", "Reduce quantity to at most 0.0099998."),
    ("daily-tool-equal", spot("daily_notional_usd: 2000"), SPOT, MKT, F("500"), C(used={f"tool:{SPOT}": 1500}),
     "ALLOWED", SP, None),
    ("daily-tool-over", spot("daily_notional_usd: 2000"), SPOT, MKT, F("500"), C(used={f"tool:{SPOT}": "1500.01"}),
     "DAILY_NOTIONAL_OVER_LIMIT", f"{SPL}.daily_notional_usd", "to 2,000.01 USD, over the 2000 USD"),
    ("daily-account-equal", spot(top=DAILY_ACCT), SPOT, MKT, F("500"), C(used={"account": 1500}), "ALLOWED", SP,
     None),
    ("daily-account-over", spot(top=DAILY_ACCT), SPOT, MKT, F("500.01"), C(used={"account": 1500}),
     "DAILY_NOTIONAL_OVER_LIMIT", "account.daily_notional_usd", "500.00 USD remain today"),
    ("daily-tool-before-account", spot("daily_notional_usd: 100", top=DAILY_ACCT), SPOT, MKT, F("5000"), C(),
     "DAILY_NOTIONAL_OVER_LIMIT", f"{SPL}.daily_notional_usd", None),
    ("deviation-equal", spot("max_price_deviation_pct: 3"), SPOT, LMT, F(price_deviation_pct=D("3")), C(),
     "ALLOWED", SP, None),
    ("deviation-over", spot("max_price_deviation_pct: 3"), SPOT, LMT,
     F(price_deviation_pct=D("3.01"), reference_price=D("97")), C(), "PRICE_DEVIATION",
     f"{SPL}.max_price_deviation_pct", "Move the price closer to the market"),
    ("deviation-skips-market", spot("max_price_deviation_pct: 3"), SPOT, MKT, F(), C(), "ALLOWED", SP, None),
    # open orders: the count before this order; 9 open + this one = 10 passes, 10 open fails
    ("open-orders-one-under", spot("max_open_orders: 10"), SPOT, LMT, F(open_orders=9), C(), "ALLOWED", SP, None),
    ("open-orders-at-limit", spot("max_open_orders: 10"), SPOT, LMT, F(open_orders=10), C(),
     "OPEN_ORDERS_OVER_LIMIT", f"{SPL}.max_open_orders", "cancel some before placing another"),
    ("reduce-only-ok", f"tools: {{{FUT}: {{limits: {{reduce_only: true}}}}}}\n", FUT, MKT,
     F(reduces_position=True), C(), "ALLOWED", f"tools.{FUT}", None),
    ("reduce-only-refused", f"tools: {{{FUT}: {{limits: {{reduce_only: true}}}}}}\n", FUT, MKT,
     F(reduces_position=False), C(), "REDUCE_ONLY_REQUIRED", f"{FPL}.reduce_only", "set reduceOnly=true"),
    ("leverage-order-equal", f"tools: {{{FUT}: {{limits: {{max_leverage: 5}}}}}}\n", FUT, MKT, F(leverage=5), C(),
     "ALLOWED", f"tools.{FUT}", None),
    ("leverage-order-over", f"tools: {{{FUT}: {{limits: {{max_leverage: 5}}}}}}\n", FUT, MKT, F(leverage=6), C(),
     "LEVERAGE_OVER_LIMIT", f"{FPL}.max_leverage", "current leverage 6x"),
    ("leverage-change-equal", f"tools: {{{LEV}: {{limits: {{max_leverage: 5}}}}}}\n", LEV,
     {"symbol": "BTCUSDT", "leverage": 5}, F(leverage=20), C(), "ALLOWED", f"tools.{LEV}", None),
    ("leverage-change-over", f"tools: {{{LEV}: {{limits: {{max_leverage: 5}}}}}}\n", LEV,
     {"symbol": "BTCUSDT", "leverage": 6}, F(leverage=1), C(), "LEVERAGE_OVER_LIMIT",
     f"tools.{LEV}.limits.max_leverage", "use at most 5x"),
    ("position-equal", f"tools: {{{FUT}: {{limits: {{max_position_notional_usd: 1000}}}}}}\n", FUT, MKT,
     F(position_after_usd=D("1000")), C(), "ALLOWED", f"tools.{FUT}", None),
    ("position-over", f"tools: {{{FUT}: {{limits: {{max_position_notional_usd: 1000}}}}}}\n", FUT, MKT,
     F(position_after_usd=D("1000.01")), C(), "POSITION_OVER_LIMIT", f"{FPL}.max_position_notional_usd",
     "Reduce quantity"),
    # protections (account.protections): equity, streak and close cooldowns, gross exposure
    ("daily-loss-crossed", PROT, SPOT, MKT, EQ(start="10000", now="9699.99"), C(), "DAILY_LOSS_LIMIT",
     f"{PR}.max_daily_loss_usd", "a loss of 300.01 USD over the 300 USD"),
    ("daily-loss-at-limit", PROT, SPOT, MKT, EQ(start="10000", now="9700", peak="10000"), C(), "ALLOWED", "default",
     None),
    ("daily-loss-stored-trip", PROT, SPOT, MKT, EQ(start="10000", now="10000"),
     C(tripped={"max_daily_loss_usd": {"start_usd": "10000", "equity_usd": "9600", "loss_usd": "400"}}),
     "DAILY_LOSS_LIMIT", f"{PR}.max_daily_loss_usd", "until 00:00 UTC"),
    ("daily-loss-spares-reduce-only", PROT, FUT, {**MKT, "side": "SELL", "reduceOnly": True},
     EQ(start="10000", now="1", adds=False), C(), "ALLOWED", "default", None),
    ("daily-loss-no-equity", PROT, SPOT, MKT, F(adds_exposure=True), C(), "POLICY_ERROR",
     f"{PR}.max_daily_loss_usd", "the account's equity could not be determined"),
    ("drawdown-crossed", PROT, SPOT, MKT, EQ(start="10000", peak="10400", now="9870"), C(), "DRAWDOWN_LIMIT",
     f"{PR}.max_drawdown_pct", "5.10 % from today's highest sample 10,400.00 USD"),
    ("streak-cooling", PROT, SPOT, MKT, EQ(streak=120.2), C(), "LOSS_STREAK_COOLDOWN", f"{PR}.loss_streak",
     "paused for another 121 s"),
    ("close-cooldown", PROT, SPOT, MKT, EQ(close=30), C(), "COOLDOWN", f"{PR}.cooldown_after_close",
     "try again in 30 s"),
    ("gross-over", PROT, SPOT, MKT, EQ(gross="5000.01"), C(), "EXPOSURE_OVER_LIMIT", f"{PR}.max_gross_exposure_usd",
     "would be 5,000.01 USD"),
    ("gross-at-cap", PROT, SPOT, MKT, EQ(gross="5000"), C(), "ALLOWED", "default", None),
    ("gross-spares-cancels", PROT, "binance_spot_cancel_order", {"symbol": "BTCUSDT", "orderId": 1},
     F(adds_exposure=False), C(tripped={"max_daily_loss_usd": {"start_usd": 1, "equity_usd": 0, "loss_usd": 1}}),
     "ALLOWED", "default", None),
    # 4. rate limits, tool then account, with the seconds to wait (rounded up)
    ("rate-tool", RL, SPOT, MKT, F(), C(wait={f"tool:{SPOT}": 2.5, "account": 9}), "RATE_LIMITED",
     f"{SP}.rate_limit", "try again in 3 s"),
    ("rate-account", RL, SPOT, MKT, F(), C(wait={"account": 0.2}), "RATE_LIMITED", "account.rate_limit",
     "try again in 1 s"),
    ("rate-free", RL, SPOT, MKT, F(), C(wait={f"tool:{SPOT}": 0, "account": 0}), "ALLOWED", SP, None),
    # 5. approval
    ("approval-action", f"tools: {{{SPOT}: require_approval}}\n", SPOT, MKT, F(), C(), "APPROVAL_REQUIRED", SP,
     "requires a human's approval"),
    ("approval-class", "classes: {destructive: {action: require_approval}}\n", "binance_spot_cancel_order",
     {"symbol": "BTCUSDT"}, F(), C(), "APPROVAL_REQUIRED", "classes.destructive", None),
    ("approval-above-equal", spot(rule="approval_above: {notional_usd: 250}"), SPOT, MKT, F("250"), C(), "ALLOWED",
     SP, None),
    ("approval-above-over", spot(rule="approval_above: {notional_usd: 250}"), SPOT, MKT, F("250.01"), C(),
     "APPROVAL_REQUIRED", f"{SP}.approval_above.notional_usd", "a human must approve it"),
    # a needed fact that is missing denies (fail closed), naming the rule that needed it
    ("missing-notional", spot("max_notional_usd: 500"), SPOT, MKT, F(), C(), "POLICY_ERROR",
     f"{SPL}.max_notional_usd", "denied to be safe"),
    ("missing-daily", spot(top=DAILY_ACCT), SPOT, MKT, F(), C(), "POLICY_ERROR", "account.daily_notional_usd",
     None),
    ("missing-deviation", spot("max_price_deviation_pct: 3"), SPOT, LMT, F(), C(), "POLICY_ERROR",
     f"{SPL}.max_price_deviation_pct", None),
    ("missing-open-orders", spot("max_open_orders: 3"), SPOT, LMT, F(), C(), "POLICY_ERROR",
     f"{SPL}.max_open_orders", None),
    ("missing-position", f"tools: {{{FUT}: {{limits: {{reduce_only: true}}}}}}\n", FUT, MKT, F(), C(),
     "POLICY_ERROR", f"{FPL}.reduce_only", None),
    ("missing-leverage", f"tools: {{{FUT}: {{limits: {{max_leverage: 5}}}}}}\n", FUT, MKT, F(), C(),
     "POLICY_ERROR", f"{FPL}.max_leverage", None),
    ("missing-position-after", f"tools: {{{FUT}: {{limits: {{max_position_notional_usd: 9}}}}}}\n", FUT, MKT, F(),
     C(), "POLICY_ERROR", f"{FPL}.max_position_notional_usd", None),
    ("missing-for-approval", spot(rule="approval_above: {notional_usd: 250}"), SPOT, MKT, F(), C(),
     "POLICY_ERROR", f"{SP}.approval_above", None),
    # evaluation order: the first failure wins
    ("symbol-before-side", spot("symbols: [ETHUSDT], sides: [BUY]"), SPOT, {**MKT, "side": "SELL"}, F(), C(),
     "SYMBOL_NOT_ALLOWED", f"{SPL}.symbols", None),
    ("notional-before-daily", spot("max_notional_usd: 10, daily_notional_usd: 10"), SPOT, MKT, F("50"), C(),
     "NOTIONAL_OVER_LIMIT", f"{SPL}.max_notional_usd", None),
    ("limits-before-rate", spot("max_notional_usd: 10", "rate_limit: 1/minute"), SPOT, MKT, F("50"),
     C(wait={f"tool:{SPOT}": 30}), "NOTIONAL_OVER_LIMIT", f"{SPL}.max_notional_usd", None),
    ("rate-before-approval", f"tools: {{{SPOT}: {{action: require_approval, rate_limit: 1/minute}}}}\n", SPOT, MKT,
     F(), C(wait={f"tool:{SPOT}": 30}), "RATE_LIMITED", f"{SP}.rate_limit", None),
    ("limits-before-approval", f"tools: {{{SPOT}: {{action: require_approval, limits: {{sides: [SELL]}}}}}}\n",
     SPOT, MKT, F(), C(), "SIDE_NOT_ALLOWED", f"{SPL}.sides", None),
    ("everything-in-range", (
        f"tools:\n  {SPOT}:\n    rate_limit: {{max: 10, window: 60}}\n    approval_above: {{notional_usd: 250}}\n"
        "    limits: {symbols: [BTCUSDT], sides: [BUY], order_types: [LIMIT], max_notional_usd: 500,\n"
        "             daily_notional_usd: 2000, max_price_deviation_pct: 3, max_open_orders: 10}\n" + DAILY_ACCT),
     SPOT, LMT, F("100", price_deviation_pct=D("1"), open_orders=2), C(used={"account": 1000}), "ALLOWED", SP,
     "allowed by"),
]


@pytest.mark.parametrize(("snippet", "tool", "args", "facts", "counters", "code", "rule", "says"),
                         [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_decision(snippet, tool, args, facts, counters, code, rule, says):
    d = engine.decide(load(snippet), Call(tool, args), facts, counters)
    assert (d.code, d.rule) == (code, rule), d.reason
    assert str(PolicyDenied(d)).startswith(f"{code}: ")  # what the agent reads
    assert d.effect == {"ALLOWED": "allow", "APPROVAL_REQUIRED": "require_approval"}.get(code, "deny")
    if says is not None:
        assert says in d.reason
    assert d.steps[-1] in ("allow", f"{rule}: {code}")


def test_every_engine_code_has_a_row():
    reached = {r[6] for r in ROWS}
    outside = {"APPROVAL_DENIED", "APPROVAL_EXPIRED"}  # the approval flow's codes, not the engine's
    assert reached == set(engine.CODES) - outside


LIMIT_DENIALS = [r for r in ROWS if r[6] not in ("ALLOWED", "KILL_SWITCH") and "reason" not in r[1]]


@pytest.mark.parametrize("row", LIMIT_DENIALS, ids=[r[0] for r in LIMIT_DENIALS])
def test_reason_names_the_rule_path(row):
    _, snippet, tool, args, facts, counters, code, rule, _ = row
    d = engine.decide(load(snippet), Call(tool, args), facts, counters)
    assert rule in d.reason


def test_notional_text_matches_the_contract_example():
    d = engine.decide(load(spot("max_notional_usd: 500")), Call(SPOT, {**MKT, "quantity": "0.0125"}),
                      F("1250", quantity=D("0.0125")), C())
    assert str(PolicyDenied(d)) == (
        "NOTIONAL_OVER_LIMIT: order notional 1,250.00 USD is over the 500 USD limit of rule "
        "tools.binance_spot_place_order.limits.max_notional_usd. Reduce quantity to at most 0.005.")
    assert d.facts == {"notional_usd": "1250", "quantity": "0.0125"}


def test_a_huge_notional_is_still_reported_not_a_crash():
    d = engine.decide(load(spot("max_notional_usd: 500")), Call(SPOT, MKT), F("1e32", quantity=D("1e21")), C())
    assert d.code == "NOTIONAL_OVER_LIMIT"
    assert "order notional 100,000,000,000,000,000,000,000,000,000,000.00 USD" in d.reason


def test_notional_hint_for_a_quote_amount_names_quote_order_qty():
    args = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "800"}
    d = engine.decide(load(spot("max_notional_usd: 500")), Call(SPOT, args), F("800", quantity=D("0.008")), C())
    assert "Reduce quoteOrderQty to at most 500" in d.reason


def test_steps_record_each_check_in_order():
    d = engine.decide(load(spot("symbols: [BTCUSDT], max_notional_usd: 500")), Call(SPOT, MKT), F("10"), C())
    assert d.steps == ("kill switch: ok", f"{SP}: allow: ok", f"{SPL}.symbols: ok", f"{SPL}.max_notional_usd: ok",
                       "allow")


@pytest.mark.parametrize(("snippet", "tool", "args", "expected"), [
    ("default: allow\n", "binance_spot_price", {}, set()),
    ("default: deny\n" + DAILY_ACCT, SPOT, MKT, set()),  # a denied tool needs no facts
    (spot(top=DAILY_ACCT), SPOT, MKT, {"notional"}),
    (spot("max_price_deviation_pct: 3, max_open_orders: 2"), SPOT, MKT, {"open_orders"}),
    (spot("max_price_deviation_pct: 3"), SPOT, LMT, {"deviation"}),
    (f"tools: {{{FUT}: {{limits: {{reduce_only: true, max_leverage: 3, max_position_notional_usd: 9}}}}}}\n", FUT,
     MKT, {"position", "leverage", "position_after"}),
    (f"tools: {{{LEV}: {{limits: {{max_leverage: 3}}}}}}\n", LEV, {"leverage": 2}, set()),
])
def test_needs_only_what_the_policy_uses(snippet, tool, args, expected):
    assert engine.needs(load(snippet), Call(tool, args)) == expected


def test_denied_outright_hides_denied_tools_but_never_the_status_tool():
    policy = load("default: deny\nclasses: {read: allow}\n")
    assert engine.denied_outright(policy, SPOT)
    assert not engine.denied_outright(policy, "binance_spot_price")
    assert not engine.denied_outright(load("default: deny\n"), "binance_policy_status")
    assert not engine.denied_outright(load("default: deny\nmode: shadow\n"), SPOT)
    assert not engine.denied_outright(load(f"tools: {{{SPOT}: require_approval}}\n"), SPOT)


def test_effective_rule_prefers_tool_then_class_then_default():
    policy = load(f"classes: {{financial: deny}}\ntools: {{{SPOT}: allow}}\n")
    assert engine.effective_rule(policy, SPOT)[1] == SP
    assert engine.effective_rule(policy, FUT)[1] == "classes.financial"
    assert engine.effective_rule(policy, "binance_spot_price") == (None, "default")
