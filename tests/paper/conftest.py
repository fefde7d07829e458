"""Fixtures of the paper-account tests: an upstream ``binance-mcp simulator`` as a real subprocess on 127.0.0.1
(what a live paper feed reads instead of Binance), and paper-mode servers over stdio that use it.

The upstream is driven with its own ``/_sim/`` controls and read through its own public endpoints: a test checks
the paper exchange against what the upstream really showed, never against what the paper server says of it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import ALLOW_ALL, Paper
from tests.helpers import PaperSimulator, paper_env, stdio_client

URL = re.compile(r"http://127\.0\.0\.1:([0-9]+)")


class Upstream(PaperSimulator):
    """A ``binance-mcp simulator --controls`` subprocess (frozen prices: they move only through its controls)."""

    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc = proc
        self.port = port
        super().__init__(f"127.0.0.1:{port}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def start_upstream() -> Upstream:
    proc = subprocess.Popen([sys.executable, "-m", "binance_mcp", "simulator", "--controls", "--tick-seconds", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = URL.search(line)
    assert match, line
    return Upstream(proc, int(match.group(1)))


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = start_upstream()
    try:
        yield up
    finally:
        up.stop()


def live_env(state_dir: Path, upstream_url: str, **extra: str) -> dict[str, str]:
    return paper_env(state_dir, ALLOW_ALL, BINANCE_MCP_PAPER_FEED="live", BINANCE_MCP_PAPER_UPSTREAM=upstream_url,
                     **extra)


@asynccontextmanager
async def paper_server(env: dict[str, str], connected: bool = True):
    """A ``binance-mcp serve`` in paper mode over stdio, and its paper exchange seen from outside; the server process
    has exited when the block ends (as an MCP Inspector CLI call's does)."""
    async with stdio_client(env, keep_alive=False) as client:  # the process ends with the block
        status = await client.call_tool("binance_account_status", {})
        assert status.structured_content["connected"] is connected, status.structured_content
        host = status.structured_content["host"] if connected else "127.0.0.1:0"  # no paper exchange to look at
        yield Paper(client, host), status.structured_content
