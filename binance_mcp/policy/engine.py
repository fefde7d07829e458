"""The decision engine: pure and synchronous. Facts are gathered before it runs; it reads no clock and no I/O.

Order of evaluation (first failure wins): kill switch, tripped protections -> the tool's action (tool rule, else
class rule, else default) -> each limit -> rate limits (tool, then account) -> approval. Its inputs and output (Call,
Facts, Counters, Decision) are in decision.py.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import replace
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Any

from binance_mcp.catalog import BY_NAME, NOTIONAL_TOOLS, ORDER_TOOLS
from binance_mcp.policy.decision import (
    ALLOW,
    APPROVE,
    DENY,
    Call,
    Cap,
    Counters,
    Decision,
    Facts,
    rate_slot,
    tool_key,
)
from binance_mcp.policy.model import Policy, RateLimit, Rule

__all__ = ["ALLOW", "APPROVE", "DENY", "Call", "Counters", "Decision", "Facts", "decide", "needs"]

CODES = (
    "ALLOWED", "KILL_SWITCH", "TOOL_DENIED", "SYMBOL_NOT_ALLOWED", "SIDE_NOT_ALLOWED", "ORDER_TYPE_NOT_ALLOWED",
    "NOTIONAL_OVER_LIMIT", "DAILY_NOTIONAL_OVER_LIMIT", "PRICE_DEVIATION", "OPEN_ORDERS_OVER_LIMIT",
    "REDUCE_ONLY_REQUIRED", "LEVERAGE_OVER_LIMIT", "POSITION_OVER_LIMIT", "EXPOSURE_OVER_LIMIT", "DAILY_LOSS_LIMIT",
    "DRAWDOWN_LIMIT", "LOSS_STREAK_COOLDOWN", "COOLDOWN", "RATE_LIMITED", "APPROVAL_REQUIRED",
    "APPROVAL_DENIED", "APPROVAL_EXPIRED", "POLICY_ERROR",
)
POLICY_STATUS_TOOL = "binance_policy_status"


def reducing(call: Call) -> bool:
    """Does the call only ever shrink a futures position (flagged reduce-only, closePosition, a hedge-mode close,
    or the close tool)? Such a call never adds exposure, whatever it fills at: it is recorded in the daily sums
    but never refused by a notional, leverage or position cap, nor held for approval_above."""
    if call.tool == "binance_futures_close_position":
        return True
    if call.tool != "binance_futures_place_order":
        return False
    ps, side = call.get("positionSide") or "BOTH", call.get("side")
    return bool(call.get("reduceOnly")) or bool(call.get("closePosition")) or \
        (ps == "LONG" and side == "SELL") or (ps == "SHORT" and side == "BUY")


def effective_rule(policy: Policy, tool: str) -> tuple[Rule | None, str]:
    """The rule that governs ``tool`` and its path: tool rule, else class rule, else the default."""
    if tool in policy.tools:
        return policy.tools[tool], f"tools.{tool}"
    risk = BY_NAME[tool].risk if tool in BY_NAME else "read"
    cls_rule = getattr(policy.classes, risk, None)
    if cls_rule is not None:
        return cls_rule, f"classes.{risk}"
    return None, "default"


def effective_action(policy: Policy, tool: str) -> str:
    rule, _ = effective_rule(policy, tool)
    return rule.action if rule is not None else policy.default


def daily_caps(policy: Policy, tool: str, agent: str | None = None) -> list[Cap]:
    """The daily caps a call of ``tool`` counts against (its tool rule's, then the account's). The one place the
    guard, the engine and ``binance_policy_status`` take them from."""
    if tool not in NOTIONAL_TOOLS:
        return []
    rule, path = effective_rule(policy, tool)
    out = []
    if rule is not None and rule.limits is not None and rule.limits.daily_notional_usd is not None:
        out.append(Cap(tool_key(tool, agent), f"{path}.limits.daily_notional_usd", rule.limits.daily_notional_usd))
    if policy.account.daily_notional_usd is not None:
        out.append(Cap("account", "account.daily_notional_usd", policy.account.daily_notional_usd))
    return out


def rate_limits(policy: Policy, tool: str, agent: str | None = None) -> list[tuple[str, str, RateLimit]]:
    """(state-store key, rule path, limit) of every rate limit a call of ``tool`` counts against, tool first."""
    rule, path = effective_rule(policy, tool)
    out = []
    if rule is not None and rule.rate_limit is not None:
        out.append((tool_key(tool, agent), f"{path}.rate_limit", rule.rate_limit))
    if policy.account.rate_limit is not None:
        out.append(("account", "account.rate_limit", policy.account.rate_limit))
    return out


def denied_outright(policy: Policy, tool: str) -> bool:
    """Hidden from tools/list: the tool's action is deny whatever its arguments (shadow mode hides nothing)."""
    if tool == POLICY_STATUS_TOOL:
        return False
    return policy.mode == "enforce" and effective_action(policy, tool) == DENY


