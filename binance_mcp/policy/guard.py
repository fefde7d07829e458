"""The enforcement point: a decorator around every tool's runner, applied in one place (server.py).

For each call: (hot-reload the policy if its file changed) -> note the state store's release counter and the
orders in flight -> gather facts from the exchange -> a first decision (deny, ask approval, or go on) -> after any
wait, fresh facts -> decide again and reserve in ONE state-store transaction (daily sums, rate-limit hits, the
call as in flight) -> audit -> run the handler -> settle the in-flight record on the exchange's answer -> audit.
Anything unexpected while deciding denies with POLICY_ERROR: the guard fails closed, never open.

Nothing here blocks the event loop: the state store runs in its own worker thread, audit writes (and their
fsync) in another, file stats in a thread too. See docs/policy.md "Limits under concurrency" for why the
limits hold when calls arrive together, in one process or several on one state directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel

from binance_mcp.catalog import BY_NAME, ToolSpec
from binance_mcp.errors import BinanceMcpError, ExchangeRejected, InputError, UnknownSymbol
from binance_mcp.exchange.codes import definitely_not_executed
from binance_mcp.exchange.orders import CLIENT_ORDER_ID, new_client_order_id
from binance_mcp.policy import engine, layers
from binance_mcp.policy.approval_rounds import InputNeeded
from binance_mcp.policy.approvals import (
    DEFAULT_ELICIT_TIMEOUT,
    DEFAULT_TTL,
    STDIO_CONSOLE_URL,
    ApprovalStore,
    Approver,
)
from binance_mcp.policy.audit import AuditLog
from binance_mcp.policy.confirm_state import StoreConfirmer
from binance_mcp.policy.engine import ALLOW, APPROVE, DENY, Call, Counters, Decision, Facts
from binance_mcp.policy.facts import FactError, PriceSource, gather, pending_entry, with_pending
from binance_mcp.policy.in_force import KILL_READ, PoliciesInForce
from binance_mcp.policy.layers import CURRENT_AGENT, Layers
from binance_mcp.policy.loader import LoadedPolicy, PolicyLoadError
from binance_mcp.policy.policy_file import PolicyFile
from binance_mcp.policy.protections import AccountFacts, Protector
from binance_mcp.policy.ratelimit import RateLimits
from binance_mcp.policy.recorder import Recorder, order_ids, sending
from binance_mcp.policy.request_keys import StoreKeyCodec
from binance_mcp.policy.resolver import InflightResolver
from binance_mcp.policy.settling import Settling
from binance_mcp.policy.state import (
    BUSY_TIMEOUT_S,
    FROM_ENV,
    Pending,
    Room,
    StateBusy,
    StateError,
    StateStore,
    StoreWorker,
)

log = logging.getLogger("binance_mcp.policy")
Runner = Callable[[Any], Awaitable[BaseModel]]
APPROVAL_DRIFT = Decimal("1.02")  # an approved order may cost at most 2 % more at execution
BUSY_RETHINK_S = 0.5  # a decision that waited this long for a locked store fetches its facts again
EXPECTED = (StateError, FactError, BinanceMcpError, OSError, PolicyLoadError)  # conditions, not bugs: one log line, no traceback


class PolicyDenied(BinanceMcpError):
    """A call the policy did not allow; the text starts with the decision's code."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(decision.reason, code=decision.code,
                         remedy="retry_later" if decision.code == "RATE_LIMITED" else "fix_input")


