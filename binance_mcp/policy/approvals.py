"""Human approval an agent cannot fake.

Two channels:
- MCP elicitation, when the client declared the capability on a connection that allows server requests:
  the user sees the normalised order and the rule that asked; only an explicit yes runs the call, once.
- Out of band, for every other client (Claude Desktop has no elicitation): the call is denied with
  APPROVAL_REQUIRED, an approval id and the command a human pastes into a terminal (``<this program> approvals
  approve <id> [--state-dir DIR]``, see binance_mcp.invocation), which shows the order and asks them to confirm;
  the agent's identical repeat call (same normalised arguments, before expiry) consumes it.

Approvals live in the state database, are single-use, bound to a hash of the tool and its normalised
arguments, and expire. No tool can approve anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from binance_mcp.invocation import approvals_command
from binance_mcp.policy.engine import ALLOW, DENY, Call, Decision
from binance_mcp.policy.state import StateStore

DEFAULT_TTL = 600.0  # seconds an approval request (and an approval) stays valid
DEFAULT_ELICIT_TIMEOUT = 120.0
ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def args_hash(call: Call) -> str:
    """What an approval is bound to: the tool, its normalised arguments, and the agent that asked (on the service;
    another agent's identical call has another hash, so it cannot consume the approval)."""
    bound: dict[str, Any] = {"tool": call.tool, "args": call.args}
    if call.agent is not None:
        bound["agent"] = call.agent
    canonical = json.dumps(bound, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def summary(call: Call, decision: Decision) -> dict:
    """The normalised order a human approves."""
    a = call.args
    out: dict[str, Any] = {"tool": call.tool}
    if call.agent is not None:
        out["agent"] = call.agent
    for key in ("symbol", "side", "type", "quantity", "quoteOrderQty", "price", "stopPrice", "positionSide",
                "reduceOnly", "closePosition", "leverage", "marginType"):
        if key in a:
            out[key] = a[key]
    if "notional_usd" in decision.facts:
        out["notional_usd"] = str(Decimal(str(decision.facts["notional_usd"])).quantize(Decimal("0.01")))
    return out


def describe(s: dict) -> str:
    """One readable line: 'BUY 0.003 BTCUSDT LIMIT @ 96000 (~288.00 USD) via binance_spot_place_order'."""
    parts = [s.get("side", ""), s.get("quantity") or (f"{s['quoteOrderQty']} quote" if "quoteOrderQty" in s else ""),
             s.get("symbol", ""), s.get("type", "")]
    text = " ".join(p for p in parts if p)
    if "price" in s:
        text += f" @ {s['price']}"
    if "stopPrice" in s:
        text += f" stop {s['stopPrice']}"
    if "leverage" in s:
        text += f" leverage {s['leverage']}x"
    if "notional_usd" in s:
        text += f" (~{s['notional_usd']} USD)"
    text = f"{text} via {s['tool']}".strip()
    return f"{text} for agent {s['agent']}" if "agent" in s else text


LABELS = (("agent", "agent"), ("tool", "tool"), ("symbol", "symbol"), ("side", "side"), ("type", "type"), ("quantity", "quantity"),
          ("quoteOrderQty", "quote amount"), ("price", "price"), ("stopPrice", "stop price"),
          ("positionSide", "position side"), ("reduceOnly", "reduce only"), ("closePosition", "close position"),
          ("leverage", "leverage"), ("marginType", "margin type"))


def order_lines(s: dict) -> list[str]:
    """The normalised order, field by field (the elicitation prompt and ``approvals approve`` show the same)."""
    lines = []
    for key, label in LABELS:
        if key in s:
            lines.append(f"  {label}: {s[key]}")
        elif key == "price" and "type" in s:
            lines.append("  price: market (the exchange fills it at the best available price)")
    if "notional_usd" in s:
        lines.append(f"  notional: {s['notional_usd']} USD (computed by the server)")
    return lines


def prompt(s: dict, decision: Decision) -> str:
    """The elicitation message: the normalised order, field by field, and the rule that asked."""
    lines = [f"Approve this order? {describe(s)}.", *order_lines(s)]
    lines.append(f"Asked by policy rule {decision.rule}: {decision.reason}")
    lines.append("Answer yes only if you, the human, want it sent to the exchange.")
    return "\n".join(lines)


def answer_type(s: dict) -> type[BaseModel]:
    """The elicitation form: one checkbox whose title says what ticking it approves (FastMCP's plain ``bool`` has
    the untitled ``value``). The field keeps the name ``value``, as for ``bool``; the model's own title is left
    out of the schema (strict clients refuse unknown top-level keys)."""
    title = f"Yes, send this once: {describe(s)}"
    return create_model("OrderApproval", __config__=ConfigDict(json_schema_extra=_no_title),
                        value=(bool, Field(title=title, strict=True, description="Tick to approve this one order; leave it "
                                                                        "unticked, decline or cancel to refuse it.")))


def _no_title(schema: dict[str, Any]) -> None:
    schema.pop("title", None)


@dataclass
class Approval:
    id: str
    tool: str
    args_hash: str
    summary: dict
    rule: str
    status: str  # pending, approved, denied, consumed, expired
    created_at: str
    expires_at: str
    decided_at: str | None = None
    consumed_at: str | None = None

    @classmethod
    def from_row(cls, row: tuple) -> Approval:
        return cls(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6], row[7], row[8], row[9])


class ApprovalStore:
    """Approvals in the shared state database (the server and the CLI use the same file)."""

    COLS = "id, tool, args_hash, summary, rule, status, created_at, expires_at, decided_at, consumed_at"

    def __init__(self, state: StateStore, clock: Callable[[], float], ttl: float = DEFAULT_TTL) -> None:
        self.state = state
        self.clock = clock
        self.ttl = ttl

    def _run(self, fn, write: bool = True):
        """``fn(db)`` in one transaction of the state store (StateError when it cannot be used)."""
        return self.state.transaction(fn, "used", write)

    def expire_old(self) -> list[Approval]:
        now = _iso(self.clock())

        def go(db):
            rows = db.execute(f"SELECT {self.COLS} FROM approvals WHERE status IN ('pending', 'approved') AND "
                              "expires_at <= ?", (now,)).fetchall()
            db.execute("UPDATE approvals SET status = 'expired' WHERE status IN ('pending', 'approved') AND "
                       "expires_at <= ?", (now,))
            return [Approval.from_row(r) for r in rows]

        return self._run(go)

    def create(self, call: Call, decision: Decision) -> Approval:
        now = self.clock()
        approval_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(8))
        a = Approval(approval_id, call.tool, args_hash(call), summary(call, decision), decision.rule, "pending",
                     _iso(now), _iso(now + self.ttl))

        def go(db):
            db.execute(f"INSERT INTO approvals ({self.COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                       (a.id, a.tool, a.args_hash, json.dumps(a.summary), a.rule, a.status, a.created_at,
                        a.expires_at))

        self._run(go)
        return a

    def latest(self, digest: str) -> Approval | None:
        def go(db):
            row = db.execute(f"SELECT {self.COLS} FROM approvals WHERE args_hash = ? AND status != 'consumed' "
                             "ORDER BY created_at DESC, rowid DESC LIMIT 1", (digest,)).fetchone()
            return Approval.from_row(row) if row else None

        return self._run(go, write=False)

    def consume(self, approval_id: str) -> bool:
        """Atomically turn an approved, unexpired approval into consumed. False if someone else got it first."""
        now = _iso(self.clock())

        def go(db):
            cur = db.execute("UPDATE approvals SET status = 'consumed', consumed_at = ? WHERE id = ? AND status = "
                             "'approved' AND expires_at > ?", (now, approval_id, now))
            return cur.rowcount == 1

        return self._run(go)

    def close_denied(self, approval_id: str) -> None:
        """A denial has been reported to the agent: the next identical call starts a new request."""
        self._run(lambda db: db.execute("UPDATE approvals SET status = 'denied-reported' WHERE id = ? AND status = "
                                        "'denied'", (approval_id,)))

    def close_expired(self, approval_id: str) -> None:
        self._run(lambda db: db.execute("UPDATE approvals SET status = 'expired-reported' WHERE id = ? AND status = "
                                        "'expired'", (approval_id,)))

    def decide(self, approval_id: str, approve: bool, by: str | None = None) -> Approval:
        """The human's answer (CLI, console; ``by`` is recorded in decided_by). Raises KeyError / ValueError with
        what is wrong."""
        self.expire_old()
        now = _iso(self.clock())

        def go(db):
            row = db.execute(f"SELECT {self.COLS} FROM approvals WHERE id = ?", (approval_id,)).fetchone()
            if row is None:
                raise KeyError(approval_id)
            a = Approval.from_row(row)
            if a.status != "pending":
                raise ValueError(f"approval {approval_id} is {a.status}, not pending")
            status = "approved" if approve else "denied"
            cur = db.execute("UPDATE approvals SET status = ?, decided_at = ?, decided_by = ? WHERE id = ? AND "
                             "status = 'pending'", (status, now, by, approval_id))
            if cur.rowcount != 1:  # defence in depth: the write transaction already keeps a second human out
                raise ValueError(f"approval {approval_id} was decided by someone else at the same moment, not by you")
            a.status, a.decided_at = status, now
            return a

        return self._run(go)

    def answer_in_client(self, approval_id: str, approve: bool, by: str) -> bool:
        """A human's answer in the client's own UI (a form over stdio): pending -> approved or denied, with who
        (``by``) in ``decided_by``. False when it is no longer pending (decided, used or expired: nothing changes)."""
        now = _iso(self.clock())

        def go(db):
            cur = db.execute("UPDATE approvals SET status = ?, decided_at = ?, decided_by = ? WHERE id = ? AND "
                             "status = 'pending' AND expires_at > ?",
                             ("approved" if approve else "denied", now, by, approval_id, now))
            return cur.rowcount == 1

        return self._run(go)

    def get(self, approval_id: str) -> Approval | None:
        def go(db):
            row = db.execute(f"SELECT {self.COLS} FROM approvals WHERE id = ?", (approval_id,)).fetchone()
            return Approval.from_row(row) if row else None

        return self._run(go, write=False)

    def list(self, statuses: tuple[str, ...] | None = None) -> list[Approval]:
        def go(db):
            if statuses:
                rows = db.execute(f"SELECT {self.COLS} FROM approvals WHERE status IN "
                                  f"({','.join('?' * len(statuses))}) ORDER BY created_at", statuses).fetchall()
            else:
                rows = db.execute(f"SELECT {self.COLS} FROM approvals ORDER BY created_at").fetchall()
            return [Approval.from_row(r) for r in rows]

        return self._run(go, write=False)


