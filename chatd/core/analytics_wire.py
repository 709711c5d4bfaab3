"""GET /api/admin/analytics: its query, its answer (a series per bucket, totals, CSAT, top
intents) and each chart's numbers as CSV, built from merged hourly figures (insights.py)."""

from __future__ import annotations

import csv
import io
import zoneinfo
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatd.core.insights import Figures, Hourly, Window, merge
from chatd.core.responses import Count, Out, Timestamp

Chart = Literal["activity", "answer_time", "delivery", "csat", "ratings", "intents"]
TOP_INTENTS = 10
_DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


class AnalyticsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    range: Literal["1d", "7d", "30d"] | None = Field(
        default=None, description="the last 24 hours, or the last 7 or 30 days (default 7d)"
    )
    start: Annotated[str, Field(pattern=_DAY)] | None = Field(
        default=None, description="first day (YYYY-MM-DD, in tz), instead of range"
    )
    end: Annotated[str, Field(pattern=_DAY)] | None = Field(
        default=None, description="last day, included"
    )
    bucket: Literal["hour", "day"] | None = Field(
        default=None, description="default: hours for up to two days, else days"
    )
    tz: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$")] = Field(
        default="UTC", description="IANA time zone of the days, e.g. Europe/Berlin"
    )
    format: Literal["json", "csv"] = "json"
    chart: Chart | None = Field(default=None, description="with format=csv: whose numbers")


class Point(Out):
    start: Timestamp
    conversations: Count
    userMessages: Count
    botMessages: Count
    systemMessages: Count
    answers: Count = Field(description="bot replies to shoppers' messages (no fallbacks)")
    answerP50Seconds: float | None
    answerP95Seconds: float | None
    deadLetters: Count = Field(description="messages given up on (the fallback reply was shown)")
    retries: Count = Field(description="delivery attempts beyond the first, of messages settled")
    ratings: Count
    ratingAverage: float | None


class Csat(Out):
    distribution: dict[str, int] = Field(description="ratings given, by value 1..5")
    count: Count
    average: float | None


class NamedCount(Out):
    name: str
    count: Count


class Analytics(Out):
    start: Timestamp
    end: Timestamp
    bucket: Literal["hour", "day"]
    tz: str
    rolledUntil: Timestamp | None = Field(
        description="hours before it come from the rollups, the rest is counted live"
    )
    series: list[Point]
    totals: Point = Field(description="the whole window (start: the window's)")
    csat: Csat
    topIntents: list[NamedCount] = Field(description="metadata.n8n.intent of bot replies")


def analytics_report(
    window: Window,
    rolled_until: datetime | None,
    rows: list[Hourly],
    intents: list[tuple[str, int]],
) -> Analytics:
    zone = zoneinfo.ZoneInfo(window.tz)
    buckets, total = merge(window, rows)

    def stamp(moment: datetime) -> str:
        return moment.astimezone(zone).isoformat().replace("+00:00", "Z")

    return Analytics(
        start=stamp(window.start),
        end=stamp(window.end),
        bucket=window.bucket,
        tz=window.tz,
        rolledUntil=stamp(rolled_until) if rolled_until else None,
        series=[_point(stamp(start), figures) for start, figures in buckets],
        totals=_point(stamp(window.start), total),
        csat=Csat(
            distribution={str(i + 1): n for i, n in enumerate(total.ratings)},
            count=total.rating_count,
            average=total.rating_average,
        ),
        topIntents=[NamedCount(name=name, count=n) for name, n in intents],
    )


def _point(start: str, f: Figures) -> Point:
    return Point(
        start=start,
        conversations=f.conversations,
        userMessages=f.user_messages,
        botMessages=f.bot_messages,
        systemMessages=f.system_messages,
        answers=f.answers,
        answerP50Seconds=f.quantile(0.5),
        answerP95Seconds=f.quantile(0.95),
        deadLetters=f.dead_letters,
        retries=f.retries,
        ratings=f.rating_count,
        ratingAverage=f.rating_average,
    )


def chart_csv(report: Analytics, chart: Chart) -> str:
    """One chart's numbers as CSV (RFC 4180, a header row first)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    series = report.series
    if chart == "activity":
        writer.writerow(
            ["start", "conversations", "user_messages", "bot_messages", "system_messages"]
        )
        for p in series:
            writer.writerow(
                [p.start, p.conversations, p.userMessages, p.botMessages, p.systemMessages]
            )
    elif chart == "answer_time":
        writer.writerow(["start", "answers", "p50_seconds", "p95_seconds"])
        for p in series:
            writer.writerow(
                [p.start, p.answers, _num(p.answerP50Seconds), _num(p.answerP95Seconds)]
            )
    elif chart == "delivery":
        writer.writerow(["start", "dead_letters", "retries"])
        for p in series:
            writer.writerow([p.start, p.deadLetters, p.retries])
    elif chart == "csat":
        writer.writerow(["start", "ratings", "average"])
        for p in series:
            writer.writerow([p.start, p.ratings, _num(p.ratingAverage)])
    elif chart == "ratings":
        writer.writerow(["rating", "count"])
        for value, n in report.csat.distribution.items():
            writer.writerow([value, n])
    else:
        writer.writerow(["intent", "count"])
        for named in report.topIntents:
            writer.writerow([_cell(named.name), named.count])
    return out.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _cell(text: str) -> str:
    """Text from n8n, defused for spreadsheets: a leading =, +, - or @ would be a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
