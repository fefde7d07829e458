"""An answered order's settle survives a database crash right after it was acknowledged: the guard does not ask the
resolver about an order whose settle succeeded, so a settle the database forgot would leave its reservation in
place until the periodic sweep, well past the exchange's receive window (issue 17: nothing left behind)."""

from __future__ import annotations

import time

import psycopg

from binance_mcp.policy.state import StateStore


def test_a_settle_acknowledged_just_before_a_crash_is_kept(pg_server, tmp_path):
    url = pg_server.new_schema()
    store = StateStore(tmp_path / "state.db", time.time, url=url)
    store.transaction(lambda db: db.execute(
        "INSERT INTO inflight (call_id, account, tool, market, symbol, side, quantity, reduces, conditional, owner, "
        "created_at, status) VALUES ('c1', 'acct', 'binance_spot_place_order', 'spot', 'BTCUSDT', 'BUY', '0.001', 0, 0, "
        "'test', ?, 'inflight')", (time.time(),)))
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:  # the WAL writer flushes seldom: a commit
        admin.execute("ALTER SYSTEM SET wal_writer_delay = '10s'")  # that did not wait for its flush is in memory
        admin.execute("SELECT pg_reload_conf()")
    try:
        time.sleep(0.3)  # the reload reaches the WAL writer
        assert store.settle("c1", {"status": "ok"}, give_back=False) is True
        pg_server.kill()  # SIGKILL, at once: what was only in the server's memory is gone
        pg_server.start()
        store.close()
        store = StateStore(tmp_path / "state.db", time.time, url=url)
        status = store.transaction(lambda db: db.execute("SELECT status FROM inflight WHERE call_id = 'c1'").fetchall(),
                                   "read", write=False)
        assert status == [("released",)]
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            admin.execute("ALTER SYSTEM RESET wal_writer_delay")
            admin.execute("SELECT pg_reload_conf()")
        store.close()
