"""``binance-mcp audit``: the audit log (JSON lines in the state directory) as a table or as JSON lines, filtered.
Reads the file only; no FastMCP."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from binance_mcp.paths import state_dir_access, state_dir_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("audit", help="show the audit log as a table, filtered",
                       description="Show the audit log (JSON lines in the state directory) as a table.")
    a.add_argument("--state-dir", type=Path, default=None, help="default: BINANCE_MCP_STATE_DIR or the user state dir")
    a.add_argument("--tool", help="only this tool")
    a.add_argument("--code", help="only this decision code, e.g. NOTIONAL_OVER_LIMIT")
    a.add_argument("--since", help="only records at or after this ISO time, e.g. 2026-11-25T00:00")
    a.add_argument("--limit", type=int, default=50, help="the newest N records (default 50)")
    a.add_argument("--json", action="store_true", help="print the matching records as JSON lines")
    a.add_argument("--source", choices=("file", "store"), default=None,
                   help="file: this host's audit.jsonl; store: the audit table of the PostgreSQL state store "
                        "(BINANCE_MCP_STATE_URL), every host's records (the default when that is set)")


def run(ns: argparse.Namespace) -> int:
    from binance_mcp.store import state_url

    since = None
    if ns.since:
        try:
            since = datetime.fromisoformat(ns.since.replace("Z", "+00:00"))
        except ValueError:
            print(f"--since {ns.since!r} is not an ISO time such as 2026-11-25T00:00", file=sys.stderr)
            return 2
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
    url = state_url()
    source = ns.source or ("store" if url else "file")
    if source == "store":
        if not url:
            print("--source store reads the audit table of a PostgreSQL state store: set BINANCE_MCP_STATE_URL to "
                  "the servers' (or use --source file)", file=sys.stderr)
            return 2
        return _from_store(ns, url, since)
    state = state_dir_of(ns.state_dir)
    problem = state_dir_access(state, create=False, write=False)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from binance_mcp.policy.audit import read

    records = [r for r in read(state / "audit.jsonl") if "tool" in r or "event" in r]
    if ns.tool:
        records = [r for r in records if r.get("tool") == ns.tool]
    if ns.code:
        records = [r for r in records if r.get("decision", {}).get("code") == ns.code]
    if since is not None:
        records = [r for r in records if datetime.fromisoformat(r["time"].replace("Z", "+00:00")) >= since]
    return _show(ns, records[-ns.limit:], state / "audit.jsonl")


def _from_store(ns: argparse.Namespace, url: str, since: datetime | None) -> int:
    from binance_mcp.store import StateError, describe
    from binance_mcp.store.audit_table import AuditTable

    table = AuditTable(url)
    at = since.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z") if since else None
    try:
        records = table.read(ns.tool, ns.code, at, ns.limit)
    except StateError as exc:
        print(f"the audit table cannot be read: {exc}", file=sys.stderr)
        return 2
    finally:
        table.close()
    return _show(ns, records, f"the audit table of {describe(url)}")


def _show(ns: argparse.Namespace, records: list[dict], where: object) -> int:
    if ns.json:
        for r in records:
            print(json.dumps(r))
        return 0
    if not records:
        print(f"no audit records in {where} match")
        return 0
    print(HEADER)
    for r in records:
        print(row(r))
    return 0


COLUMNS = (("time (UTC)", 23), ("tool", 34), ("effect", 16), ("code", 25), ("outcome", 9), ("symbol", 10),
           ("side", 4), ("quantity", 10), ("notional USD", 12))
HEADER = " ".join(f"{name:<{width}}" for name, width in COLUMNS) + " detail"


def order_of(r: dict) -> tuple[str, str, str, str]:
    """Symbol, side, quantity and notional (USD) of an order call or approval event; blanks where there is none."""
    args = r.get("summary") or r.get("args") or {}
    facts = (r.get("decision") or {}).get("facts") or {}
    quantity = args.get("quantity") or (f"{args['quoteOrderQty']} quote" if args.get("quoteOrderQty") else "")
    if not quantity and args.get("closePosition") in (True, "true"):
        quantity = "close"
    notional = args.get("notional_usd") or facts.get("notional_usd") or ""
    if notional:
        try:
            notional = format(Decimal(str(notional)).quantize(Decimal("0.01")), "f")
        except (InvalidOperation, ValueError):
            notional = str(notional)
    return str(args.get("symbol", "")), str(args.get("side", "")), str(quantity), str(notional)


def row(r: dict) -> str:
    """One record as a table row; the detail (order id, error, or the whole reason of a refusal) is never cut."""
    symbol, side, quantity, notional = order_of(r)
    if "event" in r:
        effect, code, outcome = "event", r["event"], ""
        detail = " ".join(str(x) for x in (r.get("approval_id"), r.get("channel")) if x)
    else:
        d, o = r.get("decision") or {}, r.get("outcome") or {}
        effect = d.get("effect", "") + (" (shadow)" if r.get("shadow") else "")
        code, outcome = d.get("code", ""), o.get("status", "")
        detail = str(o.get("order_id") or o.get("error") or (d.get("reason", "") if d.get("effect") != "allow" else ""))
    cells = (r.get("time", "")[:23], r.get("tool", ""), effect, code, outcome, symbol, side, quantity, notional)
    return " ".join(f"{str(c):<{w}}" for c, (_, w) in zip(cells, COLUMNS, strict=True)) + " " + detail.replace("\n", " ")