MODERN = "2026-07-28"  # the protocol era without server-initiated requests (multi-round-trip requests instead)


def protocol_version(ctx: Any) -> str | None:
    try:
        return ctx.request_context.protocol_version if ctx is not None and ctx.request_context is not None else None
    except Exception:  # noqa: BLE001 - no request context: no protocol to speak of
        return None


def elicitation_modes(ctx: Any) -> frozenset[str]:
    """The elicitation modes the client declared: "form" (an empty ``elicitation: {}`` means form, as before URL mode
    existed) and "url". Empty when it declared none, or on any doubt."""
    if ctx is None:
        return frozenset()
    try:
        session = ctx.session
        caps = getattr(session, "client_capabilities", None)
        if caps is None:
            params = getattr(session, "client_params", None)
            caps = getattr(params, "capabilities", None) if params is not None else None
        elicitation = getattr(caps, "elicitation", None) if caps is not None else None
        if elicitation is None:
            return frozenset()
        form, url = getattr(elicitation, "form", None), getattr(elicitation, "url", None)
        return frozenset(m for m, on in (("form", form is not None or url is None), ("url", url is not None)) if on)
    except Exception:  # noqa: BLE001 - any doubt means no elicitation
        return frozenset()


def client_can_elicit(ctx: Any) -> bool:
    """True only when the client declared form elicitation on a connection where the server may send requests."""
    return "form" in elicitation_modes(ctx) and protocol_version(ctx) != MODERN