def needs(policy: Policy, call: Call) -> set[str]:
    """Which facts this call's decision needs, so the guard fetches no more than that."""
    rule, _ = effective_rule(policy, call.tool)
    out: set[str] = set()
    action = rule.action if rule is not None else policy.default
    if action == DENY:
        return out
    from binance_mcp.policy.protections import protection_needs

    out |= protection_needs(policy.account.protections, call)
    limits = rule.limits if rule is not None else None
    if call.tool in NOTIONAL_TOOLS and (
        (limits is not None and (limits.max_notional_usd is not None or limits.daily_notional_usd is not None))
        or (rule is not None and rule.approval_above is not None)
        or policy.account.daily_notional_usd is not None
    ):
        out.add("notional")
    if policy.account.max_leverage is not None and call.tool == "binance_futures_place_order" and not reducing(call):
        out.add("leverage")
    if limits is None:
        return out
    if limits.max_price_deviation_pct is not None and call.get("type") not in ("MARKET", None):
        out.add("deviation")
    if limits.max_open_orders is not None:
        out.add("open_orders")
    if limits.max_leverage is not None and call.tool == "binance_futures_place_order":
        out.add("leverage")
    if limits.reduce_only:
        out.add("position")
    if limits.max_position_notional_usd is not None:
        out.add("position_after")
    return out


@functools.lru_cache(maxsize=1024)
def _matcher(patterns: tuple[str, ...]):
    """One compiled test per pattern list: a set for exact names, one regex for all globs."""
    exact = frozenset(p for p in patterns if not any(c in p for c in "*?["))
    globs = [p for p in patterns if p not in exact]
    rx = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in globs)) if globs else None
    return exact, rx


def _matches(patterns: tuple[str, ...], symbol: str) -> bool:
    exact, rx = _matcher(patterns)
    return symbol in exact or (rx is not None and rx.match(symbol) is not None)


def _fmt(value: Decimal) -> str:
    """Two decimals with thousands separators, for any magnitude (quantize would raise past 28 digits)."""
    return format(value, ",.2f")


def _figure(value: Any) -> str:
    """A stored figure for a reason: formatted when it is a number, as given otherwise (never raises)."""
    try:
        return _fmt(Decimal(str(value)))
    except (ArithmeticError, ValueError):
        return str(value)


def _max_qty(limit: Decimal, notional: Decimal, qty: Decimal | None) -> str | None:
    if not qty or notional <= 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        per_unit = notional / qty
        return f"{(limit / per_unit).quantize(Decimal('0.00000001'), rounding=ROUND_DOWN).normalize():f}"


class _Eval:
    def __init__(self, policy: Policy, call: Call, facts: Facts, counters: Counters):
        self.policy, self.call, self.facts, self.counters = policy, call, facts, counters
        self.steps: list[str] = []

    def deny(self, code: str, rule: str, reason: str, effect: str = DENY) -> Decision:
        self.steps.append(f"{rule}: {code}")
        return Decision(effect, code, rule, reason, self.facts.as_dict(), tuple(self.steps))

    def missing(self, rule: str, fact: str) -> Decision:
        """A fact the rule needs is missing: deny (fail closed), naming the rule."""
        return self.deny("POLICY_ERROR", rule, f"{fact} could not be determined, and {rule} needs it, so the call is "
                                               "denied to be safe. Retry later; if it persists, a human must check "
                                               "the server.")

    def passed(self, what: str) -> None:
        self.steps.append(f"{what}: ok")


