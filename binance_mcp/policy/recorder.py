"""The guard's audit records: one per call, written in order by one worker thread (and its fsync), so the event loop
never waits for the disk. A trading call's record before it is sent is fsynced (a power cut leaves a trace of
every order sent); every other record is flushed, which a killed process cannot lose."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from binance_mcp.policy.audit import AuditLog
from binance_mcp.policy.engine import DENY, Call, Decision
from binance_mcp.policy.layers import CURRENT_AGENT, Layers
from binance_mcp.policy.loader import LoadedPolicy
from binance_mcp.policy.state import StoreWorker

log = logging.getLogger("binance_mcp.policy")


def _policy(loaded: LoadedPolicy | Layers) -> dict:
    """What the audit record says of the policy a call was decided under (and of its agent's, on the service)."""
    if isinstance(loaded, Layers):
        out = _policy(loaded.service)
        if loaded.agent is not None:
            out["agent_policy"] = {"source": loaded.agent.source, "sha256": loaded.agent.sha256}
        return out
    return {"source": loaded.source, "sha256": loaded.sha256, "mode": loaded.policy.mode}


def order_ids(result: Any) -> dict:
    """The ids of the order a call placed or cancelled, under the audit record's keys (results: Binance's names)."""
    out = {}
    for field, key in (("orderId", "order_id"), ("algoId", "algo_id"), ("clientOrderId", "client_order_id")):
        value = getattr(result, field, None)
        if value is not None:
            out[key] = value
    return out


def sending(entry: Any) -> dict:
    """The outcome of the record written (and fsynced) before a call is sent, with the order's client id."""
    out: dict = {"status": "sending"}
    if entry is not None and entry.client_order_id:
        out["client_order_id"] = entry.client_order_id
    return out


class Recorder:
    def __init__(self, audit: AuditLog, redact: Callable[[str], str]) -> None:
        self.audit = audit
        self.redact = redact
        self.writer = StoreWorker()  # one thread for audit writes (and their fsync), in order

    async def _write(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.writer.pool(), fn)

    async def ready(self) -> None:
        """Raise OSError unless a record can be written (checked before a call that changes anything runs)."""
        if self.audit.is_open:  # ready() would do nothing more: save the thread hop
            return
        await self._write(self.audit.ready)

    async def record(self, call_id: str, call: Call, decision: Decision, loaded: LoadedPolicy | Layers,
                     outcome: dict, started: float, shadow: bool = False) -> None:
        record = {
            "call_id": call_id, "tool": call.tool, "args": call.args, "decision": decision.as_dict(),
            "outcome": outcome, "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "policy": _policy(loaded),
        }
        if call.agent is not None:
            record["agent"] = call.agent
        if shadow and not decision.allowed:
            record["shadow"] = True
        try:
            await self._write(lambda: self.audit.append(record, sync=outcome.get("status") == "sending"))
        except OSError as exc:  # checked before anything that changes state ran; here the result must still go back
            log.error("audit record of %s (%s) not written: %s: %s", call_id, call.tool, exc, self.redact(str(record)))

    async def refused(self, loaded: LoadedPolicy, tool: str, args: Any, code: str, text: str) -> None:
        """One record for a call refused before the policy saw it (INVALID_INPUT, UNKNOWN_TOOL): nothing ran and
        nothing was reserved; like every record it passes ``redact``. Flushed, not fsynced."""
        record = {"call_id": uuid.uuid4().hex[:16], "tool": tool, "args": args,
                  "decision": {"effect": DENY, "code": code, "rule": "input", "reason": text},
                  "outcome": {"status": "not_run"}, "duration_ms": 0, "policy": _policy(loaded)}
        agent = CURRENT_AGENT.get()
        if agent is not None:
            record["agent"] = agent.name
        try:
            await self._write(lambda: self.audit.append(record, sync=False))
        except OSError as exc:
            log.error("audit record of a refused call to %s not written: %s", tool[:200], exc)

    def now(self, record: dict) -> None:
        """From a worker thread (policy reload): write directly."""
        try:
            self.audit.append(record)
        except OSError as exc:
            log.error("audit log not writable: %s", exc)

    async def safe(self, record: dict) -> None:
        """An event record (approvals, in-flight resolutions): a failure is logged, never raised."""
        try:
            await self._write(lambda: self.audit.append(record))
        except OSError as exc:
            log.error("audit log not writable: %s", exc)

    def close(self) -> None:
        self.writer.close()
