"""Service mode: a hot-reloaded policy that loosens waits for a human. The real PolicyFile and PolicyGuard on a real
SQLite state store in tmp_path, a fake clock, and ``binance-mcp policy confirm`` through ``binance_mcp.cli.main``
as a human runs it (its output and exit codes)."""

from __future__ import annotations

import getpass
import logging
import os
from pathlib import Path

import pytest

from binance_mcp.cli import main
from binance_mcp.policy.confirm_state import StoreConfirmer
from binance_mcp.policy.guard import PolicyGuard
from binance_mcp.policy.loader import load_file
from binance_mcp.policy.policy_file import PolicyFile
from binance_mcp.policy.state import StateStore
from tests.fakeclock import FakeClock

SPOT = "binance_spot_place_order"
RULE = "version: 1\ndefault: deny\nclasses: {{read: allow}}\ntools:\n  " + SPOT + ": {}\n"
A = RULE.format("{action: allow, limits: {max_notional_usd: 500}}")
LOOSER = RULE.format("{action: allow, limits: {max_notional_usd: 1000}}")
LOOSEST = RULE.format("{action: allow, limits: {max_notional_usd: 2000}}")
TIGHTER = RULE.format("{action: allow, limits: {max_notional_usd: 100}}")
DENIED = RULE.format("deny")
LINE_1000 = f"tools.{SPOT}.limits.max_notional_usd: 500 -> 1000 (higher)"


class NoPrices:
    pass


class Counting(StoreConfirmer):
    """The real store-backed confirmer, counting how often the reload asks the store."""

    def __init__(self, state: StateStore) -> None:
        super().__init__(state)
        self.calls: list[str] = []

    def pending(self, *args):
        self.calls.append("pending")
        return super().pending(*args)

    def confirmed(self, *args):
        self.calls.append("confirmed")
        return super().confirmed(*args)

    def superseded(self, *args):
        self.calls.append("superseded")
        return super().superseded(*args)


class Service:
    """A policy file in tmp_path, the PolicyFile of a service on it, its state store and its audit events."""

    def __init__(self, tmp_path: Path, text: str = A, confirm: bool = True) -> None:
        self.path = tmp_path / "policy.yaml"
        self.state_dir = tmp_path / "state"
        self.clock = FakeClock()
        self.events: list[dict] = []
        self._mtime = 1_000_000_000_000_000_000
        self.write(text)
        self.state = StateStore(self.state_dir / "state.db", self.clock)
        self.confirmer = Counting(self.state) if confirm else None
        self.file = PolicyFile(load_file(self.path), self.path, self.clock, self.events.append,
                               confirm_loosening=self.confirmer)

    def write(self, text: str) -> None:
        """New content with a modification time of its own (a fast test can write twice within one tick)."""
        self.path.write_text(text, encoding="utf-8")
        self._mtime += 1_000_000_000
        os.utime(self.path, ns=(self._mtime, self._mtime))

    def max_notional(self) -> int:
        limits = self.file.reload().policy.tools[SPOT].limits
        return int(limits.max_notional_usd) if limits is not None else None

    def names(self) -> list[str]:
        return [e["event"] for e in self.events]

    def confirm(self, capsys, *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["policy", "confirm", *args, "--state-dir", str(self.state_dir)])
        out = capsys.readouterr()
        return code, out.out, out.err

    def close(self) -> None:
        self.state.close()


@pytest.fixture
def service(tmp_path, store_backend):
    s = Service(tmp_path)
    yield s
    s.close()


