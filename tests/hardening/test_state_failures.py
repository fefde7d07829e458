"""A state store that cannot be written stops trading, for every tool that trades or cancels, with and without a
daily cap, and reads keep working.

Each failure is real, made on this machine as an operator or a full disk would make it, with no mock of the guard
or of SQLite; the server is ``binance-mcp serve`` in paper mode over stdio:

* ``immutable``: ``chattr +i state.db`` before the server starts (no -wal/-shm left: a clean shutdown removes them).
  SQLite then opens the file read-only without complaint, BEGIN IMMEDIATE still succeeds (the old writability
  check passed), and only a real write fails: "attempt to write a readonly database". (The connection stays
  read-only after ``chattr -i``: trading resumes on a restart. An immutable directory with no -wal/-shm in it
  fails earlier, at the open, like test_guard_state's database that cannot be opened.)
* ``immutable-wal``: ``chattr +i state.db-wal`` while the server runs with the database open. In WAL mode a commit
  writes the -wal file only, so this, not an immutable state.db, is what stops a running server's writes
  ("disk I/O error"). (``chattr +i`` on state.db alone while it runs stops nothing: commits still land in the WAL;
  on the directory, nothing either once -wal/-shm exist; on -shm, SQLite's shared-memory map raises SIGBUS and the
  process dies: reported, not tested here.)
* ``read-only``: state.db mode 0444, the server run as ``nobody`` through ``setpriv`` (root ignores file modes).
  The state directory belongs to nobody, so only the database's own mode stops the write.
* ``full``: the state directory on a 512 KiB tmpfs, filled with a file from the test once the server has the
  database open (its -shm mapped, its -wal empty), so the next commit cannot grow the WAL: "database or disk is
  full". ``max_page_count`` is per connection and cannot be set on the server's. A loop-mounted ext4 made with
  ``mkfs.ext4 -m 0`` fails the same way (checked by hand) but needs a loop device; without ``-m 0`` root writes
  into the reserved blocks. The audit log is a symlink to a file on the ordinary disk, so only the state database
  is out of room.
* ``locked``: another connection holds BEGIN EXCLUSIVE for all of the calls, longer than the guard's patience
  (``StoreWorker.patience``, 5 s); the calls run together so that the wait is paid once.

One server per failure mode and policy (module-scoped; a mode's two servers run side by side); each records its
calls, the simulator's own request log and state, and the audit log, and the tests assert on them. A healthy
store on the same calls is the control: the same arguments are allowed and do reach the exchange, so a denial
below is the state store's doing. Last, a call that needs a human's approval: no human is asked while the disk is
full (the guard proves the store writable with a real write before it asks).
"""

from __future__ import annotations

import asyncio
import errno
import os
import pwd
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from binance_mcp.catalog import CATALOG
from binance_mcp.policy.state import StateStore, StoreWorker
from tests.hardening.helpers import COUNTS
from tests.policy.test_guard_helpers import SERVE, D, Paper, server_env, write_policy

pytestmark = pytest.mark.asyncio(loop_scope="module")

TRADING = tuple(s.name for s in CATALOG if s.risk in ("financial", "destructive"))
PATIENCE = StoreWorker().patience
UNPRIVILEGED = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
NOBODY = pwd.getpwnam("nobody").pw_uid

POLICIES = {
    "no-caps": "version: 1\ndefault: allow\n",
    "daily-cap": """\
        version: 1
        default: allow
        tools:
          binance_spot_place_order: {limits: {daily_notional_usd: 100000}}
          binance_futures_place_order: {limits: {daily_notional_usd: 100000}}
        account:
          daily_notional_usd: 1000000
        """,
}
# The daily sums a healthy run of the nine calls leaves above zero (what "with a daily cap" writes).
COUNTED = {"no-caps": set(), "daily-cap": {"account.daily_notional_usd",
                                           "tools.binance_spot_place_order.limits.daily_notional_usd",
                                           "tools.binance_futures_place_order.limits.daily_notional_usd"}}
