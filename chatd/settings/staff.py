"""The sections about people: the staff inbox and its business hours, alerts to the staff (webhook
and email), and the shopper's rating (CSAT)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from chatd.core.csat import Ending, parse_ask_on
from chatd.core.hours import DAYS, BusinessHours, parse_day, parse_holidays, parse_zone
from chatd.settings.base import HttpUrl, Section

ALWAYS = "00:00-24:00"


class InboxSettings(Section):
    # A signed-in browser unused this long is signed out (the staff inbox, /inbox).
    session_idle_seconds: float = Field(7200.0, gt=0)
    # Business hours (chatd/core/hours.py): the shop's IANA time zone, each day's opening
    # ranges ("09:00-12:00, 13:00-17:00", "00:00-24:00" or "closed"), holidays (YYYY-MM-DD, ...).
    time_zone: str = "UTC"
    mon: str = ALWAYS
    tue: str = ALWAYS
    wed: str = ALWAYS
    thu: str = ALWAYS
    fri: str = ALWAYS
    sat: str = ALWAYS
    sun: str = ALWAYS
    holidays: str = ""
    expected_reply: str = Field("a few hours", min_length=1, max_length=100)
    presence_ttl_seconds: float = Field(60.0, ge=3)  # an agent's socket unheard of this long: gone
    handoff_check_interval_seconds: float = Field(1.0, gt=0)
    waiting_alert_seconds: float = Field(0.0, ge=0)  # 0: no alert for a long wait
    _hours: BusinessHours | None = PrivateAttr(default=None)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        parse_zone(value)
        return value

    @field_validator("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    @classmethod
    def _day(cls, value: str) -> str:
        parse_day(value)
        return value

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: str) -> str:
        parse_holidays(value)
        return value

    @model_validator(mode="after")
    def _build_hours(self) -> InboxSettings:
        week = tuple(parse_day(getattr(self, day)) for day in DAYS)
        zone = parse_zone(self.time_zone)
        self._hours = BusinessHours(zone, week, parse_holidays(self.holidays))
        return self

    @property
    def hours(self) -> BusinessHours:
        assert self._hours is not None  # built by the validator above
        return self._hours


class AlertSettings(Section):
    webhook_url: HttpUrl = ""  # Slack-compatible incoming webhook; empty: alerts are only logged
    interval_seconds: float = Field(60.0, gt=0)
    window_seconds: float = Field(300.0, gt=0)
    timeout_seconds: float = Field(10.0, gt=0)
    failure_rate: float = Field(0.05, ge=0, le=1)
    failure_min_attempts: int = Field(20, ge=1)
    failure_rate_cooldown_seconds: float = Field(900.0, ge=0)
    queue_delay_seconds: float = Field(30.0, gt=0)
    queue_delay_cooldown_seconds: float = Field(600.0, ge=0)
    response_time_seconds: float = Field(5.0, gt=0)
    response_time_cooldown_seconds: float = Field(300.0, ge=0)


class AlertEmailSettings(Section):
    # Alerts about shoppers waiting for a person, also by email (the alerts webhook gets them too).
    host: str = ""  # SMTP server; empty: no email
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""  # empty: no AUTH
    password: str = ""
    sender: str = Field("", pattern=r"^(|[^\s@]+@[^\s@]+)$")
    recipients: str = ""  # comma-separated addresses
    timeout_seconds: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> AlertEmailSettings:
        if self.host and not (self.sender and self.to):
            raise ValueError("alert_email.host needs alert_email.sender and alert_email.recipients")
        if self.password and not self.username:
            raise ValueError("alert_email.password needs alert_email.username")
        for address in self.to:
            if "@" not in address or any(c.isspace() for c in address):
                raise ValueError(f"alert_email.recipients: {address!r} is not an email address")
        return self

    @property
    def to(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.recipients.split(",") if a.strip())


class CsatSettings(Section):
    enabled: bool = True  # false: no rating is asked for or accepted
    ask_on: str = "shopper,staff,expired"  # the endings after which the widget asks (any of these)
    _ask_on: frozenset[Ending] = PrivateAttr(default_factory=frozenset)

    @field_validator("ask_on")
    @classmethod
    def _endings(cls, value: str) -> str:
        parse_ask_on(value)
        return value

    @model_validator(mode="after")
    def _parse(self) -> CsatSettings:
        self._ask_on = parse_ask_on(self.ask_on)
        return self

    @property
    def endings(self) -> frozenset[Ending]:
        """The endings after which a rating is asked for."""
        return self._ask_on
