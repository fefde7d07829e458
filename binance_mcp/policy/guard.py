"""The enforcement point: a decorator around every tool's runner, applied in one place (server.py).

For each call: (hot-reload the policy if its file changed) -> gather facts -> engine.decide() -> reserve
daily sums and count rate limits -> audit -> deny, or run the handler and audit its outcome. Anything
unexpected while deciding denies with POLICY_ERROR: the guard fails closed, never open.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from binance_mcp.catalog import ToolSpec
from binance_mcp.errors import BinanceMcpError, ExchangeRejected
from binance_mcp.policy import engine
from binance_mcp.policy.approvals import DEFAULT_ELICIT_TIMEOUT, DEFAULT_TTL, ApprovalStore, Approver
from binance_mcp.policy.audit import AuditLog
from binance_mcp.policy.engine import APPROVE, DENY, Call, Counters, Decision, Facts
from binance_mcp.policy.facts import PriceSource, gather
from binance_mcp.policy.loader import LoadedPolicy, PolicyLoadError, load_file
from binance_mcp.policy.ratelimit import RateLimits
from binance_mcp.policy.state import StateError, StateStore

log = logging.getLogger("binance_mcp.policy")
Runner = Callable[[Any], Awaitable[BaseModel]]


class PolicyDenied(BinanceMcpError):
    """A call the policy did not allow; the text starts with the decision's code."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(decision.reason, code=decision.code,
                         remedy="retry_later" if decision.code == "RATE_LIMITED" else "fix_input")


