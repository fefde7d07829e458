"""Helpers shared by the benchmark scripts: percentiles, a plain-text table, the machine line.

Imported as a sibling module (each script runs as ``python bench/<name>.py``, so bench/ is on sys.path).
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # write nothing outside a temp dir (no __pycache__ in the repository)
REPO = Path(__file__).resolve().parent.parent
# The code measured: the tree this script is in, or BENCH_TREE (another checkout or export, e.g. the code before a
# change, measured by the same script). It goes first on sys.path, and first on the PYTHONPATH of every server
# subprocess (bench_env), so neither an editable install nor the caller's PYTHONPATH decides what is measured.
CODE = Path(os.environ["BENCH_TREE"]).resolve() if os.environ.get("BENCH_TREE") else REPO
if not sys.path or sys.path[0] != str(CODE):
    sys.path.insert(0, str(CODE))


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (0..100), nearest-rank on the sorted values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: list[str], rows: list[list[object]], title: str | None = None) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells[0], widths, strict=True))))
    lines.append("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def machine() -> str:
    try:
        load = "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = ""
    end = git_state()
    git = end if _GIT_AT_START in (None, end) else f"{_GIT_AT_START} at the start; {end} at the end"
    return (f"{datetime.date.today().isoformat()}  python {platform.python_version()}  {platform.machine()}  "
            f"{os.cpu_count()} cores  {platform.system()} {platform.release()}  {load}\n{git}")


def git_state() -> str:
    """HEAD and how many files under binance_mcp/ differ from it: the code measured is the working tree.

    BENCH_SOURCE replaces this line, for a run from a tree that is not a git checkout (e.g. an export of one commit:
    ``git archive HEAD | tar -x -C DIR``, then ``PYTHONPATH=DIR BENCH_SOURCE="git abc1234, clean export"
    python DIR/bench/<name>.py``). BENCH_TREE=DIR runs this checkout's scripts on the code in DIR instead."""
    if os.environ.get("BENCH_SOURCE"):
        return os.environ["BENCH_SOURCE"]
    where = "" if CODE == REPO else f" (BENCH_TREE {CODE}; the bench scripts from {REPO})"
    return tree_state(CODE) + where


def tree_state(tree: Path) -> str:
    """``git <short HEAD>`` of ``tree``, and how many files under its binance_mcp/ differ from it."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "binance_mcp"], cwd=tree, capture_output=True,
                               text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "git: unknown"
    return f"git {head}" + (f" + {len(dirty)} uncommitted file(s) in binance_mcp/" if dirty else "")


# The outputs print the git state at the end; taken at the start too, a commit landing mid-run is visible. Not in
# ours_variant.py: a server needs no git call at start-up.
_GIT_AT_START = None if Path(sys.argv[0]).name == "ours_variant.py" else git_state()


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def temp_dir(prefix: str) -> Path:
    """A new temp dir, removed when the script exits (set BENCH_KEEP=1 to keep it for a look)."""
    import atexit
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix))
    if not os.environ.get("BENCH_KEEP"):
        atexit.register(shutil.rmtree, path, True)
    return path


def bench_env(tree: Path | None = None, **extra: str) -> dict[str, str]:
    """Environment for a server subprocess: ours minus BINANCE_*, no banner, no update check, no .env file, and
    ``tree`` (default: the code measured, CODE) first on PYTHONPATH, so `python -m binance_mcp` imports it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "FASTMCP_"))}
    env.update(FASTMCP_SHOW_SERVER_BANNER="false", FASTMCP_CHECK_FOR_UPDATES="off", FASTMCP_ENV_FILE=os.devnull,
               PYTHONDONTWRITEBYTECODE="1")
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != REPO]
    env["PYTHONPATH"] = os.pathsep.join([str(tree or CODE), *rest])
    env["BENCH_TREE"] = str(tree or CODE)  # bench/ours_variant.py (via this module) imports that tree too
    env.update(extra)
    return env


def old_tree(path: str | None) -> Path | None:
    """The --old DIR of a script: a checkout of the code before a change, run beside the code measured."""
    if path is None:
        return None
    tree = Path(path).resolve()
    if not (tree / "binance_mcp" / "__init__.py").exists():
        raise SystemExit(f"--old {path}: no binance_mcp/ package there")
    return tree


class SimBench:
    """One simulator in this process (frozen prices, controls on) and in-process servers trading it: each built by
    ``build_server`` with the settings ``binance-mcp serve`` would load against BINANCE_MCP_BASE_URL, with its own
    policy file and state directory, for fastmcp's in-memory Client. Requests are read from the simulator's log."""

    def __init__(self, prefix: str) -> None:
        from binance_mcp.simulator.config import SimConfig
        from binance_mcp.simulator.runner import start_in_thread

        self.sim = start_in_thread(SimConfig(controls=True, tick_seconds=0))
        self.tmp = temp_dir(prefix)
        self.n = 0

    def log(self, since: int) -> list[dict]:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.sim.base_url}/_sim/requests?since={since}", timeout=10) as r:  # noqa: S310
            return json.loads(r.read())

    def seq(self) -> int:
        return self.sim.control("state")["last_seq"]

    def server(self, policy: str):
        from fastmcp import Client

        from binance_mcp.server import build_server
        from binance_mcp.settings import load_settings

        self.n += 1
        pol = self.tmp / f"policy-{self.n}.yaml"
        pol.write_text(policy)
        settings = load_settings({"BINANCE_MCP_BASE_URL": self.sim.base_url, "BINANCE_API_KEY": self.sim.api_key,
                                  "BINANCE_API_SECRET": self.sim.api_secret, "BINANCE_MCP_POLICY": str(pol),
                                  "BINANCE_MCP_STATE_DIR": str(self.tmp / f"state-{self.n}")})
        return Client(build_server(settings))


def end_process(proc) -> None:
    """Close a server's stdin (it exits), wait up to 10 s (then kill it), and close its pipes."""
    import subprocess

    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()
