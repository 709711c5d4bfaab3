"""What one attempt's outcome does to its job: the reply stored (whole, or streamed), a retry
with backoff, or a dead letter with the fallback reply. Every change is fenced on the job's
lease: an outcome a rescue made void changes nothing, and is counted.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import trio

from chatd.actors.client import SessionClient
from chatd.core.delivery import Decision, Verdict, decide, parse_retry_after
from chatd.core.messages import BotMessage, JobStatus, MessageStatus
from chatd.core.n8n_request import N8nMode
from chatd.core.n8n_stream import StreamFailed
from chatd.core.replies import BotReply, InvalidReply, parse_reply_body, reply_key
from chatd.db.queue import Job, QueueStore, Settle
from chatd.queue.sender import Attempt
from chatd.queue.stream_reader import StreamReader
from chatd.realtime.hub import TAKEN_OVER
from chatd.realtime.relay import StreamRelay


@dataclass(frozen=True)
class OutcomeConfig:
    retry_base_delay: float
    retry_max_delay: float
    fallback_reply: str
    max_reply_length: int
    mode: N8nMode


class Outcomes:
    """The dispatcher's settling half; its counters are the dispatcher's statistics."""

    def __init__(
        self,
        store: QueueStore,
        actors: SessionClient,
        relay: StreamRelay,
        config: OutcomeConfig,
    ) -> None:
        self._store = store
        self._actors = actors
        self._relay = relay
        self._config = config
        self.delivered = self.retried = self.dead = self.lost_leases = 0
        self.invalid_replies = self.streamed = self.stream_failures = 0
        self.recent: deque[bool] = deque(maxlen=100)  # the last attempts; True: delivered
        self.last_error: str | None = None

    async def settle(self, job: Job, attempt: Attempt, reader: StreamReader, bound: Any) -> None:
        if attempt.streamed:
            if not job.is_event:
                await self._settle_stream(job, attempt, reader, bound)
                return
            await self.withdraw(reader, "failed")  # a reply to an event is never shown
        decision = decide(
            status=attempt.status,
            error=attempt.error,
            attempt=job.attempts,
            max_attempts=job.max_attempts,
            retry_after=parse_retry_after(attempt.headers.get("retry-after"), now=time.time()),
            base=self._config.retry_base_delay,
            cap=self._config.retry_max_delay,
            rand=random.random(),
        )
        self.recent.append(decision.verdict is Verdict.DELIVERED)
        if decision.verdict is Verdict.DELIVERED:
            await self._settle_delivered(job, attempt, bound)
        else:
            await self._settle_failed(job, decision, attempt.status, bound)

    async def _settle_failed(
        self, job: Job, decision: Decision, last_status: int | None, bound: Any
    ) -> None:
        self.last_error = decision.reason
        if decision.verdict is Verdict.RETRY:
            kept = await self._store.retry(
                job, delay=decision.delay, error=decision.reason, last_status=last_status
            )
            if self.lease_held(kept):
                self.retried += 1
            bound.info(
                "dispatch_retry",
                reason=decision.reason,
                delay_seconds=round(decision.delay, 3),
                lease_kept=kept,
            )
            return
        if job.is_event:  # a rating out of attempts: no fallback, the shopper asked nothing
            kept = await self._store.dead_event(job, error=decision.reason, last_status=last_status)
            if self.lease_held(kept):
                self.dead += 1
            bound.warning("dispatch_dead_letter", reason=decision.reason, lease_kept=kept)
            return
        # Dead letter: the job, the user message ('failed') and the fallback, at once.
        fallback = BotReply(self._config.fallback_reply, "text", {"fallback": True})
        settle = Settle(job, JobStatus.DEAD, last_status, decision.reason)
        kept = await self._store_reply(
            job, fallback, MessageStatus.FAILED, f"fallback:{job.message_id}", settle
        )
        if self.lease_held(kept):
            self.dead += 1
        bound.warning("dispatch_dead_letter", reason=decision.reason, lease_kept=kept)

    async def _settle_stream(
        self, job: Job, attempt: Attempt, reader: StreamReader, bound: Any
    ) -> None:
        """A streamed reply: stored whole, or withdrawn and failed like any failed attempt
        (retried with backoff, then the fallback). All its runs are stored together."""
        try:
            parts = reader.finish(attempt.stream_error)
        except StreamFailed as exc:
            self.stream_failures += 1
            self.recent.append(False)
            bound.warning("dispatch_stream_failed", reason=exc.reason, pieces=reader.pieces)
            await self.withdraw(reader, "failed")  # before the retry's typing, or the fallback
            decision = decide(
                status=None,  # like a cut connection: the outcome is n8n's to try again
                error=f"stream failed: {exc.reason}",
                attempt=job.attempts,
                max_attempts=job.max_attempts,
                retry_after=None,
                base=self._config.retry_base_delay,
                cap=self._config.retry_max_delay,
                rand=random.random(),
            )
            await self._settle_failed(job, decision, attempt.status, bound)
            return
        self.recent.append(True)
        await self._relay.flush()  # every piece reaches every process before the reply
        settle = Settle(job, JobStatus.COMPLETED, attempt.status, None)
        stored = await self._actors.store_stream(job.message_id, parts, settle)
        if stored.held:  # an agent took over meanwhile: what streamed is shown no more
            await self.withdraw(reader, TAKEN_OVER)
        if self.lease_held(stored.settled):
            reader.stored(parts)
            self.delivered += 1
            self.streamed += 1
        else:
            await self.withdraw(reader, "failed")  # the rescuer's attempt shows its own
        bound.info(
            "dispatch_delivered",
            status=attempt.status,
            replied=True,
            streamed=len(parts),
            pieces=reader.pieces,
            seconds=round(attempt.seconds, 4),
            lease_kept=stored.settled,
        )

    async def _settle_delivered(self, job: Job, attempt: Attempt, bound: Any) -> None:
        reply: BotReply | None = None
        note = None
        try:
            if attempt.truncated:
                raise InvalidReply("response body too large")
            reply = parse_reply_body(
                attempt.body, mode=self._config.mode, max_content=self._config.max_reply_length
            )
        except InvalidReply as exc:
            self.invalid_replies += 1
            note = f"n8n accepted the message but its reply was unusable: {exc.reason}"
            bound.warning("dispatch_invalid_reply", reason=exc.reason, status=attempt.status)
        if reply is not None and job.is_event:
            reply, note = None, "n8n replied to an event: the reply was not shown"
            bound.info("dispatch_event_reply_ignored")
        if reply is None:
            kept = await self._store.complete(job, last_status=attempt.status, note=note)
        else:
            settle = Settle(job, JobStatus.COMPLETED, attempt.status, None)
            kept = await self._store_reply(
                job, reply, MessageStatus.DELIVERED, reply_key(job.message_id, reply), settle
            )
        if self.lease_held(kept):
            self.delivered += 1
        bound.info(
            "dispatch_delivered",
            status=attempt.status,
            replied=reply is not None,
            seconds=round(attempt.seconds, 4),
            lease_kept=kept,
        )

    async def _store_reply(
        self, job: Job, reply: BotReply, reply_status: MessageStatus, key: str, settle: Settle
    ) -> bool:
        """Through the session's actor; True if our lease still held and the job is settled."""
        message = BotMessage(
            job.session_id,
            reply.content,
            reply.message_type,
            reply.metadata,
            job.message_id,
            key,
            handoff=reply.handoff,
        )
        stored = await self._actors.store_reply(message, reply_status=reply_status, settle=settle)
        return stored.settled

    def lease_held(self, kept: bool) -> bool:
        """`kept`, counting an outcome a rescue made void (a rescuer owns the job now)."""
        if not kept:
            self.lost_leases += 1
        return kept

    async def withdraw(self, reader: StreamReader, reason: str, wait: float = 10.0) -> None:
        """What `reader` showed is withdrawn, here and (within `wait`) in every process."""
        if reader.shown:
            reader.withdraw(reason)
            with trio.move_on_after(wait):
                await self._relay.flush()
