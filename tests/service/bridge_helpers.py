"""The service and the bridge as real processes: ``binance-mcp serve --http`` (paper mode) on 127.0.0.1 with an
agent from ``binance-mcp agents add``, and ``binance-mcp connect`` spoken to over stdio by fastmcp's client (legacy
era, as Claude Desktop speaks)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

from fastmcp import Client
from fastmcp.client.auth.bearer import BearerAuth
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport

from tests.helpers import paper_env, write_policy

SERVICE = [sys.executable, "-m", "binance_mcp"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_token() -> str:
    return "bmcp_" + secrets.token_urlsafe(32)


def write_token(path: Path, token: str) -> Path:
    """Write a token file (mode 0600) so that a running bridge sees a change: a new mtime even within a tick."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(token + "\n", encoding="ascii")
    path.chmod(0o600)
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000))
    return path


class Service:
    """A paper-mode service on a fixed port of 127.0.0.1 (so that it can be stopped and started again at the same
    URL), with one agent, ``agent``, whose token the agent's user keeps in ``token_file``."""

    def __init__(self, root: Path, policy: str) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.state_dir = root / "state"
        self.policy = write_policy(root / "policy.yaml", policy)
        self.env = paper_env(self.state_dir, self.policy)
        self.token = self.add_agent("agent")
        self.token_file = write_token(root / "agent-token", self.token)  # what the agent's user holds
        self.stderr = root / "service.err"
        self.process: subprocess.Popen | None = None

    def command(self, *args: str) -> str:
        """``binance-mcp ARGS`` on the service's state directory (as the service's user would run it); its stdout."""
        done = subprocess.run([*SERVICE, *args], env=self.env, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done
        return done.stdout

    def agents(self, *args: str) -> str:
        return self.command("agents", *args)

    def approvals(self, *args: str) -> str:
        return self.command("approvals", *args)

    def add_agent(self, name: str) -> str:
        """A new agent's token: printed once, alone on the last line of stdout."""
        return self.agents("add", name).splitlines()[-1]

    def revoke(self, name: str = "agent") -> None:
        self.agents("revoke", name)

    def start(self) -> Service:
        with open(self.stderr, "ab") as err:
            self.process = subprocess.Popen([*SERVICE, "serve", "--http", f"127.0.0.1:{self.port}"], env=self.env,
                                            stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start: {self.stderr.read_text()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.process = None

    def direct(self) -> Client:
        """A client of the service itself, over HTTP with the agent's token (as Claude Code would connect)."""
        return Client(StreamableHttpTransport(self.url, auth=BearerAuth(self.token)), mode="legacy")


def connect_command(url: str, token_file: Path | str) -> list[str]:
    return [sys.executable, "-m", "binance_mcp", "connect", url, "--token-file", str(token_file)]


def bridge_env(**extra: str) -> dict[str, str]:
    """The agent's side: no BINANCE_* setting at all (no keys, no policy, no state directory)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")}
    env.update(extra)
    return env


def bridge_client(url: str, token_file: Path | str, stderr: Path, mode: str = "legacy", **options) -> Client:
    """fastmcp's client for ``binance-mcp connect`` as a subprocess (ending with the client's context); ``mode``:
    the protocol era the client speaks (the bridge speaks the same one to the service)."""
    command = connect_command(url, token_file)
    transport = StdioTransport(command=command[0], args=command[1:], env=bridge_env(BINANCE_MCP_LOG_LEVEL="DEBUG"),
                               log_file=stderr, keep_alive=False)
    return Client(transport, mode=mode, **options)


def listing(tools) -> list[dict]:
    """tools/list as it goes on the wire, for comparing two servers' lists."""
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