class PolicyGuard(Settling, PoliciesInForce):
    """The policy guard: what server.py asks of any guard (``wrap``, ``hidden``, ``extra_tools``, ``start``,
    ``aclose``), with the policy, the state store, approvals and the audit log behind it."""

    guarded = True

    def __init__(self, loaded: LoadedPolicy, state_dir: Path, facts: PriceSource, *,
                 policy_path: Path | None = None, clock: Callable[[], float] = time.time,
                 redact: Callable[[str], str] = lambda s: s, approval_ttl: float = DEFAULT_TTL,
                 elicit_timeout: float = DEFAULT_ELICIT_TIMEOUT, account: str = "default",
                 stale_after: float = 60.0, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 service: bool = False, confirm_loosening: bool = False,
                 console_url: str = STDIO_CONSOLE_URL, state_url: str | None = FROM_ENV) -> None:
        self.policy_path = policy_path
        self.facts = facts
        self.clock = clock
        self.sleep = sleep
        self.redact = redact
        self.account = account
        # On the HTTP service every call comes from a known agent (layers.CURRENT_AGENT), whose own policy applies on
        # top of the service's, and only a human out of band approves (the agent answers its own client's forms).
        self.service = service
        self.agent_files: dict[str, PolicyFile] = {}
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.stale_after = stale_after  # an in-flight record older than this is resolved by the sweep
        self.state = StateStore(state_dir / "state.db", clock, busy_timeout=BUSY_TIMEOUT_S, url=state_url)
        self.store = StoreWorker()
        self.tokens: StateStore | None = None  # the HTTP service's token checks: a connection and a thread apart
        self.token_worker = StoreWorker()
        self.store_away: str | None = None  # why the store could not be used by the last call that needed it
        self.local_rates = RateLimits()  # read tools' rate limits while the store is away
        self.audit = AuditLog(state_dir / "audit.jsonl", redact, clock, url=self.state.url)
        self.recorder = Recorder(self.audit, redact)
        self.policy_file = PolicyFile(loaded, policy_path, clock, self.recorder.now,
                                      confirm_loosening=StoreConfirmer(self.state) if confirm_loosening else None)
        self.approvals = ApprovalStore(self.state, clock, approval_ttl)
        self.request_keys = StoreKeyCodec()  # seals 2026-07-28 request state; keys loaded at start
        self.approver = Approver(self.approvals, self.recorder.safe, self.store.run, elicit_timeout=elicit_timeout,
                                 elicit=not service, console_url=console_url, codec=self.request_keys, sleep=sleep)
        self.wrapped: set[str] = set()
        self.live: set[str] = set()  # call ids of this process that are in flight right now
        self.resolver = InflightResolver(self, EXPECTED)
        exchange = getattr(facts, "exchange", None)
        self.protector = Protector(self, AccountFacts(exchange, exchange.clock) if exchange is not None else None)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Resolve what a killed process left in flight, now and every SWEEP_EVERY_S while the server runs."""
        try:  # on PostgreSQL: connect (and migrate) now, not on the first order (a network round trip or three)
            await self.store.run(self.state.seq) if self.state.shared else None
        except StateError as exc:  # fail closed on the calls, reconnecting on each
            log.warning("the state store cannot be used yet: %s", self.redact(str(exc)))
        self.resolver.start()
        self.protector.start()  # equity samples about once a minute (when the policy has equity protections)
        await self.load_request_keys(create=False)

    async def load_request_keys(self, create: bool = True) -> bool:
        """The request-state keys from the store (``create``: made if there are none); without them approvals go out
        of band, and a state another server sealed is refused."""
        if not self.request_keys.ready:
            try:
                self.request_keys.load(await self.store.run(self.state.request_state_keys, create))
            except Exception as exc:  # noqa: BLE001 - 2026-07-28 approvals fall back to APPROVAL_REQUIRED
                log.error("the request-state keys cannot be read from the state store: %s", self.redact(str(exc)))
        return self.request_keys.ready

    async def aclose(self) -> None:
        await self.protector.aclose()
        await self.resolver.aclose()
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        self.recorder.close()
        self.store.close()
        self.token_worker.close()
        self.audit.close()
        self.state.close()
        if self.tokens is not None:
            self.tokens.close()

    def extra_tools(self, settings: Any) -> list:
        from binance_mcp.policy.status import status_tool

        return [status_tool(self, settings)]

    # -- deciding ---------------------------------------------------------------------------
    async def _facts(self, lay: Layers, call: Call) -> tuple[Facts | None, int | None, Decision | None]:
        """(facts with the orders in flight now, the release counter noted before them, a denial if facts failed)."""
        loaded = lay.service
        policy = loaded.policy
        needed = layers.needs(lay, call)
        if call.tool in engine.NOTIONAL_TOOLS and layers.effective_action(lay, call.tool) == APPROVE:
            needed.add("notional")  # the human approving an order must see what it is worth
        if call.risk != "read" and await self.kill_switch(loaded):
            needed.add("exposure")  # the kill switch stops only what adds exposure (unless its scope is all)
        if needed and policy.mode == "enforce":  # a rule that needs no fact may deny already: then fetch nothing
            early = layers.decide(lay, call, Facts(), Counters())
            if early.effect == DENY and early.code != "POLICY_ERROR":
                return None, None, early
        spec = BY_NAME.get(call.tool)
        seq, pending = None, []
        if spec is not None and (spec.order or spec.reduces):
            seq, pending = await self.store.run(self.state.snapshot, self.account)
        try:
            facts = await gather(call, needed, self.facts)
            seq = await self.protector.fill(policy.account.protections, call, needed, facts, seq)
        except (InputError, UnknownSymbol) as exc:  # the arguments contradict the exchange (a symbol it does not
            # list, the account's position mode): the agent must change them; nothing was sent
            return None, seq, Decision(DENY, exc.code, "guard", exc.message)
        except Exception as exc:  # a fact is missing: an earlier rule may still deny; otherwise POLICY_ERROR
            return None, seq, await self._without_facts(lay, call, exc)
        return with_pending(call, facts, pending), seq, None

    async def _without_facts(self, lay: Layers, call: Call, exc: Exception) -> Decision:
        """Decide with the facts gathered before the failure; never allow. The reason carries the cause."""
        partial = getattr(exc, "facts", None) or Facts()
        if isinstance(exc, BinanceMcpError) and exc.code == "POLICY_ERROR":  # e.g. the key check locked the server:
            return Decision(DENY, "POLICY_ERROR", "guard", self.redact(exc.message))  # its own text says what to do
        cause = self.redact(getattr(exc, "message", None) or str(exc) or type(exc).__name__)[:300]
        if isinstance(exc, EXPECTED):
            log.warning("a fact for %s could not be fetched: %s", call.tool, cause)
        else:
            log.error("fetching facts for %s failed", call.tool, exc_info=exc)
        kill = call.risk != "read" and await self.kill_switch(lay.service)
        decision = layers.decide(lay, call, partial, Counters(kill_switch=kill))
        if decision.code != "POLICY_ERROR" and not decision.allowed and decision.effect != APPROVE:
            return decision  # denied by a rule that needed no missing fact (kill switch, symbol, side...)
        rule = decision.rule if decision.code == "POLICY_ERROR" else "guard"
        return Decision(DENY, "POLICY_ERROR", rule,
                        f"a fact the policy needs could not be fetched ({cause}), so the call was denied to be safe. "
                        "Retry later; if it persists, a human must check the exchange connection.",
                        partial.as_dict(), decision.steps)

    async def _preview(self, lay: Layers, call: Call, facts: Facts) -> Decision:
        """What the engine says before anything is reserved (today's sums and rate limits as they stand)."""
        policy = lay.service.policy
        caps = layers.daily_caps(lay, call) if facts.notional_usd is not None else []
        rates = layers.rate_limits(lay, call)
        counters = Counters(kill_switch=call.risk != "read" and await self.kill_switch(lay.service))
        if policy.account.protections.equity and call.risk != "read":
            counters.tripped = await self.store.run(self.state.trips, self.account)
        if caps or rates:
            try:
                counters.daily_used, counters.rate_wait = await self.store.run(
                    self.state.view, [c.key for c in caps], [(key, rl) for key, _, rl in rates])
            except StateError as exc:
                if call.risk != "read" or caps:
                    raise
                counters.rate_wait = self._away(exc, [(key, rl) for key, _, rl in rates])
        return layers.decide(lay, call, facts, counters)

    def _away(self, exc: StateError, rates: list[tuple[str, Any]]) -> dict[str, float]:
        """The store cannot be used: a read call's rate limits count in this process meanwhile (the waits)."""
        if self.store_away is None:
            log.warning("the state store cannot be used (%s): calls that trade are refused; read tools' rate "
                        "limits count in this process until it is back", self.redact(str(exc))[:300])
        self.store_away = self.redact(str(exc))[:300]
        return self.local_rates.waits(rates, self.clock())

    async def _commit(self, lay: Layers, call: Call, call_id: str, facts: Facts | None, seq: int | None,
                      entry: Pending | None, approved: str | None) -> Decision:
        """Decide again and reserve, atomically: nothing another call (or process) reserved can be missed."""
        policy = lay.service.policy
        shadow = policy.mode == "shadow"
        facts = facts or Facts()
        if facts.notional_usd is not None and facts.notional_usd < 0:
            raise FactError(f"the order's notional came out negative ({facts.notional_usd}); refusing to count it")
        caps = layers.daily_caps(lay, call) if facts.notional_usd is not None else []
        rates = layers.rate_limits(lay, call)
        kill = call.risk != "read" and await self.kill_switch(lay.service)
        unchecked = shadow or engine.reducing(call)  # recorded in the sums, never refused for them
        trips = policy.account.protections.equity and call.risk != "read"

        def decide(room: Room) -> Decision:
            counters = Counters(daily_used=room.daily_used, rate_wait=room.rate_wait, kill_switch=kill,
                                approved=approved, tripped=room.trips or {})
            decision = layers.decide(lay, call, with_pending(call, facts, room.pending), counters)
            if shadow:  # decide and audit, but let every call through (and keep counting it)
                return _Passed(decision)
            return decision

        if not caps and not rates and entry is None and not trips:
            decision: Any = decide(Room([], {}, {}))
        else:
            pairs = [(key, rl) for key, _, rl in rates]
            try:
                decision = await self.store.run(
                    self.state.commit, self.account, seq, {c.key: (None if unchecked else c.limit) for c in caps},
                    facts.notional_usd, pairs, entry, decide, trips, patience=BUSY_RETHINK_S)
                self.store_away = None
            except StateError as exc:
                if entry is not None and not isinstance(exc, StateBusy):
                    self.resolver.resolve_soon(entry)  # a commit may have landed, its answer lost: nothing is sent,
                    # and after the receive window the exchange's word settles the record (absent: given back)
                if call.risk != "read" or caps or entry is not None or trips:
                    raise  # fail closed: nothing that trades is decided without the store
                decision = decide(Room([], {}, self._away(exc, pairs)))
                if getattr(decision, "allowed", False):
                    for key in dict.fromkeys(key for key, _ in pairs):
                        self.local_rates.hit(key, self.clock())
        return decision.decision if isinstance(decision, _Passed) else decision

    async def _approved_notional_check(self, decision: Decision, fresh: Facts | None) -> Decision | None:
        """An approval binds the notional it showed: more than 2 % above it now needs a new approval."""
        shown = decision.facts.get("approved_notional_usd") or decision.facts.get("notional_usd")
        if shown is None or fresh is None or fresh.notional_usd is None:
            return None
        shown = Decimal(str(shown))
        if fresh.notional_usd <= shown * APPROVAL_DRIFT:
            return None
        return Decision(DENY, "APPROVAL_REQUIRED", decision.rule,
                        f"the order's notional is now {fresh.notional_usd:.2f} USD, more than 2 % above the "
                        f"{shown:.2f} USD the human approved, so it was not sent. Call again to ask for a new "
                        "approval.", fresh.as_dict(), decision.steps)

    # -- the decorator ----------------------------------------------------------------------
    def wrap(self, spec: ToolSpec, tool_def: Any, runner: Runner) -> Runner:
        name = spec.name
        self.wrapped.add(name)

        async def guarded(args: BaseModel) -> BaseModel:
            token = KILL_READ.set({})  # the kill flag: one store read per call
            try:
                return await self._guarded(name, spec, args, runner)
            finally:
                KILL_READ.reset(token)

        guarded.__binance_guarded__ = True  # type: ignore[attr-defined]
        return guarded

    async def _guarded(self, name: str, spec: ToolSpec, args: BaseModel, runner: Runner) -> BaseModel:
        call_id = uuid.uuid4().hex[:16]
        started = time.perf_counter()
        loaded = Layers(self.loaded)  # until the policies in force are read (a failure there is audited under it)
        agent = CURRENT_AGENT.get()
        call = Call(name, args.model_dump(mode="json", exclude_none=True), agent.name if agent is not None else None)
        shadow = False
        entry: Pending | None = None
        holder: dict = {}  # the in-flight entry once it is handed to the store (a cancel must release it)
        phase = "deciding"
        decision = Decision(DENY, "POLICY_ERROR", "guard", "not decided")
        try:
            try:
                loaded = await self.layers()
                shadow = loaded.service.policy.mode == "shadow"
                decision, entry, args = await self._decide(loaded, call, call_id, args, shadow, holder)
            except asyncio.CancelledError:
                entry = holder.get("entry")
                raise
            except InputNeeded as asked:  # a 2026-07-28 approval round: the client asks its user, then retries
                await self.recorder.record(call_id, call, asked.decision, loaded, {"status": "not_run"}, started)
                raise
            except Exception as exc:  # fail closed: a fact, the state store or a bug
                decision = self._error_decision(name, exc)
            if not decision.allowed and not shadow:
                await self.recorder.record(call_id, call, decision, loaded, {"status": "not_run"}, started)
                raise PolicyDenied(decision)
            if call.risk != "read":  # on disk before anything is sent: a crash mid-request leaves a trace
                await self.recorder.record(call_id, call, decision, loaded, sending(entry), started, shadow)
            phase = "sending"
            token = CLIENT_ORDER_ID.set(entry.client_order_id if entry is not None else None)
            try:
                result = await runner(args)
            finally:
                CLIENT_ORDER_ID.reset(token)
            phase = "settling"
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True):
                await self._cancelled(call_id, call, loaded, entry, phase, started)
            raise
        except ExchangeRejected as exc:
            # Only a definite rejection gives the reserved notional back. A 5xx (or Binance's "execution status
            # unknown" codes) may come after the order was executed: it stays in flight until the sweep knows.
            definite = definitely_not_executed(exc)
            if exc.binance_code == -4061 and hasattr(self.facts, "forget_position_mode"):
                self.facts.forget_position_mode()  # the account's mode was changed by hand: read it again
            outcome = {"status": "rejected" if definite else "unknown", "exchange_code": exc.binance_code,
                       "http_status": exc.http_status, "error": exc.message[:500]}
            await self._finish(call_id, call, decision, loaded, outcome, started, shadow, entry,
                               settle=definite or entry is None or entry.market is None, give_back=definite)
            raise
        except BinanceMcpError as exc:
            if phase == "deciding":  # PolicyDenied: recorded above, nothing reserved
                raise
            nothing = bool(getattr(exc, "nothing_placed", False))  # the exchange confirms no order exists
            outcome = {"status": "error", "error_code": exc.code, "error": exc.message[:500]}
            await self._finish(call_id, call, decision, loaded, outcome, started, shadow, entry,
                               settle=nothing or entry is None or entry.market is None, give_back=nothing)
            raise
        except Exception as exc:
            if phase == "deciding":
                raise
            await self._finish(call_id, call, decision, loaded, {"status": "error", "error": type(exc).__name__},
                               started, shadow, entry, settle=entry is None or entry.market is None, give_back=False)
            raise
        await self._finish(call_id, call, decision, loaded, {"status": "ok", **order_ids(result)}, started, shadow,
                           entry, settle=True, give_back=False)
        return result

    async def _decide(self, lay: Layers, call: Call, call_id: str, args: BaseModel, shadow: bool,
                      holder: dict) -> tuple[Decision, Pending | None, BaseModel]:
        """The final decision, reserved when allowed, and the in-flight entry (and the arguments to send)."""
        facts, seq, failed = await self._facts(lay, call)
        if failed is not None:
            return failed, None, args
        decision = await self._preview(lay, call, facts)
        if call.risk != "read" and (decision.effect != DENY or shadow):
            await self.recorder.ready()  # a call that changes anything runs only if its record can be written
        approved: str | None = None
        if decision.effect == APPROVE and not shadow:
            # No human is asked while the store is broken: sound at a glance, and a real write commits (a full disk
            # or a read-only database passes check_writable's BEGIN IMMEDIATE; only the commit after the human's
            # yes would fail).
            await self.store.run(self.state.check_writable)
            await self.store.run(self.state.write_probe)
            await self.load_request_keys()  # a store that was away at start-up
            decision = await self.approver.resolve(decision, call, _context())
            if not decision.allowed:
                return decision, None, args
            approved = decision.reason
            # After the wait, every limit (and the kill flag) is decided again on fresh facts before anything is sent.
            KILL_READ.set({})
            shown = decision
            facts, seq, failed = await self._facts(lay, call)
            if failed is not None:
                return failed, None, args
            drift = await self._approved_notional_check(shown, facts)
            if drift is not None:
                return drift, None, args
        elif decision.effect == DENY and not shadow:
            return decision, None, args
        entry = None
        if call.risk != "read":
            cid = None
            spec = BY_NAME.get(call.tool)
            if spec is not None and (spec.order or spec.reduces):
                cid = call.get("newClientOrderId") or new_client_order_id()
                if "newClientOrderId" in type(args).model_fields and args.newClientOrderId is None:
                    args = args.model_copy(update={"newClientOrderId": cid})
            entry = pending_entry(call, facts, call_id, self.owner, cid)
            holder["entry"] = entry
        self.live.add(call_id)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.store.patience
        try:
            while True:
                try:
                    final = await self._commit(lay, call, call_id, facts, seq, entry, approved)
                    break
                except StateBusy:
                    if loop.time() >= give_up:
                        raise
                # After waiting for a busy state store, decide again on fresh facts.
                facts, seq, failed = await self._facts(lay, call)
                if failed is not None:
                    self.live.discard(call_id)
                    return failed, None, args
        except BaseException:
            self.live.discard(call_id)
            raise
        if not final.allowed and not shadow:
            self.live.discard(call_id)
            return final, None, args
        return final, entry, args

    def _error_decision(self, name: str, exc: Exception) -> Decision:
        why = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        if isinstance(exc, EXPECTED):
            log.warning("policy error on %s: %s", name, self.redact(why)[:300])
        else:
            log.error("policy error on %s", name, exc_info=exc)
        return Decision(DENY, "POLICY_ERROR", "guard",
                        f"the policy could not be evaluated ({self.redact(why)[:300]}), so the call was "
                        "denied to be safe. Retry later; if it persists, a human must check the server.")

    async def sweep(self, only: str | None = None) -> int:
        return await self.resolver.sweep(only)

    async def audit_refused(self, tool: str, args: Any, code: str, text: str) -> None:
        """One record for a call refused before the policy saw it (see Recorder.refused)."""
        await self.recorder.refused(self.loaded, tool, args, code, text)


class _Passed:
    """Shadow mode: the decision is recorded as made, but the call goes through and is counted."""

    allowed = True

    def __init__(self, decision: Decision) -> None:
        self.decision = decision


def _context() -> Any:
    """The MCP request context of the running call, or None outside a request."""
    try:
        from fastmcp.server.dependencies import get_context

        return get_context()
    except Exception:  # noqa: BLE001 - no context means no elicitation
        return None


__all__ = ["ALLOW", "PolicyDenied", "PolicyGuard"]
