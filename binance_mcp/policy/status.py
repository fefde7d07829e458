"""``binance_policy_status``: what the policy lets this agent do, and how much room is left today."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.errors import BinanceMcpError
from binance_mcp.policy import engine
from binance_mcp.policy.state import StateError
from binance_mcp.tools.models import Dec, NoArgs, Result, ToolDef


class ToolRuleView(BaseModel):
    tool: str
    action: str = Field(description="allow or require_approval")
    rule: str = Field(description="the policy path that decides")
    limits: dict[str, str] = {}
    rate_limit: str | None = None
    approval_above_usd: Dec | None = None


class DailyView(BaseModel):
    rule: str
    cap_usd: Dec
    used_usd: Dec
    remaining_usd: Dec


class RateView(BaseModel):
    rule: str
    max: int
    window_s: int
    used: int
    wait_s: int = Field(description="seconds until the next call is allowed (0: now)")


class PolicyStatusResult(Result):
    policy: str
    mode: str = Field(description="enforce, or shadow (decide and audit, let every call through)")
    kill_switch: bool
    exchange: str
    tools: list[ToolRuleView] = Field(description="tools this agent may call; denied tools are not listed")
    denied: int = Field(description="how many tools the policy denies")
    daily: list[DailyView]
    rate_limits: list[RateView]
    reload_error: str | None = None


def _limits(rule) -> dict[str, str]:
    if rule is None or rule.limits is None:
        return {}
    out = {}
    for key, value in rule.limits.model_dump(exclude_none=True).items():
        out[key] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return out


def status_tool(guard, settings) -> ToolDef:
    async def handler(args: NoArgs, deps) -> PolicyStatusResult:
        loaded = guard.current()
        policy = loaded.policy
        now = guard.clock()
        tools, denied = [], 0
        for spec in ALL_TOOLS:
            rule, path = engine.effective_rule(policy, spec.name)
            action = rule.action if rule is not None else policy.default
            if spec.name == engine.POLICY_STATUS_TOOL:
                action = "allow"
            if action == "deny":
                denied += 1
                continue
            rl = rule.rate_limit if rule is not None else None
            tools.append(ToolRuleView(
                tool=spec.name, action=action, rule=path, limits=_limits(rule),
                rate_limit=f"{rl.max} per {rl.window} s" if rl else None,
                approval_above_usd=rule.approval_above.notional_usd if rule is not None and rule.approval_above
                else None))
        caps: dict[str, tuple[str, Decimal]] = {}
        for name, rule in policy.tools.items():
            if rule.limits is not None and rule.limits.daily_notional_usd is not None:
                caps[f"tool:{name}"] = (f"tools.{name}.limits.daily_notional_usd", rule.limits.daily_notional_usd)
        if policy.account.daily_notional_usd is not None:
            caps["account"] = ("account.daily_notional_usd", policy.account.daily_notional_usd)
        try:
            used = guard.state.used(list(caps)) if caps else {}
        except StateError as exc:
            raise BinanceMcpError(f"today's daily sums cannot be read ({exc}), so order tools are denied until a "
                                  "human fixes the state database; read tools still work.", code="POLICY_ERROR",
                                  remedy="human") from None
        daily = [DailyView(rule=path, cap_usd=cap, used_usd=used.get(key, Decimal(0)),
                           remaining_usd=max(cap - used.get(key, Decimal(0)), Decimal(0)))
                 for key, (path, cap) in caps.items()]
        rates = []
        for name, rule in policy.tools.items():
            if rule.rate_limit is not None:
                rates.append((f"tool:{name}", f"tools.{name}.rate_limit", rule.rate_limit))
        if policy.account.rate_limit is not None:
            rates.append(("account", "account.rate_limit", policy.account.rate_limit))
        rate_views = [RateView(rule=path, max=rl.max, window_s=rl.window, used=guard.rates.used(key, rl, now),
                               wait_s=int(guard.rates.wait(key, rl, now) + 0.999)) for key, path, rl in rates]
        return PolicyStatusResult(policy=f"{loaded.source} ({loaded.sha256})", mode=policy.mode,
                                  kill_switch=guard.kill_switch_on(loaded), exchange=settings.mode, tools=tools,
                                  denied=denied, daily=daily, rate_limits=rate_views,
                                  reload_error=guard.reload_error)

    return ToolDef("binance_policy_status", "What this server's policy lets you do: allowed tools with their "
                   "limits, today's used and remaining notional, rate-limit headroom, mode and kill switch. Call it "
                   "before trading to plan within the limits.", NoArgs, PolicyStatusResult, handler)
