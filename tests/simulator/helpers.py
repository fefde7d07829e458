"""Helpers shared by the simulator tests: a python-binance method called by name on either client, the
errors such calls raise, and ``binance-mcp simulator`` as a subprocess."""

from __future__ import annotations

import inspect
import queue
import re
import signal
import subprocess
import sys
import threading

import pytest
from binance.exceptions import BinanceAPIException


def by_name(client):
    """``await call("get_account", ...)``: a python-binance method by name, on the sync or the async client."""

    async def call(method: str, *args, **params):
        result = getattr(client, method)(*args, **params)
        return await result if inspect.isawaitable(result) else result

    return call


async def rejects(api, method: str, *args, **params) -> BinanceAPIException:
    """The BinanceAPIException a python-binance call raises (the test fails if it succeeds)."""
    with pytest.raises(BinanceAPIException) as info:
        await api(method, *args, **params)
    return info.value


def api_error(fn, **kwargs) -> BinanceAPIException:
    """The BinanceAPIException a synchronous python-binance call raises (the test fails if it succeeds)."""
    with pytest.raises(BinanceAPIException) as info:
        fn(**kwargs)
    return info.value


class CliSimulator:
    """The CLI simulator in a subprocess; stderr is read on a thread so a silent crash cannot hang the test."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "binance_mcp", "simulator", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def banner(self) -> dict[str, str]:
        out: dict[str, str] = {}
        while "controls" not in out:
            line = self.lines.get(timeout=60)
            assert line is not None, f"the simulator exited: {''.join(self.stderr)}"
            self.stderr.append(line)
            if m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
                out["url"] = m.group(1)
            elif m := re.search(r"API key:\s+(\S+)", line):
                out["key"] = m.group(1)
            elif m := re.search(r"API secret:\s+(\S+)", line):
                out["secret"] = m.group(1)
            elif m := re.search(r"(ed25519|rsa) key:\s+API key (\S+)", line):
                out[f"{m.group(1)} key"] = m.group(2)
            elif m := re.search(r"controls:\s+(.+)$", line):
                out["controls"] = m.group(1)
        return out

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            stdout, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            stdout, _ = self.proc.communicate()
            raise
        return self.proc.returncode, stdout
