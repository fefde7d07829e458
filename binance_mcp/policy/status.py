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
        loaded = await guard.current()
        policy = loaded.policy
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
        caps: dict[str, engine.Cap] = {}
        rates: dict[str, tuple[str, object]] = {}
        for spec in ALL_TOOLS:  # the same caps and rate-limit keys the guard counts against (engine.daily_caps)
            for cap in engine.daily_caps(policy, spec.name):
                caps.setdefault(cap.key, cap)
            if not engine.denied_outright(policy, spec.name):
                for key, path, rl in engine.rate_limits(policy, spec.name):
                    rates.setdefault(key, (path, rl))
        try:
            used, _ = await guard.store.run(guard.state.view, list(caps), []) if caps else ({}, {})
            usage = {key: await guard.store.run(guard.state.rate_usage, key, rl) for key, (_, rl) in rates.items()}
        except StateError as exc:
            raise BinanceMcpError(f"today's daily sums cannot be read ({exc}), so order tools are denied until a "
                                  "human fixes the state database; read tools still work.", code="POLICY_ERROR",
                                  remedy="human") from None
        daily = [DailyView(rule=c.rule, cap_usd=c.limit, used_usd=used.get(key, Decimal(0)),
                           remaining_usd=max(c.limit - used.get(key, Decimal(0)), Decimal(0)))
                 for key, c in caps.items()]
        rate_views = [RateView(rule=path, max=rl.max, window_s=rl.window, used=usage[key][0],
                               wait_s=int(usage[key][1] + 0.999)) for key, (path, rl) in rates.items()]
        return PolicyStatusResult(policy=f"{loaded.source} ({loaded.sha256})", mode=policy.mode,
                                  kill_switch=await guard.kill_switch(loaded), exchange=settings.mode, tools=tools,
                                  denied=denied, daily=daily, rate_limits=rate_views,
                                  reload_error=guard.reload_error)

    return ToolDef("binance_policy_status", "What this server's policy lets you do: allowed tools with their "
                   "limits, today's used and remaining notional, rate-limit headroom, mode and kill switch. Call it "
                   "before trading to plan within the limits.", NoArgs, PolicyStatusResult, handler)
