"""Sliding-window call limits per tool and per account, in memory (one process), with an injectable clock: what a
read tool's rate limits count while the state store is away (policy/guard.py)."""

from __future__ import annotations

from collections import deque

from binance_mcp.policy.decision import rate_slot
from binance_mcp.policy.model import RateLimit


class RateLimits:
    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}

    def wait(self, key: str, rl: RateLimit, now: float) -> float:
        """Seconds until a call under ``key`` is allowed (0: now)."""
        hits = self._hits.get(key)
        if not hits:
            return 0.0
        while hits and hits[0] <= now - rl.window:
            hits.popleft()
        if len(hits) < rl.max:
            return 0.0
        return hits[len(hits) - rl.max] + rl.window - now

    def hit(self, key: str, now: float) -> None:
        self._hits.setdefault(key, deque()).append(now)

    def used(self, key: str, rl: RateLimit, now: float) -> int:
        self.wait(key, rl, now)
        return len(self._hits.get(key, ()))

    def waits(self, rates: list[tuple[str, RateLimit]], now: float) -> dict[str, float]:
        """Each limit's wait under decision.rate_slot(key, limit), as the state store's ``view`` gives them."""
        return {rate_slot(key, rl): self.wait(key, rl, now) for key, rl in rates}