def test_a_loosening_waits_and_the_policy_in_force_stays(service, caplog):
    assert service.max_notional() == 500
    service.write(LOOSER)
    with caplog.at_level(logging.WARNING, "binance_mcp.policy"):
        for _ in range(3):
            assert service.max_notional() == 500  # the old policy still decides
            service.clock.advance(1.5)  # past the hash interval: the content is compared again
    new_sha = load_file(service.path).sha256
    assert service.file.pending == {"source": str(service.path), "sha256": new_sha, "lines": [LINE_1000],
                                    "since": "2027-01-15T08:00:00+00:00"}
    said = [r for r in caplog.records if "waits for a human" in r.getMessage()]
    assert len(said) == 1 and LINE_1000 in said[0].getMessage() and f"policy confirm {new_sha}" in said[0].getMessage()
    (event,) = [e for e in service.events if e["event"] == "policy_change_pending"]
    assert event["lines"] == [LINE_1000] and event["policy"]["sha256"] == new_sha
    assert event["kept"]["sha256"] == load_file_text_sha(A)
    assert "policy_reload" not in service.names()
    (row,) = service.state.policy_changes()
    assert (row["path"], row["sha256"], row["status"], row["lines"]) == (str(service.path), new_sha, "pending",
                                                                         [LINE_1000])


def load_file_text_sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_policy_confirm_lists_the_change_and_applies_it_on_the_next_call(service, capsys):
    service.max_notional()
    service.write(LOOSER)
    assert service.max_notional() == 500
    sha = load_file_text_sha(LOOSER)
    code, out, _ = service.confirm(capsys)
    assert code == 1
    assert f"file:    {service.path}" in out and f"sha256:  {sha}" in out and f"  - {LINE_1000}" in out
    assert f"to apply it: binance-mcp policy confirm {sha} --state-dir {service.state_dir}" in out
    code, out, _ = service.confirm(capsys, sha[:8])
    assert code == 0
    assert f"confirmed {sha} for {service.path} (by {getpass.getuser()})" in out and "next call" in out
    assert service.max_notional() == 1000  # the next call: no file change needed, no clock advance
    assert service.file.pending is None
    (event,) = [e for e in service.events if e["event"] == "policy_change_confirmed"]
    assert event["policy"]["sha256"] == sha and event["lines"] == [LINE_1000]
    assert event["replaced"]["sha256"] == load_file_text_sha(A)
    (row,) = service.state.policy_changes(("confirmed",))
    assert row["confirmed_by"] == getpass.getuser() and row["confirmed_at"] is not None
    code, out, _ = service.confirm(capsys)
    assert (code, out.strip()) == (0, "nothing pending: no policy change waits for a human")


def test_the_same_content_saved_again_is_said_once(service):
    service.max_notional()
    service.write(LOOSER)
    service.max_notional()
    since = service.file.pending["since"]
    service.clock.advance(60)
    service.write(LOOSER)  # saved again: a new modification time, the same content
    assert service.max_notional() == 500
    assert service.names().count("policy_change_pending") == 1 and service.file.pending["since"] == since


def test_a_tightening_applies_at_once(service):
    service.max_notional()
    service.write(TIGHTER)
    assert service.max_notional() == 100
    assert service.file.pending is None and service.names()[-1] == "policy_reload"
    assert service.state.policy_changes(("pending", "confirmed")) == []


def test_a_pending_change_replaced_by_another_cannot_be_confirmed(service, capsys):
    service.max_notional()
    service.write(LOOSER)
    service.max_notional()
    service.write(LOOSEST)
    assert service.max_notional() == 500
    assert service.file.pending["sha256"] == load_file_text_sha(LOOSEST)
    code, _, err = service.confirm(capsys, load_file_text_sha(LOOSER))
    assert code == 2 and "no longer pending" in err and "only its newest content can be confirmed" in err
    assert service.max_notional() == 500
    code, out, _ = service.confirm(capsys)
    assert code == 1 and load_file_text_sha(LOOSEST) in out and load_file_text_sha(LOOSER) not in out
    assert service.confirm(capsys, load_file_text_sha(LOOSEST))[0] == 0
    assert service.max_notional() == 2000
    assert [e["event"] for e in service.events].count("policy_change_pending") == 2


