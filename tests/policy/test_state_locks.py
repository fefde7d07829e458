"""The state directory check (paths.state_dir_problem, run by binance_policy_status and at start) must leave the
state store's SQLite locks alone: closing any descriptor of the database file drops every POSIX lock the process
holds on it, and another process may then take the database for its sole user under the store's open connection
(checkpoint and WAL reset), after which this process reads an old snapshot: a revoked token still works, a confirmed
policy change stays pending, a daily sum misses another process's reservations."""

from __future__ import annotations

import subprocess
import sys
import time

from binance_mcp.paths import state_dir_problem
from binance_mcp.policy.state import StateStore

OTHER = """
import sys, time
from pathlib import Path
from binance_mcp.policy.state import StateStore
store = StateStore(Path(sys.argv[1]), time.time)
{}
store.close()
"""


def other_process(db, code: str) -> None:
    subprocess.run([sys.executable, "-c", OTHER.format(code), str(db)], check=True, timeout=60)


def test_a_state_directory_check_keeps_the_stores_view_current(tmp_path):
    db = tmp_path / "state.db"
    store = StateStore(db, time.time)
    token = "bmcp_" + "t" * 43
    store.add_agent("bot", token, None, "test")
    assert store.agent_by_token(token) is not None
    assert state_dir_problem(tmp_path) is None  # checks state.db among the state files
    other_process(db, "store.agents()")  # opens and closes the database: must not find itself its sole user
    other_process(db, "store.revoke_agent('bot', 'test')")
    assert store.agent_by_token(token) is None  # this process sees the revocation
    store.close()
