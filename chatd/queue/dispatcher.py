"""Dispatchers: N workers delivering webhook jobs to n8n, fed by one claimer.

The claimer is woken by NOTIFY on enqueue (LISTEN is only a hint) with a slow poll as the safety
net. No transaction is open across the HTTP call: claim, call, then one fenced update. On stop,
claiming ends at once; calls in flight get the grace period, then their jobs are released
untouched.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import trio

from chatd.actors.client import SessionClient
from chatd.core.delivery import Verdict, decide, parse_retry_after
from chatd.core.messages import BotMessage, JobStatus, MessageStatus
from chatd.core.n8n_request import N8nMode, n8n_request
from chatd.core.replies import BotReply, InvalidReply, parse_reply_body, reply_key
from chatd.db.owner import Owner
from chatd.db.queue import Job, QueueStore, Settle
from chatd.errors import ChatdError
from chatd.queue.sender import Attempt, WebhookSender

log = structlog.get_logger(__name__)

# Pauses before each try to record an outcome while the database is away (seconds).
SETTLE_RETRY_PAUSES = (0.0, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class DispatchConfig:
    target_url: str  # where n8n listens (or the demo bot); the job's own webhook_url is a record
    concurrency: int
    lease_seconds: float
    poll_interval: float
    retry_base_delay: float
    retry_max_delay: float
    callback_url: str
    mode: N8nMode  # "webhook" (the guide's payload) or "chat_trigger" (n8n's chat widget format)
    secrets: tuple[str, ...]  # the first signs and goes in X-Webhook-Secret; all sign (rotation)
    fallback_reply: str
    max_reply_length: int
    grace_seconds: float


@dataclass(frozen=True)
class DispatchStatistics:
    delivered: int
    retried: int
    dead: int
    lost_leases: int  # outcomes void: the job's lease had been rescued meanwhile
    settle_failures: int  # outcomes that could not be recorded at once (database away)
    rescued: int  # claims taken back because their lease ran out (a frozen or dead process)
    owner_rescues: int  # claims taken back at once because their owner process had died
    invalid_replies: int
    in_flight: int
    success_rate: float | None  # share of the last 100 attempts n8n accepted; None before any
    last_error: str | None


class Dispatcher:
    """`concurrency` workers, each with its own sender, fed by one claimer.

    The claimer claims for every idle worker in one statement (one round trip, one scan of the
    pending index, however many are idle) and hands each job to a waiting worker. It claims
    again at once while batches come back full, and otherwise waits for a hint, a worker to
    become idle, or the poll.
    """

    def __init__(
        self,
        store: QueueStore,
        senders: Sequence[WebhookSender],  # one per worker (config.concurrency)
        actors: SessionClient,
        config: DispatchConfig,
        owner: Owner | None = None,  # this process's owner lock, recorded on every claim
    ) -> None:
        if len(senders) != config.concurrency:
            raise ValueError(
                f"{config.concurrency} workers need as many senders, got {len(senders)}"
            )
        self._store = store
        self._senders = senders
        self._actors = actors
        self._config = config
        self._owner = owner
        # Claimed jobs go straight to workers waiting in receive(): never more are claimed.
        self._jobs_send, self._jobs_receive = trio.open_memory_channel[Job](config.concurrency)
        self._due = True  # a job may be due: the claimer looks as soon as a worker is idle
        self._bell = trio.Event()  # rung on a hint and when a worker becomes idle
        self._worker = f"{socket.gethostname()}:{os.getpid()}"
        self._delivered = self._retried = self._dead = self._lost_leases = 0
        self._settle_failures = self._rescued = self._invalid_replies = self._in_flight = 0
        self._owner_rescues = 0
        self._recent: deque[bool] = deque(maxlen=100)  # the last attempts; True: delivered
        self._last_error: str | None = None

    def statistics(self) -> DispatchStatistics:
        recent = self._recent
        return DispatchStatistics(
            delivered=self._delivered,
            retried=self._retried,
            dead=self._dead,
            lost_leases=self._lost_leases,
            settle_failures=self._settle_failures,
            rescued=self._rescued,
            owner_rescues=self._owner_rescues,
            invalid_replies=self._invalid_replies,
            in_flight=self._in_flight,
            success_rate=sum(recent) / len(recent) if recent else None,
            last_error=self._last_error,
        )

    def wake(self) -> None:
        """A hint that a job may be due (a NOTIFY, a reconnect, a rescue, a stop)."""
        self._due = True
        self._bell.set()

    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[None]) -> None:
        """Deliver until `stop`; then let calls in flight finish within the grace period."""
        async with trio.open_nursery() as nursery:
            for n in range(self._config.concurrency):
                nursery.start_soon(self._work, n)
            nursery.start_soon(self._claim, stop)
            nursery.start_soon(self._rescue, stop)
            task_status.started()
            await stop.wait()
            self.wake()
            nursery.cancel_scope.deadline = trio.current_time() + self._config.grace_seconds

    async def _claim(self, stop: trio.Event) -> None:
        async with self._jobs_send:  # closed on stop: workers finish what they hold, then end
            while not stop.is_set():
                idle = self._jobs_receive.statistics().tasks_waiting_receive
                if idle and self._due:
                    self._due = False
                    try:
                        jobs = await self._store.claim(
                            self._worker,
                            self._config.lease_seconds,
                            limit=idle,
                            owner_token=self._owner.current() if self._owner else None,
                        )
                    except ChatdError as exc:
                        log.warning("dispatch_claim_failed", error=str(exc))
                        jobs = []
                    for job in jobs:
                        self._jobs_send.send_nowait(job)  # room: at most one per idle worker
                    if len(jobs) == idle:
                        self._due = True  # a full batch: more may be waiting
                    continue
                self._bell = trio.Event()
                with trio.move_on_after(self._config.poll_interval) as poll:
                    await self._bell.wait()
                if poll.cancelled_caught:
                    self._due = True  # the safety net: LISTEN is only a hint

    async def _work(self, n: int) -> None:
        sender = self._senders[n]
        while True:
            self._bell.set()  # idle: the claimer may have a job for this worker
            try:
                job = await self._jobs_receive.receive()
            except trio.EndOfChannel:
                return
            await self._deliver(job, sender)

    async def _rescue(self, stop: trio.Event) -> None:
        """Every half lease (at most every poll interval), take back abandoned claims: those
        whose lease ran out, and those whose owner process died (its owner lock is gone)."""
        period = min(self._config.lease_seconds / 2, self._config.poll_interval)
        while not stop.is_set():
            try:
                rescued = await self._store.rescue_expired(
                    self._owner.current() if self._owner else None
                )
            except ChatdError as exc:
                log.warning("dispatch_rescue_failed", error=str(exc))
                rescued = []
            for job in rescued:
                log.warning(
                    "dispatch_owner_rescued" if job.owner_gone else "dispatch_lease_rescued",
                    delivery_id=job.id,
                    session_id=job.session_id,
                    message_id=job.message_id,
                )
            owner_gone = sum(job.owner_gone for job in rescued)
            self._owner_rescues += owner_gone
            self._rescued += len(rescued) - owner_gone
            if rescued:
                self.wake()
            with trio.move_on_after(period):
                await stop.wait()

    async def _deliver(self, job: Job, sender: WebhookSender) -> None:
        bound = log.bind(
            session_id=job.session_id,
            message_id=job.message_id,
            delivery_id=job.id,
            attempt=job.attempts,
        )
        self._in_flight += 1
        try:
            attempt = await self._call(job, sender)
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                try:
                    released = await self._store.release(job)
                except ChatdError as exc:  # the lease expires and the job is rescued instead
                    bound.warning("dispatch_release_failed", error=str(exc))
                else:
                    bound.info("dispatch_released", released=released)
            raise
        finally:
            self._in_flight -= 1
        await self._settle_or_leave(job, attempt, bound)

    async def _settle_or_leave(self, job: Job, attempt: Attempt, bound: Any) -> None:
        """Record the outcome, retrying briefly if the database is away; failing that, leave the
        job to be rescued when its lease ends (n8n then sees it again, with the same webhook-id).
        """
        for pause in SETTLE_RETRY_PAUSES:
            if pause:
                await trio.sleep(pause)  # a stop interrupts the pauses, never a settle in progress
            try:
                with trio.CancelScope(shield=True):  # the outcome is known: record it whole
                    await self._settle(job, attempt, bound)
                return
            except ChatdError as exc:
                self._settle_failures += 1
                bound.warning("dispatch_settle_failed", error=str(exc))
        bound.error("dispatch_settle_abandoned", rescue_after_seconds=self._config.lease_seconds)

    async def _call(self, job: Job, sender: WebhookSender) -> Attempt:
        config = self._config
        request = n8n_request(
            job.payload,
            session_id=job.session_id,
            delivery_id=job.id,
            attempt=job.attempts,
            callback_url=config.callback_url,
            mode=config.mode,
            secrets=config.secrets,
            now=int(time.time()),
        )
        return await sender.post(config.target_url, request.body, request.headers)

    async def _settle(self, job: Job, attempt: Attempt, bound: Any) -> None:
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
        self._recent.append(decision.verdict is Verdict.DELIVERED)
        match decision.verdict:
            case Verdict.DELIVERED:
                await self._settle_delivered(job, attempt, bound)
            case Verdict.RETRY:
                self._last_error = decision.reason
                kept = await self._store.retry(
                    job, delay=decision.delay, error=decision.reason, last_status=attempt.status
                )
                if self._lease_held(kept):
                    self._retried += 1
                bound.info(
                    "dispatch_retry",
                    reason=decision.reason,
                    delay_seconds=round(decision.delay, 3),
                    lease_kept=kept,
                )
            case Verdict.DEAD:
                self._last_error = decision.reason
                # Dead letter: the job, the user message ('failed') and the fallback, at once.
                fallback = BotReply(self._config.fallback_reply, "text", {"fallback": True})
                settle = Settle(job, JobStatus.DEAD, attempt.status, decision.reason)
                kept = await self._store_reply(
                    job, fallback, MessageStatus.FAILED, f"fallback:{job.message_id}", settle
                )
                if self._lease_held(kept):
                    self._dead += 1
                bound.warning("dispatch_dead_letter", reason=decision.reason, lease_kept=kept)

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
            self._invalid_replies += 1
            note = f"n8n accepted the message but its reply was unusable: {exc.reason}"
            bound.warning("dispatch_invalid_reply", reason=exc.reason, status=attempt.status)
        if reply is None:
            kept = await self._store.complete(job, last_status=attempt.status, note=note)
        else:
            settle = Settle(job, JobStatus.COMPLETED, attempt.status, None)
            kept = await self._store_reply(
                job, reply, MessageStatus.DELIVERED, reply_key(job.message_id, reply), settle
            )
        if self._lease_held(kept):
            self._delivered += 1
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

    def _lease_held(self, kept: bool) -> bool:
        """`kept`, counting an outcome a rescue made void (a rescuer owns the job now)."""
        if not kept:
            self._lost_leases += 1
        return kept