def decide(policy: Policy, call: Call, facts: Facts, counters: Counters) -> Decision:
    """The decision for one call. Never raises for a well-formed policy; the guard turns any bug into POLICY_ERROR."""
    ev = _Eval(policy, call, facts, counters)
    risk = call.risk
    # 1. kill switch: calls that add exposure (or, with kill_switch_scope: all, every trading and cancelling call)
    scope_all = policy.account.kill_switch_scope == "all"
    if counters.kill_switch and risk in ("financial", "destructive") and (scope_all or facts.adds_exposure is not False):
        path = policy.account.kill_switch_file
        flag = isinstance(counters.kill_switch, str)  # the kill flag in the state store (console, `kill on`)
        where = counters.kill_switch if flag else f"the kill switch file {path} exists" if path else \
            "the kill switch is on"
        what = ("every trading and cancelling call is stopped" if scope_all else
                "every call that adds exposure is stopped (cancels, reduce-only orders and closes still work)")
        undo = "turn it off (the console, or `binance-mcp kill off`)" if flag else "remove the file"
        return ev.deny("KILL_SWITCH", "state.kill_flag" if flag else "account.kill_switch_file",
                       f"{where}, so {what}. A human must {undo} to resume; read-only tools still work.")
    ev.passed("kill switch")
    # 1b. account protections: tripped ones and cooldowns stop every call that adds exposure
    prot = policy.account.protections
    if prot.any and risk in ("financial", "destructive") and facts.adds_exposure is not False and \
            call.tool != POLICY_STATUS_TOOL:
        decision = _protections(ev, prot)
        if decision is not None:
            return decision
    # 2. the tool's action
    rule, path = effective_rule(policy, call.tool)
    action = rule.action if rule is not None else policy.default
    if call.tool == POLICY_STATUS_TOOL:
        action = ALLOW  # an agent can always ask what it may do
    if action == DENY:
        reason = (rule.reason if rule is not None and rule.reason else
                  f"{call.tool} is not allowed by {path} of the policy. A human must change the policy to allow it; "
                  "binance_policy_status lists what is allowed.")
        return ev.deny("TOOL_DENIED", path, reason)
    ev.passed(f"{path}: {action}")
    # 3. limits
    limits = rule.limits if rule is not None else None
    if limits is not None:
        decision = _limits(ev, limits, path)
        if decision is not None:
            return decision
    decision = _account_leverage(ev, policy)
    if decision is not None:
        return decision
    decision = _gross(ev, prot)
    if decision is not None:
        return decision
    if call.tool in NOTIONAL_TOOLS and policy.account.daily_notional_usd is not None and not reducing(call):
        cap = policy.account.daily_notional_usd
        decision = _daily(ev, cap, "account", "account.daily_notional_usd")
        if decision is not None:
            return decision
    # 4. rate limits, tool then account
    for key, rl_path, rl in rate_limits(policy, call.tool, call.agent):
        wait = counters.rate_wait.get(rate_slot(key, rl), counters.rate_wait.get(key, 0.0))
        if wait > 0:
            secs = max(1, int(wait + 0.999))
            return ev.deny("RATE_LIMITED", rl_path,
                           f"at most {rl.max} calls per {rl.window} s are allowed by {rl_path}; try again in {secs} s.")
        ev.passed(rl_path)
    # 5. approval
    if counters.approved and action in (APPROVE, ALLOW):
        ev.steps.append(counters.approved)
        return Decision(ALLOW, "ALLOWED", path, counters.approved, facts.as_dict(), tuple(ev.steps))
    if action == APPROVE:
        return ev.deny("APPROVAL_REQUIRED", path, f"{path} requires a human's approval for {call.tool}.", APPROVE)
    if rule is not None and rule.approval_above is not None and not reducing(call):
        threshold = rule.approval_above.notional_usd
        notional = facts.notional_usd
        if notional is None:
            return ev.missing(f"{path}.approval_above", "the order's notional")
        if notional > threshold:
            asked = ev.deny("APPROVAL_REQUIRED", f"{path}.approval_above.notional_usd",
                            f"order notional {_fmt(notional)} USD is above the {threshold} USD approval threshold of "
                            f"{path}.approval_above.notional_usd; a human must approve it.", APPROVE)
            if rule.approval_above.channel == "console":  # the approver asks no form, whatever the transport
                asked = replace(asked, facts={**asked.facts, "approval_channel": "console"})
            return asked
        ev.passed(f"{path}.approval_above")
    ev.steps.append("allow")
    return Decision(ALLOW, "ALLOWED", path, f"allowed by {path}", facts.as_dict(), tuple(ev.steps))


