"""``binance_policy_status``: what the policy lets this agent do, and how much room is left today.

On a locked server (the policy or the configuration could not be loaded) it is the only tool, and says why:
``locked`` is true and ``load_error`` has the error. ``state_error`` says when the state directory cannot be
written (then calls that change anything are denied; reads work).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, WithJsonSchema

from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.errors import BinanceMcpError
from binance_mcp.paths import state_dir_problem
from binance_mcp.policy import engine, layers
from binance_mcp.policy.layers import CURRENT_AGENT
from binance_mcp.policy.state import StateError
from binance_mcp.tools.models import Dec, NoArgs, Result, ToolDef


class ToolRuleView(BaseModel):
    tool: str
    action: str  # allow or require_approval
    rule: str
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
    wait_s: int  # seconds until a call is allowed


class ProtectionView(BaseModel):
    rule: str
    limit: str
    value: str | None = None
    tripped: bool = False
    detail: str | None = None


class PolicyStatusResult(Result):
    policy: str
    mode: str  # enforce, shadow (audit only) or locked
    kill_switch: bool
    exchange: str
    tools: list[ToolRuleView]
    denied: int
    daily: list[DailyView]
    rate_limits: list[RateView]
    protections: list[ProtectionView] = []
    unpriced_assets: list[str] = []
    reload_error: str | None = None
    locked: bool = False  # the policy or the settings failed to load: only this tool runs
    load_error: str | None = None  # why it is locked: file, line, key
    state_error: str | None = None  # the state directory cannot be written: changes are denied
    # key_check and dead_man_switch (see safety()); the bare schema because tools/list is at its 30,000-byte budget
    safety: Annotated[dict | None, WithJsonSchema({"type": "object"})] = None
    # on the HTTP service: the calling agent, its own policy, a policy change waiting for a human (see service())
    service: Annotated[dict | None, WithJsonSchema({"type": "object"})] = None


def _limits(rule) -> dict[str, str]:
    if rule is None or rule.limits is None:
        return {}
    out = {}
    for key, value in rule.limits.model_dump(exclude_none=True).items():
        out[key] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return out


STATUS_DESCRIPTION = ("What the policy lets you do: allowed tools and limits, today's used and remaining notional, "
                      "rate limits, protections, kill switch. Call it before trading; if the server is locked, it "
                      "says why.")


async def _state_error(deps) -> str | None:
    """The state directory as it is now (tried again, off the event loop); None when it can be written."""
    return await asyncio.get_running_loop().run_in_executor(None, state_dir_problem, deps.settings.state_dir)


def safety(deps) -> dict[str, Any] | None:
    """Binance's own safety nets: what the key check found (exchange/keycheck.py) and the dead man's switch
    (policy/deadman.py): armed symbols, renewal failures."""
    out: dict[str, Any] = {}
    check = getattr(deps.exchange, "keycheck", None)
    if check is not None and check.needed:
        out["key_check"] = check.result.view()
    deadman = getattr(deps, "deadman", None)
    view = deadman.view() if deadman is not None else None
    if view is not None:
        out["dead_man_switch"] = view
    return out or None


def service(guard, lay, agent: str | None) -> dict[str, Any] | None:
    """On the HTTP service: which agent is asking, its own policy, and a policy change waiting for a human."""
    if not getattr(guard, "service", False):
        return None
    out: dict[str, Any] = {"agent": agent, "agent_policy": None if lay.agent is None else
                           f"{lay.agent.source} ({lay.agent.sha256})"}
    pending = [f.pending for f in (guard.policy_file, *guard.agent_files.values()) if getattr(f, "pending", None)]
    if pending:
        out["pending_policy_changes"] = pending
    return out


def status_tool(guard, settings) -> ToolDef:
    async def handler(args: NoArgs, deps) -> PolicyStatusResult:
        lay = await guard.layers()
        loaded = lay.service
        policy = loaded.policy
        agent = CURRENT_AGENT.get()
        name = agent.name if agent is not None else None
        marked = lay.marked
        tools, denied = [], 0
        for spec in ALL_TOOLS:
            if spec.name != engine.POLICY_STATUS_TOOL and layers.effective_action(lay, spec.name) == "deny":
                denied += 1
                continue
            for p, mark in marked:  # the service's rule, then the agent's when it has one of its own for the tool
                rule, path = engine.effective_rule(p, spec.name)
                if mark and rule is None:
                    continue
                action = "allow" if spec.name == engine.POLICY_STATUS_TOOL else \
                    (rule.action if rule is not None else p.default)
                rl = rule.rate_limit if rule is not None else None
                tools.append(ToolRuleView(
                    tool=spec.name, action=action, rule=mark + path, limits=_limits(rule),
                    rate_limit=f"{rl.max} per {rl.window} s" if rl else None,
                    approval_above_usd=rule.approval_above.notional_usd if rule is not None and rule.approval_above
                    else None))
        caps: dict[str, tuple[str, engine.Cap]] = {}
        rates: dict[tuple, tuple[str, object]] = {}
        for spec in ALL_TOOLS:  # the same caps and rate-limit keys the guard counts against (engine.daily_caps)
            if layers.denied_outright(lay, spec.name):
                continue
            for p, mark in marked:
                for cap in engine.daily_caps(p, spec.name, name):
                    caps.setdefault((cap.key, cap.limit, mark), (mark, cap))
                for key, path, rl in engine.rate_limits(p, spec.name, name):
                    rates.setdefault((key, rl.max, rl.window, mark), (mark + path, rl))
        state_error = await _state_error(deps)
        try:
            keys = list(dict.fromkeys(c.key for _, c in caps.values()))
            used, _ = await guard.store.run(guard.state.view, keys, []) if caps else ({}, {})
            usage = {slot: await guard.store.run(guard.state.rate_usage, slot[0], rl) for slot, (_, rl) in rates.items()}
        except StateError as exc:  # the status is a read tool: it answers, and says what the store's absence means
            now = guard.clock()
            used, caps = {}, {}  # not known: none shown
            usage = {slot: (guard.local_rates.used(slot[0], rl, now), guard.local_rates.wait(slot[0], rl, now))
                     for slot, (_, rl) in rates.items()}
            away = (f"the state store cannot be read ({guard.redact(str(exc))[:300]}): calls that trade are denied "
                    "until it is back (a human must fix it if it stays away); read tools work, their rate limits "
                    "counted in this server alone; today's daily sums are not known meanwhile")
            state_error = f"{away}; {state_error}" if state_error else away
        daily = [DailyView(rule=mark + c.rule, cap_usd=c.limit, used_usd=used.get(c.key, Decimal(0)),
                           remaining_usd=max(c.limit - used.get(c.key, Decimal(0)), Decimal(0)))
                 for mark, c in caps.values()]
        rate_views = [RateView(rule=path, max=rl.max, window_s=rl.window, used=usage[slot][0],
                               wait_s=int(usage[slot][1] + 0.999)) for slot, (path, rl) in rates.items()]
        try:
            protections, unpriced = await protection_views(guard, policy.account.protections)
        except StateError:  # said in state_error (the same store)
            protections, unpriced = [], []
        return PolicyStatusResult(policy=f"{loaded.source} ({loaded.sha256})", mode=policy.mode,
                                  kill_switch=bool(await guard.kill_switch(loaded)), exchange=settings.mode, tools=tools,
                                  denied=denied, daily=daily, rate_limits=rate_views,
                                  reload_error=guard.reload_error, state_error=state_error,
                                  protections=protections, unpriced_assets=unpriced, safety=safety(deps),
                                  service=service(guard, lay, name))

    return ToolDef(engine.POLICY_STATUS_TOOL, STATUS_DESCRIPTION, NoArgs, PolicyStatusResult, handler)


async def protection_views(guard, prot) -> tuple[list[ProtectionView], list[str]]:
    """Every protection the policy sets: its current value, its limit, whether it is tripped. The account is read
    (a sample is recorded); a read that fails is shown in ``detail`` instead of failing the status."""
    if not prot.any:
        return [], []
    from binance_mcp.policy.engine import drawdown_pct
    from binance_mcp.policy.protections import PCT

    p = guard.protector
    rp = "account.protections"
    views: list[ProtectionView] = []
    problem = None
    eq = gross = None
    trips: dict = {}
    try:
        if p.reader is None:
            raise BinanceMcpError("no exchange to read the account from")
        eq, gross = await p.reader.read(prot.equity, prot.max_gross_exposure_usd is not None, None)
        trips = await p.record(prot, eq) if eq is not None else {}
    except Exception as exc:  # noqa: BLE001 - the status must answer; the guard denies on its own
        problem = f"not read: {guard.redact(getattr(exc, 'message', None) or str(exc))[:200]}"
        try:
            trips = await guard.store.run(guard.state.trips, guard.account)
        except StateError:
            trips = {}
    day = await guard.store.run(guard.state.equity_day, guard.account) if prot.equity else None

    def trip_text(name: str) -> str | None:
        t = trips.get(name)
        return None if t is None else ", ".join(f"{k}={v}" for k, v in t.items() if k not in ("code", "at"))

    if prot.max_daily_loss_usd is not None:
        value = None if day is None else str(day["first"] - (eq.usd if eq else day["last"]))
        views.append(ProtectionView(rule=f"{rp}.max_daily_loss_usd", limit=f"{prot.max_daily_loss_usd} USD",
                                    value=value and f"{value} USD lost today", tripped="max_daily_loss_usd" in trips,
                                    detail=trip_text("max_daily_loss_usd") or problem))
    if prot.max_drawdown_pct is not None:
        value = None if day is None else str(drawdown_pct(day["peak"], eq.usd if eq else day["last"]).quantize(PCT))
        views.append(ProtectionView(rule=f"{rp}.max_drawdown_pct", limit=f"{prot.max_drawdown_pct} %",
                                    value=value and f"{value} % below today's peak", tripped="max_drawdown_pct" in
                                    trips, detail=trip_text("max_drawdown_pct") or problem))
    if prot.loss_streak is not None:
        ls = prot.loss_streak
        value, detail, left = None, problem, 0.0
        try:
            since = await guard.store.run(guard.state.last_reset, guard.account)
            n, left = await p.streak(ls, guard.clock(), since)
            value = f"{n} losing closes in the last {ls.window} s; cooldown left {int(left + 0.999)} s"
        except Exception as exc:  # noqa: BLE001
            detail = f"not read: {guard.redact(getattr(exc, 'message', None) or str(exc))[:200]}"
        views.append(ProtectionView(rule=f"{rp}.loss_streak", limit=f"{ls.losses} per {ls.window} s, pause "
                                    f"{ls.cooldown} s", value=value, tripped=left > 0,
                                    detail=detail))
    if prot.max_gross_exposure_usd is not None:
        views.append(ProtectionView(rule=f"{rp}.max_gross_exposure_usd", limit=f"{prot.max_gross_exposure_usd} USD",
                                    value=None if gross is None else f"{gross[0]} USD", detail=problem))
    if prot.cooldown_after_close is not None:
        views.append(ProtectionView(rule=f"{rp}.cooldown_after_close", limit=f"{prot.cooldown_after_close} s",
                                    detail="checked per symbol when an order would reopen it"))
    return views, list(p.unpriced)


def locked_status_tool(guard, settings) -> ToolDef:
    """The status of a locked server (server.LockedGuard): the load error, and nothing allowed but this tool."""
    async def handler(args: NoArgs, deps) -> PolicyStatusResult:
        return PolicyStatusResult(
            policy=guard.policy, mode="locked", kill_switch=False, exchange=guard.exchange,
            tools=[ToolRuleView(tool=engine.POLICY_STATUS_TOOL, action="allow", rule="locked")],
            denied=len(ALL_TOOLS) - 1, daily=[], rate_limits=[], locked=True, load_error=guard.text,
            state_error=await _state_error(deps))

    return ToolDef(engine.POLICY_STATUS_TOOL, STATUS_DESCRIPTION, NoArgs, PolicyStatusResult, handler)
