"""The webhook queue: claim with a lease, then complete, retry, dead-letter or release, each
fenced on that lease (a worker whose lease was rescued changes nothing); bot replies stored once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
from psycopg.types.json import Jsonb

from chatd.core.messages import BotMessage, JobStatus, Message, MessageStatus, StreamedPart
from chatd.core.tokens import new_id
from chatd.db.messages import message_from_row
from chatd.db.owner import OWNER_LOCK_NAMESPACE
from chatd.db.pool import Pool
from chatd.db.queries import query
from chatd.errors import NotFound

JOBS_CHANNEL = "chatd_jobs"
EVENTS_CHANNEL = "chatd_events"  # filled by triggers: sql/migrations/0003_events.sql


@dataclass(frozen=True)
class Job:
    id: str
    message_id: str
    session_id: str
    seq: int
    webhook_url: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    lease_id: uuid.UUID
    is_retry: bool

    @property
    def is_event(self) -> bool:
        """An event of the conversation (a rating), not a shopper's message: nobody awaits a
        reply to it, so none is shown (docs/n8n.md, "Conversation events")."""
        return self.payload.get("event") is not None


@dataclass(frozen=True)
class RescuedJob:
    """A claim whose lease ran out, or whose owner process died, put back to pending."""

    id: str
    session_id: str
    message_id: str
    owner_gone: bool  # rescued because its owner's lock was gone, before the lease ran out


@dataclass(frozen=True)
class Settle:
    """The job a reply settles, fenced on the lease it was claimed with."""

    job: Job
    job_status: JobStatus  # COMPLETED, or DEAD for the fallback after a dead letter
    last_status: int | None
    error: str | None


@dataclass(frozen=True)
class StoredReply:
    message: Message | None  # the reply as stored (None: its job's lease was lost)
    duplicate: bool  # the same reply was stored before
    settled: bool  # the job given was settled by this call
    response_seconds: float | None = None  # stored now: since the message it answers was stored
    held: bool = False  # not stored: an agent holds the conversation (the bot is not shown)


@dataclass(frozen=True)
class StoredStream:
    messages: list[Message]  # as stored, in seq order (none: the lease was lost, or all stored)
    settled: bool  # the job was completed by this call (False: its lease was lost)
    duplicates: int  # messages skipped: the same reply was stored before
    response_seconds: float | None = None  # since the message they answer was stored
    held: bool = False  # not stored: an agent holds the conversation (the bot is not shown)


class QueueStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def claim(
        self, worker: str, lease_seconds: float, limit: int = 1, owner_token: int | None = None
    ) -> list[Job]:
        """Up to `limit` due jobs, each the head of its session's lane, leased to `worker`
        (`owner_token`: the claimer's owner lock, chatd/db/owner.py; None: the lease only)."""
        params = {
            "worker": worker,
            "lease_seconds": lease_seconds,
            "limit": limit,
            "owner_token": owner_token,
        }
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("claim_jobs"), params)
            rows = await cur.fetchall()
        return [Job(**row) for row in rows]

    async def rescue_expired(self, own_token: int | None = None) -> list[RescuedJob]:
        """Put claims whose lease ran out back to pending, and, given the rescuer's own owner
        token (its lock held), those of other owners whose lock is gone; returns them."""
        params = {"namespace": OWNER_LOCK_NAMESPACE, "own_token": own_token}
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(query("rescue_expired_leases"), params)).fetchall()
        return [RescuedJob(**row) for row in rows]

    async def _fenced(self, sql: LiteralString, job: Job, **params: Any) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql, {"job_id": job.id, "lease_id": job.lease_id, **params})
            return await cur.fetchall()

    async def complete(self, job: Job, *, last_status: int | None, note: str | None = None) -> bool:
        """False if the lease was lost (the job was rescued and belongs to someone else)."""
        return bool(
            await self._fenced(query("complete_job"), job, last_status=last_status, note=note)
        )

    async def retry(self, job: Job, *, delay: float, error: str, last_status: int | None) -> bool:
        rows = await self._fenced(
            query("retry_job"), job, delay_seconds=delay, error=error, last_status=last_status
        )
        return bool(rows)

    async def dead_event(self, job: Job, *, error: str, last_status: int | None) -> bool:
        """An event's job out of attempts: dead, without a fallback reply. False: lease lost."""
        rows = await self._fenced(
            query("dead_event_job"), job, error=error, last_status=last_status
        )
        return bool(rows)

    async def release(self, job: Job) -> bool:
        return bool(await self._fenced(query("release_job"), job))

    async def store_bot_message(
        self, message: BotMessage, *, reply_status: MessageStatus, settle: Settle | None = None
    ) -> StoredReply:
        """Store a reply once (by reply_key), settling `settle.job` in the same transaction."""
        job = settle.job if settle else None
        params = {
            "message_id": new_id(),
            "session_id": message.session_id,
            "sender_type": message.sender_type,
            "content": message.content,
            "message_type": message.message_type,
            "metadata": Jsonb(message.metadata) if message.metadata is not None else None,
            "reply_to": message.reply_to,
            "reply_key": message.reply_key,
            "reply_status": reply_status,
            "job_id": job.id if job else None,
            "lease_id": job.lease_id if job else None,
            "job_status": settle.job_status if settle else None,
            "last_status": settle.last_status if settle else None,
            "job_error": settle.error if settle else None,
            "handoff": message.handoff is not None,
            "handoff_reason": message.handoff,
        }
        async with self._pool.connection() as conn:
            for _ in range(2):
                try:
                    cur = await conn.execute(query("store_bot_message"), params)
                    row = await cur.fetchone()
                    break
                except psycopg.errors.UniqueViolation:
                    continue  # the same reply raced us and won: run again, it will be skipped
            else:
                raise AssertionError("store_bot_message lost the same race twice")
            assert row is not None  # the statement always returns its one summary row
            settled = bool(row["settled"])
            if row["id"] is not None:
                return StoredReply(
                    message_from_row(row),
                    duplicate=False,
                    settled=settled,
                    response_seconds=row["response_seconds"],
                )
            if job is not None and not settled:
                return StoredReply(None, duplicate=False, settled=False)
            existing = await (await conn.execute(query("reply_by_key"), params)).fetchone()
        if existing is None and row["held_by_agent"]:
            return StoredReply(None, duplicate=False, settled=settled, held=True)
        if existing is None:
            raise NotFound("no such session", code="session_not_found", field="sessionId")
        return StoredReply(message_from_row(existing), duplicate=True, settled=settled)

    async def store_bot_messages(
        self, reply_to: str, parts: list[StreamedPart], settle: Settle
    ) -> StoredStream:
        """A streamed reply's messages, stored together with the completion of its job."""
        job = settle.job
        params = {
            "session_id": job.session_id,
            "reply_to": reply_to,
            "ids": [part.message_id for part in parts],
            "contents": [part.content for part in parts],
            "reply_keys": [part.reply_key for part in parts],
            "job_id": job.id,
            "lease_id": job.lease_id,
            "last_status": settle.last_status,
        }
        async with self._pool.connection() as conn:
            for _ in range(2):
                try:
                    cur = await conn.execute(query("store_bot_messages"), params)
                    rows = await cur.fetchall()
                    break
                except psycopg.errors.UniqueViolation:
                    continue  # the same reply raced us and won: run again, it will be skipped
            else:
                raise AssertionError("store_bot_messages lost the same race twice")
        settled = bool(rows[0]["settled"])
        messages = [message_from_row(row) for row in rows if row["id"] is not None]
        held = bool(rows[0]["held_by_agent"]) and not messages
        return StoredStream(
            messages,
            settled=settled,
            duplicates=len(parts) - len(messages) if settled and not held else 0,
            response_seconds=rows[0]["response_seconds"] if messages else None,
            held=held,
        )

    async def extend_lease(self, job: Job, lease_seconds: float) -> bool:
        """False if the lease was lost (the job was rescued and belongs to someone else)."""
        rows = await self._fenced(query("extend_lease"), job, lease_seconds=lease_seconds)
        return bool(rows)

    async def reply_target_exists(self, session_id: str, reply_to: str) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                query("reply_target"), {"session_id": session_id, "reply_to": reply_to}
            )
            return await cur.fetchone() is not None

    async def stats(self) -> dict[str, tuple[int, float]]:
        """{status: (jobs, age in seconds of the oldest)}."""
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(query("queue_stats"))).fetchall()
        return {r["status"]: (int(r["jobs"]), float(r["oldest_seconds"])) for r in rows}

    async def retry_dead(self, job_id: str | None) -> int:
        """Replay one dead letter (or all, with None); returns how many."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(query("retry_dead_job"), {"job_id": job_id})
            ).fetchall()
            if rows:
                await conn.execute(query("wake_dispatchers"))
        return len(rows)

    async def purge_dead(self, older_than_seconds: float) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                query("purge_dead_jobs"), {"older_than_seconds": older_than_seconds}
            )
            return len(await cur.fetchall())
