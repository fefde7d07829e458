"""What the console reads and changes, the same on the HTTP service (in its process, next to the guard) and in
``binance-mcp console`` (a process of its own on the same state directory): the state store (a connection and a
worker thread of the console's own, so that a page never waits behind the guard's transactions), the approvals, the
policies in force, the audit log, and, where it can be done safely, flatten (flatten.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.policy import engine, layers
from binance_mcp.policy.approvals import ApprovalStore
from binance_mcp.policy.layers import Layers
from binance_mcp.policy.loader import LoadedPolicy
from binance_mcp.policy.state import StateStore, StoreWorker


@dataclass
class ConsoleBackend:
    state_dir: Path
    account: str
    policy: Callable[[], Awaitable[LoadedPolicy]]  # the service's policy in force
    agent_policy: Callable[[str], Awaitable[LoadedPolicy]]  # an agent's own policy file, loaded
    audit: Callable[[dict], Awaitable[None]]
    secure: bool = False  # the console is reached over TLS: its cookies are Secure
    flatten: Any = None  # flatten.Flattener, or None (then ``flatten_unavailable`` says why)
    flatten_unavailable: str | None = None
    clock: Callable[[], float] = time.time
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = StateStore(self.state_dir / "state.db", self.clock, busy_timeout=0.1)
        self.worker = StoreWorker()
        self.approvals = ApprovalStore(self.state, self.clock)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.worker.run(fn, *args)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._close)
        for closer in self.closers:
            out = closer()
            if asyncio.iscoroutine(out):
                await out

    def _close(self) -> None:
        self.worker.close()
        self.state.close()

    async def audit_records(self) -> list[dict]:
        from binance_mcp.policy.audit import read

        return await asyncio.get_running_loop().run_in_executor(None, read, self.state_dir / "audit.jsonl")

    # -- today ------------------------------------------------------------------------------------
    async def today(self) -> dict[str, Any]:
        """Every daily cap and rate limit with used / limit (per agent, and the account's once), the protections
        and whether tripped, the kill flag and switch file, and the policy changes waiting for a human."""
        service = await self.policy()
        agents = [a for a in await self.run(self.state.agents) if a.active]
        who: list[tuple[str | None, Layers]] = []
        problems: list[str] = []
        for a in agents:
            try:
                who.append((a.name, Layers(service, await self.agent_policy(a.policy) if a.policy else None)))
            except Exception as exc:  # noqa: BLE001 - shown on the page; that agent's calls are denied anyway
                problems.append(f"agent {a.name}: its policy cannot be loaded ({exc})")
        if not agents:
            who.append((None, Layers(service)))
        caps: dict[tuple, dict] = {}
        rates: dict[tuple, dict] = {}
        for name, lay in who:
            for spec in ALL_TOOLS:
                if layers.denied_outright(lay, spec.name):
                    continue
                for p, mark in lay.marked:
                    for cap in engine.daily_caps(p, spec.name, name):
                        scope = "account" if cap.key == "account" else (name or "this server")
                        caps.setdefault((cap.key, cap.limit, mark), {"scope": scope, "rule": mark + cap.rule,
                                                                     "key": cap.key, "limit": cap.limit})
                    for key, path, rl in engine.rate_limits(p, spec.name, name):
                        scope = "account" if key == "account" else (name or "this server")
                        rates.setdefault((key, rl.max, rl.window, mark), {"scope": scope, "rule": mark + path,
                                                                          "key": key, "rl": rl})
        used, _ = await self.run(self.state.view, list(dict.fromkeys(c["key"] for c in caps.values())), [])
        for c in caps.values():
            c["used"] = used.get(c["key"], Decimal(0))
        for r in rates.values():
            r["used"], r["wait"] = await self.run(self.state.rate_usage, r["key"], r["rl"])
        prot = service.policy.account.protections
        trips = await self.run(self.state.trips, self.account)
        configured = {k: v for k, v in prot.model_dump(exclude_none=True).items() if v not in ({}, [], None)}
        return {"policy": service, "caps": sorted(caps.values(), key=lambda c: (c["scope"] != "account", c["scope"])),
                "rates": sorted(rates.values(), key=lambda r: (r["scope"] != "account", r["scope"])),
                "protections": configured, "trips": trips, "kill": await self.run(self.state.kill_flag),
                "kill_file": service.policy.account.kill_switch_file,
                "changes": await self.run(self.state.policy_changes), "problems": problems,
                "agents": [a.name for a in agents]}


def _when(value: str, name: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not an ISO time such as 2026-11-25T00:00") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def filter_audit(records: list[dict], f: dict[str, str]) -> list[tuple[int, dict]]:
    """(line number, record) of the audit records that match agent, tool, code and the time range (ISO, UTC);
    raises ValueError naming a time that is not ISO."""
    since = _when(f["since"], "since") if f["since"] else None
    until = _when(f["until"], "until") if f["until"] else None
    out = []
    for n, r in enumerate(records):
        if f["agent"] and r.get("agent") != f["agent"] or f["tool"] and r.get("tool") != f["tool"]:
            continue
        if f["code"] and (r.get("decision") or {}).get("code") != f["code"]:
            continue
        if since or until:
            try:
                t = _when(str(r.get("time", "")), "time")
            except ValueError:
                continue
            if since and t < since or until and t > until:
                continue
        out.append((n, r))
    return out
