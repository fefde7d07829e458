"""The command an APPROVAL_REQUIRED text carries works when pasted as it is: the program the server was started
with (its console script's absolute path, else this interpreter with -m) and --state-dir when it is not the
default. The rule's cases, then a server started through a console script and its command pasted into a shell."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from binance_mcp import __version__
from binance_mcp.invocation import PACKAGE_ROOT, Program, program, program_of, state_dir_args
from tests.helpers import clean_env, read_audit, write_policy

POLICY = """\
version: 1
default: allow
tools:
  binance_spot_place_order:
    approval_above: {notional_usd: 50}
"""
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"}
COMMAND = re.compile(r"exactly as it is: `([^`]+)` \(it shows them the order")


def console_script(path: Path) -> Path:
    """A ``binance-mcp`` console script as pip writes one: a shebang to the interpreter of a venv in which the
    package is installed (here: the package's directory put on sys.path, as an installed package would be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        sys.path.insert(0, {str(PACKAGE_ROOT)!r})
        from binance_mcp.cli import main
        sys.exit(main())
        """), encoding="utf-8")
    path.chmod(0o755)
    return path


def pasted(command: str, *extra: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """A shell runs the command as a human pasted it (no PYTHONPATH, another directory, no terminal)."""
    env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    return subprocess.run(["/bin/sh", "-c", " ".join([command, *extra])], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


# -- the rule ---------------------------------------------------------------------------------------
def test_a_console_script_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    script = console_script(tmp_path / "venv dir" / "bin" / "binance-mcp")
    monkeypatch.chdir(tmp_path)  # started by a relative path: the command names it absolutely
    got = program_of("venv dir/bin/binance-mcp", "/usr/bin/python3", importable=lambda _: pytest.fail("asked"))
    assert got == Program((str(script),))
    assert got.command("approvals", "approve", "k7m2q9xd", windows=False) == \
        f"'{script}' approvals approve k7m2q9xd"  # quoted: the path has a space


def test_the_serve_only_script_gives_way_to_binance_mcp_beside_it(tmp_path):
    script = console_script(tmp_path / "bin" / "binance-mcp")
    console_script(tmp_path / "bin" / "binance-mcp-policy")
    assert program_of(str(tmp_path / "bin" / "binance-mcp-policy"), sys.executable).argv == (str(script),)
    alone = console_script(tmp_path / "other" / "binance-mcp-policy")
    assert program_of(str(alone), sys.executable, importable=lambda _: True).argv == (sys.executable, "-m",
                                                                                     "binance_mcp")


@pytest.mark.parametrize("importable", [True, False])
def test_otherwise_this_interpreter_with_m_and_pythonpath_when_it_needs_one(importable):
    got = program_of(str(PACKAGE_ROOT / "binance_mcp" / "__main__.py"), "/opt/py/bin/python3",
                     importable=lambda exe: importable)
    assert got.argv == ("/opt/py/bin/python3", "-m", "binance_mcp")
    assert got.pythonpath == (None if importable else PACKAGE_ROOT)
    posix = got.command("approvals", "list", windows=False)
    windows = got.command("approvals", "list", windows=True)
    if importable:
        assert posix == "/opt/py/bin/python3 -m binance_mcp approvals list" == windows
    else:
        assert posix == f"env PYTHONPATH={shlex.quote(str(PACKAGE_ROOT))} /opt/py/bin/python3 -m binance_mcp " \
                        "approvals list"
        assert windows.startswith("cd /d ") and windows.endswith(" && /opt/py/bin/python3 -m binance_mcp approvals list")


def test_windows_quotes_a_path_with_spaces():
    got = Program((r"C:\Program Files\binance\Scripts\binance-mcp.exe",))
    assert got.command("approvals", "approve", "k7m2q9xd", windows=True) == \
        r'"C:\Program Files\binance\Scripts\binance-mcp.exe" approvals approve k7m2q9xd'


def test_state_dir_only_when_not_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state_dir_args(tmp_path / ".local" / "state" / "binance-mcp") == ()
    assert state_dir_args(tmp_path / "elsewhere") == ("--state-dir", str(tmp_path / "elsewhere"))


def test_this_process_command_runs_from_a_shell_without_pythonpath(tmp_path):
    """Whatever way the tests were started (an installed checkout, PYTHONPATH): the program works as pasted."""
    r = pasted(program().command("--version"), env=clean_env(), cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"binance-mcp {__version__}", r.stdout + r.stderr


# -- a server started through its console script, on the default state directory ------------------------
async def test_a_server_started_as_a_console_script_names_it_and_its_command_approves(tmp_path):
    script = console_script(tmp_path / "venv" / "bin" / "binance-mcp")
    home = tmp_path / "home"
    home.mkdir()
    policy = write_policy(tmp_path / "policy.yaml", POLICY)
    env = clean_env(HOME=str(home), BINANCE_MCP_POLICY=str(policy), BINANCE_MCP_PAPER_TICK_SECONDS="0")
    env.pop("XDG_STATE_HOME", None)
    state = home / ".local" / "state" / "binance-mcp"  # the default: no --state-dir
    transport = StdioTransport(command=str(script), args=["serve"], env=env)
    async with Client(transport, mode="legacy", timeout=60) as client:
        first = await client.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
        text = first.content[0].text
        assert first.is_error and text.startswith("APPROVAL_REQUIRED: "), text
        (command,) = COMMAND.findall(text)
        approval_id = re.search(r"Approval id ([a-z0-9]{8})", text).group(1)
        assert command == f"{shlex.quote(str(script))} approvals approve {approval_id}", command

        r = pasted(command, "--yes", env={k: v for k, v in env.items() if not k.startswith("BINANCE_")}, cwd=tmp_path)
        assert r.returncode == 0 and f"approved {approval_id}: BUY 0.001 BTCUSDT LIMIT @ 90000" in r.stdout, \
            r.stdout + r.stderr

        again = await client.call_tool("binance_spot_place_order", ORDER, raise_on_error=False)
        assert not again.is_error, again.content[0].text
    consumed = [e for e in read_audit(state) if e.get("approval_id") == approval_id]
    assert [e["event"] for e in consumed] == ["approval_requested", "approval_approved", "approval_consumed"]
