"""The HTTP service as the tests run it: ``binance-mcp serve --http 127.0.0.1:0`` as a subprocess (its URL read from
the line it prints on stderr), agents added with the real CLI, and MCP clients over Streamable HTTP with a token."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+/mcp)")


class Service:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.log = log
        self.base = url.rsplit("/mcp", 1)[0]

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running_service(env: dict[str, str], log: Path, *args: str, start_timeout: float = 60.0) -> Iterator[Service]:
    """The service on a free loopback port; stopped (SIGTERM, then killed) when the block ends."""
    proc = subprocess.Popen([sys.executable, "-m", "binance_mcp", "serve", "--http", "127.0.0.1:0", *args], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = None
    lines: list[str] = []
    deadline = time.monotonic() + start_timeout
    assert proc.stderr is not None
    while url is None:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"the service exited ({proc.wait()}) before listening:\n{''.join(lines)}")
        lines.append(line)
        m = LISTENING.search(line)
        if m:
            url = m.group(1)
        assert time.monotonic() < deadline, "the service did not start:\n" + "".join(lines)
    with open(log, "w", encoding="utf-8") as fh:
        fh.writelines(lines)

    def drain() -> None:
        with open(log, "a", encoding="utf-8") as out:
            for rest in proc.stderr:  # type: ignore[union-attr]
                out.write(rest)
                out.flush()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        yield Service(proc, url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)


def agents(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "binance_mcp", "agents", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def add_agent(env: dict[str, str], name: str, *args: str) -> str:
    """A new agent's token (the last line of ``agents add``'s stdout)."""
    done = agents(env, "add", name, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


def http_client(url: str, token: str | None, **options: Any):
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return Client(StreamableHttpTransport(url, headers=headers), **options)


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


class Answer:
    def __init__(self, status_code: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def raw(url: str, token: str | None, body: Any = INIT, method: str = "POST", session: str | None = None,
        headers: dict[str, str] | None = None, content: bytes | None = None) -> Answer:
    """One HTTP request to the service as it is on the wire (http.client), for statuses the MCP client hides; an
    event-stream answer is read only up to its first event."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    h = dict(MCP_HEADERS)
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if session is not None:
        h["Mcp-Session-Id"] = session
    h.update(headers or {})
    data = content if content is not None else (None if body is None else json.dumps(body).encode())
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, parts.path or "/", body=data, headers=h)
        resp = conn.getresponse()
        if resp.getheader("content-type", "").startswith("text/event-stream"):
            out = b""
            while b"\n\n" not in out:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                out += chunk
        else:
            out = resp.read()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, out)
    finally:
        conn.close()
