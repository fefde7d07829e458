"""What the test areas share (no tests here): decimals, the environment of a test server, JSON over HTTP to
127.0.0.1, a stdio MCP client for ``binance-mcp serve``, policy files and the audit log, a simulator on a thread,
and the simulator of a paper-mode server seen from outside (its ``/_sim/`` controls and its own REST endpoints).

Area-specific pieces stay beside their tests: ``e2e/conftest.py``, ``policy/test_guard_helpers.py``,
``hardening/helpers.py`` and ``simulator/helpers.py`` build on these.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from binance_mcp.simulator.config import DEFAULT_API_KEY, DEFAULT_API_SECRET, SimConfig
from binance_mcp.simulator.runner import RunningSimulator, start_in_thread

if TYPE_CHECKING:  # imported when a client is made: the simulator tests do not need the MCP SDK
    from fastmcp import Client

SERVE = ["-m", "binance_mcp", "serve"]
ALLOW_ALL = "version: 1\ndefault: allow\n"
# Every account protection, at the limits the engine, CLI and protection tests use.
PROTECTED = ALLOW_ALL + """\
account:
  protections:
    max_daily_loss_usd: 300
    max_drawdown_pct: 5
    loss_streak: {losses: 3, window: 3600, cooldown: 1800}
    max_gross_exposure_usd: 5000
    cooldown_after_close: 300
"""


def D(value: object) -> Decimal:
    return Decimal(str(value))


# -- a test server's environment and process ----------------------------------------------------
def clean_env(**settings: str) -> dict[str, str]:
    """Our environment minus every BINANCE_* variable (no keys: paper mode) but the state store's URL (set by the
    ``store_backend`` fixture, unset otherwise), plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_") or k == "BINANCE_MCP_STATE_URL"}
    env.update(settings)
    return env


def paper_env(state_dir: Path | str, policy: Path | str, **extra: str) -> dict[str, str]:
    """A paper-mode server with frozen prices, on this state directory and policy; ``extra`` wins."""
    return clean_env(**{"BINANCE_MCP_STATE_DIR": str(state_dir), "BINANCE_MCP_PAPER_TICK_SECONDS": "0",
                        "BINANCE_MCP_POLICY": str(policy), **extra})


def stdio_client(env: dict[str, str], stderr: Path | None = None, args: tuple[str, ...] = (),
                 keep_alive: bool | None = None, **options: Any) -> Client:
    """fastmcp's client for ``binance-mcp serve`` as a subprocess over stdio (legacy protocol era, as Claude
    Desktop and most clients speak today); ``stderr``: a file that gets the server's stderr; ``keep_alive=False``:
    the server process ends when the client's context does (fastmcp keeps it running by default)."""
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    transport = StdioTransport(command=sys.executable, args=[*SERVE, *args], env=env, log_file=stderr,
                               keep_alive=keep_alive)
    return Client(transport, mode="legacy", **options)


# -- files in the state directory -----------------------------------------------------------------
def write_policy(path: Path, text: str = ALLOW_ALL) -> Path:
    """Write a policy so that a running server sees a change: a new mtime even within one clock tick."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000))
    return path


def read_audit(state_dir: Path) -> list[dict]:
    path = Path(state_dir) / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- HTTP to the simulator ------------------------------------------------------------------------
def _answer(req: urllib.request.Request) -> Any:
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - 127.0.0.1 only
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # Binance errors are JSON bodies with a 4xx status
        return json.loads(exc.read())


def http_json(url: str, body: dict | None = None, method: str | None = None) -> Any:
    """A JSON request to 127.0.0.1 (POST when there is a body) and its JSON answer, error statuses included."""
    assert url.startswith("http://127.0.0.1:"), url
    data = json.dumps(body).encode() if body is not None else None
    return _answer(urllib.request.Request(url, data=data, method=method or ("POST" if body is not None else "GET"),
                                          headers={"Content-Type": "application/json"}))


def point_at(client, base_url: str):
    """Point a python-binance client (sync or async) at ``base_url`` instead of Binance."""
    client.API_URL = base_url + "/api"
    client.FUTURES_URL = base_url + "/fapi"
    client.MARGIN_API_URL = base_url + "/sapi"  # /sapi/v1/account/apiRestrictions
    return client


@contextmanager
def simulator(**config: Any) -> Iterator[RunningSimulator]:
    """A simulator on its own thread, with the test controls on and a frozen feed unless ``config`` says else."""
    rs = start_in_thread(SimConfig(**{"controls": True, "tick_seconds": 0, **config}))
    try:
        yield rs
    finally:
        rs.stop()


class PaperSimulator:
    """The simulator inside a paper-mode server (found through ``binance_account_status``'s ``host``), driven
    and observed from outside: what reached the exchange is read here, never from the server's own answer."""

    def __init__(self, host: str) -> None:
        assert host.startswith("127.0.0.1:"), host
        self.host = host
        self.base = f"http://{host}"

    def sim(self, path: str, body: dict | None = None, method: str | None = None) -> Any:
        return http_json(f"{self.base}/_sim/{path}", body, method)

    def state(self) -> dict:
        return self.sim("state")

    def requests(self, since: int = 0) -> list[dict]:
        return self.sim(f"requests?since={since}")

    def last_seq(self) -> int:
        return self.state()["last_seq"]

    def reset(self) -> None:
        self.sim("reset", {})

    def set_price(self, symbol: str, price: str | Decimal | None = None, market: str = "spot",
                  mark: str | Decimal | None = None) -> dict:
        body: dict = {"symbol": symbol, "market": market}
        if price is not None:
            body["price"] = str(price)
        if mark is not None:
            body["mark"] = str(mark)
        return self.sim("price", body)

    def balances(self, spot: dict | None = None, futures: dict | None = None, replace: bool = False) -> dict:
        body: dict = {"replace": replace}
        if spot is not None:
            body["spot"] = {k: str(v) for k, v in spot.items()}
        if futures is not None:
            body["futures"] = {k: str(v) for k, v in futures.items()}
        return self.sim("balances", body)

    def spot_orders_since(self, seq: int) -> list[dict]:
        """The spot orders the exchange accepted after request ``seq`` (its own log)."""
        return [e for e in self.requests(seq) if e["path"] == "/api/v3/order" and e["method"] == "POST"
                and e.get("status") == 200]

    def public(self, path: str, **params: object) -> Any:
        """A public Binance endpoint of the simulator, e.g. public('/api/v3/depth', symbol='BTCUSDT')."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return http_json(f"{self.base}{path}" + (f"?{query}" if query else ""))

    def signed(self, path: str, method: str = "GET", **params: object) -> Any:
        """A signed Binance endpoint of the simulator (the paper simulator runs with the default credentials)."""
        params = {k: v for k, v in params.items() if v is not None}
        params["timestamp"] = self.state()["server_time"]
        query = urllib.parse.urlencode(params)
        sig = hmac.new(DEFAULT_API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
        return _answer(urllib.request.Request(f"{self.base}{path}?{query}&signature={sig}", method=method,
                                              headers={"X-MBX-APIKEY": DEFAULT_API_KEY}))

    def spot_balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked) of a spot asset, read from the simulator itself."""
        for b in self.signed("/api/v3/account")["balances"]:
            if b["asset"] == asset:
                return D(b["free"]), D(b["locked"])
        return Decimal(0), Decimal(0)