def _as_service_user(command: str) -> str:
    """``command`` run as the service's OS user (this process's), from another account: ``sudo -u USER ...``."""
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid: the command as it is
        return command
    return f"sudo -u {user} {command}"


STDIO_CONSOLE_URL = "http://127.0.0.1:8766/console"  # where `binance-mcp console` listens by default


class Approver:
    """Turns a require_approval decision into allow (approved once) or a denial with the right code."""

    def __init__(self, store: ApprovalStore, audit: Callable[[dict], Awaitable[None]],
                 run: Callable[..., Awaitable[Any]], *, elicit_timeout: float = DEFAULT_ELICIT_TIMEOUT,
                 elicit: bool = True, console_url: str = STDIO_CONSOLE_URL, codec: Any = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, poll: float = 0.2) -> None:
        self.store = store
        # False on the HTTP service: a form the agent's own client answers is not a human's approval there
        self.elicit = elicit
        self.audit = audit
        self.run = run  # runs a store call off the event loop (the guard's state worker)
        self.elicit_timeout = elicit_timeout
        self.console_url = console_url
        self.codec = codec  # seals 2026-07-28 request state (policy/request_keys.py); None: no input_required
        self.sleep = sleep
        self.poll = poll  # seconds between reads of the store while a human decides on the console

    def link(self, approval_id: str) -> str:
        """The console's page for one approval."""
        return f"{self.console_url.rstrip('/')}/approvals/{approval_id}"

    def forms_count(self, decision: Decision) -> bool:
        """Whether a form answered in the client's UI is a human's approval: over stdio, unless the rule asks for
        the console (``approval_above.channel: console``); never on the HTTP service."""
        return self.elicit and decision.facts.get("approval_channel") != "console"

    async def _event(self, event: str, approval: Approval | None, call: Call, **extra: Any) -> None:
        record = {"event": event, "tool": call.tool}
        if call.agent is not None:
            record["agent"] = call.agent
        if approval is not None:
            record.update(approval_id=approval.id, summary=approval.summary)
        record.update(extra)
        await self.audit(record)

    async def resolve(self, decision: Decision, call: Call, ctx: Any) -> Decision:
        from binance_mcp.policy import approval_rounds

        for expired in await self.run(self.store.expire_old):
            await self._event("approval_expired", expired, Call(expired.tool, {}))
        modes = elicitation_modes(ctx)
        if protocol_version(ctx) == MODERN:
            return await approval_rounds.input_required(self, decision, call, ctx, modes)
        if "form" in modes and self.forms_count(decision):
            return await self._elicit(decision, call, ctx)
        if "url" in modes:
            return await approval_rounds.url_elicitation(self, decision, call, ctx)
        return await self._out_of_band(decision, call)

    async def _elicit(self, decision: Decision, call: Call, ctx: Any) -> Decision:
        s = summary(call, decision)
        text = prompt(s, decision)
        await self._event("approval_requested", None, call, channel="elicitation", summary=s, rule=decision.rule)
        try:
            result = await asyncio.wait_for(ctx.elicit(text, response_type=answer_type(s)), self.elicit_timeout)
        except asyncio.TimeoutError:
            return await self._denied(decision, call, "no answer within "
                                      f"{self.elicit_timeout:g} s", "timeout")
        except Exception as exc:  # noqa: BLE001 - an error is not a yes
            return await self._denied(decision, call, f"the approval prompt failed ({type(exc).__name__})", "error")
        action = getattr(result, "action", None)
        data = getattr(getattr(result, "data", None), "value", None)
        if action == "accept" and data is True:
            await self._event("approval_granted", None, call, channel="elicitation", summary=s)
            return Decision(ALLOW, "ALLOWED", decision.rule, f"approved by the user (elicitation) under {decision.rule}",
                            decision.facts, (*decision.steps, "approved by elicitation"))
        why = {"decline": "the user declined", "cancel": "the user cancelled"}.get(
            str(action), "the user did not tick yes" if action == "accept" else f"no approval ({action})")
        return await self._denied(decision, call, why, str(action))

    async def _denied(self, decision: Decision, call: Call, why: str, answer: str) -> Decision:
        await self._event("approval_denied", None, call, channel="elicitation", answer=answer)
        return Decision(DENY, "APPROVAL_DENIED", decision.rule,
                        f"{why}, so the call was not sent. Do not retry it unless the user asks again.",
                        decision.facts, (*decision.steps, f"elicitation: {answer}"))

    async def _out_of_band(self, decision: Decision, call: Call) -> Decision:
        settled = await self._settled(decision, call)
        return settled if isinstance(settled, Decision) else await self._required(decision, call, settled)

    async def _settled(self, decision: Decision, call: Call, channel: str = "out_of_band") -> Decision | Approval:
        """What the store already holds for this exact call: approved (consumed now: the call runs), denied or
        expired after approval (refused once), else the pending approval (created when there is none)."""
        digest = args_hash(call)
        prior = await self.run(self.store.latest, digest)
        if prior is not None and prior.status == "approved":
            if await self.run(self.store.consume, prior.id):
                return await self._consumed(prior, decision, call)
        if prior is not None and prior.status == "denied":
            await self.run(self.store.close_denied, prior.id)
            await self._event("approval_refused", prior, call)
            return Decision(DENY, "APPROVAL_DENIED", decision.rule,
                            f"the user denied approval {prior.id} for this exact call. Do not retry it unless the "
                            "user asks; a changed or new request needs a new approval.", decision.facts,
                            decision.steps)
        if prior is not None and prior.status == "expired" and prior.decided_at is not None:
            await self.run(self.store.close_expired, prior.id)
            await self._event("approval_expired_refused", prior, call)
            return Decision(DENY, "APPROVAL_EXPIRED", decision.rule,
                            f"approval {prior.id} expired before it was used. Call again to create a new request, "
                            "then ask the user to approve it.", decision.facts, decision.steps)
        if prior is not None and prior.status == "pending":
            return prior
        approval = await self.run(self.store.create, call, decision)
        await self._event("approval_requested", approval, call, channel=channel, rule=decision.rule)
        return approval

    async def _consumed(self, approval: Approval, decision: Decision, call: Call) -> Decision:
        await self._event("approval_consumed", approval, call)
        shown = approval.summary.get("notional_usd")
        facts = {**decision.facts, **({"approved_notional_usd": shown} if shown is not None else {})}
        return Decision(ALLOW, "ALLOWED", decision.rule,
                        f"approved (approval {approval.id}) under {decision.rule}", facts,
                        (*decision.steps, f"approval {approval.id} consumed"))

    async def _required(self, decision: Decision, call: Call, approval: Approval, asked: str = "") -> Decision:
        """APPROVAL_REQUIRED: the approval id, the console's page for it and the command a human runs."""
        minutes = max(1, round((_ts(approval.expires_at) - self.store.clock()) / 60))
        state_dir = self.store.state.path.parent
        approve, deny = await asyncio.get_running_loop().run_in_executor(  # the first time may run a subprocess
            None, lambda: (approvals_command("approve", approval.id, state_dir),
                           approvals_command("deny", approval.id, state_dir)))
        if not self.elicit:  # the HTTP service: only its own OS user can write its state directory
            approve, deny = _as_service_user(approve), _as_service_user(deny)
        where = (" where BINANCE_MCP_STATE_URL is set as for the server (its state store is PostgreSQL)"
                 if self.store.state.shared else "")
        return Decision(
            DENY, "APPROVAL_REQUIRED", decision.rule,
            f"{decision.reason}{asked} Approval id {approval.id}: ask the user to approve it in the console at "
            f"{self.link(approval.id)} or to run this in a terminal{where}, exactly as it is: `{approve}` (it shows them "
            f"the order and asks them to confirm; `{deny}` refuses it), then repeat this exact call within "
            f"{minutes} minutes. Order: {describe(approval.summary)}.",
            {**decision.facts, "approval_id": approval.id, "approval_url": self.link(approval.id)}, decision.steps)
