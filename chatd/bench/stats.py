"""What a bench run counts, and how it reports it: pure, no I/O.

Every message a virtual shopper sends is accounted for: acknowledged or failed (an error by
kind), and then answered by the bot on the shopper's WebSocket, or lost. A message id seen twice
on one connection, or more replies than messages, is a duplicate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0))
SATURATED = 0.9  # a load generator using this share of its core measures itself as much as chatd

# The target's limits a load from one address runs into (HTTP 429), and how to raise them.
LIMITS = {
    "/api/chat/session": (
        "chat.session_create_per_ip_max",
        "CHATD_CHAT__SESSION_CREATE_PER_IP_MAX",
    ),
    "/api/chat/send": ("chat.rate_limit_max", "CHATD_CHAT__RATE_LIMIT_MAX"),
}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of `values` (need not be sorted); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def summary_ms(values: Sequence[float]) -> dict[str, float | None]:
    """{p50, p90, p99, max} of latencies in seconds, in milliseconds (rounded to 0.1)."""
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for name, q in PERCENTILES:
        v = percentile(ordered, q)
        out[name] = None if v is None else round(v * 1000, 1)
    return out


@dataclass
class Tally:
    """Running counts, updated by the shoppers (one Trio thread: no locks)."""

    sessions: int = 0
    sent: int = 0
    acked: int = 0
    replies: int = 0
    duplicated: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    limited: Counter[str] = field(default_factory=Counter)  # 429s by the limit's setting name
    ack_latency: list[float] = field(default_factory=list)  # send -> HTTP answer, seconds
    reply_latency: list[float] = field(default_factory=list)  # send -> bot reply on WS
    _last_replies: int = 0
    _last_at: float = 0.0

    def progress_line(self, elapsed: float) -> str:
        """One line for the terminal: totals, the reply rate since the last line, latencies."""
        window = elapsed - self._last_at
        rate = (self.replies - self._last_replies) / window if window > 0 else 0.0
        self._last_replies, self._last_at = self.replies, elapsed
        recent = self.reply_latency[-2000:]
        p50, p99 = percentile(recent, 0.5), percentile(recent, 0.99)
        latency = (
            f"reply p50 {p50 * 1000:.0f} ms p99 {p99 * 1000:.0f} ms"
            if p50 is not None and p99 is not None
            else "reply p50 - p99 -"
        )
        errors = sum(self.errors.values())
        return (
            f"{elapsed:6.1f}s  {self.sessions} sessions  {self.sent} sent  {self.replies} replies"
            f"  {rate:.0f} replies/s  {latency}  {errors} errors"
        )


@dataclass(frozen=True)
class Report:
    scenario: str
    url: str
    seconds: float  # from the first shopper's start to the last reply (or the drain's end)
    sessions: int
    sent: int
    acked: int
    replies: int
    lost: int
    duplicated: int
    errors: dict[str, int]
    limited: dict[str, int]  # requests refused by the target's rate limits, by setting
    ack_ms: dict[str, float | None]
    reply_ms: dict[str, float | None]
    cpu_seconds: float  # the load generator's own CPU over the run
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_tally(
        cls, scenario: str, url: str, seconds: float, cpu_seconds: float, tally: Tally, **extra: Any
    ) -> Report:
        return cls(
            scenario=scenario,
            url=url,
            seconds=round(seconds, 3),
            cpu_seconds=round(cpu_seconds, 3),
            sessions=tally.sessions,
            sent=tally.sent,
            acked=tally.acked,
            replies=tally.replies,
            lost=max(0, tally.acked - tally.replies),
            duplicated=tally.duplicated,
            errors=dict(sorted(tally.errors.items())),
            limited=dict(sorted(tally.limited.items())),
            ack_ms=summary_ms(tally.ack_latency),
            reply_ms=summary_ms(tally.reply_latency),
            extra=extra,
        )

    @property
    def measured(self) -> bool:
        """Did the run measure anything: a reply (an idle run: a session held)?"""
        return self.replies > 0 if self.scenario != "idle" else self.sessions > 0

    def warnings(self) -> list[str]:
        """What the numbers cannot say by themselves: a limit hit, nothing measured."""
        lines = []
        if self.limited:
            hit = ", ".join(f"{name} ({n} refused)" for name, n in self.limited.items())
            raise_them = " ".join(
                f"{env}=1000000" for path, (name, env) in LIMITS.items() if name in self.limited
            )
            lines.append(
                f"the target's rate limits refused requests (HTTP 429): {hit}. For a load test,"
                f" start the target with higher limits, e.g. {raise_them} chatd serve"
            )
        if not self.measured:
            lines.append(
                "nothing was measured: no "
                + ("session" if self.scenario == "idle" else "bot reply")
            )
        return lines

    @property
    def throughput(self) -> float:
        """Replies per second over the run."""
        return self.replies / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_share(self) -> float:
        """The share of one core the load generator used: near 1, it was the bottleneck."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "url": self.url,
            "seconds": self.seconds,
            "sessions": self.sessions,
            "sent": self.sent,
            "acked": self.acked,
            "replies": self.replies,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "errors": self.errors,
            "limited": self.limited,
            "throughput": round(self.throughput, 2),
            "ack_ms": self.ack_ms,
            "reply_ms": self.reply_ms,
            "cpu_seconds": self.cpu_seconds,
            "cpu_share": round(self.cpu_share, 3),
            **self.extra,
        }

    def table(self) -> str:
        def ms(values: dict[str, float | None]) -> str:
            return "  ".join(
                f"{name} {'-' if v is None else f'{v:.1f}'}" for name, v in values.items()
            )

        rows = [
            ("scenario", f"{self.scenario} against {self.url}"),
            ("duration", f"{self.seconds:.1f} s"),
            ("sessions", str(self.sessions)),
            ("messages sent", f"{self.sent} ({self.acked} acknowledged)"),
            ("bot replies", f"{self.replies} ({self.throughput:.1f}/s)"),
            ("lost", str(self.lost)),
            ("duplicated", str(self.duplicated)),
            ("errors", ", ".join(f"{k} {v}" for k, v in self.errors.items()) or "none"),
            *(("limits hit", name) for name in self.limited),
            ("send -> ack (ms)", ms(self.ack_ms)),
            ("send -> reply (ms)", ms(self.reply_ms)),
            ("load generator CPU", self._cpu()),
            *((key, str(value)) for key, value in self.extra.items()),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)

    def _cpu(self) -> str:
        text = f"{self.cpu_seconds:.1f} s, {self.cpu_share:.0%} of a core"
        if self.cpu_share >= SATURATED:
            text += " (the load generator may be the bottleneck: run it on another machine)"
        return text