def _limits(ev: _Eval, limits, path: str) -> Decision | None:
    call, facts = ev.call, ev.facts
    lp = f"{path}.limits"
    symbol = call.get("symbol")
    if limits.symbols is not None:
        if symbol is None:
            return ev.deny("SYMBOL_NOT_ALLOWED", f"{lp}.symbols",
                           f"{lp}.symbols allows only {', '.join(limits.symbols)}; give one of them as symbol.")
        if not _matches(tuple(limits.symbols), symbol):
            return ev.deny("SYMBOL_NOT_ALLOWED", f"{lp}.symbols",
                           f"{symbol} is not in {lp}.symbols ({', '.join(limits.symbols)}); use one of those.")
        ev.passed(f"{lp}.symbols")
    if limits.deny_symbols is not None:
        if symbol is None:
            return ev.deny("SYMBOL_NOT_ALLOWED", f"{lp}.deny_symbols",
                           f"{lp}.deny_symbols excludes some symbols; give a symbol so the call can be checked.")
        hit = next((pat for pat in limits.deny_symbols if fnmatch.fnmatchcase(symbol, pat)), None) if _matches(
            tuple(limits.deny_symbols), symbol) else None
        if hit is not None:
            return ev.deny("SYMBOL_NOT_ALLOWED", f"{lp}.deny_symbols",
                           f"{symbol} matches {hit!r} in {lp}.deny_symbols; it may not be traded, use another symbol.")
        ev.passed(f"{lp}.deny_symbols")
    if limits.sides is not None:
        if call.get("side") not in limits.sides:
            return ev.deny("SIDE_NOT_ALLOWED", f"{lp}.sides",
                           f"side {call.get('side')} is not allowed by {lp}.sides; allowed: {', '.join(limits.sides)}.")
        ev.passed(f"{lp}.sides")
    if limits.order_types is not None:
        if call.get("type") not in limits.order_types:
            return ev.deny("ORDER_TYPE_NOT_ALLOWED", f"{lp}.order_types",
                           f"order type {call.get('type')} is not allowed by {lp}.order_types; allowed: "
                           f"{', '.join(limits.order_types)}.")
        ev.passed(f"{lp}.order_types")
    exempt = reducing(call)  # reducing risk is never blocked by a rule against adding it
    if limits.max_notional_usd is not None and not exempt:
        cap = limits.max_notional_usd
        notional = facts.notional_usd
        if notional is None:
            return ev.missing(f"{lp}.max_notional_usd", "the order's notional")
        if notional > cap:
            field, amount = ("quoteOrderQty", call.get("quoteOrderQty")) if call.get("quoteOrderQty") is not None \
                else ("quantity", facts.quantity)
            hint = _max_qty(cap, notional, None if amount is None else Decimal(str(amount)))
            return ev.deny("NOTIONAL_OVER_LIMIT", f"{lp}.max_notional_usd",
                           f"order notional {_fmt(notional)} USD is over the {cap} USD limit of rule "
                           f"{lp}.max_notional_usd." + (f" Reduce {field} to at most {hint}." if hint else ""))
        ev.passed(f"{lp}.max_notional_usd")
    if limits.daily_notional_usd is not None and not exempt:
        decision = _daily(ev, limits.daily_notional_usd, tool_key(call.tool, call.agent), f"{lp}.daily_notional_usd")
        if decision is not None:
            return decision
    if limits.max_price_deviation_pct is not None and call.get("type") not in ("MARKET", None):
        dev = facts.price_deviation_pct
        if dev is None:
            return ev.missing(f"{lp}.max_price_deviation_pct", "the reference price")
        if dev > limits.max_price_deviation_pct:
            ref = facts.reference_price
            return ev.deny("PRICE_DEVIATION", f"{lp}.max_price_deviation_pct",
                           f"the order price is {_fmt(dev)} % away from the current price {ref}; "
                           f"{lp}.max_price_deviation_pct allows {limits.max_price_deviation_pct} %. Move the price "
                           "closer to the market.")
        ev.passed(f"{lp}.max_price_deviation_pct")
    if limits.max_open_orders is not None:
        n = facts.open_orders
        if n is None:
            return ev.missing(f"{lp}.max_open_orders", "the open orders")
        if n >= limits.max_open_orders:
            flying = f" (counting {facts.in_flight} in flight)" if facts.in_flight else ""
            return ev.deny("OPEN_ORDERS_OVER_LIMIT", f"{lp}.max_open_orders",
                           f"{n} orders are open{flying} and {lp}.max_open_orders allows {limits.max_open_orders}; "
                           "cancel some before placing another.")
        ev.passed(f"{lp}.max_open_orders")
    if limits.reduce_only:
        if facts.reduces_position is None:
            return ev.missing(f"{lp}.reduce_only", "the position")
        if not facts.reduces_position:
            return ev.deny("REDUCE_ONLY_REQUIRED", f"{lp}.reduce_only",
                           f"{lp}.reduce_only allows only orders that shrink an open position: set reduceOnly=true "
                           "(or closePosition) on the side opposite to the position, at most its size.")
        ev.passed(f"{lp}.reduce_only")
    if limits.max_leverage is not None and not exempt:
        lev = facts.leverage if call.tool == "binance_futures_place_order" else call.get("leverage")
        if lev is None:
            return ev.missing(f"{lp}.max_leverage", "the symbol's leverage")
        if lev > limits.max_leverage:
            what = "the symbol's current leverage" if call.tool == "binance_futures_place_order" else "leverage"
            return ev.deny("LEVERAGE_OVER_LIMIT", f"{lp}.max_leverage",
                           f"{what} {lev}x is over the {limits.max_leverage}x of {lp}.max_leverage; use at most "
                           f"{limits.max_leverage}x.")
        ev.passed(f"{lp}.max_leverage")
    if limits.max_position_notional_usd is not None:
        after = facts.position_after_usd
        if after is None:
            return ev.missing(f"{lp}.max_position_notional_usd", "the position")
        if after > limits.max_position_notional_usd and not facts.reduces_position:  # reducing is never blocked
            return ev.deny("POSITION_OVER_LIMIT", f"{lp}.max_position_notional_usd",
                           f"the position after this order would be {_fmt(after)} USD at mark price, over the "
                           f"{limits.max_position_notional_usd} USD of {lp}.max_position_notional_usd. Reduce "
                           "quantity so the position stays within it, or reduce the position first.")
        ev.passed(f"{lp}.max_position_notional_usd")
    return None


