"""``binance-mcp policy check | explain | test | schema | confirm``: tools for policy authors (and, with ``confirm``,
for the human who applies a loosening change in service mode: confirm_cli.py).

None of these touch an exchange: ``explain`` and ``test`` take prices, positions and leverage as inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml
from pydantic import ValidationError

from binance_mcp.catalog import ALL_TOOLS, BY_NAME
from binance_mcp.policy import confirm_cli, engine
from binance_mcp.policy.engine import Call, Counters, Decision, Facts
from binance_mcp.policy.facts import FactError, gather, with_pending
from binance_mcp.policy.loader import LoadedPolicy, PolicyLoadError, load_named
from binance_mcp.policy.model import Policy

ACCOUNT_KEYS = ("equity_usd, equity_start_usd, equity_peak_usd (default: the start), tripped [names], "
                "losing_closes_ago [seconds], closed_ago (seconds since the symbol was closed), gross_exposure_usd")
ACCOUNT_FIELDS = {"equity_usd", "equity_start_usd", "equity_peak_usd", "tripped", "losing_closes_ago", "closed_ago",
                  "gross_exposure_usd"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy", help="check, explain and test policy files; confirm a change that loosens",
                       description="Tools for policy authors; none of them calls an exchange. `confirm`: a human "
                                   "applies a policy change that loosens (service mode).")
    psub = p.add_subparsers(dest="policy_command", required=True)
    c = psub.add_parser("check", help="load errors with line numbers, or the effective rule of every tool")
    c.add_argument("files", nargs="+", metavar="FILE",
                   help="a policy file, or a built-in policy's name (read-only, spot-trader, futures-reduce-only, "
                        "policylayer-binance)")
    e = psub.add_parser("explain", help="the decision for one call and every step that led to it")
    e.add_argument("file", help="a policy file, or a built-in policy's name")
    e.add_argument("--tool", required=True)
    e.add_argument("--args", default="{}", help="the call's arguments as JSON")
    e.add_argument("--price", action="append", default=[], metavar="SYMBOL=PRICE",
                   help="a price the decision may need (spot last/bid/ask and futures mark); repeatable")
    e.add_argument("--position", action="append", default=[], metavar="SYMBOL=AMOUNT",
                   help="a signed futures position (one-way mode)")
    e.add_argument("--leverage", action="append", default=[], metavar="SYMBOL=N")
    e.add_argument("--open-orders", type=int, default=0)
    e.add_argument("--used", action="append", default=[], metavar="KEY=USD",
                   help="daily notional already used today: account=100 or tool:binance_spot_place_order=50")
    e.add_argument("--account", default="{}", metavar="JSON", help=f"the account for the protections: {ACCOUNT_KEYS}")
    t = psub.add_parser("test", help="run table-driven cases (tool, args, prices, expected code)",
                        description="Each case: name, tool, args, expect (a code) and optionally rule (the rule "
                                    "path that must decide), prices {SYMBOL: price}, positions {SYMBOL: amount}, "
                                    "leverage {SYMBOL: n}, open_orders, used {account: USD}, kill_switch, "
                                    f"account {{...}} for the protections ({ACCOUNT_KEYS}).")
    t.add_argument("file", help="a policy file, or a built-in policy's name")
    t.add_argument("cases", type=Path)
    psub.add_parser("schema", help="JSON Schema of the policy format (for editor completion)")
    confirm_cli.add_parser(psub)


# -- check ----------------------------------------------------------------------------------
def effective_table(loaded: LoadedPolicy) -> list[tuple[str, str, str, str, str]]:
    policy = loaded.policy
    rows = []
    for spec in ALL_TOOLS:
        rule, path = engine.effective_rule(policy, spec.name)
        action = "allow" if spec.name == engine.POLICY_STATUS_TOOL else (rule.action if rule else policy.default)
        extras = []
        if rule is not None:
            if rule.limits is not None:
                extras += [f"{k}={_short(v)}" for k, v in rule.limits.model_dump(exclude_none=True).items()]
            if rule.rate_limit is not None:
                extras.append(f"rate={rule.rate_limit.max}/{rule.rate_limit.window}s")
            if rule.approval_above is not None:
                on = ",console-only" if rule.approval_above.channel == "console" else ""
                extras.append(f"approval_above={rule.approval_above.notional_usd}USD{on}")
        hidden = "hidden" if engine.denied_outright(policy, spec.name) else ""
        rows.append((spec.name, spec.risk, action + (f" ({hidden})" if hidden else ""), path, " ".join(extras)))
    return rows


def _short(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def warnings(loaded: LoadedPolicy) -> list[str]:
    """Consistency a load cannot refuse but a policy author should see."""
    policy = loaded.policy
    out = []
    if policy.account.max_leverage is None:
        order, change = "binance_futures_place_order", "binance_futures_change_leverage"

        def cap(tool: str) -> int | None:
            rule, _ = engine.effective_rule(policy, tool)
            return rule.limits.max_leverage if rule is not None and rule.limits is not None else None

        for capped, other in ((order, change), (change, order)):
            if cap(capped) is not None and cap(other) is None and engine.effective_action(policy, other) != "deny":
                out.append(f"max_leverage caps {capped} but {other} is allowed without a cap, so leverage can be "
                           f"raised that way: set account.max_leverage (it binds both) or cap {other} too.")
    return out


def cmd_check(files: list[str]) -> int:
    status = 0
    for f in files:
        try:
            loaded = load_named(f)
        except PolicyLoadError as exc:
            print(f"{f}: INVALID", file=sys.stdout)
            for line in exc.errors:
                print(f"  {line}")
            status = 1
            continue
        p = loaded.policy
        print(f"{f}: OK (version 1, default {p.default}, mode {p.mode}, sha256 {loaded.sha256})")
        account = p.account.model_dump(exclude_none=True)
        protections = account.pop("protections", None)
        if account:
            print("  account: " + ", ".join(f"{k}={_short(v) if not isinstance(v, dict) else v}"
                                            for k, v in account.items()))
        if protections:
            print("  account.protections: " + ", ".join(f"{k}={_short(v) if not isinstance(v, dict) else v}"
                                                        for k, v in protections.items())
                  + " (they stop calls that add exposure; equity counts deposits and withdrawals: after one, run "
                    "`binance-mcp protections reset`)")
        width = max(len(s.name) for s in ALL_TOOLS)
        print(f"  {'tool':<{width}}  {'risk':<11}  {'action':<25}  {'rule':<45}  limits")
        for name, risk, action, path, extras in effective_table(loaded):
            print(f"  {name:<{width}}  {risk:<11}  {action:<25}  {path:<45}  {extras}")
        for line in warnings(loaded):
            print(f"  warning: {line}")
        from binance_mcp.policy.deadman import describe

        if describe(p):
            print(f"  {describe(p)}")
        print()
    return status


# -- explain and test: facts from the command line ------------------------------------------
@dataclass
class StaticFacts:
    prices: dict[str, Decimal] = field(default_factory=dict)
    amounts: dict[str, Decimal] = field(default_factory=dict)
    leverages: dict[str, int] = field(default_factory=dict)
    open_count: int = 0

    def _price(self, symbol: str) -> Decimal:
        if symbol not in self.prices:
            raise FactError(f"no price for {symbol}: pass --price {symbol}=<price>")
        if self.prices[symbol] <= 0:
            raise FactError(f"the price of {symbol} must be positive: pass --price {symbol}=<price>")
        return self.prices[symbol]

    async def spot_book_top(self, symbol: str) -> tuple[Decimal, Decimal]:
        p = self._price(symbol)
        return p, p

    async def spot_price(self, symbol: str) -> Decimal:
        return self._price(symbol)

    async def mark_price(self, symbol: str) -> Decimal:
        return self._price(symbol)

    async def futures_book_top(self, symbol: str) -> tuple[Decimal, Decimal]:
        p = self._price(symbol)
        return p, p

    async def position_mode(self) -> bool:
        return False  # one-way: --position gives the BOTH leg

    async def open_legs(self, symbol: str) -> list:
        return []

    async def quote_asset(self, market: str, symbol: str) -> str:
        from binance_mcp.policy.facts import quote_suffix

        quote = quote_suffix(symbol)
        if quote is not None:
            return quote
        raise FactError(f"cannot tell the quote asset of {symbol}")

    async def open_orders(self, market: str) -> int:
        return self.open_count

    async def leverage(self, symbol: str) -> int:
        if symbol not in self.leverages:
            raise FactError(f"no leverage for {symbol}: pass --leverage {symbol}=<n>")
        return self.leverages[symbol]

    async def positions(self, symbol: str) -> dict[str, Decimal]:
        return {"BOTH": self.amounts.get(symbol, Decimal(0))}

    async def position(self, symbol: str, side: str) -> Decimal:
        return self.amounts.get(symbol, Decimal(0)) if side == "BOTH" else Decimal(0)


def _pairs(items: list[str], what: str, conv=Decimal) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{what} {item!r} is not KEY=VALUE")
        try:
            out[key.strip().upper() if what != "--used" else key.strip()] = conv(value.strip())
        except (InvalidOperation, ValueError) as exc:
            raise ValueError(f"{what} {item!r}: {value!r} is not a number") from exc
    return out


def normalise(tool: str, args: dict) -> dict:
    """Validate and normalise arguments with the tool's own input model, exactly as the server does."""
    from binance_mcp.tools import all_tools

    defs = {t.name: t for t in all_tools()}
    if tool not in defs:
        if tool in BY_NAME:
            return dict(args)
        raise ValueError(f"unknown tool {tool!r}")
    model = defs[tool].args.model_validate(args)
    return model.model_dump(mode="json", exclude_none=True)


