"""What operators read and repair through the admin API: queue figures, throughput, recent
errors, dead letters, sessions and transcripts (sql/queries/admin.sql). Replaying and purging
by age go through QueueStore, which wakes the dispatchers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from chatd.core.admin_wire import DeadLetterOut
from chatd.core.file_urls import FileLinks
from chatd.core.messages import JobStatus
from chatd.core.transcript import SessionRecord
from chatd.core.wire import iso
from chatd.db.export import Transcript
from chatd.db.messages import message_from_row
from chatd.db.pool import Pool
from chatd.db.queries import query
from chatd.db.sessions import session_record_from_row

BUCKET_SECONDS = 10
BUCKETS = 60  # ten minutes of 10-second buckets
WEBHOOK_WINDOW_SECONDS = 300
RECENT_ERRORS = 20
MAX_TRANSCRIPT_MESSAGES = 20_000


@dataclass(frozen=True)
class QueueCounts:
    pending: int
    processing: int
    completed_last_hour: int
    dead: int
    oldest_pending_seconds: float
    live_sessions: int


@dataclass(frozen=True)
class WebhookWindow:
    """Cluster-wide outcomes of the last `seconds`, read from the jobs' state."""

    seconds: int
    completed: int
    retrying: int
    dead: int

    @property
    def attempts(self) -> int:
        return self.completed + self.retrying + self.dead

    @property
    def failures(self) -> int:
        return self.retrying + self.dead


@dataclass(frozen=True)
class ThroughputBucket:
    start: datetime
    received: int  # shoppers' messages
    completed: int  # jobs n8n took


@dataclass(frozen=True)
class RecentError:
    """A job with an error: dead, still open (retrying), or completed with an unusable reply."""

    id: str
    session_id: str
    message_id: str
    status: JobStatus
    last_error: str
    last_status: int | None
    at: datetime
    content: str  # the message's first 200 characters


@dataclass(frozen=True)
class Overview:
    queue: QueueCounts
    throughput: list[ThroughputBucket]  # oldest bucket first
    webhook: WebhookWindow
    recent_errors: list[RecentError]  # newest first


@dataclass(frozen=True)
class DeadLetter:
    id: str
    session_id: str
    message_id: str
    attempts: int
    max_attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime  # when it died
    content: str  # of the message that could not be delivered

    def to_out(self) -> DeadLetterOut:
        return DeadLetterOut(
            jobId=self.id,
            sessionId=self.session_id,
            messageId=self.message_id,
            content=self.content,
            attempts=self.attempts,
            maxAttempts=self.max_attempts,
            httpStatus=self.last_status,
            lastError=self.last_error,
            createdAt=iso(self.created_at),
            deadAt=iso(self.updated_at),
        )


@dataclass(frozen=True)
class LastMessage:
    sender_type: str
    content: str  # its first 140 characters
    created_at: datetime


@dataclass(frozen=True)
class SessionSummary:
    """A session in the admin list: the record, whether it is live, its newest message."""

    session: SessionRecord
    live: bool
    message_count: int
    last: LastMessage | None


class AdminStore:
    def __init__(self, pool: Pool, links: FileLinks | None = None) -> None:
        self._links = links
        self._pool = pool

    async def overview(self) -> Overview:
        """Everything the dashboard shows from the database, over one connection."""
        async with self._pool.connection() as conn:
            counts = await (await conn.execute(query("admin_queue_counts"))).fetchone()
            buckets = await (
                await conn.execute(
                    query("admin_throughput"),
                    {"bucket_seconds": BUCKET_SECONDS, "buckets": BUCKETS},
                )
            ).fetchall()
            window = await (
                await conn.execute(
                    query("admin_webhook_window"), {"window_seconds": WEBHOOK_WINDOW_SECONDS}
                )
            ).fetchone()
            errors = await (
                await conn.execute(query("admin_recent_errors"), {"limit": RECENT_ERRORS})
            ).fetchall()
        assert counts is not None  # scalar subqueries: always one row
        assert window is not None
        return Overview(
            QueueCounts(**counts),
            [ThroughputBucket(**row) for row in buckets],
            WebhookWindow(WEBHOOK_WINDOW_SECONDS, **window),
            [RecentError(**{**row, "status": JobStatus(row["status"])}) for row in errors],
        )

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Newest first, with the content of the message that could not be delivered."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("admin_dead_letters"), {"limit": limit})
            return [DeadLetter(**row) for row in await cur.fetchall()]

    async def broadcast(self, content: str, metadata_filter: dict[str, Any] | None) -> int:
        """Store `content` as a system message in every live session matching; how many."""
        params = {
            "content": content,
            "filter": Jsonb(metadata_filter) if metadata_filter is not None else None,
        }
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("admin_broadcast"), params)).fetchone()
        assert row is not None  # count(*) always answers
        return int(row["sessions"])

    async def purge_dead_job(self, job_id: str) -> bool:
        """False when there is no such dead letter."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("admin_purge_dead_job"), {"job_id": job_id})
            return await cur.fetchone() is not None

    async def sessions(
        self, *, limit: int, live_only: bool, q: str | None, tag: str | None = None
    ) -> list[SessionSummary]:
        params = {"limit": limit, "live_only": live_only, "q": q, "tag": tag}
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("admin_sessions"), params)
            return [_summary(row) for row in await cur.fetchall()]

    async def transcript(self, session_id: str) -> Transcript | None:
        """The session and its messages oldest first; None when there is no such session."""
        params = {"session_id": session_id, "limit": MAX_TRANSCRIPT_MESSAGES}
        async with self._pool.connection() as conn:
            session = await (await conn.execute(query("admin_session"), params)).fetchone()
            if session is None:
                return None
            cur = await conn.execute(query("admin_transcript_messages"), params)
            messages = [message_from_row(row, self._links) for row in await cur.fetchall()]
        return Transcript(session_record_from_row(session), messages)


def _summary(row: dict[str, Any]) -> SessionSummary:
    last = None
    if row["last_sender"] is not None:
        last = LastMessage(row["last_sender"], row["last_content"], row["last_at"])
    return SessionSummary(session_record_from_row(row), row["live"], row["message_count"], last)
