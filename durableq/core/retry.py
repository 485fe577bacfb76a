"""Backoff between attempts: a pure function of the attempt number and a random source."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff, capped, with proportional jitter.

    The delay before attempt n+1 is ``min(cap, base * factor ** (n - 1))``, spread by up to
    ``jitter`` of itself either way so that jobs that failed together do not retry together.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0:
            raise ValueError("backoff base and cap must not be negative")
        if self.factor < 1:
            raise ValueError("backoff factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be between 0 and 1")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        exponent = max(0, attempt - 1)
        try:
            # In floats: an int factor would compute 2 ** 10**18 exactly, taking forever.
            raw = min(self.cap, self.base * float(self.factor) ** exponent)
        except OverflowError:  # factor ** exponent is beyond a float, so far beyond the cap
            raw = self.cap if self.base > 0 else 0.0
        if self.jitter == 0:
            return raw
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, min(self.cap, raw * (1 + spread)))
