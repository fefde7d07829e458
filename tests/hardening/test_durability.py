"""Durability: a server killed mid-burst loses no audit record of a result it gave, places no order twice, and
a state database that is corrupt stops orders (POLICY_ERROR, a clear message) while reads keep working.

(The locked and unopenable state database and the unwritable audit log are in tests/policy/test_guard_state.py.)
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.hardening.helpers import COUNTS, RawStdio, SyncServer, result_text, server_env
from tests.helpers import simulator, write_policy

CAPPED = """\
version: 1
default: allow
tools:
  binance_spot_place_order: {limits: {daily_notional_usd: 100000}}
"""
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "90000"}
SLOW_ORDERS, FAST_ORDERS, PRICES = 8, 12, 20


@pytest.fixture(scope="module")
def sim():
    with simulator() as rs:
        yield rs


def audit_records(path) -> tuple[list[dict], list[str]]:
    """(parsed records, lines that do not parse)."""
    records, bad = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                bad.append(line)
    return records, bad


def exchange_orders(sim) -> dict[str, list[int]]:
    """client order id -> the exchange's order ids with it (more than one would be a doubled order)."""
    out: dict[str, list[int]] = {}
    for o in sim.sim.spot.orders.values():
        out.setdefault(o.client_order_id, []).append(o.order_id)
    return out


def test_sigkill_mid_burst_loses_no_audit_record_and_doubles_no_order(sim, tmp_path, store_backend):
    sim.control("reset", {})
    state = tmp_path / "state"
    env = server_env(sim, state, write_policy(tmp_path / "policy.yaml", CAPPED), BINANCE_MCP_TIMEOUT="60")
    server = RawStdio(env, tmp_path / "stderr.txt")
    since = sim.control("state")["last_seq"]
    try:
        server.initialize()
        server.call("binance_server_time", {})  # time synced: every order below is one request
        # The first orders to reach the exchange are held there for 4 s (then placed, as Binance would): they
        # are in flight when the server dies. Everything else answers at once.
        sim.control("faults", {"kind": "latency", "path": "/api/v3/order", "method": "POST", "count": SLOW_ORDERS,
                               "latency_ms": 4000})
        calls = {}  # request id -> (tool, client order id or None)
        for i in range(SLOW_ORDERS + FAST_ORDERS + PRICES):
            if i % 2 == 0 and len([c for c in calls.values() if c[1]]) < SLOW_ORDERS + FAST_ORDERS:
                cid = f"burst{i:03d}"
                calls[server.request("binance_spot_place_order", {**ORDER, "newClientOrderId": cid})] = (
                    "order", cid)
            else:
                calls[server.request("binance_spot_price", {"symbol": "BTCUSDT"})] = ("price", None)
        fast = [i for i, (kind, _) in calls.items() if kind == "price"]
        server.wait_for(fast)  # every price answered (and some orders)
        deadline = time.monotonic() + 10  # and an order on its way (a loaded machine may not be that far yet)
        while time.monotonic() < deadline and not any(
                e["path"] == "/api/v3/order" for e in sim.control(f"requests?since={since}")):
            time.sleep(0.02)
        # now kill it, mid-burst
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=30)
    finally:
        server.close()
    COUNTS["fault scenarios (durability)"] += 1
    received = {i: server.responses[i]["result"] for i in calls if i in server.responses}
    assert len(received) >= PRICES

    # The held orders reach the exchange after the kill; wait until every order request has arrived there.
    deadline = time.monotonic() + 30
    while sim.control("state")["order_requests"]["spot"] < SLOW_ORDERS + FAST_ORDERS and time.monotonic() < deadline:
        time.sleep(0.2)
    posts = [e for e in sim.control(f"requests?since={since}") if e["path"] == "/api/v3/order"]
    on_exchange = exchange_orders(sim)
    burst = {cid: ids for cid, ids in on_exchange.items() if cid.startswith("burst")}

    records, bad = audit_records(state / "audit.jsonl")
    assert bad == [], bad  # every line on disk is a whole record
    audited_orders = {r["args"].get("newClientOrderId"): r for r in records if r["tool"] == "binance_spot_place_order"}
    audited_prices = [r for r in records if r["tool"] == "binance_spot_price" and r["outcome"]["status"] == "ok"]

    answered_orders = 0
    for i, result in received.items():
        kind, cid = calls[i]
        assert not result["isError"], result
        if kind == "price":
            continue
        answered_orders += 1
        data = result["structuredContent"]
        record = audited_orders.get(cid)
        assert record is not None, f"order {cid} was answered but has no audit record"
        assert record["outcome"]["order_id"] == data["orderId"] == on_exchange[cid][0]
        assert record["outcome"]["client_order_id"] == cid
    assert len(audited_prices) >= len([i for i in received if calls[i][0] == "price"])

    # Orders lost or doubled: none. One request per order, at most one order per client id, and every order the
    # client was told about is on the exchange.
    # Under load the kill can come before the guard has sent every order (decided, not yet sent: never sent, never
    # answered, nothing lost); every order that was sent was sent once and has its audit record from before.
    sent = [e["params"]["newClientOrderId"] for e in posts]
    assert 0 < len(sent) <= SLOW_ORDERS + FAST_ORDERS and len(sent) == len(set(sent)), sent
    sending = {r["args"].get("newClientOrderId") for r in records if r.get("outcome", {}).get("status") == "sending"}
    assert set(sent) <= sending, set(sent) - sending
    assert all(len(ids) == 1 for ids in burst.values()), burst
    assert len(burst) == len(sent)  # every order sent is on the exchange, once
    COUNTS["orders answered before the kill"] += answered_orders
    COUNTS["orders in flight at the kill"] += len(burst) - answered_orders
    # Reported, not asserted: the guard writes its record after the outcome, so an order in flight when the
    # process dies reaches the exchange without any audit record.
    COUNTS["orders on the exchange without an audit record"] += len(set(burst) - set(audited_orders))
    COUNTS["orders lost or doubled"] += 0

    # A new server on the same state directory starts, appends, and its records parse.
    with_restart = SyncServer(env)
    try:
        assert not with_restart.call("binance_spot_price", {"symbol": "BTCUSDT"}).is_error
    finally:
        with_restart.close()
    after, bad = audit_records(state / "audit.jsonl")
    assert bad == [] and len(after) == len(records) + 1


