"""The policies a call must pass: the service's, and on the HTTP service the calling agent's own on top of it.

An agent's policy can only tighten: a call runs only when both allow it (a denial by either denies, an approval
asked by either is asked). Its tool rules' daily sums and rate limits count per agent (decision.tool_key); its
``account`` caps (daily notional, rate limit, leverage) count over the whole account, like the service's, since they
are facts of the account, not of an agent. Limits on positions, open orders and exposure read the account's facts
whichever policy sets them. What only the service can enforce for the account as a whole (protections, the kill
switch, the dead man's switch, shadow mode) may not be set in an agent's policy (``agent_policy_problems``).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, replace

from binance_mcp.policy import engine
from binance_mcp.policy.agent_state import AgentRow
from binance_mcp.policy.decision import ALLOW, APPROVE, DENY, Call, Counters, Decision, Facts
from binance_mcp.policy.loader import LoadedPolicy
from binance_mcp.policy.model import Policy

AGENT_RULE = "agent_policy."  # prefix of the rule paths of an agent's policy in decisions and the status


@dataclass(frozen=True)
class Layers:
    """The service's policy in force, and the calling agent's (None over stdio or for an agent without one)."""

    service: LoadedPolicy
    agent: LoadedPolicy | None = None

    @property
    def policies(self) -> tuple[Policy, ...]:
        return (self.service.policy,) if self.agent is None else (self.service.policy, self.agent.policy)

    @property
    def marked(self) -> list[tuple[Policy, str]]:
        """Each policy with the prefix of its rule paths: none for the service's, AGENT_RULE for the agent's."""
        return [(p, AGENT_RULE if i else "") for i, p in enumerate(self.policies)]


def agent_policy_errors(loaded: LoadedPolicy) -> list[str]:
    """Why a loaded policy cannot be an agent's (empty: it can), as load errors: ``file:line: key: problem``."""
    policy, account = loaded.policy, loaded.policy.account
    found = []
    if policy.mode != "enforce":
        found.append((("mode",), "shadow mode would let the agent's calls through; an agent's policy can only "
                                 "tighten (use enforce)"))
    if account.protections.any:
        found.append((("account", "protections"), "protections are the account's: set them in the service's policy"))
    if account.kill_switch_file:
        found.append((("account", "kill_switch_file"), "the kill switch is the service's: set it in the service's "
                                                       "policy (or revoke the agent: binance-mcp agents revoke NAME)"))
    if account.dead_man_switch is not None:
        found.append((("account", "dead_man_switch"), "the dead man's switch is the account's: set it in the "
                                                      "service's policy"))
    return [f"{loaded.source}:{loaded.line_of(*key) or 1}: {'.'.join(key)}: {text} (an agent's policy)"
            for key, text in found]


def needs(layers: Layers, call: Call) -> set[str]:
    out: set[str] = set()
    for policy in layers.policies:
        out |= engine.needs(policy, call)
    return out


def effective_action(layers: Layers, tool: str) -> str:
    """The strictest action of the tool's effective rules: deny, then require_approval, then allow."""
    actions = {engine.effective_action(p, tool) for p in layers.policies}
    return DENY if DENY in actions else APPROVE if APPROVE in actions else ALLOW


def denied_outright(layers: Layers, tool: str) -> bool:
    return any(engine.denied_outright(p, tool) for p in layers.policies)


def daily_caps(layers: Layers, call: Call) -> list[engine.Cap]:
    """Every daily cap the call counts against; a key two policies cap appears once per policy (same sum)."""
    return [cap for p in layers.policies for cap in engine.daily_caps(p, call.tool, call.agent)]


def rate_limits(layers: Layers, call: Call) -> list[tuple[str, str, object]]:
    return [r for p in layers.policies for r in engine.rate_limits(p, call.tool, call.agent)]


def decide(layers: Layers, call: Call, facts: Facts, counters: Counters) -> Decision:
    """The service's decision, then the agent's: the first denial wins, then the first approval asked; when both
    allow, the service's allow with the agent policy's steps after its own."""
    first = engine.decide(layers.service.policy, call, facts, counters)
    if layers.agent is None or first.effect == DENY:
        return first
    second = _as_agent(engine.decide(layers.agent.policy, call, facts, counters), call.agent)
    if second.effect == DENY:
        return second
    if first.effect == APPROVE:
        return first
    if second.effect == APPROVE:
        return second
    return replace(first, steps=(*first.steps, *second.steps))


def _as_agent(decision: Decision, agent: str | None) -> Decision:
    """An agent policy's decision, its rule and steps marked as that policy's (the service's are unmarked)."""
    steps = tuple(f"{AGENT_RULE}{s}" for s in decision.steps)
    if decision.effect == ALLOW:
        return replace(decision, rule=AGENT_RULE + decision.rule, steps=steps)
    return replace(decision, rule=AGENT_RULE + decision.rule, steps=steps,
                   reason=f"(the policy of agent {agent}) {decision.reason}")


# The agent whose request is being handled, set by the HTTP service for each request (service/http.py); None over
# stdio. The guard reads it; a service guard refuses a call without one.
CURRENT_AGENT: ContextVar[AgentRow | None] = ContextVar("binance_mcp_agent", default=None)
