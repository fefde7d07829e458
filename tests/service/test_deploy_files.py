"""The Dockerfile and the systemd unit, read for their essentials: CI has neither a container runtime nor systemd,
so neither is built or started here (docs/deployment.md says so). Both run ``serve --http`` as a user that is not
root; the unit keeps the state directory private and the system read-only."""

from __future__ import annotations

import configparser
import json
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def dockerfile() -> list[tuple[str, str]]:
    """The instructions, continuation lines joined, comments dropped: (INSTRUCTION, arguments)."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines
            if line and not line.startswith("#")]


def unit() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)  # Environment= repeats
    parser.optionxform = str
    parser.read(ROOT / "deploy" / "binance-mcp.service", encoding="utf-8")
    return parser["Service"]


def test_the_container_runs_serve_http_as_a_user_that_is_not_root():
    steps = dockerfile()
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith(("root:", "0:")), users
    command = [*json.loads(dict(steps)["ENTRYPOINT"]), *json.loads(dict(steps)["CMD"])]
    assert command[:3] == ["binance-mcp", "serve", "--http"], command
    assert ("--behind-tls-proxy" in command or "--tls-cert" in command) and "--allow-remote" in command, command
    assert "VOLUME" in dict(steps) and "/var/lib/binance-mcp" in dict(steps)["VOLUME"]
    assert any("BINANCE_MCP_STATE_DIR=/var/lib/binance-mcp" in args.split() for op, args in steps if op == "ENV")


def test_the_unit_runs_serve_http_as_its_own_user_with_a_private_state_directory():
    service = unit()
    assert service.get("User") not in (None, "", "root", "0"), service.get("User")
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/binance-mcp") and argv[1:3] == ["serve", "--http"], argv
    assert (service["StateDirectory"], service["StateDirectoryMode"]) == ("binance-mcp", "0700")
    assert (service["NoNewPrivileges"], service["ProtectSystem"]) == ("yes", "strict")
