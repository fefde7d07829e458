"""The policies in force for a call, a mixin of ``PolicyGuard``: the service's policy file (hot-reloaded), the calling
agent's own policy file on the HTTP service (loaded on first use, hot-reloaded alike, and in service mode a change
that loosens either waits for a human: policy_file.py), the kill switch, and the agents' tokens. File operations run
in a thread, never on the event loop."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from binance_mcp.catalog import BY_NAME
from binance_mcp.policy import engine, layers
from binance_mcp.policy.confirm_state import StoreConfirmer
from binance_mcp.policy.layers import CURRENT_AGENT, Layers
from binance_mcp.policy.loader import LoadedPolicy, PolicyLoadError, load_file
from binance_mcp.policy.policy_file import PolicyFile
from binance_mcp.policy.state import StateError, StateStore

log = logging.getLogger("binance_mcp.policy")
# One guarded call's reads that need not be repeated within it (the kill flag): a dict per call, set by the guard
KILL_READ: ContextVar[dict | None] = ContextVar("binance_mcp_kill_read", default=None)


class PoliciesInForce:
    """Needs, from the guard: policy_file, policy_path, agent_files, service, state, store, clock, recorder, and
    tokens / token_worker (the agents' token checks)."""

    async def _io(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A blocking file operation (stat, open) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    @property
    def loaded(self) -> LoadedPolicy:
        return self.policy_file.loaded

    @property
    def reload_error(self) -> str | None:
        return self.policy_file.reload_error

    async def current(self) -> LoadedPolicy:
        if self.policy_path is None:
            return self.loaded
        return await self._io(self.policy_file.reload)

    async def layers(self) -> Layers:
        """The policies in force for the running call: the service's, and its agent's (hot-reloaded alike). Raises
        PolicyLoadError when the agent's policy cannot be loaded (its calls are then denied), StateError (as
        POLICY_ERROR) on the service when no agent is known."""
        service = await self.current()
        agent = CURRENT_AGENT.get()
        if agent is None:
            if self.service:
                raise StateError("no agent is known for this request")
            return Layers(service)
        if agent.policy is None:
            return Layers(service)
        return Layers(service, await self._io(self._agent_policy, agent.policy))

    def _agent_policy(self, path: str) -> LoadedPolicy:
        """From a worker thread: the agent's policy file, loaded on first use and hot-reloaded after."""
        held = self.agent_files.get(path)
        if held is None:
            loaded = load_file(Path(path))
            confirmer = StoreConfirmer(self.state) if self.policy_file.confirmer is not None else None
            held = self.agent_files.setdefault(path, PolicyFile(loaded, Path(path), self.clock, self.recorder.now,
                                                                confirm_loosening=confirmer))
        loaded = held.reload()
        errors = layers.agent_policy_errors(loaded)
        if errors:  # checked on every use: a reload may bring what an agent's policy may not set
            raise PolicyLoadError(path, errors)
        return loaded

    async def authenticate(self, token: str):
        """The active agent whose bearer token this is (agent_state.AgentRow), or None: read on every request, so a
        revocation applies to the next one. On a connection and a worker thread of its own (``tokens``), so that a
        request's check neither waits behind the guard's transactions nor holds them up."""
        if self.tokens is None:
            self.tokens = StateStore(self.state.path, self.clock, busy_timeout=self.state.busy_timeout,
                                     url=self.state.url)
        return await self.token_worker.run(self.tokens.agent_by_token, token)

    async def hidden(self) -> frozenset[str]:
        """Tools the policies in force deny outright: not listed in tools/list."""
        try:
            now = await self.layers()
        except (PolicyLoadError, StateError):
            return frozenset(BY_NAME) - {engine.POLICY_STATUS_TOOL}  # nothing will run: list only the status
        return frozenset(name for name in BY_NAME if layers.denied_outright(now, name))

    def kill_switch_on(self, loaded: LoadedPolicy) -> bool:
        """Anything at the path stops trading: a file, a directory, a dangling symlink, a symlink loop. A path
        that cannot be examined (a directory on the way that may not be read) counts as on: fail closed."""
        path = loaded.policy.account.kill_switch_file
        if not path:
            return False
        try:
            os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError:
            return True
        return True

    async def kill_switch(self, loaded: LoadedPolicy) -> bool | str:
        """The kill-switch file, then the kill flag in the state store (a str saying who set it, when: the denial
        shows it). The flag is read once per call (``KILL_READ``); a store that cannot be read counts as on."""
        if loaded.policy.account.kill_switch_file and await self._io(self.kill_switch_on, loaded):
            return True
        cache = KILL_READ.get()
        if cache is not None and "flag" in cache:
            return cache["flag"]
        try:
            flag = await self.store.run(self.state.kill_flag)
        except StateError as exc:
            log.warning("the kill flag cannot be read, so it counts as on: %s", exc)
            value: bool | str = "the kill flag in the state store cannot be read (so it counts as on)"
        else:
            when = datetime.fromtimestamp(flag.set_at or 0, tz=timezone.utc).isoformat(timespec="seconds")
            value = f"the kill flag in the state store is on (set by {flag.set_by} at {when})" if flag.on else False
        if cache is not None:
            cache["flag"] = value
        return value

