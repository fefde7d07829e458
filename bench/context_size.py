"""Context cost: how many bytes an agent's context pays for tools/list and for a default klines call.

Spawns ``binance-mcp serve`` in paper mode under an allow-all policy (every tool listed) and speaks raw MCP JSON-RPC
on its stdin/stdout (no client library): initialize -> tools/list -> tools/call binance_spot_klines with only the
required arguments (symbol BTCUSDT, interval 1h: the default limit). Sizes are of compact JSON
(``separators=(",", ":")``), the form the server writes:

  tools/list        the ``result`` object of the answer; per tool: name + title + description, input schema,
                    output schema, annotations (the rest of each tool object: keys and punctuation)
  klines            ``structuredContent`` and the text block (the same JSON, once more as a string); the whole
                    JSON-RPC answer on the wire (the text block is escaped there); the number of candles

Targets (the issue's size contracts, also checked by tests/e2e/test_context_size.py): tools/list <= 30,000 bytes,
a default klines call <= 12,000 bytes per copy with at least 50 candles.

    PYTHONPATH=. /work/main/.venv/bin/python bench/context_size.py [--tools]

--tools also prints the per-tool table, largest first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import _common  # noqa: F401 - puts the repository on sys.path
from _common import REPO, bench_env, end_process, machine, table, temp_dir, verdict

LIST_TARGET = 30_000
KLINES_TARGET = 12_000
MIN_CANDLES = 50
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "context-size-bench", "version": "1"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
KLINES = {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
          "params": {"name": "binance_spot_klines", "arguments": {"symbol": "BTCUSDT", "interval": "1h"}}}


def size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def read_line(proc: subprocess.Popen, want_id: int) -> tuple[dict, int]:
    """The answer with this id and its size on the wire (the raw line, in bytes)."""
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the server closed stdout; stderr: {proc.stderr.read()[-2000:]!r}")
        msg = json.loads(line)
        if msg.get("id") == want_id:
            if "error" in msg:
                raise RuntimeError(msg["error"])
            return msg["result"], len(line.rstrip(b"\n"))


def measure() -> dict:
    tmp = temp_dir("bench-context-")
    policy = tmp / "allow-all.yaml"
    policy.write_text("version: 1\ndefault: allow\n", encoding="utf-8")
    env = bench_env(BINANCE_MCP_STATE_DIR=str(tmp / "state"), BINANCE_MCP_POLICY=str(policy),
                    BINANCE_MCP_PAPER_TICK_SECONDS="0")
    proc = subprocess.Popen([sys.executable, "-m", "binance_mcp", "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(REPO))
    try:
        def send(*msgs: dict) -> None:
            proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in msgs))
            proc.stdin.flush()

        send(INIT)
        read_line(proc, 1)
        send(INITIALIZED, LIST)
        listed, list_wire = read_line(proc, 2)
        send(KLINES)
        klines, klines_wire = read_line(proc, 3)
    finally:
        end_process(proc)
    if klines.get("isError"):
        raise RuntimeError(klines)
    structured = klines["structuredContent"]
    text = klines["content"][0]["text"]
    candles = structured.get("candles") or structured.get("rows") or []
    tools = []
    for t in listed["tools"]:
        parts = {"text": size(t.get("name", "")) + size(t.get("title", "")) + size(t.get("description", "")),
                 "input": size(t.get("inputSchema", {})), "output": size(t.get("outputSchema", {})),
                 "annotations": size(t.get("annotations", {}))}
        parts["other"] = size(t) - sum(parts.values())
        tools.append((t["name"], size(t), parts))
    return {"list": size(listed), "list_wire": list_wire, "tools": tools,
            "klines_structured": size(structured), "klines_text": len(text.encode()), "klines_wire": klines_wire,
            "candles": len(candles)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tools", action="store_true", help="also print the per-tool sizes")
    args = ap.parse_args()
    m = measure()
    print(machine())
    print()
    sums = {k: sum(p[k] for _, _, p in m["tools"]) for k in ("text", "input", "output", "annotations", "other")}
    print(table(["tools/list (allow-all)", "bytes"], [
        [f"result, compact JSON ({len(m['tools'])} tools)", m["list"]],
        ["  names, titles, descriptions", sums["text"]],
        ["  input schemas", sums["input"]],
        ["  output schemas", sums["output"]],
        ["  annotations", sums["annotations"]],
        ["  keys and punctuation", sums["other"] + m["list"] - sum(s for _, s, _ in m["tools"])],
        ["JSON-RPC answer on the wire", m["list_wire"]],
    ]))
    print(f"target <= {LIST_TARGET:,}: {verdict(m['list'] <= LIST_TARGET)}")
    print()
    print(table(["binance_spot_klines BTCUSDT 1h, default limit", "bytes"], [
        ["structuredContent, compact JSON", m["klines_structured"]],
        ["text block", m["klines_text"]],
        ["JSON-RPC answer on the wire", m["klines_wire"]],
        ["candles", m["candles"]],
    ]))
    ok = max(m["klines_structured"], m["klines_text"]) <= KLINES_TARGET and m["candles"] >= MIN_CANDLES
    print(f"target <= {KLINES_TARGET:,} per copy and >= {MIN_CANDLES} candles: {verdict(ok)}")
    if args.tools:
        print()
        rows = [[name, total, p["text"], p["input"], p["output"]]
                for name, total, p in sorted(m["tools"], key=lambda r: -r[1])]
        print(table(["tool", "bytes", "text", "input", "output"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