def _account_leverage(ev: _Eval, policy: Policy) -> Decision | None:
    """account.max_leverage binds every way to raise leverage: the leverage tool and every futures order."""
    cap = policy.account.max_leverage
    call = ev.call
    if cap is None or call.tool not in ("binance_futures_place_order", "binance_futures_change_leverage") or \
            reducing(call):
        return None
    order = call.tool == "binance_futures_place_order"
    lev = ev.facts.leverage if order else call.get("leverage")
    if lev is None:
        return ev.missing("account.max_leverage", "the symbol's leverage")
    if lev > cap:
        what = "the symbol's current leverage" if order else "leverage"
        return ev.deny("LEVERAGE_OVER_LIMIT", "account.max_leverage",
                       f"{what} {lev}x is over the {cap}x of account.max_leverage; use at most {cap}x"
                       + (" (lower it with binance_futures_change_leverage first)." if order else "."))
    ev.passed("account.max_leverage")
    return None


def drawdown_pct(peak: Decimal, now: Decimal) -> Decimal:
    """How far equity is below the day's highest sample, in percent of it (0 when above it or no peak)."""
    if peak <= 0:
        return Decimal(0)
    return max((peak - now) / peak * 100, Decimal(0))


RESUME = ("Cancels, reduce-only orders and closes still work; a human can run `binance-mcp protections reset` "
          "(for example after a deposit or withdrawal moved the equity).")


