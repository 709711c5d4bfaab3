"""Which proxy the environment names for n8n's URL (chatd/queue/sender.py: proxy_for)."""

from __future__ import annotations

import pytest

from chatd.queue.sender import proxy_for

PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_no_proxy_configured_means_direct() -> None:
    assert proxy_for("https://n8n.example.com/webhook/chat") is None


def test_the_proxy_of_the_urls_scheme_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain.internal:3128")
    assert proxy_for("https://n8n.example.com/webhook/chat") == "http://proxy.internal:3128"
    assert proxy_for("http://n8n.example.com/webhook/chat") == "http://plain.internal:3128"


def test_no_proxy_hosts_go_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.internal.shop")
    assert proxy_for("https://n8n.internal.shop/webhook/chat") is None
    assert proxy_for("https://n8n.example.com/webhook/chat") == "http://proxy.internal:3128"


def test_the_demo_bot_has_no_url_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    assert proxy_for("") is None