def account_facts(prot, call: Call, needed: set[str], facts: Facts, account: dict) -> Facts:
    """The protections' figures from ``--account`` (or a case's ``account``), as the guard reads them from the
    exchange. A figure the input lacks stays unknown: the protection that needs it denies with POLICY_ERROR, and
    explain_call says which key to pass."""
    from binance_mcp.policy.protections import Close, close_left, streak_left

    unknown = set(account) - ACCOUNT_FIELDS
    if unknown:
        raise ValueError(f"unknown account key(s) {', '.join(sorted(unknown))}; known: {ACCOUNT_KEYS}")
    if facts.adds_exposure is False:
        return facts

    def num(key: str) -> Decimal | None:
        return None if account.get(key) is None else Decimal(str(account[key]))

    if "equity" in needed:
        facts.equity_usd, facts.equity_start_usd = num("equity_usd"), num("equity_start_usd")
        facts.equity_peak_usd = num("equity_peak_usd") or facts.equity_start_usd
    if "streak" in needed and prot.loss_streak is not None:
        ls = prot.loss_streak
        closes = [Close("", -float(ago), Decimal(-1)) for ago in account.get("losing_closes_ago") or []]
        facts.losing_closes, facts.loss_cooldown_s = streak_left(closes, ls.losses, ls.window, ls.cooldown, 0.0,
                                                                 since=float("-inf"))
    if "cooldown" in needed and prot.cooldown_after_close is not None:
        ago = account.get("closed_ago")
        closes = [] if ago is None else [Close("", -float(ago), Decimal(0))]
        facts.close_cooldown_s = close_left(closes, True, prot.cooldown_after_close, 0.0, since=float("-inf"))
    if "gross" in needed:
        facts.gross_exposure_usd = num("gross_exposure_usd")
    return facts


