"""Exponential backoff with jitter; the random draw comes in so the arithmetic is testable."""

from __future__ import annotations


def exponential_backoff(attempt: int, *, base: float, cap: float, rand: float) -> float:
    """Delay before retry number `attempt` (1-based): "equal jitter" in [d/2, d], d = base*2^(n-1).

    Half the delay is kept so retries never collapse to zero; the other half is spread by `rand`
    (a draw in [0, 1)) so clients that failed together do not retry together.
    """
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    ceiling: float = min(cap, base * 2.0 ** min(attempt - 1, 62))
    return ceiling / 2 + ceiling / 2 * rand