def test_a_tightening_replaces_a_pending_loosening(service, capsys):
    service.max_notional()
    service.write(LOOSER)
    service.max_notional()
    service.write(TIGHTER)
    assert service.max_notional() == 100 and service.file.pending is None
    code, _, err = service.confirm(capsys, load_file_text_sha(LOOSER))
    assert code == 2 and "no longer pending" in err


def test_a_file_that_fails_to_load_drops_the_pending_change(service, capsys):
    service.max_notional()
    service.write(LOOSER)
    service.max_notional()
    service.write("version: 9\n")
    assert service.max_notional() == 500 and service.file.pending is None
    assert service.file.reload_error is not None
    assert service.confirm(capsys, load_file_text_sha(LOOSER))[0] == 2


def test_a_confirmation_is_not_reused_when_the_same_content_comes_back(service, capsys):
    service.max_notional()
    service.write(LOOSER)
    service.max_notional()
    service.confirm(capsys, load_file_text_sha(LOOSER))
    assert service.max_notional() == 1000
    service.write(A)  # back to 500: tighter, applies at once
    assert service.max_notional() == 500
    service.write(LOOSER)  # the content confirmed once before: a new change, a new confirmation
    assert service.max_notional() == 500
    assert service.file.pending["sha256"] == load_file_text_sha(LOOSER)
    assert service.confirm(capsys)[0] == 1


def test_the_store_is_not_read_while_nothing_is_pending(service):
    service.max_notional()
    service.confirmer.calls.clear()
    for _ in range(5):
        service.max_notional()
        service.clock.advance(2)  # the content is hashed again; unchanged
    assert service.confirmer.calls == []
    service.write(LOOSER)
    service.max_notional()
    service.confirmer.calls.clear()
    for _ in range(3):
        service.max_notional()
    assert service.confirmer.calls == ["confirmed"] * 3  # while pending: is it confirmed yet?


def test_the_first_call_settles_what_an_earlier_run_left_pending(tmp_path):
    earlier = Service(tmp_path)
    earlier.max_notional()
    earlier.write(LOOSER)
    earlier.max_notional()
    earlier.close()
    later = Service(tmp_path, A)  # a restart with the file back at A: the change left pending is not its content
    try:
        assert [r["sha256"] for r in later.state.policy_changes()] == [load_file_text_sha(LOOSER)]
        assert later.max_notional() == 500
        assert later.state.policy_changes() == []
        assert later.confirmer.calls == ["superseded"]
    finally:
        later.close()


def test_stdio_mode_applies_every_valid_change_at_once(tmp_path):
    s = Service(tmp_path, confirm=False)
    try:
        s.max_notional()
        s.write(LOOSER)
        assert s.max_notional() == 1000 and s.file.pending is None
        assert "policy_change_pending" not in s.names() and s.names()[-1] == "policy_reload"
        assert not (s.state_dir / "state.db").exists()  # the store was never touched
    finally:
        s.close()


def test_a_store_that_cannot_be_written_keeps_the_policy_in_force(tmp_path, caplog):
    (tmp_path / "not-a-dir").write_text("")
    s = Service(tmp_path)
    s.state.close()
    s.state.path = tmp_path / "not-a-dir" / "state.db"  # its parent is a file: the store cannot be opened
    try:
        s.max_notional()
        s.write(LOOSER)
        with caplog.at_level(logging.ERROR, "binance_mcp.policy"):
            for _ in range(3):
                assert s.max_notional() == 500  # fail closed: nothing confirmed, nothing applied
        assert s.file.pending["sha256"] == load_file_text_sha(LOOSER)
        assert len([r for r in caplog.records if "cannot" in r.getMessage()]) == 1  # said once
    finally:
        s.close()


# -- PolicyGuard: the keyword the service sets -------------------------------------------------

