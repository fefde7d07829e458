"""The processes of http_load.py: the simulator, the service and the bare server as subprocesses on 127.0.0.1, each
found by the line it prints on stderr (the rest of its stderr goes to a log file in the run's temp dir), and the
service's agents added with the real ``binance-mcp agents add``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from _common import bench_env

from binance_mcp.simulator.config import DEFAULT_API_KEY, DEFAULT_API_SECRET

# The simulator's rate limits, lifted: the load is far above Binance's 6,000 weight a minute on purpose.
NO_LIMITS = {"spot_weight_per_minute": 10**9, "futures_weight_per_minute": 10**9, "spot_orders_per_10s": 10**9,
             "spot_orders_per_day": 10**9, "futures_orders_per_10s": 10**9, "futures_orders_per_minute": 10**9}


@contextmanager
def spawn(args: list[str], env: dict[str, str] | None, pattern: str, log: Path,
          timeout: float = 120.0) -> Iterator[tuple[str, int]]:
    """``python *args`` until ``pattern`` matches a line of its stderr: (its first group, its pid); SIGTERM at the
    end (killed after 15 s)."""
    proc = subprocess.Popen([sys.executable, *args], env=env or bench_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    found = None
    try:
        while found is None:
            line = proc.stderr.readline()
            if not line:
                raise SystemExit(f"{' '.join(args)} exited ({proc.wait()}) before it listened:\n{''.join(lines)}")
            lines.append(line)
            found = re.search(pattern, line)
            if found is None and time.monotonic() > deadline:
                raise SystemExit(f"{' '.join(args)} did not listen within {timeout:.0f} s:\n{''.join(lines)}")
        log.write_text("".join(lines), encoding="utf-8")

        def drain() -> None:
            with open(log, "a", encoding="utf-8") as out:
                for rest in proc.stderr:  # type: ignore[union-attr]
                    out.write(rest)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        yield found.group(1), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def simulator(tmp: Path) -> Iterator[tuple[str, int, str, str]]:
    """``binance-mcp simulator`` with frozen prices and controls: (base URL, pid, API key, API secret)."""
    args = ["-m", "binance_mcp", "simulator", "--controls", "--tick-seconds", "0", "--balances", "USDT=1000000"]
    with spawn(args, None, r"Binance simulator listening on (http://127\.0\.0\.1:\d+)", tmp / "simulator.log") as g:
        yield *g, DEFAULT_API_KEY, DEFAULT_API_SECRET


def lift_limits(sim_url: str) -> None:
    req = urllib.request.Request(f"{sim_url}/_sim/limits", data=json.dumps(NO_LIMITS).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
        json.loads(resp.read())


@contextmanager
def service(tmp: Path, sim_url: str, key: str, secret: str, policy: str, agents: int,
            nodelay: bool = False) -> Iterator[tuple[str, int, list[str]]]:
    """``binance-mcp serve --http 127.0.0.1:0`` in testnet mode against the simulator, with ``agents`` agents added
    before it starts: (its /mcp URL, its pid, the agents' tokens). The secret goes in a file (BINANCE_API_SECRET_FILE), as
    docs/deployment.md sets a service up. ``nodelay``: through bench/ours_variant.py --nodelay (TCP_NODELAY on the
    listening socket)."""
    (tmp / "policy.yaml").write_text(policy, encoding="utf-8")
    secret_file = tmp / "api-secret"
    secret_file.write_text(secret, encoding="utf-8")
    secret_file.chmod(0o600)
    env = bench_env(BINANCE_MCP_MODE="testnet", BINANCE_MCP_BASE_URL=sim_url, BINANCE_API_KEY=key,
                    BINANCE_API_SECRET_FILE=str(secret_file), BINANCE_MCP_POLICY=str(tmp / "policy.yaml"),
                    BINANCE_MCP_STATE_DIR=str(tmp / "state"))
    (tmp / "state").mkdir(mode=0o700)
    tokens = add_agents(env, agents)
    serve = [str(Path(__file__).with_name("ours_variant.py")), "--nodelay"] if nodelay else ["-m", "binance_mcp", "serve"]
    args = [*serve, "--http", "127.0.0.1:0"]
    with spawn(args, env, r"listening on (http://127\.0\.0\.1:\d+/mcp)", tmp / "service.log") as g:
        yield *g, tokens


def add_agents(env: dict[str, str], n: int) -> list[str]:
    """``binance-mcp agents add agent-1 .. agent-n`` (two at a time: one per core), their tokens in that order."""
    def add(i: int) -> str:
        done = subprocess.run([sys.executable, "-m", "binance_mcp", "agents", "add", f"agent-{i + 1}"], env=env,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise SystemExit(f"binance-mcp agents add agent-{i + 1} failed ({done.returncode}):\n{done.stderr}")
        return done.stdout.splitlines()[-1]

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(add, range(n)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