S = {"symbol": "BTCUSDT"}
# What each tool sends when it runs (the control checks it arrives; a denied call must send nothing but reads).
ENDPOINT = {
    "binance_spot_place_order": ("POST", "/api/v3/order"),
    "binance_spot_cancel_order": ("DELETE", "/api/v3/order"),
    "binance_spot_cancel_all_orders": ("DELETE", "/api/v3/openOrders"),
    "binance_futures_place_order": ("POST", "/fapi/v1/order"),
    "binance_futures_cancel_order": ("DELETE", "/fapi/v1/order"),
    "binance_futures_cancel_all_orders": ("DELETE", "/fapi/v1/allOpenOrders"),
    "binance_futures_change_leverage": ("POST", "/fapi/v1/leverage"),
    "binance_futures_set_margin_type": ("POST", "/fapi/v1/marginType"),
    "binance_futures_close_position": ("POST", "/fapi/v1/order"),
}


def trading_calls(targets: dict) -> dict[str, dict]:
    """Valid arguments for every trading tool, in an order a healthy store runs them all: the cancels hit orders
    that exist, close_position a position that exists."""
    return {
        "binance_spot_place_order": {**S, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"},
        "binance_spot_cancel_order": {**S, "orderId": targets["spot_order"]},
        "binance_spot_cancel_all_orders": S,
        "binance_futures_place_order": {**S, "side": "BUY", "type": "LIMIT", "quantity": "0.002", "price": "90000"},
        "binance_futures_cancel_order": {**S, "orderId": targets["futures_order"]},
        "binance_futures_cancel_all_orders": S,
        "binance_futures_change_leverage": {**S, "leverage": 3},
        "binance_futures_set_margin_type": {**S, "marginType": "ISOLATED"},
        "binance_futures_close_position": {"symbol": "ETHUSDT"},
    }


# -- the server, run as root or as nobody -----------------------------------------------------------
@asynccontextmanager
async def serve(state: Path, policy: Path, prefix: tuple[str, ...] = (), **options: Any) -> AsyncIterator[Paper]:
    """``binance-mcp serve`` in paper mode over stdio, optionally behind ``prefix`` (setpriv); ``options`` go to
    the client (an elicitation handler)."""
    argv = [*prefix, sys.executable, *SERVE]
    transport = StdioTransport(command=argv[0], args=argv[1:], env=server_env(state, policy), keep_alive=False)
    async with Client(transport, mode="legacy", timeout=60, **options) as client:
        status = await client.call_tool("binance_account_status", {})
        assert status.structured_content["exchange"] == "paper", status.structured_content
        yield Paper(client, status.structured_content["host"], state, policy)


def chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


def immutable(path: Path) -> bool:
    flags = subprocess.run(["lsattr", "-d", str(path)], check=True, capture_output=True, text=True).stdout.split()[0]
    return "i" in flags


def open_for_writing(path: Path) -> str:
    """"ok" if this process (root) can open ``path`` for writing, else the errno's name."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except OSError as exc:
        return errno.errorcode[exc.errno]
    return "ok"


def fresh_database(state: Path) -> None:
    """A state database with the real schema, closed cleanly (so its -wal and -shm are gone)."""
    state.mkdir(parents=True, exist_ok=True)
    store = StateStore(state / "state.db", time.time)
    store.check_writable()
    store.close()
    assert sorted(p.name for p in state.iterdir()) == ["state.db"]


async def wait_for(path: Path, size: int = 0, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size >= size):
        assert time.monotonic() < deadline, f"{path} did not appear"
        await asyncio.sleep(0.05)


# -- the failure modes --------------------------------------------------------------------------------
class Mode:
    """How one failure is made: where the state directory lives, what is done before the server starts and once
    it runs (returns evidence that the failure is real), what undoes it, and what SQLite says."""

    name = ""
    cause = ""  # what the denial quotes from SQLite
    concurrent = False  # the calls run together (each waits out the guard's patience)
    min_seconds = 0.0  # a denial takes at least this long
    prefix: tuple[str, ...] = ()
    evidence: dict[str, Any] = {}

    def root(self, tmp: Path) -> Path:
        return tmp

    def state_dir(self, root: Path) -> Path:
        return root / "state"

    def prepare(self, root: Path, state: Path) -> None:
        pass

    async def inflict(self, state: Path) -> dict[str, Any]:
        return {}

    def undo(self, state: Path) -> None:
        pass

    async def cleanup(self, root: Path, state: Path) -> None:
        pass


class Healthy(Mode):
    name = "healthy"


class Immutable(Mode):
    name = "immutable"
    cause = "attempt to write a readonly database"
    evidence = {"state.db immutable": True, "root opens state.db for writing": "EPERM", "-wal immutable": False}

    def prepare(self, root: Path, state: Path) -> None:
        fresh_database(state)
        chattr("+i", state / "state.db")

    async def inflict(self, state: Path) -> dict[str, Any]:
        db = state / "state.db"
        await wait_for(state / "state.db-wal")  # SQLite made its -wal and -shm beside the immutable file
        return {"state.db immutable": immutable(db), "root opens state.db for writing": open_for_writing(db),
                "-wal immutable": immutable(state / "state.db-wal")}

    def undo(self, state: Path) -> None:
        chattr("-i", state / "state.db")


class ImmutableWal(Mode):
    name = "immutable-wal"
    # The first write fails with "disk I/O error"; the guard then reopens its connection (so a store a human has
    # fixed is used again), and SQLite opens a database whose WAL cannot be written read-only: every later call
    # quotes "attempt to write a readonly database". Both are SQLite refusing the write.
    cause = "disk I/O error|attempt to write a readonly database"
    evidence = {"-wal immutable": True, "root opens -wal for writing": "EPERM", "state.db immutable": False}

    async def inflict(self, state: Path) -> dict[str, Any]:
        wal = state / "state.db-wal"
        await wait_for(state / "state.db-shm", 32768)  # the server has the database open
        chattr("+i", wal)
        return {"-wal immutable": immutable(wal), "root opens -wal for writing": open_for_writing(wal),
                "state.db immutable": immutable(state / "state.db")}

    def undo(self, state: Path) -> None:
        chattr("-i", state / "state.db-wal")


class ReadOnly(Mode):
    name = "read-only"
    cause = "attempt to write a readonly database"
    prefix = UNPRIVILEGED
    evidence = {"state.db mode": "0o444", "server runs as": NOBODY, "nobody may write state.db": False,
                "root may write state.db": True, "state dir owner": NOBODY}

    def root(self, tmp: Path) -> Path:
        # pytest's temp directories are 0700 root: nobody could not even reach the state directory there.
        root = Path(tempfile.mkdtemp(prefix="binance-mcp-readonly-", dir="/tmp"))
        root.chmod(0o755)
        return root

    def prepare(self, root: Path, state: Path) -> None:
        fresh_database(state)
        for path in (state, state / "state.db"):
            os.chown(path, NOBODY, NOBODY)
        (state / "state.db").chmod(0o444)

    async def inflict(self, state: Path) -> dict[str, Any]:
        db = state / "state.db"
        nobody_may = subprocess.run([*UNPRIVILEGED, "test", "-w", str(db)]).returncode == 0
        return {"state.db mode": oct(stat.S_IMODE(db.stat().st_mode)),
                "server runs as": (state / "audit.jsonl").stat().st_uid,  # the server created it
                "nobody may write state.db": nobody_may, "root may write state.db": os.access(db, os.W_OK),
                "state dir owner": state.stat().st_uid}

    async def cleanup(self, root: Path, state: Path) -> None:
        shutil.rmtree(root)


class Full(Mode):
    name = "full"
    cause = "database or disk is full"
    evidence = {"bytes free": 0, "audit log on another file system": True, "-wal bytes": 0}

    def state_dir(self, root: Path) -> Path:
        return root / "fs" / "state"

    def prepare(self, root: Path, state: Path) -> None:
        mnt = root / "fs"
        mnt.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", str(mnt)], check=True,
                       capture_output=True)
        fresh_database(state)
        (root / "audit.jsonl").touch()
        (state / "audit.jsonl").symlink_to(root / "audit.jsonl")

    async def inflict(self, state: Path) -> dict[str, Any]:
        await wait_for(state / "state.db-shm", 32768)  # open, its shared memory allocated
        fd = os.open(state.parent / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for chunk in (65536, 4096, 512, 1):
                while True:
                    try:
                        os.write(fd, b"\0" * chunk)
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC, exc
                        break
        finally:
            os.close(fd)
        fs = os.statvfs(state)
        return {"bytes free": fs.f_bavail * fs.f_frsize,
                "audit log on another file system": os.stat(state / "audit.jsonl").st_dev != os.stat(state).st_dev,
                "-wal bytes": (state / "state.db-wal").stat().st_size}

    def undo(self, state: Path) -> None:
        (state.parent / "filler").unlink()

    async def cleanup(self, root: Path, state: Path) -> None:
        deadline = time.monotonic() + 10  # busy until the server process has exited
        while subprocess.run(["umount", str(root / "fs")], capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, f"{root / 'fs'} stayed busy"
            await asyncio.sleep(0.1)


class Locked(Mode):
    name = "locked"
    cause = "locked by another process"
    concurrent = True
    min_seconds = PATIENCE
    evidence = {"another writer gets": "database is locked"}

    def __init__(self) -> None:
        self.lock: sqlite3.Connection | None = None

    async def inflict(self, state: Path) -> dict[str, Any]:
        self.lock = sqlite3.connect(state / "state.db", timeout=10, isolation_level=None)
        self.lock.execute("BEGIN EXCLUSIVE")
        other = sqlite3.connect(state / "state.db", timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            got = "the lock"
        except sqlite3.OperationalError as exc:
            got = str(exc)
        finally:
            other.close()
        return {"another writer gets": got}

    def undo(self, state: Path) -> None:
        if self.lock is not None:
            self.lock.execute("ROLLBACK")
            self.lock.close()
            self.lock = None


FAILURES: dict[str, type[Mode]] = {m.name: m for m in (Immutable, ImmutableWal, ReadOnly, Full, Locked)}


# -- one server per mode and policy: what it did ---------------------------------------------------
@dataclass
class Outcome:
    is_error: bool
    text: str
    seconds: float
    window: list[dict]  # the simulator's request log over the call (over all calls, when they ran together)
    data: dict | None = None

    def sent(self) -> list[tuple[str, str]]:
        """What reached the exchange that is not a read (method, path)."""
        return [(e["method"], e["path"]) for e in self.window if e["method"] != "GET"]


@dataclass
class Run:
    mode: str
    policy: str
    evidence: dict
    outcomes: dict[str, Outcome]
    read: Outcome
    before: dict
    after: dict
    during: list[dict]  # every request the simulator logged from the first call to the last
    audit: list[dict] = field(default_factory=list)
    status: dict | None = None


def exchange_view(paper: Paper) -> dict:
    """What the exchange holds, read from the simulator itself: open orders, positions, leverage, margin type."""
    risk = paper.signed("/fapi/v2/positionRisk")
    return {
        "spot_open": sorted((o["orderId"], o["status"]) for o in paper.signed("/api/v3/openOrders")),
        "futures_open": sorted((o["orderId"], o["status"]) for o in paper.signed("/fapi/v1/openOrders")),
        "positions": sorted((r["symbol"], r["positionSide"], r["positionAmt"], r["leverage"], r["marginType"])
                            for r in risk if r["symbol"] in ("BTCUSDT", "ETHUSDT")),
        "orders": paper.state()["orders"],
        "order_requests": paper.state()["order_requests"],
        "btc_price": paper.state()["prices"]["BTCUSDT"],
    }


def make_targets(paper: Paper) -> dict:
    """Placed on the simulator directly (not through the server): an open spot order, an open futures order and
    an ETHUSDT position, for the cancels and close_position to act on."""
    spot = paper.signed("/api/v3/order", "POST", symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.002",
                        price="90000", timeInForce="GTC")
    fut = paper.signed("/fapi/v1/order", "POST", symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.002",
                       price="90000", timeInForce="GTC")
    pos = paper.signed("/fapi/v1/order", "POST", symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.1")
    assert spot["status"] == fut["status"] == pos["status"] == "NEW", (spot, fut, pos)
    return {"spot_order": spot["orderId"], "futures_order": fut["orderId"]}


async def timed(paper: Paper, name: str, args: dict) -> tuple[Any, float]:
    t = time.perf_counter()
    result = await paper.call(name, args)
    return result, time.perf_counter() - t


def outcome(result: Any, seconds: float, window: list[dict]) -> Outcome:
    return Outcome(result.is_error, result.content[0].text, seconds, window, result.structured_content)


async def exercise(paper: Paper, calls: dict[str, dict], concurrent: bool) -> tuple[dict[str, Outcome], Outcome]:
    """Every trading call, then a price read while the failure lasts (together with them, when concurrent)."""
    price = ("binance_spot_price", S)
    if concurrent:
        seq = paper.last_seq()
        results = await asyncio.gather(*(timed(paper, n, a) for n, a in [*calls.items(), price]))
        window = paper.requests(seq)
        out = [outcome(r, s, window) for r, s in results]
        return dict(zip(calls, out[:-1], strict=True)), out[-1]
    outcomes = {}
    for name, args in [*calls.items(), price]:
        seq = paper.last_seq()
        result, seconds = await timed(paper, name, args)
        outcomes[name] = outcome(result, seconds, paper.requests(seq))
    read = outcomes.pop("binance_spot_price")
    return outcomes, read


async def run_mode(mode: Mode, policy_name: str, tmp: Path) -> Run:
    root = mode.root(tmp)
    state = mode.state_dir(root)
    try:
        policy = write_policy(root / "policy.yaml", POLICIES[policy_name])
        policy.chmod(0o644)
        mode.prepare(root, state)
        async with serve(state, policy, mode.prefix) as paper:
            targets = make_targets(paper)
            before = exchange_view(paper)
            seq = paper.last_seq()
            try:
                evidence = await mode.inflict(state)
                outcomes, read = await exercise(paper, trading_calls(targets), mode.concurrent)
                after = exchange_view(paper)
                during = paper.requests(seq)
            finally:
                mode.undo(state)
            status = await paper.ok("binance_policy_status") if isinstance(mode, Healthy) else None
            audit = paper.audit()
        COUNTS[f"state failure runs ({mode.name})"] += 1
        return Run(mode.name, policy_name, evidence, outcomes, read, before, after, during, audit, status)
    finally:
        await mode.cleanup(root, state)


class Runs:
    """The runs of one mode under both policies start together (two servers side by side, one per core); each
    (mode, policy) fixture below takes its own run."""

    def __init__(self, tmp_path_factory) -> None:
        self.tmp = tmp_path_factory
        self.done: dict[str, dict[str, Run | BaseException]] = {}

    async def get(self, mode: type[Mode], policy: str) -> Run:
        if mode.name not in self.done:
            runs = await asyncio.gather(*(run_mode(mode(), p, self.tmp.mktemp(f"{mode.name}-{p}")) for p in POLICIES),
                                        return_exceptions=True)
            self.done[mode.name] = dict(zip(POLICIES, runs, strict=True))
        run = self.done[mode.name][policy]
        if isinstance(run, BaseException):
            raise run
        return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory)


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=list(POLICIES))
async def healthy(request, runs: Runs) -> Run:
    return await runs.get(Healthy, request.param)


@pytest_asyncio.fixture(loop_scope="module", scope="module",
                        params=[(m, p) for m in FAILURES for p in POLICIES], ids=lambda mp: f"{mp[0]}-{mp[1]}")
async def failed(request, runs: Runs) -> Run:
    mode, policy = request.param
    return await runs.get(FAILURES[mode], policy)


# -- the tests ----------------------------------------------------------------------------------------
async def test_the_trading_tools_are_the_nine_of_the_catalog():
    assert len(TRADING) == 9
    assert set(TRADING) == set(ENDPOINT) == set(trading_calls({"spot_order": 1, "futures_order": 1}))


@pytest.mark.parametrize("tool", TRADING)
async def test_control_a_healthy_store_runs_each_trading_call(healthy: Run, tool: str):
    """The same calls on a writable store: allowed, and the exchange receives them. (Without this, a denial
    below could be the arguments' fault.)"""
    o = healthy.outcomes[tool]
    assert not o.is_error, o.text
    assert ENDPOINT[tool] in [(e["method"], e["path"]) for e in o.window if e.get("status") == 200], o.window


async def test_control_the_exchange_changed_and_the_cap_counted(healthy: Run):
    assert healthy.before["spot_open"] and healthy.before["futures_open"]
    assert healthy.after["spot_open"] == healthy.after["futures_open"] == []
    positions = {(p[0], p[1]): p[2:] for p in healthy.after["positions"]}
    assert D(positions[("ETHUSDT", "BOTH")][0]) == 0  # closed
    assert positions[("BTCUSDT", "BOTH")][1:] == ("3", "isolated")  # leverage and margin type changed
    counted = {row["rule"] for row in healthy.status["daily"] if D(row["used_usd"]) > 0}
    assert counted == COUNTED[healthy.policy]


@pytest.mark.parametrize("tool", TRADING)
async def test_an_unwritable_store_denies_each_trading_call(failed: Run, tool: str):
    o = failed.outcomes[tool]
    assert o.is_error, f"{tool} ran with the state store {failed.mode}: {o.text[:300]}"
    assert o.text.startswith("POLICY_ERROR: "), o.text
    assert "state database" in o.text and re.search(FAILURES[failed.mode].cause, o.text), o.text
    assert "denied to be safe" in o.text, o.text
    assert o.sent() == [], o.sent()  # nothing but reads reached the exchange (its own request log)
    assert o.seconds >= FAILURES[failed.mode].min_seconds, o.seconds  # locked: the guard waited its patience out


async def test_the_failure_is_real(failed: Run):
    """The state directory really was in the state the mode names, while the calls ran."""
    assert failed.evidence == FAILURES[failed.mode].evidence


async def test_nothing_reached_the_exchange(failed: Run):
    assert [(e["method"], e["path"]) for e in failed.during if e["method"] != "GET"] == []
    assert failed.after == failed.before  # the same open orders, positions, leverage and margin type


async def test_every_denial_is_audited_and_nothing_was_sending(failed: Run):
    finals = {r["tool"]: r for r in failed.audit if r.get("tool") in TRADING and "decision" in r
              and r["outcome"].get("status") != "sending"}
    assert set(finals) == set(TRADING)
    assert {r["decision"]["code"] for r in finals.values()} == {"POLICY_ERROR"}
    assert {r["outcome"]["status"] for r in finals.values()} == {"not_run"}
    assert [r for r in failed.audit if r.get("outcome", {}).get("status") == "sending"] == []


async def test_a_read_still_works(failed: Run):
    read = failed.read
    assert not read.is_error, read.text
    assert [(p["symbol"], D(p["price"])) for p in read.data["prices"]] == [("BTCUSDT", D(failed.after["btc_price"]))]
    assert read.window and {(e["method"], e["path"]) for e in read.window} >= {("GET", "/api/v3/ticker/price")}
    assert read.seconds < PATIENCE / 2, read.seconds  # not held up by the store (`locked`: next to 9 waiting calls)


# -- approvals: no human is asked while the store cannot be written ----------------------------------
APPROVAL = """\
    version: 1
    default: allow
    tools:
      binance_spot_cancel_all_orders: {action: require_approval}
    """


async def approval_run(mode: Mode, tmp: Path) -> tuple[Outcome, list[str]]:
    """A cancel that needs a human's yes, from a client that can ask one (elicitation; the human says yes)."""
    asked: list[str] = []

    async def human(message, response_type, params, context):
        asked.append(message)
        return True

    root = mode.root(tmp)
    state = mode.state_dir(root)
    try:
        policy = write_policy(root / "policy.yaml", APPROVAL)
        mode.prepare(root, state)
        async with serve(state, policy, mode.prefix, elicitation_handler=human) as paper:
            make_targets(paper)
            seq = paper.last_seq()
            try:
                await mode.inflict(state)
                result, seconds = await timed(paper, "binance_spot_cancel_all_orders", S)
                window = paper.requests(seq)
            finally:
                mode.undo(state)
        return outcome(result, seconds, window), asked
    finally:
        await mode.cleanup(root, state)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def approvals(tmp_path_factory) -> dict[str, tuple[Outcome, list[str]]]:
    modes = [Healthy, Full]  # (an immutable or read-only store was already caught before asking: approvals write)
    runs = await asyncio.gather(*(approval_run(m(), tmp_path_factory.mktemp(f"approval-{m.name}")) for m in modes))
    return dict(zip([m.name for m in modes], runs, strict=True))


async def test_approval_control_a_healthy_store_asks_the_human_and_sends(approvals):
    o, asked = approvals["healthy"]
    assert not o.is_error, o.text
    assert len(asked) == 1 and "binance_spot_cancel_all_orders" in asked[0], asked
    assert ("DELETE", "/api/v3/openOrders") in o.sent()


async def test_no_human_is_asked_while_the_store_is_full(approvals):
    """A full disk passes check_writable's BEGIN IMMEDIATE: the guard used to ask the human, and only the commit
    after the yes failed. A real write before asking catches it."""
    o, asked = approvals["full"]
    assert asked == []
    assert o.is_error and o.text.startswith("POLICY_ERROR: ") and Full.cause in o.text, o.text
    assert o.sent() == []
