"""Dispatchers: N workers delivering webhook jobs to n8n, fed by one claimer.

The claimer is woken by NOTIFY on enqueue (LISTEN is only a hint) with a slow poll as the safety
net. No transaction is open across the HTTP call: claim, call, then one fenced update. A call
that outlasts a third of the lease (a streamed reply) renews it, and stops if it was lost. On
stop, claiming ends at once; calls in flight get the grace period, then their jobs are released
untouched (and what they streamed is withdrawn).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
import trio

from chatd.actors.client import SessionClient
from chatd.core.n8n_request import N8nMode, n8n_request
from chatd.core.n8n_stream import MAX_LINE_BYTES
from chatd.db.owner import Owner
from chatd.db.queue import Job, QueueStore
from chatd.errors import ChatdError
from chatd.files.attachments import Attachments
from chatd.queue.outcomes import OutcomeConfig, Outcomes
from chatd.queue.sender import Attempt, WebhookSender
from chatd.queue.stream_reader import StreamReader
from chatd.realtime.relay import StreamRelay

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
    auth_headers: dict[str, str] = field(default_factory=dict)  # Basic or Header Auth for n8n


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
    streamed: int  # replies that came as a stream, stored whole
    stream_failures: int  # streams that failed (withdrawn; retried or dead like any failure)
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
        relay: StreamRelay,  # where a streamed reply's pieces go
        config: DispatchConfig,
        owner: Owner | None = None,  # this process's owner lock, recorded on every claim
        files: Attachments | None = None,  # signs file URLs; the Chat Trigger gets the bytes
    ) -> None:
        if len(senders) != config.concurrency:
            raise ValueError(
                f"{config.concurrency} workers need as many senders, got {len(senders)}"
            )
        self._store = store
        self._senders = senders
        self._relay = relay
        self._config = config
        self._outcomes = Outcomes(
            store,
            actors,
            relay,
            OutcomeConfig(
                config.retry_base_delay,
                config.retry_max_delay,
                config.fallback_reply,
                config.max_reply_length,
                config.mode,
            ),
        )
        self._owner = owner
        self._files = files
        # Claimed jobs go straight to workers waiting in receive(): never more are claimed.
        self._jobs_send, self._jobs_receive = trio.open_memory_channel[Job](config.concurrency)
        self._due = True  # a job may be due: the claimer looks as soon as a worker is idle
        self._bell = trio.Event()  # rung on a hint and when a worker becomes idle
        self._worker = f"{socket.gethostname()}:{os.getpid()}"
        self._settle_failures = self._rescued = self._owner_rescues = self._in_flight = 0
        self._calls: dict[trio.CancelScope, tuple[Job, StreamReader]] = {}  # calls in flight

    def statistics(self) -> DispatchStatistics:
        outcomes = self._outcomes
        recent = outcomes.recent
        return DispatchStatistics(
            delivered=outcomes.delivered,
            retried=outcomes.retried,
            dead=outcomes.dead,
            lost_leases=outcomes.lost_leases,
            settle_failures=self._settle_failures,
            rescued=self._rescued,
            owner_rescues=self._owner_rescues,
            invalid_replies=outcomes.invalid_replies,
            streamed=outcomes.streamed,
            stream_failures=outcomes.stream_failures,
            in_flight=self._in_flight,
            success_rate=sum(recent) / len(recent) if recent else None,
            last_error=outcomes.last_error,
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
            nursery.start_soon(self._keep_leases, stop)
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
        config = self._config
        reader = StreamReader(
            job,
            self._relay,
            max_reply_length=config.max_reply_length,
            max_line_bytes=max(MAX_LINE_BYTES, 12 * config.max_reply_length + 4096),
        )
        self._in_flight += 1
        try:
            attempt = await self._call(job, sender, reader)
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                try:
                    released = await self._store.release(job)
                except ChatdError as exc:  # the lease expires and the job is rescued instead
                    bound.warning("dispatch_release_failed", error=str(exc))
                else:
                    bound.info("dispatch_released", released=released)
                await self._outcomes.withdraw(reader, "stopping", wait=1.0)
            raise
        finally:
            self._in_flight -= 1
        if attempt is None:  # our lease was rescued while n8n streamed: the job is not ours
            self._outcomes.lease_held(False)
            bound.warning("dispatch_lease_lost_while_streaming", pieces=reader.pieces)
            await self._outcomes.withdraw(reader, "failed")
            return
        await self._settle_or_leave(job, attempt, reader, bound)

    async def _settle_or_leave(
        self, job: Job, attempt: Attempt, reader: StreamReader, bound: Any
    ) -> None:
        """Record the outcome, retrying briefly if the database is away; failing that, leave the
        job to be rescued when its lease ends (n8n then sees it again, with the same webhook-id).
        """
        for pause in SETTLE_RETRY_PAUSES:
            if pause:
                await trio.sleep(pause)  # a stop interrupts the pauses, never a settle in progress
            try:
                with trio.CancelScope(shield=True):  # the outcome is known: record it whole
                    await self._outcomes.settle(job, attempt, reader, bound)
                return
            except ChatdError as exc:
                self._settle_failures += 1
                bound.warning("dispatch_settle_failed", error=str(exc))
        bound.error("dispatch_settle_abandoned", rescue_after_seconds=self._config.lease_seconds)
        await self._outcomes.withdraw(reader, "failed")  # a new attempt will show its own

    async def _call(self, job: Job, sender: WebhookSender, reader: StreamReader) -> Attempt | None:
        """The attempt, or None if our lease was lost meanwhile (the call is then stopped)."""
        config = self._config
        try:
            files = (
                await self._files.for_delivery(job.payload, config.mode) if self._files else None
            )
        except ChatdError as exc:  # a failed attempt like any other: retried later
            return Attempt(None, {}, b"", f"attachments unreadable: {exc}", False, 0.0)
        request = n8n_request(
            job.payload,
            session_id=job.session_id,
            delivery_id=job.id,
            attempt=job.attempts,
            callback_url=config.callback_url,
            mode=config.mode,
            secrets=config.secrets,
            now=int(time.time()),
            files=files,
            auth_headers=config.auth_headers,
        )
        with trio.CancelScope() as call:  # cancelled by _keep_leases if our lease was lost
            self._calls[call] = (job, reader)
            try:
                attempt = await sender.post(
                    config.target_url, request.body, request.headers, reader
                )
            finally:
                del self._calls[call]
        return None if call.cancelled_caught else attempt

    async def _keep_leases(self, stop: trio.Event) -> None:
        """Every third of the lease, renew it for each call read as a stream may be (for
        minutes); a call whose lease was lost (the job rescued by another process) is stopped.
        A whole reply is bounded by n8n.timeout_seconds, well within the lease. On stop, calls
        get the grace period, shorter than what is left of any lease."""
        lease = self._config.lease_seconds
        while True:
            with trio.move_on_after(lease / 3):
                await stop.wait()
                return
            for call, (job, reader) in list(self._calls.items()):
                if not reader.open or call.cancel_called:
                    continue
                try:
                    held = await self._store.extend_lease(job, lease)
                except ChatdError as exc:  # a next try comes before the lease runs out
                    log.warning("dispatch_lease_not_renewed", delivery_id=job.id, error=str(exc))
                    continue
                if not held:
                    call.cancel()
