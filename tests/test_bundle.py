"""The MCP Bundle (manifest.json, Claude Desktop's one-click install): the official CLI validates it, every variable
it sets is a real setting, secrets are marked sensitive, and the server starts the way the bundle starts it, with
Claude Desktop's unexpanded placeholders for the fields left blank.

The validator is ``mcpb`` from @anthropic-ai/mcpb (pinned below; .ci/run installs it with npm before the tests).
Without it these tests fail, and say how to install it: they do not skip."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from binance_mcp import __version__
from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.paths import BUILTIN_POLICIES
from binance_mcp.settings import Settings, env_names
from tests.helpers import clean_env

ROOT = Path(__file__).resolve().parent.parent
MCPB_VERSION = "2.1.2"
INSTALL = f"npm install --prefix .mcpb-cli @anthropic-ai/mcpb@{MCPB_VERSION}"
PLACEHOLDER = re.compile(r"\$\{user_config\.([A-Za-z0-9_]+)\}")
SETTINGS = {name: field for field in Settings.model_fields.values() for name in env_names(field)}


def manifest() -> dict:
    return json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))


def mcpb() -> str:
    """The mcpb executable: $BINANCE_MCP_MCPB (.ci/run sets it), .mcpb-cli/ or node_modules/ here, or PATH."""
    candidates = [os.environ.get("BINANCE_MCP_MCPB", ""), str(ROOT / ".mcpb-cli" / "node_modules" / ".bin" / "mcpb"),
                  str(ROOT / "node_modules" / ".bin" / "mcpb"), shutil.which("mcpb") or ""]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    pytest.fail(f"the MCP Bundle validator is not installed: run `{INSTALL}` (as .ci/run does), or set "
                "BINANCE_MCP_MCPB to an mcpb executable", pytrace=False)


def run_mcpb(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([mcpb(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


# -- the official validator -------------------------------------------------------------------------
def test_the_pinned_cli_is_the_one_used():
    r = run_mcpb("--version")
    assert r.returncode == 0 and r.stdout.strip() == MCPB_VERSION, r.stdout + r.stderr
    for doc in (ROOT / ".ci" / "run", ROOT / "docs" / "clients.md", ROOT / "README.md"):
        assert f"@anthropic-ai/mcpb@{MCPB_VERSION}" in doc.read_text(encoding="utf-8"), doc


def test_mcpb_validate_accepts_the_manifest():
    r = run_mcpb("validate", "manifest.json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Manifest schema validation passes!" in r.stdout, r.stdout


def test_mcpb_validate_really_checks(tmp_path):
    """The validator refuses what is wrong (so a pass above means something): a user_config field without a
    description, and an unknown server type."""
    for broken in ({"user_config": {**manifest()["user_config"], "x": {"type": "string", "title": "X"}}},
                   {"server": {**manifest()["server"], "type": "docker"}}):
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps({**manifest(), **broken}), encoding="utf-8")
        r = run_mcpb("validate", str(path))
        assert r.returncode != 0 and "validation failed" in r.stdout.lower(), r.stdout + r.stderr


def test_mcpb_pack_holds_what_uv_needs_and_nothing_else(tmp_path):
    r = run_mcpb("pack", str(ROOT), str(tmp_path / "binance-mcp.mcpb"))
    assert r.returncode == 0, r.stdout + r.stderr
    names = set(zipfile.ZipFile(tmp_path / "binance-mcp.mcpb").namelist())
    for needed in ("manifest.json", "pyproject.toml", "README.md", manifest()["server"]["entry_point"],
                   "binance_mcp/cli.py", "binance_mcp/tools/schemas.json",
                   *(f"policies/{n}.yaml" for n in BUILTIN_POLICIES if n != "policylayer-binance"),
                   "policies/policylayer-binance.json"):
        assert needed in names, needed
    for name in names:
        assert not name.startswith(("tests/", "docs/", "bench/", ".venv/", ".ci-venv/", ".mcpb-cli/", ".git/",
                                    "policies/tests/", "policies/broken/")), name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name


# -- what it asks for and what it sets --------------------------------------------------------------------
def mcp_configs() -> list[dict]:
    config = manifest()["server"]["mcp_config"]
    return [config, *config.get("platform_overrides", {}).values()]


def test_every_variable_the_manifest_sets_is_a_real_setting():
    names = [name for config in mcp_configs() for name in config.get("env", {})]
    assert names, "the manifest sets the settings through env"
    for name in names:
        assert name in SETTINGS, f"{name} is not declared in binance_mcp/settings.py"


def test_it_asks_for_mode_policy_key_and_secret_or_key_file_and_uses_each_answer():
    m = manifest()
    config = m["user_config"]
    env = m["server"]["mcp_config"]["env"]
    wired = {PLACEHOLDER.fullmatch(value).group(1): name for name, value in env.items()}
    assert wired == {"mode": "BINANCE_MCP_MODE", "policy": "BINANCE_MCP_POLICY", "api_key": "BINANCE_API_KEY",
                     "api_secret": "BINANCE_API_SECRET", "private_key_file": "BINANCE_API_PRIVATE_KEY_FILE",
                     "private_key_passphrase": "BINANCE_API_PRIVATE_KEY_PASSPHRASE",
                     "paper_feed": "BINANCE_MCP_PAPER_FEED"}
    assert set(config) == set(wired)  # nothing asked that is not used
    for key in ("api_key", "api_secret", "private_key_passphrase"):
        assert config[key]["type"] == "string" and config[key]["sensitive"] is True  # the OS keychain
        assert "default" not in config[key]
    assert config["private_key_file"]["type"] == "file" and "default" not in config["private_key_file"]
    for key in ("mode", "policy", "paper_feed"):
        assert config[key].get("sensitive", False) is False
    # The bundle offers paper trading on real prices: the live feed is its default, and a valid value.
    feeds = set(Settings.model_fields["paper_feed"].annotation.__args__)
    assert config["paper_feed"]["default"] == "live" and all(f in config["paper_feed"]["description"] for f in feeds)
    modes = set(Settings.model_fields["mode"].annotation.__args__)
    assert config["mode"]["default"] in modes and all(mode in config["mode"]["description"] for mode in modes)
    assert config["policy"]["default"] in BUILTIN_POLICIES
    assert all(name in config["policy"]["description"] for name in BUILTIN_POLICIES)
    spot = (ROOT / "policies" / "spot-trader.yaml").read_text(encoding="utf-8")  # what the description claims
    assert "notional_usd: 250" in spot and '["BTCUSDT", "ETHUSDT"]' in spot


def test_version_and_tools_follow_the_code():
    m = manifest()
    assert m["version"] == __version__
    assert re.search(rf'^version = "{re.escape(__version__)}"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert [t["name"] for t in m["tools"]] == [t.name for t in ALL_TOOLS]
    assert m["compatibility"]["runtimes"]["python"] == ">=3.10"
    assert 'requires-python = ">=3.10"' in (ROOT / "pyproject.toml").read_text()


def test_the_entry_point_file_runs_from_any_directory(tmp_path):
    entry = ROOT / manifest()["server"]["entry_point"]
    r = subprocess.run([sys.executable, str(entry), "--version"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60, env=clean_env())
    assert r.returncode == 0 and r.stdout.strip() == f"binance-mcp {__version__}", r.stdout + r.stderr


# -- the server as the bundle starts it --------------------------------------------------------------------
def bundle_command() -> list[str]:
    """mcp_config's command line after `uv run ... python`: this interpreter stands in for the bundle's."""
    config = manifest()["server"]["mcp_config"]
    assert config["command"] == "uv" and config["args"][:4] == ["run", "--quiet", "--directory", "${__dirname}"]
    python_at = config["args"].index("python")
    return [sys.executable, *config["args"][python_at + 1:]]


async def test_the_server_starts_as_the_bundle_starts_it_with_blank_fields_left_unexpanded(tmp_path):
    m = manifest()
    env = clean_env(HOME=str(tmp_path), BINANCE_MCP_PAPER_TICK_SECONDS="0")
    for name, value in m["server"]["mcp_config"]["env"].items():  # defaults filled in, blanks as Claude passes them
        key = PLACEHOLDER.fullmatch(value).group(1)
        env[name] = str(m["user_config"][key].get("default", value))
    assert env["BINANCE_API_KEY"] == "${user_config.api_key}"
    command = bundle_command()
    transport = StdioTransport(command=command[0], args=command[1:], env=env, cwd=str(tmp_path))
    async with Client(transport, mode="legacy", timeout=60) as client:
        status = (await client.call_tool("binance_account_status", {})).structured_content
        assert status["exchange"] == "paper" and status["connected"] is True, status
        policy = (await client.call_tool("binance_policy_status", {})).structured_content
        assert policy["policy"].startswith("built-in read-only ("), policy
        denied = await client.call_tool("binance_spot_place_order", {"symbol": "BTCUSDT", "side": "BUY",
                                                                     "type": "MARKET", "quantity": "0.001"},
                                        raise_on_error=False)
        assert denied.is_error and denied.content[0].text.startswith("TOOL_DENIED: "), denied.content[0].text
