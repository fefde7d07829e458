"""Shared pieces of the hardening tests: a simulator, an in-process server spoken to from synchronous code (so
hypothesis can drive it), the codes an error may start with, and the counts the closing note reports."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from fastmcp import Client

from binance_mcp.exchange.client import ExchangeBackoff
from binance_mcp.exchange.orders import OrderNotPlaced
from binance_mcp.policy.engine import CODES
from binance_mcp.server import build_server
from binance_mcp.settings import load_settings
from tests.helpers import SERVE, clean_env

# What the closing note needs; printed by conftest.py at the end of the run.
COUNTS: Counter = Counter()

# Every code an error result may start with: input, policy, exchange, order outcome, internal.
KNOWN_CODES = frozenset({"INVALID_INPUT", "UNKNOWN_SYMBOL", "EXCHANGE_REJECTED", "EXCHANGE_UNAVAILABLE",
                         ExchangeBackoff.code, OrderNotPlaced.code, "ORDER_STATUS_UNKNOWN", *CODES} - {"ALLOWED"})
CRASH_MARKERS = ("Traceback", 'File "', "Error calling tool")


def server_env(sim, state_dir: Path, policy: Path, **extra: str) -> dict[str, str]:
    """Settings of a server pointed at ``sim`` (the simulator's own key and secret)."""
    return clean_env(**{"BINANCE_API_KEY": sim.api_key, "BINANCE_API_SECRET": sim.api_secret,
                        "BINANCE_MCP_BASE_URL": sim.base_url, "BINANCE_MCP_STATE_DIR": str(state_dir),
                        "BINANCE_MCP_POLICY": str(policy), "BINANCE_MCP_TIMEOUT": "2", **extra})


def serve_cmd() -> list[str]:
    return [sys.executable, *SERVE]


class SyncServer:
    """An in-process server and its MCP client on a private event loop thread; ``call`` blocks until the result."""

    def __init__(self, env: dict[str, str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hardening-client", daemon=True)
        self.thread.start()
        self.mcp = build_server(load_settings(env))
        self.client = Client(self.mcp, mode="legacy")
        self._run(self.client.__aenter__())

    def _run(self, coro) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def call(self, name: str, args: dict) -> Any:
        return self._run(self.client.call_tool(name, args, raise_on_error=False))

    def list_tools(self) -> list:
        return self._run(self.client.list_tools())

    def close(self) -> None:
        try:
            self._run(self.client.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)


def result_text(result) -> str:
    return "\n".join(getattr(block, "text", "") for block in (result.content or []))


def error_code(text: str) -> str:
    return text.split(":", 1)[0]


def seq(sim) -> tuple[int, int]:
    """(request count, last sequence number) of the simulator's request log."""
    state = sim.control("state")
    return state["requests"], state["last_seq"]


class RawStdio:
    """``binance-mcp serve`` as a subprocess spoken to in raw JSON-RPC lines: every byte it writes on stdout is kept
    (``raw``), stderr goes to a file, and requests can be sent without waiting (a burst) or as text that is not
    valid JSON at all."""

    def __init__(self, env: dict[str, str], stderr_path: Path, args: tuple[str, ...] = ()) -> None:
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([*serve_cmd(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env)
        self.raw = bytearray()
        self.responses: dict[Any, dict] = {}
        self._cond = threading.Condition()
        self._next = 1000
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.raw += line
                try:
                    msg = json.loads(line)
                except ValueError:
                    msg = None
                if isinstance(msg, dict) and "id" in msg:
                    self.responses[msg["id"]] = msg
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def send(self, message: dict | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_for(self, ids, timeout: float = 60) -> list[dict]:
        """The responses to ``ids`` (raises if the server exits or does not answer within ``timeout``)."""
        ids = list(ids)
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(i in self.responses for i in ids):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    missing = [i for i in ids if i not in self.responses]
                    raise AssertionError(f"no answer to {missing}; stderr: {self.stderr_path.read_text()[-2000:]}")
                self._cond.wait(min(left, 0.5))
            return [self.responses[i] for i in ids]

    def initialize(self) -> dict:
        self.send({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                   "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                              "clientInfo": {"name": "hardening", "version": "0"}}})
        answer = self.wait_for([0])[0]
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer

    def request(self, name: str, args: dict | str) -> int:
        """Send a tools/call (``args`` may be raw JSON text) without waiting; returns its id."""
        self._next += 1
        if isinstance(args, str):
            head = json.dumps({"jsonrpc": "2.0", "id": self._next, "method": "tools/call"})[:-1]
            self.send(head + ', "params": {"name": ' + json.dumps(name) + ', "arguments": ' + args + "}}")
        else:
            self.send({"jsonrpc": "2.0", "id": self._next, "method": "tools/call",
                       "params": {"name": name, "arguments": args}})
        return self._next

    def call(self, name: str, args: dict | str) -> dict:
        """A tools/call and its result (the JSON-RPC ``result``; a protocol error fails the caller's test)."""
        answer = self.wait_for([self.request(name, args)])[0]
        assert "result" in answer, answer
        return answer["result"]

    def close(self) -> int:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        self._stderr.close()
        return self.proc.returncode


def raw_text(result: dict) -> str:
    return "\n".join(block.get("text", "") for block in result.get("content", []))
