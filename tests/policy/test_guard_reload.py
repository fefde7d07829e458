"""Hot reload and the kill switch cannot be fooled: a content change with the same size and modification time is
noticed (by hash, at most once a second, on a fake clock), and anything at the kill-switch path stops trading."""

from __future__ import annotations

import os

import pytest

from binance_mcp.policy.guard import PolicyGuard
from binance_mcp.policy.loader import load_file
from tests.fakeclock import FakeClock

A = "version: 1\ndefault: allow\ntools:\n  binance_spot_place_order: {action: deny }\n"
B = "version: 1\ndefault: allow\ntools:\n  binance_spot_place_order: {action: allow}\n"  # the same length


class NoPrices:
    pass


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def same_stamp_rewrite(path, text: str) -> None:
    st = path.stat()
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


async def test_a_content_change_with_the_same_size_and_mtime_is_reloaded(tmp_path, clock):
    path = tmp_path / "policy.yaml"
    assert len(B) == len(A)
    path.write_text(A, encoding="utf-8")
    guard = PolicyGuard(load_file(path), tmp_path / "state", NoPrices(), policy_path=path, clock=clock)
    try:
        assert (await guard.current()).policy.tools["binance_spot_place_order"].action == "deny"
        same_stamp_rewrite(path, B)
        clock.advance(0.5)  # within a second: not hashed again yet
        assert (await guard.current()).policy.tools["binance_spot_place_order"].action == "deny"
        clock.advance(0.6)
        assert (await guard.current()).policy.tools["binance_spot_place_order"].action == "allow"
    finally:
        guard.close()


async def test_a_broken_rewrite_with_the_same_stamp_keeps_the_previous_policy(tmp_path, clock):
    path = tmp_path / "policy.yaml"
    path.write_text(A, encoding="utf-8")
    guard = PolicyGuard(load_file(path), tmp_path / "state", NoPrices(), policy_path=path, clock=clock)
    try:
        same_stamp_rewrite(path, "version: 9".ljust(len(A)))
        clock.advance(1.1)
        loaded = await guard.current()
        assert loaded.policy.tools["binance_spot_place_order"].action == "deny"
        assert guard.reload_error is not None and "version" in guard.reload_error
    finally:
        guard.close()


@pytest.mark.parametrize("kind", ["file", "directory", "dangling symlink", "symlink loop"])
def test_anything_at_the_kill_switch_path_is_on(tmp_path, kind):
    stop = tmp_path / "STOP"
    make = {"file": lambda: stop.write_text(""), "directory": stop.mkdir,
            "dangling symlink": lambda: stop.symlink_to(tmp_path / "nowhere"),
            "symlink loop": lambda: stop.symlink_to(stop)}
    make[kind]()
    guard = PolicyGuard(load_file(_policy(tmp_path, stop)), tmp_path / "state", NoPrices())
    try:
        assert guard.kill_switch_on(guard.loaded) is True
    finally:
        guard.close()


def test_a_kill_switch_path_that_cannot_be_examined_is_on(tmp_path, monkeypatch):
    """A directory on the way that may not be read (EACCES; root, as in CI, cannot be refused, so the OS answer
    is stood in for): fail closed."""
    guard = PolicyGuard(load_file(_policy(tmp_path, tmp_path / "STOP")), tmp_path / "state", NoPrices())

    def refused(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    try:
        monkeypatch.setattr(os, "lstat", refused)
        assert guard.kill_switch_on(guard.loaded) is True
    finally:
        monkeypatch.undo()
        guard.close()


def test_nothing_at_the_kill_switch_path_is_off(tmp_path):
    guard = PolicyGuard(load_file(_policy(tmp_path, tmp_path / "STOP")), tmp_path / "state", NoPrices())
    try:
        assert guard.kill_switch_on(guard.loaded) is False
    finally:
        guard.close()


def _policy(tmp_path, stop) -> os.PathLike:
    p = tmp_path / "ks-policy.yaml"
    p.write_text(f"version: 1\ndefault: allow\naccount: {{kill_switch_file: {stop}}}\n", encoding="utf-8")
    return p
