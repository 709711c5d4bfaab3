"""Refused origins are logged at most once a minute each, and at most so many lines in all."""

from __future__ import annotations

from structlog.testing import capture_logs

from chatd.http.origins import RefusedOrigins


def refuse(log: RefusedOrigins, origin: str | None, now: float) -> None:
    log.refused("websocket_origin_refused", origin, ("http://127.0.0.1:8000",), now)


def test_each_origin_once_a_window() -> None:
    refused = RefusedOrigins(window=60.0)
    with capture_logs() as logs:
        for now in (0.0, 1.0, 59.9):
            refuse(refused, "http://shop.test", now)
        refuse(refused, "http://other.test", 2.0)
        refused.refused("cors_origin_refused", "http://shop.test", (), 3.0)  # another event
        refuse(refused, "http://shop.test", 60.0)  # the window has passed
    assert [(e["event"], e["origin"]) for e in logs] == [
        ("websocket_origin_refused", "http://shop.test"),
        ("websocket_origin_refused", "http://other.test"),
        ("cors_origin_refused", "http://shop.test"),
        ("websocket_origin_refused", "http://shop.test"),
    ]
    assert logs[0]["config_key"] == "websocket.allowed_origins"
    assert logs[0]["allowed_origins"] == ["http://127.0.0.1:8000"]


def test_a_flood_of_made_up_origins_is_capped_in_lines_and_memory() -> None:
    refused = RefusedOrigins(window=60.0, limit=5)
    with capture_logs() as logs:
        for n in range(1000):
            refuse(refused, f"http://{n}.evil.test" + "x" * 1000, n / 100)
        refuse(refused, "http://late.test", 61.0)  # a new window: heard again
    assert len(logs) == 6
    assert logs[-1]["origin"] == "http://late.test"
    assert all(len(e["origin"]) == 200 for e in logs[:5])
    assert len(refused) <= 10  # memory: the origins remembered
