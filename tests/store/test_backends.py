"""The state store on each backend (SQLite file, PostgreSQL): the same tests through ``store_backend``. Two
``StateStore`` objects on one store stand for two servers: what one commits, the other sees, and together they never
pass a cap. Migrations: recorded, a newer schema refused, a file made before migrations adopted with its rows."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from binance_mcp.policy.approvals import ApprovalStore
from binance_mcp.policy.engine import Call, Decision
from binance_mcp.policy.state import SchemaTooNew, StateStore
from binance_mcp.store import migrations

PRE_MIGRATION = Path(__file__).parent.parent / "data" / "state-pre-migration.db"  # made by the code before migrations


def raw(store: StateStore, sql: str, params: tuple = ()) -> list[tuple]:
    """What the store's database holds, read or written past the store's own API."""
    def go(db):
        cur = db.execute(sql, params)
        return cur.fetchall() if sql.lstrip().upper().startswith("SELECT") else []

    return store.transaction(go)


def test_two_servers_on_one_store_never_pass_a_cap_together(store_backend, tmp_path):
    stores = [StateStore(tmp_path / "state.db", time.time) for _ in range(2)]
    for s in stores:  # opened (and migrated) first: what runs at once below is the reservations
        s.write_probe()
    results: list[bool] = []
    gate = threading.Barrier(8)

    def worker(i: int) -> None:
        gate.wait()
        for j in range(5):
            ok, _, _ = stores[i % 2].reserve(f"c{i}-{j}", "t", Decimal("10"), {"acct": Decimal("105")})
            results.append(ok)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 10
    reader = StateStore(tmp_path / "state.db", time.time)
    assert reader.used(["acct"]) == {"acct": Decimal("100")}
    assert raw(reader, "SELECT COUNT(*) FROM reservations WHERE status = 'reserved'") == [(10,)]
    for s in (*stores, reader):
        s.close()


def test_an_approval_granted_through_one_server_is_consumed_once_through_any(store_backend, tmp_path):
    a, b, c = (ApprovalStore(StateStore(tmp_path / "state.db", time.time), time.time) for _ in range(3))
    asked = a.create(Call("binance_spot_place_order", {"symbol": "BTCUSDT"}),
                     Decision("require_approval", "APPROVAL_REQUIRED", "tools.x", "why", {}))
    assert b.decide(asked.id, True).status == "approved"
    got: list[bool] = []
    gate = threading.Barrier(3)

    def consume(store: ApprovalStore) -> None:
        gate.wait()
        got.append(store.consume(asked.id))

    threads = [threading.Thread(target=consume, args=(s,)) for s in (a, b, c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [False, False, True]
    assert c.get(asked.id).status == "consumed"


def test_times_keep_their_fraction_of_a_second(store_backend, tmp_path):
    at = 1767225600.123456  # a REAL of 4 bytes (PostgreSQL's REAL) would keep about 7 digits of it
    store = StateStore(tmp_path / "state.db", lambda: at)
    store.record_equity("acct", Decimal("1000.5"), [])
    day = store.equity_day("acct")
    assert (day["first_at"], day["first"]) == (at, Decimal("1000.5"))


def test_every_migration_is_recorded_once(store_backend, tmp_path):
    store = StateStore(tmp_path / "state.db", time.time)
    store.write_probe()
    again = StateStore(tmp_path / "state.db", time.time)  # a second server opening a migrated store
    again.write_probe()
    versions = raw(again, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(m.version,) for m in migrations.MIGRATIONS]


def test_a_store_migrated_by_a_newer_binance_mcp_is_refused(store_backend, tmp_path):
    store = StateStore(tmp_path / "state.db", time.time)
    store.write_probe()
    newer = migrations.LATEST + 1
    raw(store, "INSERT INTO schema_version (version, name, applied_at) VALUES (?, 'from the future', 'x')", (newer,))
    fresh = StateStore(tmp_path / "state.db", time.time)
    with pytest.raises(SchemaTooNew) as err:
        fresh.used(["acct"])
    assert f"schema version {newer}, newer than this binance-mcp knows ({migrations.LATEST})" in str(err.value)
    assert "Upgrade binance-mcp" in str(err.value)


@pytest.mark.parametrize("older", [False, True], ids=["as-made", "without-notional"])
def test_a_state_file_made_before_migrations_is_adopted_with_its_rows(tmp_path, older):
    db = tmp_path / "state.db"
    shutil.copy(PRE_MIGRATION, db)
    if older:  # a file from before the in-flight notional column
        with sqlite3.connect(db) as old:
            old.execute("ALTER TABLE inflight DROP COLUMN notional")
    before = {t: _rows(db, t) for t in ("daily_sums", "reservations", "approvals", "inflight", "agents")}
    store = StateStore(db, lambda: 1767225601.0, url=None)
    assert store.used(["account"]) == {"account": Decimal("123.45")}
    assert [p.call_id for p in store.in_flight("acct")] == ["call-2"]
    assert store.in_flight("acct")[0].notional == (None if older else Decimal("97.5"))
    assert [a.name for a in store.agents()] == ["alice"]
    store.close()
    for table, rows in before.items():
        after = _rows(db, table)
        assert [r[:len(rows[0])] for r in after] == rows, table
    with sqlite3.connect(db) as check:
        assert check.execute("SELECT MAX(version) FROM schema_version").fetchone() == (migrations.LATEST,)


def _rows(db: Path, table: str) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


def test_a_store_locked_by_another_server_is_busy_then_usable_again(store_backend, tmp_path):
    from binance_mcp.policy.state import StateBusy
    from binance_mcp.store.postgres import WRITE_LOCK

    store = StateStore(tmp_path / "state.db", time.time, busy_timeout=0.05)
    store.write_probe()
    if store_backend:  # another server's write transaction, holding the lock
        import psycopg

        other = psycopg.connect(store_backend, autocommit=True)
        other.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
    else:
        other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StateBusy):
        store.reserve("c1", "t", Decimal("1"), {"acct": None})
    assert store.used(["acct"]) == {"acct": Decimal(0)}  # reads do not wait for the writer
    other.execute("ROLLBACK")
    other.close()
    assert store.reserve("c1", "t", Decimal("1"), {"acct": None})[0]  # the same connection, usable again
    assert store.used(["acct"]) == {"acct": Decimal(1)}


@pytest.mark.parametrize("args", [(), ("--check",)], ids=["serve", "check"])
def test_a_server_does_not_start_on_a_newer_schema(store_backend, tmp_path, args):
    import subprocess
    import sys

    from tests.helpers import clean_env

    store = StateStore(tmp_path / "state" / "state.db", time.time)
    store.write_probe()
    raw(store, "INSERT INTO schema_version (version, name, applied_at) VALUES (?, 'from the future', 'x')",
        (migrations.LATEST + 1,))
    store.close()
    done = subprocess.run([sys.executable, "-m", "binance_mcp", "serve", *args], stdin=subprocess.DEVNULL,
                          env=clean_env(BINANCE_MCP_STATE_DIR=str(tmp_path / "state")), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"newer than this binance-mcp knows ({migrations.LATEST})" in done.stderr and done.stdout == ""


def test_console_state_and_request_keys_are_shared_by_every_server_on_the_store(store_backend, tmp_path):
    """Migrations 3 and 4 on each backend: what one server (or console) writes, another on the store reads: the kill
    flag, the console's password, a session, a single-use login link, the login-attempt limit, the sealing keys."""
    from binance_mcp.policy.console_state import hash_password

    one, two = (StateStore(tmp_path / "state.db", time.time) for _ in range(2))
    assert two.kill_flag().on is False
    one.set_kill_flag(True, "console session abc")
    flag = two.kill_flag()
    assert flag.on is True and flag.set_by == "console session abc"
    one.set_kill_flag(False, "cli")
    assert two.kill_flag().on is False

    one.set_console_password(hash_password("correct horse battery", n=1 << 10), "cli")
    assert two.console_password() is not None and two.console_password().startswith("scrypt$")
    session = one.open_session("s" * 43, "password", "127.0.0.1")
    assert two.console_session("s" * 43) == session
    two.end_session(session.id_sha256)
    assert one.console_session("s" * 43) is None

    one.add_login_link("L" * 43, "cli")
    assert [two.use_login_link("L" * 43), one.use_login_link("L" * 43)] == [True, False]

    limits = {"client": (2, 300.0), "all": (3, 300.0)}
    keys = ["console_login:client:10.0.0.1", "console_login:all"]
    assert [one.login_attempt(keys, limits), two.login_attempt(keys, limits)] == [None, None]
    assert one.login_attempt(keys, limits) == "console_login:client:10.0.0.1"  # counted across both servers

    assert one.request_state_keys(create=False) == []
    ring = one.request_state_keys()
    assert len(ring) == 1 and len(ring[0]) == 32 and two.request_state_keys(create=False) == ring
    assert two.request_state_keys() == ring  # a second server makes no second key
    for s in (one, two):
        s.close()
