"""Does a new policy only tighten the one in force? ``loosenings(old, new)`` lists every way it does not.

In service mode a hot-reloaded policy applies at once only when this list is empty; otherwise it waits for a
human (``binance-mcp policy confirm``, see policy_file.py). Equal counts as tighter. Each tool is judged by its
EFFECTIVE rule (tool rule, else class rule, else the default: engine.effective_rule), so moving a tool's rule into
a class rule is judged by what it does, and a class rule no tool falls under changes nothing. A tool denied by the
new policy is as strict as it gets, whatever its limits say.

Every field of the policy model has a judgement in ``JUDGED`` (a test walks the model and fails on a field without
one); a field that changes without one counts as a loosening, so a new field fails closed, never open.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.policy.engine import POLICY_STATUS_TOOL, effective_rule
from binance_mcp.policy.model import (
    Account,
    ApprovalAbove,
    Classes,
    DeadManSwitch,
    Limits,
    LossStreak,
    Policy,
    Protections,
    RateLimit,
    Rule,
)

UNPROVEN = "cannot show it only tightens"
GLOB = "*?["
# Each judgement: (old value, new value) -> the loosening's text, or None when the new value is at least as strict.
Judge = Callable[[Any, Any], "str | None"]


def show(value: Any) -> str:
    """A value as a line shows it: Decimal without exponent, a section as {key: value}, a list comma-separated."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value == value.to_integral_value() else f"{value:f}"
    if isinstance(value, BaseModel):
        return "{" + ", ".join(f"{k}: {show(getattr(value, k))}" for k in type(value).model_fields
                               if getattr(value, k) is not None) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def cap(higher: str = "higher") -> Judge:
    """An upper bound (none = unbounded): higher or removed is looser."""
    def judge(old: Any, new: Any) -> str | None:
        if old is None:
            return None
        if new is None:
            return f"{show(old)} -> removed"
        return f"{show(old)} -> {show(new)} ({higher})" if new > old else None
    return judge


def floor(lower: str = "shorter") -> Judge:
    """A lower bound (a cooldown, a window; none = no wait): lower or removed is looser."""
    def judge(old: Any, new: Any) -> str | None:
        if old is None:
            return None
        if new is None:
            return f"{show(old)} -> removed"
        return f"{show(old)} -> {show(new)} ({lower})" if new < old else None
    return judge


def ordered(*loose_to_strict: str) -> Judge:
    """A choice among values from the loosest to the strictest: moving toward the first is looser."""
    def judge(old: Any, new: Any) -> str | None:
        if new not in loose_to_strict or old not in loose_to_strict:
            return None if old == new else f"{show(old)} -> {show(new)} ({UNPROVEN})"
        return f"{old} -> {new}" if loose_to_strict.index(new) < loose_to_strict.index(old) else None
    return judge


def no_effect(old: Any, new: Any) -> None:
    """Text a human reads (a reason), or a constant: no change of it loosens anything."""
    return None


def flag(old: Any, new: Any) -> str | None:
    """A requirement that is on or off (reduce_only): turning it off is looser."""
    return f"{show(old)} -> {show(bool(new)) if new is not None else 'removed'}" if old and not new else None


def covered(pattern: str, by: list[str]) -> bool:
    """Can every symbol ``pattern`` matches be shown to match one of ``by``? (the same pattern, an exact symbol
    that an old pattern matches, or an old ``*``); anything else cannot be shown."""
    if pattern in by or "*" in by:
        return True
    return not any(c in pattern for c in GLOB) and any(fnmatch.fnmatchcase(pattern, p) for p in by)


def allow_list(old: list[str] | None, new: list[str] | None) -> str | None:
    """An allow-list (none = anything): the new one must be a provable subset of the old one."""
    if old is None:
        return None
    if new is None:
        return f"{show(old)} -> removed (anything allowed)"
    added = [p for p in new if not covered(p, old)]
    if not added:
        return None
    globs = [p for p in added if any(c in p for c in GLOB)]
    return "adds " + ", ".join(added) + (f" ({UNPROVEN}: {', '.join(globs)} may match more)" if globs else "")


def deny_list(old: list[str] | None, new: list[str] | None) -> str | None:
    """A deny-list (none = nothing denied): every old entry must still be denied, provably."""
    if old is None:
        return None
    if new is None:
        return f"{show(old)} -> removed (nothing denied)"
    lost = [p for p in old if not covered(p, new)]
    return f"no longer denies {', '.join(lost)}" if lost else None


def kill_switch_file(old: str | None, new: str | None) -> str | None:
    if old is None or old == new:
        return None
    if new is None:
        return "removed"
    return f"{old} -> {new} (a file at the old path no longer stops trading)"


def approval_channel(old: str | None, new: str | None) -> str | None:
    """``console`` is the strict one: moving off it lets a form answered in the client approve again."""
    if old != "console" or new == "console":
        return None
    return f"console -> {show(new)} (a form answered in the client counts again over stdio)"