async def explain_call(loaded: LoadedPolicy, tool: str, args: dict, facts_src: StaticFacts,
                       used: dict[str, Decimal] | None = None, kill_switch: bool = False,
                       account: dict | None = None) -> Decision:
    call = Call(tool, normalise(tool, args))
    policy = loaded.policy
    account = dict(account or {})
    counters = Counters(daily_used=dict(used or {}), kill_switch=kill_switch,
                        tripped={name: {"start_usd": "(earlier)", "equity_usd": "(earlier)", "loss_usd": "(earlier)",
                                        "peak_usd": "(earlier)", "drawdown_pct": "(earlier)"}
                                 for name in account.get("tripped") or []})
    needed = engine.needs(policy, call) | ({"exposure"} if kill_switch and call.risk != "read" else set())
    try:
        facts = await gather(call, needed, facts_src)
        facts = with_pending(call, account_facts(policy.account.protections, call, needed, facts, account), [])
    except FactError as exc:
        # Decide without the facts: an earlier step (kill switch, tool denied, symbol) still wins; a step that
        # needed the missing fact fails with POLICY_ERROR, and the text says which input to pass.
        decision = engine.decide(policy, call, exc.facts or Facts(), counters)
        if decision.code == "POLICY_ERROR":
            return replace(decision, reason=f"{exc}. {decision.reason[:1].upper()}{decision.reason[1:]}")
        if decision.effect == engine.DENY:
            return decision
        return Decision(engine.DENY, "POLICY_ERROR", "facts", f"{exc}.", decision.facts, decision.steps)
    decision = engine.decide(policy, call, facts, counters)
    if decision.code == "POLICY_ERROR" and decision.rule.startswith("account.protections"):
        key = {"max_daily_loss_usd": "equity_usd and equity_start_usd", "max_drawdown_pct": "equity_usd and "
               "equity_start_usd (or equity_peak_usd)", "max_gross_exposure_usd": "gross_exposure_usd"}.get(
            decision.rule.rsplit(".", 1)[-1], "the figures it needs")
        return replace(decision, reason=f"{decision.reason} (pass {key} in --account, or in the case's account)")
    return decision


def cmd_explain(ns: argparse.Namespace) -> int:
    import asyncio

    try:
        loaded = load_named(ns.file)
        args = json.loads(ns.args)
        src = StaticFacts(_pairs(ns.price, "--price"), _pairs(ns.position, "--position"),
                          _pairs(ns.leverage, "--leverage", int), ns.open_orders)
        used = _pairs(ns.used, "--used")
        account = json.loads(ns.account)
        if not isinstance(account, dict):
            raise ValueError("--account must be a JSON object")
        decision = asyncio.run(explain_call(loaded, ns.tool, args, src, used, account=account))
    except PolicyLoadError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (ValueError, ValidationError) as exc:
        print(f"binance-mcp policy explain: {exc}", file=sys.stderr)
        return 2
    print(f"tool:     {ns.tool}")
    print(f"effect:   {decision.effect}")
    print(f"code:     {decision.code}")
    print(f"rule:     {decision.rule}")
    print(f"reason:   {decision.reason}")
    if decision.facts:
        print("facts:    " + ", ".join(f"{k}={v}" for k, v in decision.facts.items()))
    print("steps:")
    for step in decision.steps:
        print(f"  - {step}")
    return 0


