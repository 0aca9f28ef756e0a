"""Client-side token buckets for a provider's requests-per-minute and tokens-per-minute limits.

Hand-written because the well-kept limiter libraries (aiolimiter) are not dependencies here and
the need is small: one asyncio loop, FIFO waiters, and the ability to correct a reservation after
the fact (a request's token count is only an estimate until its ``usage`` comes back).
"""

from __future__ import annotations

import asyncio
import time

# A bucket holds this many seconds of its rate, so a cold start does not fire a full minute's
# allowance at once and trip the provider's own (usually per-second smoothed) limiter.
BURST_SECONDS = 10.0


class TokenBucket:
    """An asyncio token bucket refilled at ``per_minute / 60`` units per second.

    ``acquire(n)`` waits until ``n`` units are available (a request larger than the bucket waits
    for a full bucket, then drives it negative, so it is throttled rather than refused).
    ``adjust(delta)`` returns (positive) or charges (negative) units once the true cost is known.
    """

    def __init__(self, per_minute: float, *, burst_seconds: float = BURST_SECONDS) -> None:
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be positive, got {per_minute!r} per minute")
        self.rate_per_s = per_minute / 60.0
        self.capacity = max(1.0, self.rate_per_s * burst_seconds)
        self._level = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate_per_s)
        self._stamp = now

    async def acquire(self, amount: float = 1.0) -> None:
        """Wait until ``amount`` units can be taken, then take them."""
        needed = min(amount, self.capacity)
        async with self._lock:  # FIFO: a large request is not starved by small ones
            while True:
                self._refill()
                if self._level >= needed:
                    self._level -= amount
                    return
                await asyncio.sleep((needed - self._level) / self.rate_per_s)

    @property
    def available(self) -> float:
        """Units available now (negative while a large request is being paid off)."""
        self._refill()
        return self._level

    def adjust(self, delta: float) -> None:
        """Give back (``delta > 0``) or charge (``delta < 0``) units after the fact."""
        self._refill()
        self._level = min(self.capacity, self._level + delta)


class RateLimiter:
    """The requests-per-minute and tokens-per-minute buckets of one endpoint (either may be off)."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self.requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None

    async def acquire(self, estimated_tokens: int) -> None:
        if self.requests is not None:
            await self.requests.acquire(1)
        if self.tokens is not None:
            await self.tokens.acquire(estimated_tokens)

    def correct(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Settle a request's token reservation with its real usage."""
        if self.tokens is not None:
            self.tokens.adjust(estimated_tokens - actual_tokens)


def estimate_tokens(messages: list[dict], max_tokens: int) -> int:
    """A request's token cost before it is sent: prompt characters / 4 plus the answer budget."""
    chars = sum(len(m.get("content") or "") for m in messages)
    return chars // 4 + max_tokens