SECTION = "section"  # judged field by field; a section removed is a loosening, one added a tightening
EFFECTIVE = "effective"  # judged through the effective rule of each tool (classes, tools)
JUDGED: dict[type[BaseModel], dict[str, Judge | str]] = {
    Policy: {"version": no_effect, "default": ordered("allow", "deny"), "mode": ordered("shadow", "enforce"),
             "classes": EFFECTIVE, "tools": EFFECTIVE, "account": SECTION},
    Classes: {"read": EFFECTIVE, "financial": EFFECTIVE, "destructive": EFFECTIVE},
    Rule: {"action": ordered("allow", "require_approval", "deny"), "reason": no_effect, "rate_limit": SECTION,
           "approval_above": SECTION, "limits": SECTION},
    RateLimit: {"max": cap("more calls"), "window": floor("shorter window")},
    ApprovalAbove: {"notional_usd": cap(), "channel": approval_channel},
    Limits: {"symbols": allow_list, "deny_symbols": deny_list, "sides": allow_list, "order_types": allow_list,
             "max_notional_usd": cap(), "daily_notional_usd": cap(), "max_price_deviation_pct": cap(),
             "max_open_orders": cap(), "reduce_only": flag, "max_leverage": cap(),
             "max_position_notional_usd": cap()},
    Account: {"daily_notional_usd": cap(), "rate_limit": SECTION, "max_leverage": cap(),
              "kill_switch_file": kill_switch_file, "kill_switch_scope": ordered("exposure", "all"),
              "dead_man_switch": SECTION, "protections": SECTION},
    DeadManSwitch: {"seconds": cap("longer")},
    Protections: {"max_daily_loss_usd": cap(), "max_drawdown_pct": cap(), "loss_streak": SECTION,
                  "max_gross_exposure_usd": cap(), "cooldown_after_close": floor()},
    LossStreak: {"losses": cap("more losses"), "window": floor("shorter window"), "cooldown": floor()},
}
EMPTY_IS_NONE = (Limits, Protections)  # sections where "none" means the same as every field unset


def compare(kind: type[BaseModel], old: BaseModel | None, new: BaseModel | None, path: str,
            skip: frozenset[str] = frozenset()) -> list[str]:
    """Loosenings from ``old`` to ``new``, two values of the section ``kind`` (either may be None), field by field
    as JUDGED says; a field JUDGED does not know counts as a loosening when it changes."""
    if old is None and new is None:
        return []
    if kind in EMPTY_IS_NONE:
        old, new = old if old is not None else kind(), new if new is not None else kind()
    if old is None:
        return []  # a section added: only adds a constraint
    if new is None:
        return [f"{path}: {show(old)} -> removed"]
    out: list[str] = []
    judged = JUDGED.get(kind, {})
    for name, info in type(old).model_fields.items():
        if name in skip:
            continue
        a, b = getattr(old, name), getattr(new, name, None)
        how = judged.get(name)
        where = f"{path}.{name}" if path else name
        if how == SECTION:
            out += compare(_section_type(info.annotation), a, b, where)
        elif callable(how):
            text = how(a, b)
            if text is not None:
                out.append(f"{where}: {text}")
        elif how is None and a != b:  # a field with no judgement: fail closed
            out.append(f"{where}: {show(a)} -> {show(b)} ({UNPROVEN})")
    return out


def _section_type(annotation: Any) -> type[BaseModel]:
    """The model class of a section field (``X | None`` -> X)."""
    for arg in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    raise TypeError(f"not a section: {annotation!r}")


def tool_loosenings(old: Policy, new: Policy, tool: str) -> list[str]:
    """How the effective rule of ``tool`` loosens, each line naming the rule path (and the tool, when the rule
    moved from one path to another)."""
    old_rule, old_path = effective_rule(old, tool)
    new_rule, new_path = effective_rule(new, tool)
    old_rule = old_rule if old_rule is not None else Rule(action=old.default)
    new_rule = new_rule if new_rule is not None else Rule(action=new.default)
    if new_rule.action == "deny" and tool != POLICY_STATUS_TOOL:
        return []  # denied outright: no limit can make it stricter
    skip = {"action"} if tool == POLICY_STATUS_TOOL else set()  # always allowed (engine.decide)
    if new_rule.action == "require_approval":
        skip.add("approval_above")  # every call is approved by a human anyway
    if old_path == new_path == "default":
        skip.add("action")  # the default itself is compared once, in loosenings()
    if old_path == new_path:
        return compare(Rule, old_rule, new_rule, "" if old_path == "default" else old_path, frozenset(skip))
    moved = f"{tool} (its rule moved from {old_path} to {new_path})"
    return [f"{moved}: {line}" for line in compare(Rule, old_rule, new_rule, "", frozenset(skip))]


def loosenings(old: Policy, new: Policy) -> list[str]:
    """Every way ``new`` is not at least as strict as ``old`` (empty: it only tightens, or changes nothing).

    A line for a class rule or the default names the tools it loosens for, since only they are affected."""
    out = compare(Policy, old, new, "", skip=frozenset({"account"}))
    if any(line.startswith("default:") for line in out):
        under = [t.name for t in ALL_TOOLS if effective_rule(new, t.name)[1] == "default"
                 and effective_rule(old, t.name)[1] == "default"]
        out = [f"{line}{_for(under)}" if line.startswith("default:") and under else line for line in out]
    by_line: dict[str, list[str]] = {}
    for spec in ALL_TOOLS:
        for line in tool_loosenings(old, new, spec.name):
            by_line.setdefault(line, []).append(spec.name)
    for line, tools in by_line.items():
        out.append(line if line.startswith(("tools.", *(f"{t} (" for t in tools))) else line + _for(tools))
    return out + compare(Account, old.account, new.account, "account")


def _for(tools: list[str], most: int = 5) -> str:
    if len(tools) <= most:
        return f" (for {', '.join(tools)})"
    return f" (for {len(tools)} tools: {', '.join(tools[:most])} and {len(tools) - most} more)"
