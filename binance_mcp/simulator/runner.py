"""Run the simulator on 127.0.0.1: in a background thread (tests, paper mode) or in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from dataclasses import dataclass

from aiohttp import web

from binance_mcp.simulator.app import make_app
from binance_mcp.simulator.config import SimConfig
from binance_mcp.simulator.state import Simulator

HOST = "127.0.0.1"


@dataclass
class RunningSimulator:
    """A simulator serving HTTP on its own thread and event loop; ``stop()`` shuts it down."""

    sim: Simulator
    port: int
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    runner: web.AppRunner

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.sim.cfg.api_key

    @property
    def api_secret(self) -> str:
        return self.sim.cfg.api_secret

    def api_key_of(self, kind: str) -> str:
        """The API key of the registered ``ed25519`` or ``rsa`` public key."""
        return next(s.api_key for s in self.sim.signers.values() if s.kind == kind)

    def control(self, path: str, body: dict | None = None, method: str | None = None) -> dict | list:
        """Call a ``/_sim/`` control (requires ``controls=True``)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + "/_sim/" + path.lstrip("/"), data=data,
                                     method=method or ("POST" if body is not None else "GET"),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
            return json.loads(resp.read())

    async def _cleanup(self) -> None:
        await self.runner.cleanup()
        await self.sim.aclose()

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self._cleanup(), self.loop)
        try:
            fut.result(timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)


async def serve(sim: Simulator, port: int = 0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(make_app(sim), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
    return runner, sockets[0].getsockname()[1]


def start_in_thread(cfg: SimConfig | None = None, port: int = 0, sim: Simulator | None = None) -> RunningSimulator:
    """Start a simulator (``sim``, else one of ``cfg``) on an ephemeral loopback port in a daemon thread and wait
    until it listens."""
    sim = sim if sim is not None else Simulator(cfg or SimConfig())
    loop = asyncio.new_event_loop()
    ready: dict = {}
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            ready["runner"], ready["port"] = loop.run_until_complete(serve(sim, port))
        except BaseException as exc:  # report start-up failures to the caller
            ready["error"] = exc
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="binance-simulator", daemon=True)
    thread.start()
    started.wait(30)
    if "error" in ready:
        raise ready["error"]
    if "port" not in ready:
        raise RuntimeError("the simulator did not start within 30 s")
    return RunningSimulator(sim, ready["port"], loop, thread, ready["runner"])
