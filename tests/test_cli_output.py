"""What a user meets on the command line: the audit table (order columns, whole reasons), reports piped into
``head`` (no BrokenPipeError), a quiet stderr when serving at the default level, and built-in policy names."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from binance_mcp.policy.audit import AuditLog
from binance_mcp.policy.loader import BUILTIN_NAMES, builtin_name, shipped_path
from binance_mcp.settings import Settings
from tests.helpers import clean_env, read_audit, write_policy
from tests.policy.test_guard_helpers import cli, serve

ROOT = Path(__file__).resolve().parent.parent
SPOT = "binance_spot_place_order"
POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    limits: {max_notional_usd: 500}
"""


def run(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "binance_mcp", *args], env=clean_env(**env), cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


# -- the audit table ----------------------------------------------------------------------------------
async def test_audit_shows_symbol_side_quantity_and_notional_and_the_whole_reason(tmp_path):
    state = tmp_path / "state"
    async with serve(state, write_policy(tmp_path / "policy.yaml", POLICY)) as paper:
        placed = await paper.ok(SPOT, {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001",
                                       "price": "90000"})
        await paper.denied(SPOT, {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.01"},
                           "NOTIONAL_OVER_LIMIT")
    rc, out, err = await cli(state, "audit")
    assert rc == 0, err
    header, *rows = out.splitlines()
    assert re.match(r"time \(UTC\) +tool +effect +code +outcome +symbol +side +quantity +notional USD +detail$",
                    header), header
    columns = {name: header.index(name) for name in ("symbol", "side", "quantity", "notional USD", "detail")}

    def cell(line: str, name: str) -> str:
        names = list(columns)
        start = columns[name]
        end = columns[names[names.index(name) + 1]] if name != "detail" else len(line)
        return line[start:end].strip()

    (ok,) = [r for r in rows if " ok " in r and SPOT in r]
    assert (cell(ok, "symbol"), cell(ok, "side"), cell(ok, "quantity")) == ("BTCUSDT", "BUY", "0.001"), ok
    assert cell(ok, "notional USD") == "97.00" and cell(ok, "detail") == str(placed["orderId"]), ok
    (denied,) = [r for r in rows if "NOTIONAL_OVER_LIMIT" in r]
    assert (cell(denied, "symbol"), cell(denied, "side"), cell(denied, "quantity")) == ("BTCUSDT", "SELL", "0.01")
    assert re.fullmatch(r"9\d\d\.\d\d", cell(denied, "notional USD")), denied
    (record,) = [r for r in read_audit(state) if r.get("decision", {}).get("code") == "NOTIONAL_OVER_LIMIT"]
    reason = record["decision"]["reason"]
    assert len(reason) > 60 and cell(denied, "detail") == reason, denied  # the whole reason, not cut


# -- piped into head -----------------------------------------------------------------------------------
def piped_into_head(command: str) -> subprocess.CompletedProcess:
    """``command | head -1`` in bash with pipefail: the exit status is the command's own."""
    return subprocess.run(["bash", "-c", f"set -o pipefail; {command} | head -1"], env=clean_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def python_m() -> str:
    return f"{sys.executable} -m binance_mcp"


def test_audit_piped_into_head_exits_quietly(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(1500):  # far more than a pipe holds (64 KiB), so the writer meets the closed pipe
        log.append({"call_id": f"c{i}", "tool": SPOT, "args": {"symbol": "BTCUSDT", "side": "BUY",
                                                                "quantity": "0.001"},
                    "decision": {"effect": "deny", "code": "NOTIONAL_OVER_LIMIT", "rule": "r",
                                 "reason": "order notional is over the limit " * 3, "facts": {"notional_usd": "1"}},
                    "outcome": {"status": "not_run"}}, sync=False)
    log.close()
    whole = run("audit", "--limit", "5000", "--state-dir", str(tmp_path))
    assert len(whole.stdout) > 200_000, len(whole.stdout)
    r = piped_into_head(f"{python_m()} audit --limit 5000 --state-dir {tmp_path}")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith("time (UTC)") and r.stdout.count("\n") == 1


def test_policy_check_piped_into_head_exits_quietly():
    files = " ".join(["policies/spot-trader.yaml"] * 40)  # about 200 KiB of report
    whole = run("policy", "check", *files.split())
    assert whole.returncode == 0 and len(whole.stdout) > 100_000, len(whole.stdout)
    r = piped_into_head(f"{python_m()} policy check {files}")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith("policies/spot-trader.yaml: OK")


# -- serving: stderr stays quiet at WARNING ------------------------------------------------------------
def serve_one_call(tmp_path: Path, **env: str) -> tuple[dict, str]:
    """``binance-mcp serve`` over raw stdio JSON-RPC: initialize, one tool call, end of input. (result, stderr)"""
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "binance_spot_price", "arguments": {"symbol": "BTCUSDT"}}},
    ]
    proc = subprocess.Popen([sys.executable, "-m", "binance_mcp", "serve"], cwd=tmp_path,
                            env=clean_env(BINANCE_MCP_STATE_DIR=str(tmp_path / "state"),
                                          BINANCE_MCP_PAPER_TICK_SECONDS="0", **env),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answers: dict[int, dict] = {}
    try:
        for m in messages[:2]:
            proc.stdin.write(json.dumps(m) + "\n")
        proc.stdin.flush()
        answers[1] = json.loads(proc.stdout.readline())
        proc.stdin.write(json.dumps(messages[2]) + "\n")
        proc.stdin.flush()
        while 2 not in answers:
            line = json.loads(proc.stdout.readline())
            if "id" in line:
                answers[line["id"]] = line
        proc.stdin.close()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return answers[2], proc.stderr.read()


def test_serve_writes_no_info_line_on_stderr_at_the_default_level(tmp_path):
    result, stderr = serve_one_call(tmp_path)
    assert result["result"].get("isError") is not True, result
    assert result["result"]["structuredContent"]["prices"][0]["symbol"] == "BTCUSDT"
    assert stderr == "", stderr
    # The level is the setting's: at INFO, FastMCP's start line is there (in our format, not FastMCP's own).
    _, verbose = serve_one_call(tmp_path, BINANCE_MCP_LOG_LEVEL="INFO")
    assert re.search(r"^INFO fastmcp[\w.]*: Starting MCP server 'binance-mcp' with transport 'stdio'$", verbose,
                     re.M), verbose


def test_a_refused_call_is_not_an_error_line_on_stderr(tmp_path):
    """A policy denial is the agent's answer (and an audit record), not a server error."""
    policy = write_policy(tmp_path / "deny.yaml", "version: 1\ndefault: allow\ntools:\n  binance_spot_price: deny\n")
    result, stderr = serve_one_call(tmp_path, BINANCE_MCP_POLICY=str(policy))
    assert result["result"]["isError"] is True and "TOOL_DENIED" in result["result"]["content"][0]["text"]
    assert stderr == "", stderr


# -- built-in policy names ---------------------------------------------------------------------------
def force_include() -> dict[str, str]:
    """pyproject.toml's [tool.hatch.build.targets.wheel.force-include] (tomllib is Python 3.11+)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from pip._vendor import tomli as tomllib
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]


def test_the_builtin_names_are_the_shipped_files_the_wheel_carries():
    included = force_include()
    assert {Path(src).stem for src in included} == set(BUILTIN_NAMES)
    assert all(dest == f"binance_mcp/_policies/{Path(src).name}" for src, dest in included.items())
    for name in BUILTIN_NAMES:
        assert shipped_path(name).is_file()
        assert name in Settings.model_fields["policy"].description  # the setting's documentation names each one
    assert builtin_name("spot-trader") == "spot-trader"
    assert builtin_name("./spot-trader") is None and builtin_name("spot-trader.yaml") is None
    assert builtin_name("/etc/spot-trader") is None and builtin_name(None) is None


async def test_a_builtin_name_loads_the_shipped_policy_from_any_directory(tmp_path):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    async with serve(tmp_path / "state", Path("spot-trader")) as paper:  # BINANCE_MCP_POLICY=spot-trader
        status = await paper.status()
        assert status["policy"].startswith("built-in spot-trader ("), status
        await paper.ok(SPOT, {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001",
                              "price": "95000"})  # spot-trader: within 3 % of the market
        await paper.denied(SPOT, {"symbol": "SOLUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"},
                           "SYMBOL_NOT_ALLOWED")
    check = run("policy", "check", "spot-trader", cwd=elsewhere)  # no policies/ directory here
    assert check.returncode == 0 and check.stdout.startswith("spot-trader: OK"), check.stdout + check.stderr
    missing = run("serve", "--show-config", cwd=elsewhere, BINANCE_MCP_POLICY="./spot-trader")
    assert missing.returncode == 0  # --show-config does not load it; serving does, and ./ means a file:
    started = subprocess.run([sys.executable, "-m", "binance_mcp", "serve", "--check"], cwd=elsewhere,
                             capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL,
                             env=clean_env(BINANCE_MCP_POLICY="./spot-trader",
                                           BINANCE_MCP_STATE_DIR=str(tmp_path / "s2")))
    assert started.returncode == 2 and "no such policy file" in started.stderr, started.stderr


async def test_the_read_only_denial_names_a_policy_that_works_as_written(tmp_path):
    async with serve(tmp_path / "state", Path("read-only")) as paper:
        text = await paper.denied(SPOT, {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"},
                                  "TOOL_DENIED")
    (value,) = re.findall(r"BINANCE_MCP_POLICY=(\S+)", text)
    async with serve(tmp_path / "state2", Path(value)) as paper:  # exactly as the text wrote it
        assert (await paper.status())["policy"].startswith(f"built-in {value} ("), value
        await paper.ok(SPOT, {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001",
                              "price": "95000"})