def test_a_record_cut_short_does_not_swallow_the_next(sim, tmp_path):
    """A crash (or a full disk) in the middle of a write leaves half a line: the next record starts a new line."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "audit.jsonl").write_text('{"call_id":"a","tool":"binance_spot_price"}\n{"call_id":"b","tool":"binan')
    server = SyncServer(server_env(sim, state, write_policy(tmp_path / "policy.yaml")))
    try:
        assert not server.call("binance_spot_price", {"symbol": "BTCUSDT"}).is_error
    finally:
        server.close()
    COUNTS["fault scenarios (durability)"] += 1
    records, bad = audit_records(state / "audit.jsonl")
    assert bad == ['{"call_id":"b","tool":"binan']  # the cut record stays as it was, alone on its line
    assert [r["tool"] for r in records] == ["binance_spot_price", "binance_spot_price"]


def garbage_db(path) -> None:
    path.write_bytes(b"this is not a database \x00\xff" * 400)


def damaged_db(path) -> None:
    """A real state database with its pages (not its header) overwritten."""
    data = bytearray(path.read_bytes())
    assert data.startswith(b"SQLite format 3\x00") and len(data) > 4096
    data[100:] = b"\xde\xad\xbe\xef" * ((len(data) - 100) // 4) + b"\x00" * ((len(data) - 100) % 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("corrupt", [garbage_db, damaged_db], ids=["garbage-bytes", "damaged-pages"])
def test_a_corrupt_state_database_denies_orders_and_reads_keep_working(sim, tmp_path, corrupt):
    sim.control("reset", {})
    state = tmp_path / "state"
    env = server_env(sim, state, write_policy(tmp_path / "policy.yaml", CAPPED))
    first = SyncServer(env)  # a healthy run first: the database exists and holds today's sum
    try:
        assert not first.call("binance_spot_place_order", ORDER).is_error
    finally:
        first.close()
    for leftover in ("state.db-wal", "state.db-shm"):
        (state / leftover).unlink(missing_ok=True)
    corrupt(state / "state.db")
    orders_before = len(sim.sim.spot.orders)

    server = SyncServer(env)
    try:
        denied = server.call("binance_spot_place_order", ORDER)
        text = result_text(denied)
        assert denied.is_error and text.startswith("POLICY_ERROR: "), text
        assert "state database" in text and "denied to be safe" in text, text
        assert "Traceback" not in text
        assert len(sim.sim.spot.orders) == orders_before  # nothing was placed
        for tool, args in (("binance_spot_price", {"symbol": "BTCUSDT"}), ("binance_spot_balances", {}),
                           ("binance_spot_open_orders", {}), ("binance_account_status", {})):
            read = server.call(tool, args)
            assert not read.is_error, (tool, result_text(read))
        status = server.call("binance_policy_status", {})  # a read tool: it answers, and says the store is away
        assert not status.is_error, result_text(status)
        assert status.structured_content["state_error"].startswith("the state store cannot be read"), status
        again = server.call("binance_spot_place_order", ORDER)  # still denied, never "fixed" by a retry
        assert again.is_error and result_text(again).startswith("POLICY_ERROR: ")
    finally:
        server.close()
    COUNTS["fault scenarios (durability)"] += 1
    records, bad = audit_records(state / "audit.jsonl")
    assert bad == []
    denials = [r for r in records if r["tool"] == "binance_spot_place_order" and r["decision"]["code"] == "POLICY_ERROR"]
    assert len(denials) == 2 and all(r["outcome"] == {"status": "not_run"} for r in denials)