def _protections(ev: _Eval, prot) -> Decision | None:
    """Tripped protections (stored, or crossed by the figures of this decision), then the cooldowns."""
    facts, counters = ev.facts, ev.counters
    rp = "account.protections"
    if prot.max_daily_loss_usd is not None:
        rule = f"{rp}.max_daily_loss_usd"
        trip = counters.tripped.get("max_daily_loss_usd")
        if trip is None:
            if facts.equity_usd is None or facts.equity_start_usd is None:
                return ev.missing(rule, "the account's equity")
            if facts.equity_start_usd - facts.equity_usd > prot.max_daily_loss_usd:
                trip = {"start_usd": facts.equity_start_usd, "equity_usd": facts.equity_usd,
                        "loss_usd": facts.equity_start_usd - facts.equity_usd}
        if trip is not None:
            return ev.deny("DAILY_LOSS_LIMIT", rule,
                           f"equity fell from {_figure(trip.get('start_usd'))} USD (the UTC day's first sample) "
                           f"to {_figure(trip.get('equity_usd'))} USD, a loss of "
                           f"{_figure(trip.get('loss_usd'))} USD over the {prot.max_daily_loss_usd} USD of "
                           f"{rule}: calls that add exposure are denied until 00:00 UTC. " + RESUME)
        ev.passed(rule)
    if prot.max_drawdown_pct is not None:
        rule = f"{rp}.max_drawdown_pct"
        trip = counters.tripped.get("max_drawdown_pct")
        if trip is None:
            if facts.equity_usd is None or facts.equity_peak_usd is None:
                return ev.missing(rule, "the account's equity")
            dd = drawdown_pct(facts.equity_peak_usd, facts.equity_usd)
            if dd > prot.max_drawdown_pct:
                trip = {"peak_usd": facts.equity_peak_usd, "equity_usd": facts.equity_usd, "drawdown_pct": dd}
        if trip is not None:
            return ev.deny("DRAWDOWN_LIMIT", rule,
                           f"equity fell {_figure(trip.get('drawdown_pct'))} % from today's highest sample "
                           f"{_figure(trip.get('peak_usd'))} USD to {_figure(trip.get('equity_usd'))} "
                           f"USD, over the {prot.max_drawdown_pct} % of {rule}: calls that add exposure are denied "
                           "until 00:00 UTC. " + RESUME)
        ev.passed(rule)
    if prot.loss_streak is not None:
        ls, rule = prot.loss_streak, f"{rp}.loss_streak"
        if facts.loss_cooldown_s is None:
            return ev.missing(rule, "the trade history")
        if facts.loss_cooldown_s > 0:
            return ev.deny("LOSS_STREAK_COOLDOWN", rule,
                           f"{ls.losses} losing closes within {ls.window} s ({rule}): new exposure is paused for "
                           f"another {int(facts.loss_cooldown_s + 0.999)} s (cooldown {ls.cooldown} s). Cancels, "
                           "reduce-only orders and closes still work.")
        ev.passed(rule)
    if prot.cooldown_after_close is not None and ev.call.get("symbol"):
        rule = f"{rp}.cooldown_after_close"
        if facts.close_cooldown_s is None:
            return ev.missing(rule, "the trade history")
        if facts.close_cooldown_s > 0:
            return ev.deny("COOLDOWN", rule,
                           f"{ev.call.get('symbol')} was just closed, and {rule} allows reopening it only "
                           f"{prot.cooldown_after_close} s after a close: try again in "
                           f"{int(facts.close_cooldown_s + 0.999)} s.")
        ev.passed(rule)
    return None


def _gross(ev: _Eval, prot) -> Decision | None:
    """account.protections.max_gross_exposure_usd: positions, open orders and orders in flight, spot and futures."""
    cap, call = prot.max_gross_exposure_usd, ev.call
    if cap is None or call.tool not in ORDER_TOOLS or reducing(call) or ev.facts.adds_exposure is False:
        return None
    rule = "account.protections.max_gross_exposure_usd"
    after = ev.facts.gross_after_usd
    if after is None:
        return ev.missing(rule, "the account's gross exposure")
    if after > cap:
        now = ev.facts.gross_exposure_usd or Decimal(0)
        return ev.deny("EXPOSURE_OVER_LIMIT", rule,
                       f"gross exposure after this order would be {_fmt(after)} USD (positions at mark, holdings, "
                       f"open orders and orders in flight, spot and futures; {_fmt(now)} USD on the exchange now), over "
                       f"the {cap} USD of {rule}. Reduce quantity, or reduce positions and cancel orders first.")
    ev.passed(rule)
    return None


def _daily(ev: _Eval, cap: Decimal, key: str, rule: str) -> Decision | None:
    notional = ev.facts.notional_usd
    if notional is None:
        return ev.missing(rule, "the order's notional")
    used = ev.counters.daily_used.get(key, Decimal(0))
    if used + notional > cap:
        left = max(cap - used, Decimal(0))
        return ev.deny("DAILY_NOTIONAL_OVER_LIMIT", rule,
                       f"this order ({_fmt(notional)} USD) would bring today's total (UTC) to {_fmt(used + notional)} "
                       f"USD, over the {cap} USD of {rule}; {_fmt(left)} USD remain today.")
    ev.passed(rule)
    return None
