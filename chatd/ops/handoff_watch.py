"""The handoff watch: every few moments, each chatd judges the handoffs nobody has judged yet.
When nobody can answer (outside business hours, or no agent online) the shopper is told, with
the expected reply time, and the staff are alerted: the alerts webhook and, if configured, an
email. A conversation waiting longer than inbox.waiting_alert_seconds is alerted once too.

Each handoff is claimed by one conditional UPDATE, so of several processes exactly one tells
the shopper and alerts (no leader needed); the notice is stored in that same statement. The
alerts go out after the commit, each under a deadline: a process that dies in between loses
that alert (logged first, as the alerter does), never the notice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import structlog
import trio

from chatd.core.availability import Availability, alert_text, judge, nobody_metadata, nobody_notice
from chatd.db.handoffs import HandoffStore, PendingHandoff, PresenceStore
from chatd.errors import ChatdError
from chatd.ops.alerter import post_alert
from chatd.ops.mailer import send_alert_mail
from chatd.settings import Settings

log = structlog.get_logger(__name__)

SWEEP_EVERY_ROUNDS = 600  # long-expired presence rows of dead processes, now and then


@dataclass
class WatchTally:
    notices: int = 0  # shoppers told nobody is there
    alerts_posted: int = 0
    alerts_failed: int = 0
    mails_sent: int = 0
    mails_failed: int = 0


@dataclass(frozen=True)
class WatchStatistics:
    notices: int
    alerts_posted: int
    alerts_failed: int
    mails_sent: int
    mails_failed: int


@dataclass
class HandoffWatch:
    handoffs: HandoffStore
    presence: PresenceStore
    settings: Callable[[], Settings]  # read each round: a reload (SIGHUP) applies at once
    instance: str = "chatd"  # how alerts name this chatd (its public URL), set by run()
    _tally: WatchTally = field(default_factory=WatchTally)

    def statistics(self) -> WatchStatistics:
        t = self._tally
        return WatchStatistics(
            t.notices, t.alerts_posted, t.alerts_failed, t.mails_sent, t.mails_failed
        )

    async def run(
        self, instance: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Rounds until cancelled; a round that fails on the database is logged and retried."""
        self.instance = instance
        async with (
            httpx.AsyncClient(follow_redirects=False) as client,
            trio.open_nursery() as alerts,
        ):
            task_status.started()
            rounds = 0
            while True:
                try:
                    await self.check_once(alerts, client)
                    if rounds % SWEEP_EVERY_ROUNDS == 0:
                        await self.presence.sweep()
                except ChatdError as exc:
                    log.warning("handoff_check_failed", error=str(exc))
                rounds += 1
                await trio.sleep(self.settings().inbox.handoff_check_interval_seconds)

    async def check_once(self, alerts: trio.Nursery, client: httpx.AsyncClient) -> int:
        """Judge the unjudged handoffs; alerts start in `alerts`. How many shoppers were told."""
        settings = self.settings()
        told = 0
        for handoff in await self.handoffs.unchecked():
            availability = judge(settings.inbox.hours, handoff.agents_online, handoff.now)
            if await self._judged(handoff, availability, settings):
                told += 1
                text = alert_text(availability, handoff.session_id, None)
                alerts.start_soon(
                    self._alert, client, "handoff_nobody_there", handoff.session_id, text
                )
        if settings.inbox.waiting_alert_seconds > 0:
            for wait in await self.handoffs.waited_long(settings.inbox.waiting_alert_seconds):
                text = alert_text(Availability(True, 1, None), wait.session_id, wait.waited_seconds)
                alerts.start_soon(
                    self._alert, client, "handoff_waiting_long", wait.session_id, text
                )
        return told

    async def _judged(
        self, handoff: PendingHandoff, availability: Availability, settings: Settings
    ) -> bool:
        """Record the judgement; True when this process told the shopper nobody is there."""
        expected = settings.inbox.expected_reply
        claimed, notified = await self.handoffs.checked(
            handoff.id,
            nobody=availability.nobody,
            content=nobody_notice(availability, expected, handoff.now),
            metadata=nobody_metadata(availability, expected),
        )
        if claimed:
            log.info(
                "handoff_checked",
                session_id=handoff.session_id,
                requested_by=handoff.requested_by,
                open=availability.open,
                agents_online=availability.agents_online,
                nobody_notified=notified,
            )
        if notified:
            self._tally.notices += 1
        return notified

    async def _alert(
        self, client: httpx.AsyncClient, event: str, session_id: str, text: str
    ) -> None:
        """The alerts webhook and the email, each bounded; failures are logged and counted."""
        settings = self.settings()
        log.warning("handoff_alert", alert=event, session_id=session_id, text=text)
        alert = {"id": event, "sessionId": session_id, "instance": self.instance}
        payload = {"text": text, "alert": alert}
        if settings.alerts.webhook_url:
            timeout = settings.alerts.timeout_seconds
            error: str | None = f"no answer within {timeout:g}s"
            with trio.move_on_after(timeout):
                error = await post_alert(client, settings.alerts.webhook_url, payload)
            if error is None:
                self._tally.alerts_posted += 1
            else:  # the URL holds a secret: not logged
                log.warning("handoff_alert_post_failed", alert=event, error=error)
                self._tally.alerts_failed += 1
        mail = settings.alert_email
        if mail.host:
            body = f"{text}\n\n{settings.public_url}/inbox\n"
            if await send_alert_mail(mail, f"[chatd] {text}", body):
                self._tally.mails_sent += 1
            else:
                self._tally.mails_failed += 1
