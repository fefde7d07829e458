"""Cold start: process spawn -> tools/list answered, our server vs a bare FastMCP server, interleaved.

Each run spawns the server with subprocess.Popen and speaks raw MCP JSON-RPC on its stdin/stdout (newline-
delimited, no client library, so the client adds next to nothing): initialize -> notifications/initialized ->
tools/list. The time is from just before Popen to the tools/list answer parsed. Then stdin is closed and the
process reaped (untimed). Runs alternate ours / bare (with --old, the three rotate).

  ours   python -m binance_mcp serve: paper mode (no keys), the default (built-in read-only) policy, a fresh
         state dir per run. Paper mode starts no simulator before the first exchange call, so none starts here.
  bare   python bench/bare_server.py (FastMCP, one tool).

Both get PYTHONPYCACHEPREFIX=<temp dir> (bytecode compiled once, by a warm-up run of each, into the temp dir;
never into the repository or the venv) and the same environment otherwise.

Also printed: where our start-up time goes (python alone, import fastmcp, import binance_mcp.server, the rest of
`serve`'s imports, build_server), and `python -X importtime -c "import binance_mcp.server"`: the biggest imports
by cumulative time, to point at lazy-import opportunities.

    /work/main/.venv/bin/python bench/cold_start.py [--quick] [--n N] [--profile] [--old DIR]

--profile also prints a cProfile of load_settings + build_server (the start-up work after the imports).
--old DIR adds a third server to the alternation: `python -m binance_mcp serve` from the checkout DIR (the code
before a change), same environment, so before and after meet the same machine load; printed: its ratio to bare
and its gap to ours.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import _common  # noqa: F401 - puts the repository on sys.path
from _common import (
    REPO,
    bench_env,
    end_process,
    machine,
    median,
    old_tree,
    pct,
    table,
    temp_dir,
    tree_state,
    verdict,
)

TARGET = 1.15
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "cold-start-bench", "version": "1"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def env_for(tmp: Path, tree: Path | None = None, **extra: str) -> dict[str, str]:
    env = bench_env(tree, PYTHONPYCACHEPREFIX=str(tmp / "pycache"), **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode goes to the temp prefix: compiled once, like an install
    return env


def read_answer(proc: subprocess.Popen, want_id: int) -> dict:
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the server closed stdout; stderr: {proc.stderr.read()[-2000:]!r}")
        msg = json.loads(line)
        if msg.get("id") == want_id:
            if "error" in msg:
                raise RuntimeError(msg["error"])
            return msg["result"]


def one_run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=str(cwd), text=True, bufsize=1)
    try:
        proc.stdin.write(json.dumps(INIT) + "\n")
        proc.stdin.flush()
        read_answer(proc, 1)
        proc.stdin.write(json.dumps(INITIALIZED) + "\n" + json.dumps(LIST) + "\n")
        proc.stdin.flush()
        tools = read_answer(proc, 2)["tools"]
        dt = time.perf_counter() - t0
    finally:
        end_process(proc)
    return dt, len(tools)


PHASES = r"""
import time, sys
t0 = time.perf_counter()
from fastmcp import FastMCP
t1 = time.perf_counter()
import binance_mcp.server
t2 = time.perf_counter()
import binance_mcp.cli, binance_mcp.policy.guard, binance_mcp.policy.loader, binance_mcp.policy.facts
t3 = time.perf_counter()
from binance_mcp.settings import load_settings
from binance_mcp.server import build_server
s = load_settings()
mcp = build_server(s)
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""


PROFILE_BUILD = r"""
import cProfile, pstats, sys
import binance_mcp.server
from binance_mcp.settings import load_settings
from binance_mcp.server import build_server
pr = cProfile.Profile()
pr.enable()
mcp = build_server(load_settings())
pr.disable()
st = pstats.Stats(pr, stream=sys.stdout)
st.sort_stats("cumulative").print_stats(
    r"binance_mcp/(server|policy/loader|tools/__init__|tools/(?:tool|schemas|models|numbers)|tools/[a-z]+\.py:1\(<module>\))|"
    r"model_json_schema|_model_construction.py:89|fastmcp/server/server.py:\d+\(add_tool\)|yaml/__init__", 25)
"""


def profile_build(env: dict[str, str], cwd: Path) -> str:
    """cProfile of load_settings + build_server in a fresh process (imports of binance_mcp.server done before)."""
    out = subprocess.run([sys.executable, "-c", PROFILE_BUILD], env=env, cwd=str(cwd), check=True,
                         capture_output=True, text=True).stdout
    keep = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith(("   List reduced", "   Ordered"))]
    return "\n".join(keep)


def phases(env: dict[str, str], cwd: Path, n: int) -> list[tuple[str, float]]:
    py, parts = [], []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, cwd=str(cwd), check=True)
        py.append(time.perf_counter() - t)
        out = subprocess.run([sys.executable, "-c", PHASES], env=env, cwd=str(cwd), check=True, capture_output=True,
                             text=True).stdout.split()
        parts.append([float(x) for x in out])
    names = ["python start + exit (python -c pass)", "from fastmcp import FastMCP (the bare server pays this too)",
             "import binance_mcp.server (beyond that)",
             "other imports of serve (cli, guard, loader, facts)", "load_settings + build_server (36 tools, policy)"]
    vals = [median(py)] + [median([p[i] for p in parts]) for i in range(4)]
    return list(zip(names, vals, strict=True))