async def test_the_guard_in_service_mode_hides_a_tool_until_its_allowing_is_confirmed(tmp_path, capsys):
    path = tmp_path / "policy.yaml"
    path.write_text(DENIED, encoding="utf-8")
    clock = FakeClock()
    guard = PolicyGuard(load_file(path), tmp_path / "state", NoPrices(), policy_path=path, clock=clock,
                        confirm_loosening=True)
    try:
        assert SPOT in await guard.hidden()
        path.write_text(A, encoding="utf-8")
        clock.advance(1.5)
        assert SPOT in await guard.hidden()  # deny -> allow waits
        pending = guard.policy_file.pending
        assert pending["lines"] == [f"tools.{SPOT}.action: deny -> allow"]
        assert main(["policy", "confirm", pending["sha256"], "--state-dir", str(tmp_path / "state")]) == 0
        assert SPOT not in await guard.hidden()
        assert guard.policy_file.pending is None
    finally:
        guard.close()


async def test_the_guard_in_stdio_mode_applies_a_loosening_at_once(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(DENIED, encoding="utf-8")
    clock = FakeClock()
    guard = PolicyGuard(load_file(path), tmp_path / "state", NoPrices(), policy_path=path, clock=clock)
    try:
        path.write_text(A, encoding="utf-8")
        clock.advance(1.5)
        assert SPOT not in await guard.hidden() and guard.policy_file.pending is None
    finally:
        guard.close()


# -- the command's answers ----------------------------------------------------------------------

def test_no_state_database_is_an_error_naming_the_directory(tmp_path, capsys):
    assert main(["policy", "confirm", "--state-dir", str(tmp_path / "none")]) == 2
    assert f"no state database in {tmp_path / 'none'}" in capsys.readouterr().err


@pytest.mark.parametrize(("given", "says"), [
    ("0123456789abcdef", "no policy change with sha256 0123456789abcdef"),
    ("abc", "give at least 8 hex digits"),
    ("not-hex-at-all", "give at least 8 hex digits"),
])
def test_an_unknown_or_malformed_sha256_confirms_nothing(service, capsys, given, says):
    service.max_notional()
    service.write(LOOSER)
    service.max_notional()
    code, _, err = service.confirm(capsys, given)
    assert code == 2 and says in err
    assert service.max_notional() == 500
    assert [r["status"] for r in service.state.policy_changes(("pending", "confirmed"))] == ["pending"]


def test_an_ambiguous_prefix_confirms_nothing(service, capsys):
    service.state.record_policy_change("/a.yaml", "abcdef0011111111", "/a.yaml", ["x"])
    service.state.record_policy_change("/b.yaml", "abcdef0022222222", "/b.yaml", ["y"])
    code, _, err = service.confirm(capsys, "abcdef00")
    assert code == 2 and "matches 2 pending changes" in err
    assert {r["status"] for r in service.state.policy_changes(("pending", "confirmed"))} == {"pending"}
    assert service.confirm(capsys, "abcdef001")[0] == 0


def test_confirming_twice_says_it_is_already_confirmed(service, capsys):
    service.max_notional()
    service.write(LOOSER)
    service.max_notional()
    sha = load_file_text_sha(LOOSER)
    assert service.confirm(capsys, sha)[0] == 0
    code, _, err = service.confirm(capsys, sha)
    assert code == 0 and f"{sha} is already confirmed (by {getpass.getuser()})" in err


def test_the_cli_confirmation_is_audited_with_who(service, capsys):
    import json

    service.max_notional()
    service.write(LOOSER)
    service.max_notional()
    service.confirm(capsys, load_file_text_sha(LOOSER))
    records = [json.loads(line) for line in (service.state_dir / "audit.jsonl").read_text().splitlines()]
    (event,) = [r for r in records if r.get("event") == "policy_confirm"]
    assert event["by"] == getpass.getuser() and event["sha256"] == load_file_text_sha(LOOSER)
    assert event["lines"] == [LINE_1000]
