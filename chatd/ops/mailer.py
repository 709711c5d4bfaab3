"""Alert emails over SMTP ([alert_email]): one plain-text message per alert, to every recipient.

smtplib runs in a worker thread (trio.to_thread), the one exception to "no threads for I/O",
because it gets the protocol's corners right (multi-line replies, dot-stuffing, STARTTLS,
AUTH methods) and an alert mail is rare: a hand-written client would be more code to trust for
no gain. The thread is bounded twice: smtplib's socket timeout on every read and write, and
the caller's trio deadline, which abandons the thread (it then ends at its socket timeout).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

import structlog
import trio

from chatd.settings import AlertEmailSettings

log = structlog.get_logger(__name__)


async def send_alert_mail(config: AlertEmailSettings, subject: str, body: str) -> bool:
    """Send one mail; False (logged, never raised) when it could not be sent in time."""
    if not config.host:
        return False
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = ", ".join(config.to)
    message["Subject"] = subject
    message.set_content(body)
    try:
        with trio.fail_after(config.timeout_seconds):
            await trio.to_thread.run_sync(_send, config, message, abandon_on_cancel=True)
    except trio.TooSlowError:
        log.warning("alert_mail_failed", error=f"no answer within {config.timeout_seconds:g}s")
        return False
    except (OSError, smtplib.SMTPException) as exc:  # refused, TLS, auth, a recipient refused
        log.warning("alert_mail_failed", error=f"{type(exc).__name__}: {exc}")
        return False
    log.info("alert_mail_sent", recipients=len(config.to))
    return True


def _send(config: AlertEmailSettings, message: EmailMessage) -> None:
    timeout = config.timeout_seconds
    smtp: smtplib.SMTP
    if config.security == "tls":
        smtp = smtplib.SMTP_SSL(
            config.host, config.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(config.host, config.port, timeout=timeout)
    with smtp:
        if config.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if config.username:
            smtp.login(config.username, config.password)
        smtp.send_message(message)
