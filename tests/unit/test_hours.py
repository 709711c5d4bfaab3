"""Business hours and the nobody-there judgement, with explicit moments: around midnight, across
daylight-saving changes, on holidays and closed days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from chatd.core.availability import judge, nobody_metadata, nobody_notice
from chatd.core.hours import BusinessHours, parse_day, parse_holidays, parse_zone, when
from chatd.errors import ConfigError
from chatd.settings import load_settings

BERLIN = ZoneInfo("Europe/Berlin")


def shop(
    weekdays: str = "09:00-17:00",
    weekend: str = "closed",
    zone: str = "Europe/Berlin",
    holidays: str = "",
) -> BusinessHours:
    week = tuple(parse_day(weekdays) for _ in range(5)) + (parse_day(weekend),) * 2
    return BusinessHours(parse_zone(zone), week, parse_holidays(holidays))


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def test_open_within_a_range_closed_at_its_end() -> None:
    hours = shop()
    assert hours.is_open(berlin(2026, 12, 7, 9, 0))  # a Monday, opening minute
    assert hours.is_open(berlin(2026, 12, 7, 16, 59, 59))
    assert not hours.is_open(berlin(2026, 12, 7, 17, 0))  # the end is excluded
    assert not hours.is_open(berlin(2026, 12, 7, 8, 59, 59))


def test_judged_in_the_shops_zone_not_the_callers() -> None:
    hours = shop()
    # 08:30 UTC on a winter Monday is 09:30 in Berlin: open.
    assert hours.is_open(datetime(2026, 12, 7, 8, 30, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 12, 7, 7, 30, tzinfo=UTC))


def test_several_ranges_a_day_and_the_lunch_gap() -> None:
    hours = shop("09:00-12:00, 13:00-17:00")
    assert hours.is_open(berlin(2026, 12, 8, 11, 59))
    assert not hours.is_open(berlin(2026, 12, 8, 12, 30))
    assert hours.next_open(berlin(2026, 12, 8, 12, 30)) == berlin(2026, 12, 8, 13, 0)


def test_open_until_midnight_and_from_midnight() -> None:
    hours = shop("00:00-24:00")
    assert hours.is_open(berlin(2026, 12, 11, 23, 59, 59))  # Friday's last second
    assert not hours.is_open(berlin(2026, 12, 12, 0, 0))  # Saturday: closed
    assert hours.next_open(berlin(2026, 12, 12, 0, 0)) == berlin(2026, 12, 14, 0, 0)


def test_next_open_after_a_weekend_and_before_opening() -> None:
    hours = shop()
    friday_evening = berlin(2026, 12, 11, 18, 0)
    assert hours.next_open(friday_evening) == berlin(2026, 12, 14, 9, 0)
    monday_early = berlin(2026, 12, 14, 7, 0)
    assert hours.next_open(monday_early) == berlin(2026, 12, 14, 9, 0)
    assert hours.next_open(berlin(2026, 12, 14, 10, 0)) == berlin(2026, 12, 14, 10, 0)  # open


def test_holidays_are_closed_all_day() -> None:
    hours = shop(holidays="2026-12-24, 2026-12-25")
    assert not hours.is_open(berlin(2026, 12, 24, 10, 0))  # a Thursday
    assert hours.next_open(berlin(2026, 12, 24, 10, 0)) == berlin(2026, 12, 28, 9, 0)


def test_wall_clock_hours_across_the_spring_change() -> None:
    hours = shop("09:00-17:00", weekend="09:00-17:00")
    # 29 March 2026: Berlin goes from UTC+1 to UTC+2 at 02:00.
    assert hours.is_open(datetime(2026, 3, 29, 7, 0, tzinfo=UTC))  # 09:00 CEST
    assert not hours.is_open(datetime(2026, 3, 28, 16, 30, tzinfo=UTC))  # 17:30 CET
    opening = hours.next_open(datetime(2026, 3, 29, 0, 0, tzinfo=UTC))
    assert opening is not None
    assert opening.astimezone(UTC) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def test_an_opening_in_the_spring_gap_is_where_the_clock_lands() -> None:
    hours = shop("02:30-05:00", weekend="02:30-05:00")
    opening = hours.next_open(datetime(2026, 3, 29, 0, 0, tzinfo=UTC))  # 01:00 CET
    assert opening is not None
    # 02:30 does not exist that night: the clock shows 03:30 CEST, 01:30 UTC.
    assert opening.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert opening.time() == time(3, 30)


def test_the_autumn_change_keeps_wall_clock_hours() -> None:
    hours = shop("09:00-17:00", weekend="09:00-17:00")
    # 25 October 2026: back to UTC+1 at 03:00 CEST. 09:00 local is 08:00 UTC.
    assert not hours.is_open(datetime(2026, 10, 25, 7, 30, tzinfo=UTC))
    assert hours.is_open(datetime(2026, 10, 25, 8, 0, tzinfo=UTC))
    opening = hours.next_open(datetime(2026, 10, 24, 20, 0, tzinfo=UTC))
    assert opening is not None
    assert opening.astimezone(UTC) == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)


def test_never_open_has_no_next_opening() -> None:
    hours = shop("closed")
    assert hours.next_open(berlin(2026, 12, 7, 10, 0)) is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("9-17", "not a range like 09:00-17:00"),
        ("17:00-09:00", "ends before it starts"),
        ("09:00-12:00, 11:00-13:00", "overlaps"),
        ("13:00-17:00, 09:00-12:00", "overlaps or precedes"),
        ("09:00-25:00", "not a time of day"),
        ("open", "not a range"),
    ],
)
def test_bad_days_say_what_is_wrong(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_day(value)


def test_days_closed_and_spaced() -> None:
    assert parse_day(" Closed ") == ()
    assert parse_day("09:00-12:00,13:00-24:00") == ((time(9), time(12)), (time(13), None))


def test_holidays_parse_and_refuse() -> None:
    assert parse_holidays("2026-12-25, 2027-01-01") == {date(2026, 12, 25), date(2027, 1, 1)}
    with pytest.raises(ValueError, match="2026-02-30"):
        parse_holidays("2026-02-30")


def test_when_reads_like_a_person_would_say_it() -> None:
    now = berlin(2026, 12, 11, 18, 0)  # a Friday
    assert when(berlin(2026, 12, 11, 19, 0), now) == "today at 19:00"
    assert when(berlin(2026, 12, 12, 9, 0), now) == "tomorrow at 09:00"
    assert when(berlin(2026, 12, 14, 9, 0), now) == "Monday 09:00"
    assert when(berlin(2026, 12, 28, 9, 0), now) == "28 December 09:00"


def test_nobody_there_outside_hours_says_when_we_are_back() -> None:
    hours = shop()
    now = berlin(2026, 12, 11, 18, 0)
    availability = judge(hours, agents_online=3, now=now)
    assert availability.nobody
    assert not availability.open
    text = nobody_notice(availability, "a few hours", now)
    assert "we are back Monday 09:00" in text
    meta = nobody_metadata(availability, "a few hours")["conversation"]
    assert meta["event"] == "nobody_available"
    assert meta["backAt"] == "2026-12-14T08:00:00Z"
    assert meta["askEmail"] is True


def test_nobody_online_within_hours_gives_the_expected_reply_time() -> None:
    now = berlin(2026, 12, 7, 10, 0)
    availability = judge(shop(), agents_online=0, now=now)
    assert availability.nobody
    assert "we usually reply within 2 hours" in nobody_notice(availability, "2 hours", now)
    assert not judge(shop(), agents_online=1, now=now).nobody


def test_settings_build_the_hours_and_name_a_bad_key() -> None:
    settings = load_settings(
        None,
        {
            "CHATD_INBOX__TIME_ZONE": "Europe/Berlin",
            "CHATD_INBOX__SAT": "closed",
            "CHATD_INBOX__HOLIDAYS": "2026-12-25",
        },
    )
    assert not settings.inbox.hours.is_open(berlin(2026, 12, 12, 12, 0))  # Saturday
    assert not settings.inbox.hours.is_open(berlin(2026, 12, 25, 12, 0))
    assert settings.inbox.hours.is_open(berlin(2026, 12, 13, 12, 0))  # Sunday: open all day
    with pytest.raises(ConfigError, match=r"CHATD_INBOX__TUE.*not a range"):
        load_settings(None, {"CHATD_INBOX__TUE": "9am-5pm"})
    with pytest.raises(ConfigError, match=r"CHATD_INBOX__TIME_ZONE.*IANA"):
        load_settings(None, {"CHATD_INBOX__TIME_ZONE": "CEST"})


def test_alert_email_needs_a_sender_and_recipients() -> None:
    with pytest.raises(ConfigError, match=r"alert_email\.host needs"):
        load_settings(None, {"CHATD_ALERT_EMAIL__HOST": "smtp.shop.example"})
    with pytest.raises(ConfigError, match=r"password needs alert_email\.username") as caught:
        load_settings(None, {"CHATD_ALERT_EMAIL__PASSWORD": "s3cret-value"})
    assert "s3cret-value" not in str(caught.value)