def cmd_test(ns: argparse.Namespace) -> int:
    import asyncio

    try:
        loaded = load_named(ns.file)
    except PolicyLoadError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        cases = yaml.safe_load(ns.cases.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        print(f"{ns.cases}: cannot read the cases: {exc}", file=sys.stderr)
        return 2
    if isinstance(cases, dict):
        cases = cases.get("cases")
    if not isinstance(cases, list) or not cases:
        print(f"{ns.cases}: expected a list of cases (tool, args, expect)", file=sys.stderr)
        return 2
    failed = 0
    for i, case in enumerate(cases, 1):
        if not isinstance(case, dict):
            failed += 1
            print(f"FAIL  case {i}: not a mapping with tool, args and expect (got {case!r:.60})")
            continue
        name = case.get("name", f"case {i}")
        try:
            src = StaticFacts({k.upper(): Decimal(str(v)) for k, v in (case.get("prices") or {}).items()},
                              {k.upper(): Decimal(str(v)) for k, v in (case.get("positions") or {}).items()},
                              {k.upper(): int(v) for k, v in (case.get("leverage") or {}).items()},
                              int(case.get("open_orders", 0)))
            used = {k: Decimal(str(v)) for k, v in (case.get("used") or {}).items()}
            decision = asyncio.run(explain_call(loaded, case["tool"], case.get("args") or {}, src, used,
                                                bool(case.get("kill_switch", False)), case.get("account") or {}))
            got = decision.code
        except (KeyError, TypeError, ValueError, ArithmeticError, ValidationError) as exc:  # a malformed case
            got, decision = f"INVALID_CASE ({exc})", None
        expect, expect_rule = case.get("expect"), case.get("rule")
        ok = got == expect and (expect_rule is None or decision is None or decision.rule == expect_rule)
        if expect_rule is not None and decision is not None:
            expect, got = f"{expect} at {expect_rule}", f"{got} at {decision.rule}"
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {name}: expected {expect}, got {got}"
              + ("" if ok or decision is None else f" ({decision.rule}: {decision.reason})"))
    print(f"{len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


def json_schema() -> dict:
    """JSON Schema of the policy format, including the short forms the loader accepts.

    pydantic describes the models' object form only; the loader also reads ``version: "1"``, a rule written as
    its action (``read: allow``) or left empty, a rate limit as ``"10/minute"``, and empty sections. Tool names
    are listed so that an editor completes them and flags a misspelt one.
    """
    schema = Policy.model_json_schema()
    defs = schema["$defs"]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "binance-mcp policy (v1)"
    props = schema["properties"]
    props["version"] = {"enum": [1, "1"], "default": 1, "title": "Version", "description": "1, or \"1\" as "
                        "PolicyLayer writes it"}
    rule = defs.pop("Rule")
    defs["RuleObject"] = rule
    defs["Rule"] = {"anyOf": [{"$ref": "#/$defs/RuleObject"}, {"enum": ["allow", "deny", "require_approval"]},
                              {"type": "null"}],
                    "description": "a rule, or just its action; empty means allow"}
    rate = defs.pop("RateLimit")
    defs["RateLimitObject"] = rate
    defs["RateLimit"] = {"anyOf": [{"$ref": "#/$defs/RateLimitObject"},
                                   {"type": "string", "pattern": r"^\s*\d+\s*/\s*\d*\s*[a-zA-Z]+\s*$",
                                    "examples": ["10/minute", "5/10s", "100/hour"]}]}
    for name in ("classes", "account"):
        props[name] = {"anyOf": [props[name], {"type": "null"}]}
    props["tools"] = {"anyOf": [{"type": "object", "title": "Tools",
                                 "properties": {t.name: {"$ref": "#/$defs/Rule"} for t in ALL_TOOLS},
                                 "additionalProperties": False},
                                {"type": "null"}]}
    return schema


def cmd_schema() -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0


def run(ns: argparse.Namespace) -> int:
    if ns.policy_command == "check":
        return cmd_check(ns.files)
    if ns.policy_command == "explain":
        return cmd_explain(ns)
    if ns.policy_command == "test":
        return cmd_test(ns)
    if ns.policy_command == "confirm":
        return confirm_cli.run(ns)
    return cmd_schema()
