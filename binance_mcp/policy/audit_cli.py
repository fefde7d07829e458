"""``binance-mcp audit``: the audit log (JSON lines in the state directory) as a table or as JSON lines, filtered.
Reads the file only; no FastMCP."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from binance_mcp.paths import state_dir_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("audit", help="show the audit log as a table, filtered",
                       description="Show the audit log (JSON lines in the state directory) as a table.")
    a.add_argument("--state-dir", type=Path, default=None, help="default: BINANCE_MCP_STATE_DIR or the user state dir")
    a.add_argument("--tool", help="only this tool")
    a.add_argument("--code", help="only this decision code, e.g. NOTIONAL_OVER_LIMIT")
    a.add_argument("--since", help="only records at or after this ISO time, e.g. 2026-11-25T00:00")
    a.add_argument("--limit", type=int, default=50, help="the newest N records (default 50)")
    a.add_argument("--json", action="store_true", help="print the matching records as JSON lines")


def run(ns: argparse.Namespace) -> int:
    from binance_mcp.policy.audit import read

    state = state_dir_of(ns.state_dir)
    records = [r for r in read(state / "audit.jsonl") if "tool" in r or "event" in r]
    if ns.tool:
        records = [r for r in records if r.get("tool") == ns.tool]
    if ns.code:
        records = [r for r in records if r.get("decision", {}).get("code") == ns.code]
    if ns.since:
        try:
            since = datetime.fromisoformat(ns.since.replace("Z", "+00:00"))
        except ValueError:
            print(f"--since {ns.since!r} is not an ISO time such as 2026-11-25T00:00", file=sys.stderr)
            return 2
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        records = [r for r in records if datetime.fromisoformat(r["time"].replace("Z", "+00:00")) >= since]
    records = records[-ns.limit:]
    if ns.json:
        for r in records:
            print(json.dumps(r))
        return 0
    if not records:
        print(f"no audit records in {state / 'audit.jsonl'} match")
        return 0
    print(f"{'time (UTC)':<24} {'tool':<34} {'effect':<17} {'code':<26} {'outcome':<10} detail")
    for r in records:
        if "event" in r:
            detail = r.get("approval_id", "") + (" " + str(r.get("channel")) if r.get("channel") else "")
            print(f"{r['time'][:23]:<24} {r.get('tool', ''):<34} {'event':<17} {r['event']:<26} {'':<10} {detail}")
            continue
        d, o = r.get("decision", {}), r.get("outcome", {})
        detail = o.get("order_id") or o.get("error") or (d.get("reason", "")[:60] if d.get("effect") != "allow" else "")
        shadow = " (shadow)" if r.get("shadow") else ""
        print(f"{r['time'][:23]:<24} {r['tool']:<34} {d.get('effect', '') + shadow:<17} {d.get('code', ''):<26} "
              f"{o.get('status', ''):<10} {detail}")
    return 0