def importtime(env: dict[str, str], cwd: Path, code: str) -> list[tuple[int, int, int, str]]:
    """(cumulative us, self us, depth, module) per line of `python -X importtime -c CODE`, in the printed order
    (post-order: children before their parent)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, cwd=str(cwd), check=True,
                         capture_output=True, text=True).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, name = line[len("import time:"):].split("|", 2)
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((int(cum_us), int(self_us), depth, name.strip()))
    return rows


def extra_roots(ours: list[tuple[int, int, int, str]], bare_names: set[str]) -> list[tuple[int, int, str, str]]:
    """Imports ours pays and the bare server does not: the root of each such subtree, with the module that
    imported it (its parent in the tree). Returns (cumulative us, self us, module, imported by)."""
    parents: dict[int, str] = {}
    out = []
    # post-order: walk backwards, so a parent is seen before its children
    stack: list[tuple[int, str]] = []
    for cum, slf, depth, name in reversed(ours):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else "-"
        stack.append((depth, name))
        parents[id(name)] = parent
        if name not in bare_names and (parent == "-" or parent in bare_names or parent.startswith("binance_mcp")):
            out.append((cum, slf, name, parent))
    return sorted(out, reverse=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 runs each instead of 20")
    ap.add_argument("--n", type=int, default=None, help="runs of each server")
    ap.add_argument("--profile", action="store_true", help="also cProfile build_server in a fresh process")
    ap.add_argument("--old", metavar="DIR", default=None, help="also start DIR's server (the code before a change)")
    args = ap.parse_args()
    old = old_tree(args.old)
    n = args.n or (5 if args.quick else 20)
    tmp = temp_dir("bench-cold-")
    env = env_for(tmp)
    ours_cmd = [sys.executable, "-m", "binance_mcp", "serve"]
    bare_cmd = [sys.executable, str(REPO / "bench" / "bare_server.py")]
    t_all = time.perf_counter()

    old_env = env_for(tmp, tree=old) if old is not None else None

    def ours_env(i: int, base: dict[str, str] = env) -> dict[str, str]:
        return {**base, "BINANCE_MCP_STATE_DIR": str(tmp / f"state-{i}")}

    # warm-up: compile bytecode into the temp prefix, fill the OS page cache
    for i in range(2):
        one_run(ours_cmd, ours_env(-1 - i), tmp)
        one_run(bare_cmd, env, tmp)
        if old_env is not None:
            one_run(ours_cmd, ours_env(-10 - i, old_env), tmp)
    times: dict[str, list[float]] = {"ours": [], "bare": [], "old": []}
    ours, bare, olds = times["ours"], times["bare"], times["old"]
    ntools = {}
    for i in range(n):
        kinds = [("ours", lambda i=i: one_run(ours_cmd, ours_env(i), tmp)), ("bare", lambda: one_run(bare_cmd, env, tmp))]
        if old_env is not None:
            kinds.append(("old", lambda i=i: one_run(ours_cmd, ours_env(1000 + i, old_env), tmp)))
        k0 = i % len(kinds)
        for name, fn in kinds[k0:] + kinds[:k0]:  # the order rotates every run
            dt, k = fn()
            times[name].append(dt * 1000)
            ntools[name] = k
    ph = phases(env, tmp, 3 if args.quick else 7)
    imports = importtime(env, tmp, "import binance_mcp.server")
    bare_imports = importtime(env, tmp, "from fastmcp import FastMCP")

    mo, mb = median(ours), median(bare)
    print(f"cold_start  {machine()}")
    print(f"{n} runs each, interleaved; spawn -> tools/list answered, ms (wall {time.perf_counter() - t_all:.0f} s)\n")
    print(table(["server", "median ms", "min", "p90", "max", "tools listed"],
                [["ours (paper, read-only policy)", mo, min(ours), pct(ours, 90), max(ours), ntools["ours"]],
                 ["bare FastMCP (1 tool)", mb, min(bare), pct(bare, 90), max(bare), ntools["bare"]]]))
    ratio = mo / mb
    print(f"\nratio ours / bare = {ratio:.3f}  -> target <= {TARGET}: {verdict(ratio <= TARGET)}  "
          f"(ours takes {mo - mb:+.0f} ms more)\n")
    if olds:
        mold = median(olds)
        print(f"old: {tree_state(old)} at {old}: median {mold:,.0f} ms (min {min(olds):,.0f}, p90 {pct(olds, 90):,.0f}),"
              f" {ntools['old']} tools listed; ratio old / bare = {mold / mb:.3f}; ours - old = {mo - mold:+.0f} ms "
              f"(ours / old = {mo / mold:.3f})\n")
    print(table(["phase of our start-up (separate processes, medians)", "ms"], [[k, v * 1000] for k, v in ph]))
    print()
    total = max(r[0] for r in imports)
    bare_total = max(r[0] for r in bare_imports)
    print(f"python -X importtime -c \"import binance_mcp.server\": {total / 1000:.0f} ms cumulative; "
          f"\"from fastmcp import FastMCP\" (what the bare server imports): {bare_total / 1000:.0f} ms\n")
    print(table(["biggest imports under import binance_mcp.server", "cumulative ms", "self ms"],
                [[("  " * d) + name, cum / 1000, slf / 1000] for cum, slf, d, name in sorted(imports, reverse=True)
                 if d <= 3][:15]))
    print()
    bare_names = {r[3] for r in bare_imports}
    print(table(["imports the bare server does not pay (subtree roots)", "cumulative ms", "self ms", "imported by"],
                [[name, cum / 1000, slf / 1000, parent] for cum, slf, name, parent in
                 extra_roots(imports, bare_names)[:20]]))
    if args.profile:
        print("\ncProfile of load_settings + build_server (fresh process, paper mode, default policy; "
              "times include cProfile's overhead):")
        print(profile_build({**env, "BINANCE_MCP_STATE_DIR": str(tmp / "state-profile")}, tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
