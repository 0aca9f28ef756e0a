"""Fault injection for the simulator: which attempt of which request fails, and how.

Faults are a pure function of (seed, request hash, attempt number), so a test that turns faults on
sees the same faults on every run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def unit(text: str) -> float:
    """A deterministic number in [0, 1) from ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


@dataclass
class SimulatorFaults:
    """Fault rates in [0, 1], drawn per (seed, request hash, attempt) so runs are reproducible.

    The rates are stacked in the order of the fields: a draw below ``rate_429`` is a 429, the next
    ``rate_500`` of the range is a 500, and so on; whatever remains is a normal answer.
    """

    rate_429: float = 0.0
    retry_after_s: float = 0.05
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_slow: float = 0.0
    slow_s: float = 5.0
    rate_drop: float = 0.0
    rate_invalid_json: float = 0.0
    rate_empty: float = 0.0
    rate_truncate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (
            "rate_429",
            "rate_500",
            "rate_503",
            "rate_slow",
            "rate_drop",
            "rate_invalid_json",
            "rate_empty",
            "rate_truncate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"SimulatorFaults.{name}={value!r} must be in [0, 1]")

    def pick(self, request_key: str, attempt: int) -> str:
        """The outcome for this attempt of this request: a fault name or ``"ok"``."""
        draw = unit(f"fault:{self.seed}:{request_key}:{attempt}")
        edge = 0.0
        for outcome, rate in (
            ("429", self.rate_429),
            ("500", self.rate_500),
            ("503", self.rate_503),
            ("slow", self.rate_slow),
            ("drop", self.rate_drop),
            ("invalid_json", self.rate_invalid_json),
            ("empty", self.rate_empty),
            ("truncate", self.rate_truncate),
        ):
            edge += rate
            if draw < edge:
                return outcome
        return "ok"
