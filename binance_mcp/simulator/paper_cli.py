"""``binance-mcp paper reset|show``: the stored paper account of a state directory (simulator/store.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("paper", help="show or reset the stored paper account",
                       description="The paper account lives in the state directory (paper-account.json) and lasts "
                                   "across restarts; every server on that directory shares it.")
    psub = p.add_subparsers(dest="paper_command", required=True)
    reset = psub.add_parser("reset", help="start a new paper account (erases the current one)",
                            description="Start a new paper account in the state directory. A running server "
                                        "picks it up on its next call (a change of feed needs a restart).")
    reset.add_argument("--balances", default=None,
                       help="start balances, e.g. USDT=10000,BTC=0.5 (spot; the USDT amount also funds the futures "
                            "wallet). Default: BINANCE_MCP_PAPER_BALANCES, else USDT=10000")
    reset.add_argument("--feed", choices=("live", "synthetic"), default=None,
                       help="prices: live (Binance's public market data) or synthetic (a random walk). Default: "
                            "the current account's feed, else BINANCE_MCP_PAPER_FEED, else synthetic")
    reset.add_argument("--upstream", default=None,
                       help="live feed only: a base URL with spot at <url>/api and futures at <url>/fapi. Default: "
                            "BINANCE_MCP_PAPER_UPSTREAM, else api.binance.com and fapi.binance.com")
    show = psub.add_parser("show", help="print the paper account")
    show.add_argument("--json", action="store_true", help="print the stored account as JSON")
    for q in (reset, show):
        q.add_argument("--state-dir", type=Path, default=None,
                       help="state directory (default: BINANCE_MCP_STATE_DIR, else ~/.local/state/binance-mcp)")


def run(args: argparse.Namespace) -> int:
    from binance_mcp.paths import state_dir_of
    from binance_mcp.simulator.store import PaperStore, StoreError

    store = PaperStore(state_dir_of(args.state_dir))
    try:
        if args.paper_command == "reset":
            return _reset(args, store)
        return _show(args, store)
    except (StoreError, ValueError) as exc:
        print(f"binance-mcp paper: {exc}", file=sys.stderr)
        return 2


def _reset(args: argparse.Namespace, store) -> int:
    from binance_mcp.settings import PAPER_UPSTREAM_FUTURES_URL, PAPER_UPSTREAM_SPOT_URL, Settings
    from binance_mcp.simulator.config import parse_balances
    from binance_mcp.simulator.paper import feed_label
    from binance_mcp.simulator.store import new_account_meta

    try:
        current = store.read()
    except Exception:  # noqa: BLE001 - a damaged account is what reset replaces
        current = None
    text = args.balances or os.environ.get("BINANCE_MCP_PAPER_BALANCES", "").strip() or "USDT=10000"
    balances = parse_balances(text)
    feed = args.feed or (current or {}).get("feed") or os.environ.get("BINANCE_MCP_PAPER_FEED", "").strip().lower() \
        or "synthetic"
    if feed not in ("live", "synthetic"):
        raise ValueError(f"BINANCE_MCP_PAPER_FEED={feed!r} is not valid: use live or synthetic")
    upstream = None
    if feed == "live":
        base = args.upstream or os.environ.get("BINANCE_MCP_PAPER_UPSTREAM", "").strip()
        if not args.upstream and not base and current and current.get("feed") == "live" and not args.feed:
            upstream = current.get("upstream")
        elif base:
            Settings._http_url(base)  # the setting's own check: an http(s) URL
            upstream = {"spot": base.rstrip("/") + "/api", "futures": base.rstrip("/") + "/fapi"}
        else:
            upstream = {"spot": PAPER_UPSTREAM_SPOT_URL, "futures": PAPER_UPSTREAM_FUTURES_URL}
    elif args.upstream:
        raise ValueError("--upstream is for --feed live only")
    meta = new_account_meta(feed, upstream, balances)
    data = dict(meta)
    data["spot"] = {"balances": {a: [str(v), "0"] for a, v in balances.items()}}
    data["futures"] = {"wallet": {"USDT": str(balances["USDT"])} if "USDT" in balances else {}}
    store.replace(data)
    print(f"binance-mcp paper: new paper account {meta['id']} in {store.path}: {feed_label(meta)} feed, balances "
          f"{', '.join(f'{a}={v}' for a, v in balances.items()) or 'none'}", file=sys.stderr)
    return 0


def _n(value: object) -> str:
    """A stored decimal as a person reads it: 0.01, not 0.01000000."""
    d = Decimal(str(value))
    return f"{d.normalize():f}" if d else "0"


def _fmt_time(ms: object) -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError):
        return "?"


def _show(args: argparse.Namespace, store) -> int:
    from binance_mcp.simulator.paper import feed_label

    data = store.read()
    if data is None:
        print(f"binance-mcp paper: no paper account in {store.dir} yet (the first paper call creates one; `binance-mcp "
              "paper reset` makes one now)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    out = [f"Paper account {data.get('id')} ({store.path})",
           f"  feed:     {feed_label(data)}", f"  created:  {_fmt_time(data.get('created'))}"]
    spot, fut = data.get("spot", {}), data.get("futures", {})
    rows = [(a, Decimal(f), Decimal(lk)) for a, (f, lk) in sorted(spot.get("balances", {}).items())]
    out.append("Spot balances:" if any(f or lk for _, f, lk in rows) else "Spot balances: none")
    out += [f"  {a:<8} free {_n(f)}  locked {_n(lk)}" for a, f, lk in rows if f or lk]
    open_spot = [o for o in spot.get("orders", []) if o.get("status") in ("NEW", "PARTIALLY_FILLED")]
    out.append(f"Spot open orders: {len(open_spot) or 'none'}")
    out += [f"  {o['order_id']} {o['symbol']} {o['side']} {o['type']} {_n(o['orig_qty'])} @ {_n(o['price'])} "
            f"({o['status']}, {o['client_order_id']})" for o in open_spot]
    out.append(f"Spot trades: {len(spot.get('trades', []))}")
    out.append("Futures wallet: " + (", ".join(f"{a} {_n(v)}" for a, v in sorted(fut.get("wallet", {}).items()))
                                     or "none"))
    positions = [p for p in fut.get("positions", []) if Decimal(p.get("amt", "0"))]
    out.append(f"Futures positions: {len(positions) or 'none'}")
    out += [f"  {p['symbol']} {p['side']} {_n(p['amt'])} @ {_n(p['entry'])}" for p in positions]
    open_fut = [o for o in fut.get("orders", []) if o.get("status") in ("NEW", "PARTIALLY_FILLED")]
    open_algo = [a for a in fut.get("algo", []) if a.get("status") == "NEW"]
    out.append(f"Futures open orders: {len(open_fut) or 'none'}")
    out += [f"  {o['order_id']} {o['symbol']} {o['side']} {o['type']} {_n(o['orig_qty'])} @ {_n(o['price'])} "
            f"({o['client_order_id']})" for o in open_fut]
    out.append(f"Futures conditional orders: {len(open_algo) or 'none'}")
    out += [f"  {a['algo_id']} {a['symbol']} {a['side']} {a['order_type']} {_n(a['quantity'])} trigger "
            f"{_n(a['trigger_price'])}" for a in open_algo]
    income = fut.get("income", [])
    funding = sum((Decimal(r["income"]) for r in income if r.get("incomeType") == "FUNDING_FEE"), Decimal(0))
    out.append(f"Futures trades: {len(fut.get('trades', []))}; funding paid/received: {_n(funding)} USDT")
    print("\n".join(out))
    return 0
