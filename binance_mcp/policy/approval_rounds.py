"""Approvals asked through the client and decided in the store: 2026-07-28 ``input_required`` rounds, and URL-mode
elicitation on older connections.

On a 2026-07-28 connection the server cannot send the client a request; the tool answers ``input_required``
(``InputRequiredResult``) with what the client should ask its user and a request state, and the client calls the
tool again with the answers and that state. Here:

- The first round creates (or reuses) the pending approval in the store and asks for a **form** showing the order
  where a form counts (over stdio, unless the rule says ``channel: console``), else for a **URL** elicitation to the
  console's page of that approval (where the client declares URL mode). A client that declares neither gets
  APPROVAL_REQUIRED at once.
- The request state carries only the approval id, a digest of the normalised arguments (with the agent), the agent
  and a deadline. FastMCP seals it (AES-GCM under the store's keys, bound to the tool, its raw arguments and this
  server's name) before it leaves; a state that was not minted here never reaches this module.
- On the retry the decision is read from the store, never from the state. A form answer over stdio is the human's
  answer and is written to the store first (``answer_in_client``); a URL accept only means the person agreed to
  open the page, so the store is polled (at most ``elicit_timeout`` seconds) for the console's or the CLI's
  decision. Consuming the approval is one atomic update: a replayed request state finds it used and runs nothing.
- No decision in time: APPROVAL_REQUIRED with the id, the console link and the CLI command; the agent's identical
  repeat (any era) consumes the approval once a human gives it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import mcp_types

from binance_mcp.policy.approvals import (
    Approval,
    _ts,
    answer_type,
    args_hash,
    describe,
    prompt,
    summary,
)
from binance_mcp.policy.engine import DENY, Call, Decision

if TYPE_CHECKING:
    from binance_mcp.policy.approvals import Approver

FORM = "approve"  # the input request keys: the form showing the order, the console's approval page
URL = "console"
STATE_VERSION = 1
FORM_BY = "client form (stdio)"


class InputNeeded(Exception):
    """Not an error: the call's answer is ``result`` (input_required); ``decision`` is what the audit records."""

    def __init__(self, result: mcp_types.InputRequiredResult, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.result = result
        self.decision = decision


def _state(approval: Approval, digest: str, agent: str | None, asked: list[str]) -> str:
    return json.dumps({"v": STATE_VERSION, "approval": approval.id, "digest": digest, "agent": agent,
                       "deadline": _ts(approval.expires_at), "asked": asked}, separators=(",", ":"))


def _read_state(text: str) -> dict | None:
    try:
        state = json.loads(text)
    except ValueError:
        return None
    keys = {"v", "approval", "digest", "agent", "deadline", "asked"}
    if not isinstance(state, dict) or set(state) != keys or state["v"] != STATE_VERSION:
        return None
    return state


def _url_request(approver: Approver, approval: Approval) -> mcp_types.ElicitRequest:
    text = (f"Approve or deny this order on the binance-mcp console: {describe(approval.summary)}. The page shows "
            "the order in full; opening it approves nothing.")
    return mcp_types.ElicitRequest(params=mcp_types.ElicitRequestURLParams(
        message=text, url=approver.link(approval.id), elicitation_id=approval.id))


def _form_request(approver: Approver, approval: Approval, decision: Decision, s: dict) -> mcp_types.ElicitRequest:
    text = f"{prompt(s, decision)}\n(Or approve it in the console: {approver.link(approval.id)})"
    schema = answer_type(s).model_json_schema()
    return mcp_types.ElicitRequest(params=mcp_types.ElicitRequestFormParams(message=text, requested_schema=schema))


async def input_required(approver: Approver, decision: Decision, call: Call, ctx: Any,
                         modes: frozenset[str]) -> Decision:
    """A 2026-07-28 call: the first round asks (raises InputNeeded), the retry reads the store."""
    digest = args_hash(call)
    text = getattr(ctx, "request_state", None)
    if text is not None:
        state = _read_state(text)
        if state is not None and state["digest"] == digest and state["agent"] == call.agent:
            return await _retry(approver, decision, call, state, getattr(ctx, "input_responses", None) or {})
        # Sealed by this server but for other arguments or another agent: it approves nothing; a new approval.
        await approver._event("approval_state_refused", None, call, reason="the request state is for another call")
    settled = await approver._settled(decision, call, "input_required")
    if isinstance(settled, Decision):  # approved earlier out of band (consumed now), denied or expired
        return settled
    approval = settled
    form = "form" in modes and approver.forms_count(decision)
    if approver.codec is None or not approver.codec.ready or not (form or "url" in modes):
        return await approver._required(decision, call, approval)
    s = summary(call, decision)
    requests = {FORM: _form_request(approver, approval, decision, s)} if form else {URL: _url_request(approver,
                                                                                                     approval)}
    await approver._event("approval_asked", approval, call, channel="input_required", asked=list(requests))
    result = mcp_types.InputRequiredResult(input_requests=requests,
                                           request_state=_state(approval, digest, call.agent, list(requests)))
    raise InputNeeded(result, Decision(DENY, "INPUT_REQUIRED", decision.rule,
                                       f"asked the client ({', '.join(requests)}) for approval {approval.id}",
                                       {**decision.facts, "approval_id": approval.id}, decision.steps))


async def _retry(approver: Approver, decision: Decision, call: Call, state: dict, responses: dict) -> Decision:
    approval = await approver.run(approver.store.get, state["approval"])
    if approval is None or approval.args_hash != state["digest"]:
        return Decision(DENY, "APPROVAL_DENIED", decision.rule, "the approval this request state names does not "
                        "exist for this call, so nothing was sent. Call again without it to ask for a new approval.",
                        decision.facts, decision.steps)
    if approver.store.clock() >= state["deadline"]:
        return await _expired(approver, decision, call, approval)
    form = responses.get(FORM) if FORM in state["asked"] else None
    if responses.get(FORM) is not None and form is None or form is not None and not approver.forms_count(decision):
        # The agent's own client answered a form nobody asked for, or one that does not count here: ignored.
        await approver._event("approval_form_ignored", approval, call)
        form = None
    if form is not None:
        content = getattr(form, "content", None)
        yes = getattr(form, "action", None) == "accept" and isinstance(content, dict) and content.get("value") is True
        if await approver.run(approver.store.answer_in_client, approval.id, yes, FORM_BY):
            await approver._event("approval_granted" if yes else "approval_denied", approval, call,
                                  channel="input_required form", answer=getattr(form, "action", None))
        return await _read(approver, decision, call, approval.id, wait=False)
    url = responses.get(URL) if URL in state["asked"] else None
    if url is not None and getattr(url, "action", None) in ("decline", "cancel"):
        await approver._event("approval_page_refused", approval, call, answer=url.action)
        return Decision(DENY, "APPROVAL_DENIED", decision.rule,
                        f"the user did not open the approval page ({url.action}), so the call was not sent. Approval "
                        f"{approval.id} stays pending on the console at {approver.link(approval.id)}; do not retry "
                        "unless the user asks.", {**decision.facts, "approval_id": approval.id}, decision.steps)
    return await _read(approver, decision, call, approval.id, wait=True)


async def url_elicitation(approver: Approver, decision: Decision, call: Call, ctx: Any) -> Decision:
    """An older connection whose client declares URL mode: send the person to the console's page, then read the
    store (the page's answer, not the client's, decides)."""
    import asyncio

    settled = await approver._settled(decision, call, "url_elicitation")
    if isinstance(settled, Decision):
        return settled
    approval = settled
    request = _url_request(approver, approval).params
    await approver._event("approval_asked", approval, call, channel="url_elicitation")
    try:
        answer = await asyncio.wait_for(ctx.session.elicit_url(request.message, request.url, approval.id),
                                        approver.elicit_timeout)
    except Exception as exc:  # noqa: BLE001 - no answer, a timeout or a client error: the store may still decide
        await approver._event("approval_page_unanswered", approval, call, error=type(exc).__name__)
        return await _read(approver, decision, call, approval.id, wait=False)
    if getattr(answer, "action", None) in ("decline", "cancel"):
        await approver._event("approval_page_refused", approval, call, answer=answer.action)
        return Decision(DENY, "APPROVAL_DENIED", decision.rule,
                        f"the user did not open the approval page ({answer.action}), so the call was not sent. "
                        f"Approval {approval.id} stays pending on the console at {approver.link(approval.id)}; do "
                        "not retry unless the user asks.", {**decision.facts, "approval_id": approval.id},
                        decision.steps)
    return await _read(approver, decision, call, approval.id, wait=True)


async def _read(approver: Approver, decision: Decision, call: Call, approval_id: str, *, wait: bool) -> Decision:
    """The store's decision on one approval, after at most ``elicit_timeout`` seconds of polling (``wait``), on the
    store's clock (a test's clock moves with its sleep)."""
    clock = approver.store.clock
    give_up = clock() + (approver.elicit_timeout if wait else 0.0)
    while True:
        approval = await approver.run(approver.store.get, approval_id)
        if approval is None or approval.status != "pending" or clock() >= give_up:
            break
        await approver.sleep(approver.poll)
    if approval is None:
        return Decision(DENY, "APPROVAL_DENIED", decision.rule, f"approval {approval_id} no longer exists, so the "
                        "call was not sent. Call again to ask for a new approval.", decision.facts, decision.steps)
    if approval.status == "approved":
        if await approver.run(approver.store.consume, approval.id):
            return await approver._consumed(approval, decision, call)
        approval = await approver.run(approver.store.get, approval_id) or approval
    if approval.status in ("consumed", "approved"):
        await approver._event("approval_replay_refused", approval, call)
        return Decision(DENY, "APPROVAL_DENIED", decision.rule,
                        f"approval {approval.id} was already used by an earlier call, so nothing was sent again (a "
                        "request state is single-use). Call again to ask for a new approval if the user wants "
                        "another order.", {**decision.facts, "approval_id": approval.id}, decision.steps)
    if approval.status in ("denied", "denied-reported"):
        await approver.run(approver.store.close_denied, approval.id)
        await approver._event("approval_refused", approval, call)
        return Decision(DENY, "APPROVAL_DENIED", decision.rule,
                        f"the user denied approval {approval.id}, so the call was not sent. Do not retry it unless "
                        "the user asks; a changed or new request needs a new approval.",
                        {**decision.facts, "approval_id": approval.id}, decision.steps)
    if approval.status != "pending":
        return await _expired(approver, decision, call, approval)
    waited = f" No decision came within {approver.elicit_timeout:g} s." if wait else ""
    return await approver._required(decision, call, approval, waited)


async def _expired(approver: Approver, decision: Decision, call: Call, approval: Approval) -> Decision:
    await approver._event("approval_expired_refused", approval, call)
    return Decision(DENY, "APPROVAL_EXPIRED", decision.rule,
                    f"approval {approval.id} expired before it was used, so nothing was sent. Call again to create a "
                    "new request, then ask the user to approve it.", {**decision.facts, "approval_id": approval.id},
                    decision.steps)