class PolicyGuard:
    guarded = True

    def __init__(self, loaded: LoadedPolicy, state_dir: Path, facts: PriceSource, *,
                 policy_path: Path | None = None, clock: Callable[[], float] = time.time,
                 redact: Callable[[str], str] = lambda s: s, approval_ttl: float = DEFAULT_TTL,
                 elicit_timeout: float = DEFAULT_ELICIT_TIMEOUT) -> None:
        self.loaded = loaded
        self.policy_path = policy_path
        self.facts = facts
        self.clock = clock
        self.redact = redact
        self.state = StateStore(state_dir / "state.db", clock)
        self.audit = AuditLog(state_dir / "audit.jsonl", redact)
        self.rates = RateLimits()
        self.approvals = ApprovalStore(self.state, clock, approval_ttl)
        self.approver = Approver(self.approvals, self._safe_audit, elicit_timeout=elicit_timeout)
        self.wrapped: set[str] = set()
        self._stamp = self._file_stamp()
        self._failed_stamp: tuple | None = None
        self.reload_error: str | None = None

    # -- the policy in force ----------------------------------------------------------------
    def _file_stamp(self) -> tuple | None:
        if self.policy_path is None:
            return None
        try:
            st = os.stat(self.policy_path)
        except OSError:
            return ("missing",)
        return (st.st_mtime_ns, st.st_size)

    def current(self) -> LoadedPolicy:
        """The policy in force, reloaded when its file changed; a file that fails to load keeps the previous."""
        if self.policy_path is None:
            return self.loaded
        stamp = self._file_stamp()
        if stamp == self._stamp or stamp == self._failed_stamp:
            return self.loaded
        try:
            new = load_file(self.policy_path)
        except PolicyLoadError as exc:
            self._failed_stamp = stamp
            self.reload_error = str(exc)
            log.error("policy reload failed; the previous policy stays in force:\n%s", exc)
            self._safe_audit({"event": "policy_reload_failed", "errors": exc.errors,
                              "kept": {"source": self.loaded.source, "sha256": self.loaded.sha256}})
            return self.loaded
        self.loaded, self._stamp, self._failed_stamp, self.reload_error = new, stamp, None, None
        log.warning("policy reloaded from %s (%s)", new.source, new.sha256)
        self._safe_audit({"event": "policy_reload", "policy": {"source": new.source, "sha256": new.sha256}})
        return new

    def hidden(self, tool: str) -> bool:
        return engine.denied_outright(self.current().policy, tool)

    def kill_switch_on(self, loaded: LoadedPolicy) -> bool:
        path = loaded.policy.account.kill_switch_file
        return bool(path) and Path(path).expanduser().exists()

    # -- deciding ---------------------------------------------------------------------------
    def _daily_caps(self, loaded: LoadedPolicy, call: Call) -> dict[str, Decimal | None]:
        policy = loaded.policy
        rule, _ = engine.effective_rule(policy, call.tool)
        caps: dict[str, Decimal | None] = {}
        if call.tool not in engine.NOTIONAL_TOOLS:
            return caps
        if rule is not None and rule.limits is not None and rule.limits.daily_notional_usd is not None:
            caps[f"tool:{call.tool}"] = rule.limits.daily_notional_usd
        if policy.account.daily_notional_usd is not None:
            caps["account"] = policy.account.daily_notional_usd
        return caps

    def _rate_keys(self, loaded: LoadedPolicy, call: Call) -> list[tuple[str, Any]]:
        policy = loaded.policy
        rule, _ = engine.effective_rule(policy, call.tool)
        out = []
        if rule is not None and rule.rate_limit is not None:
            out.append((f"tool:{call.tool}", rule.rate_limit))
        if policy.account.rate_limit is not None:
            out.append(("account", policy.account.rate_limit))
        return out

    def _rate_denial(self, loaded: LoadedPolicy, call: Call, key: str, rl: Any, wait: float, facts: Any
                     ) -> Decision:
        _, path = engine.effective_rule(loaded.policy, call.tool)
        rule = "account.rate_limit" if key == "account" else f"{path}.rate_limit"
        secs = max(1, int(wait + 0.999))
        return Decision(DENY, "RATE_LIMITED", rule, f"at most {rl.max} calls per {rl.window} s are allowed by "
                        f"{rule}; try again in {secs} s.", facts.as_dict())

    async def evaluate(self, loaded: LoadedPolicy, call: Call) -> tuple[Decision, Any]:
        """Facts, counters and the engine's decision (nothing is reserved yet). Returns (decision, facts)."""
        policy = loaded.policy
        needed = engine.needs(policy, call)
        if call.tool in engine.NOTIONAL_TOOLS and engine.effective_action(policy, call.tool) == APPROVE:
            needed.add("notional")  # the human approving an order must see what it is worth
        try:
            facts = await gather(call, needed, self.facts)
        except Exception as exc:  # a fact is missing: an earlier rule may still deny; otherwise POLICY_ERROR
            return self._without_facts(loaded, call, exc), None
        now = self.clock()
        caps = self._daily_caps(loaded, call) if "notional" in needed else {}
        counters = Counters(kill_switch=call.risk != "read" and self.kill_switch_on(loaded))
        if caps:
            counters.daily_used = self.state.used(list(caps))
        for key, rl in self._rate_keys(loaded, call):
            counters.rate_wait[key] = self.rates.wait(key, rl, now)
        return engine.decide(policy, call, facts, counters), facts

    def _without_facts(self, loaded: LoadedPolicy, call: Call, exc: Exception) -> Decision:
        """Decide with the facts gathered before the failure; never allow. The reason carries the cause."""
        partial = getattr(exc, "facts", None) or Facts()
        cause = self.redact(getattr(exc, "message", None) or str(exc) or type(exc).__name__)[:300]
        decision = engine.decide(loaded.policy, call, partial, Counters(kill_switch=self.kill_switch_on(loaded)))
        if decision.code != "POLICY_ERROR" and not decision.allowed and decision.effect != APPROVE:
            return decision  # denied by a rule that needed no missing fact (kill switch, symbol, side...)
        rule = decision.rule if decision.code == "POLICY_ERROR" else "guard"
        return Decision(DENY, "POLICY_ERROR", rule,
                        f"a fact the policy needs could not be fetched ({cause}), so the call was denied to be safe. "
                        "Retry later; if it persists, a human must check the exchange connection.",
                        partial.as_dict(), decision.steps)

    def commit(self, loaded: LoadedPolicy, call: Call, call_id: str, decision: Decision, facts: Any
               ) -> tuple[Decision, bool]:
        """Reserve daily sums (re-checking caps atomically) and count rate limits for a call about to run."""
        shadow = loaded.policy.mode == "shadow"
        if not shadow:
            # Checked again here, where no other call can interleave: a human may have taken minutes to approve,
            # other calls may have used the rate limit meanwhile, and the kill switch may have been thrown.
            if call.risk in ("financial", "destructive") and self.kill_switch_on(loaded):
                return engine.decide(loaded.policy, call, facts, Counters(kill_switch=True)), False
            now = self.clock()
            for key, rl in self._rate_keys(loaded, call):
                wait = self.rates.wait(key, rl, now)
                if wait > 0:
                    return self._rate_denial(loaded, call, key, rl, wait, facts), False
        caps = self._daily_caps(loaded, call) if facts is not None and facts.notional_usd is not None else {}
        reserved = False
        if caps:
            ok, key, used = self.state.reserve(call_id, call.tool, facts.notional_usd,
                                               {k: (None if shadow else v) for k, v in caps.items()})
            if not ok:  # another call or process reserved first
                rule = "account.daily_notional_usd" if key == "account" else \
                    f"tools.{call.tool}.limits.daily_notional_usd"
                cap = caps[key]
                return Decision(DENY, "DAILY_NOTIONAL_OVER_LIMIT", rule,
                                f"this order ({facts.notional_usd:.2f} USD) would bring today's total (UTC) over the "
                                f"{cap} USD of {rule}; {max(cap - used, 0):.2f} USD remain today.",
                                facts.as_dict()), False
            reserved = True
        now = self.clock()
        for key, _ in self._rate_keys(loaded, call):
            self.rates.hit(key, now)
        return decision, reserved

    # -- the decorator ----------------------------------------------------------------------
    def wrap(self, spec: ToolSpec, tool_def: Any, runner: Runner) -> Runner:
        name = spec.name
        self.wrapped.add(name)

        async def guarded(args: BaseModel) -> BaseModel:
            call_id = uuid.uuid4().hex[:16]
            started = time.perf_counter()
            loaded = self.current()
            call = Call(name, args.model_dump(mode="json", exclude_none=True))
            reserved = False
            shadow = loaded.policy.mode == "shadow"
            try:
                decision, facts = await self.evaluate(loaded, call)
                if call.risk != "read" and (decision.effect != DENY or shadow):
                    self.audit.ready()  # a call that changes anything runs only if its record can be written
                    self.state.check_writable()  # and only while the state database is sound
                if decision.effect == APPROVE and not shadow:
                    decision = await self.approver.resolve(decision, call, _context())
                if decision.allowed or shadow:
                    decision, reserved = self.commit(loaded, call, call_id, decision, facts)
            except Exception as exc:  # fail closed: a fact, the state store or a bug
                why = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                log.warning("policy error on %s: %s", name, why, exc_info=not isinstance(exc, BinanceMcpError))
                decision = Decision(DENY, "POLICY_ERROR", "guard",
                                    f"the policy could not be evaluated ({self.redact(why)[:300]}), so the call was "
                                    "denied to be safe. Retry later; if it persists, a human must check the server.")
            if not decision.allowed and not shadow:
                self._record(call_id, call, decision, loaded, {"status": "not_run"}, started)
                raise PolicyDenied(decision)
            if call.risk != "read":  # on disk before anything is sent: a crash mid-request leaves a trace
                self._record(call_id, call, decision, loaded, {"status": "sending"}, started, shadow)
            try:
                result = await runner(args)
            except ExchangeRejected as exc:
                # Only a definite rejection gives the reserved notional back. A 5xx (or Binance's "execution status
                # unknown" codes) may come after the order was executed: it keeps counting towards today's caps.
                definite = _definitely_not_executed(exc)
                outcome = {"status": "rejected" if definite else "unknown", "exchange_code": exc.binance_code,
                           "http_status": exc.http_status, "error": exc.message[:500]}
                if reserved:
                    outcome["reservation"] = "released" if definite else "kept"
                    if definite:
                        try:
                            self.state.release(call_id)
                        except StateError as err:  # the call's own error matters more; the sum stays too high
                            log.error("could not release the reservation of %s: %s", call_id, err)
                            outcome["reservation"] = "kept (release failed)"
                self._record(call_id, call, decision, loaded, outcome, started, shadow)
                raise
            except BinanceMcpError as exc:
                outcome = {"status": "error", "error_code": exc.code, "error": exc.message[:500]}
                if reserved:
                    outcome["reservation"] = "kept"
                    if getattr(exc, "nothing_placed", False):  # the exchange confirms no order exists
                        try:
                            self.state.release(call_id)
                            outcome["reservation"] = "released"
                        except StateError as err:
                            log.error("could not release the reservation of %s: %s", call_id, err)
                self._record(call_id, call, decision, loaded, outcome, started, shadow)
                raise
            except Exception as exc:
                self._record(call_id, call, decision, loaded, {"status": "error", "error": type(exc).__name__},
                             started, shadow)
                raise
            self._record(call_id, call, decision, loaded, {"status": "ok", **_order_ids(result)}, started, shadow)
            return result

        guarded.__binance_guarded__ = True  # type: ignore[attr-defined]
        return guarded

    # -- audit ------------------------------------------------------------------------------
    def _record(self, call_id: str, call: Call, decision: Decision, loaded: LoadedPolicy, outcome: dict,
                started: float, shadow: bool = False) -> None:
        record = {
            "call_id": call_id, "tool": call.tool, "args": call.args, "decision": decision.as_dict(),
            "outcome": outcome, "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "policy": {"source": loaded.source, "sha256": loaded.sha256, "mode": loaded.policy.mode},
        }
        if shadow and not decision.allowed:
            record["shadow"] = True
        try:
            # One fsync per trading call, on the record written before it is sent (power-cut safe); every other
            # record is flushed, which a killed process cannot lose.
            self.audit.append(record, sync=outcome.get("status") == "sending")
        except OSError as exc:  # checked before anything that changes state ran; here the result must still go back
            log.error("audit record of %s (%s) not written: %s: %s", call_id, call.tool, exc, self.redact(str(record)))

    def _safe_audit(self, record: dict) -> None:
        try:
            self.audit.append(record)
        except OSError as exc:
            log.error("audit log not writable: %s", exc)

    def close(self) -> None:
        self.audit.close()
        self.state.close()


def _context() -> Any:
    """The MCP request context of the running call, or None outside a request."""
    try:
        from fastmcp.server.dependencies import get_context

        return get_context()
    except Exception:  # noqa: BLE001 - no context means no elicitation
        return None


# True when the exchange refused the request (HTTP 4xx with a code whose fate is known), so nothing happened.
# The codes whose execution status is unknown are in the table of binance_mcp/exchange/codes.py. (Imported
# here, where the definition was, so that edits to the top of this module merge cleanly.)
from binance_mcp.exchange.codes import definitely_not_executed as _definitely_not_executed  # noqa: E402


def _order_ids(result: BaseModel) -> dict:
    out = {}
    for field in ("order_id", "algo_id", "client_order_id"):
        value = getattr(result, field, None)
        if value is not None:
            out[field] = value
    return out
