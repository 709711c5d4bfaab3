"""Behind a proxy, a client cannot pick its own address with X-Forwarded-For.

The test client plays the shopper and the proxy at once: its requests come from 127.0.0.1 (the
proxy on this machine) with X-Forwarded-For as nginx's `$proxy_add_x_forwarded_for` makes it,
the client's own entries first (spoofed, a new one every time), then the address nginx saw.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from chatd.db.pool import PoolConfig, open_pool
from tests.chat import table_counts
from tests.conftest import RunningChatd, make_settings, start_chatd

SHOPPER = "203.0.113.7"  # the address the proxy saw
NEIGHBOUR = "203.0.113.8"
ADMIN_TOKEN = "the-admin-token-of-this-shop"
CREATE_MAX = 60  # chat.session_create_per_ip_max, the default
AUTH_FAILURES_MAX = 10  # server.operator_auth_failures_max, the default


def via_proxy(client_address: str, spoofed: str) -> dict[str, str]:
    return {"X-Forwarded-For": f"{spoofed}, {client_address}"}


def spoofed(i: int) -> str:
    return f"198.51.{i // 250}.{i % 250 + 1}"


async def create_sessions(chatd: RunningChatd, count: int) -> list[int]:
    statuses = []
    async with chatd.client() as client:
        for i in range(count):
            response = await client.post(
                "/api/chat/session", json={}, headers=via_proxy(SHOPPER, spoofed(i))
            )
            statuses.append(response.status_code)
    return statuses


async def admin_overview(client: httpx.AsyncClient, token: str, address: str, i: int) -> int:
    response = await client.get(
        "/api/admin/overview",
        headers={"Authorization": f"Bearer {token}", **via_proxy(address, spoofed(i))},
    )
    return response.status_code


TRUSTING = [
    pytest.param({"trusted_proxy_hops": 1}, id="one-hop"),
    pytest.param({"trust_forwarded_for": "true"}, id="old-name"),
    pytest.param({"trusted_proxies": "127.0.0.1/32, 10.0.0.0/8"}, id="trusted-networks"),
]


@pytest.fixture
async def proxied_chatd(
    request: pytest.FixtureRequest, database_url: str, nursery: trio.Nursery
) -> AsyncIterator[RunningChatd]:
    settings = make_settings(database_url, server=request.param, admin={"token": ADMIN_TOKEN})
    async with open_pool(PoolConfig(database_url)) as pool:
        chatd = await start_chatd(nursery, settings, pool)
        yield chatd
        chatd.stop.set()


@pytest.mark.parametrize("proxied_chatd", TRUSTING, indirect=True)
async def test_spoofed_entries_do_not_escape_the_session_creation_limit(
    proxied_chatd: RunningChatd,
) -> None:
    statuses = await create_sessions(proxied_chatd, 100)
    assert statuses == [200] * CREATE_MAX + [429] * (100 - CREATE_MAX)
    assert (await table_counts(proxied_chatd.services.pool))["sessions"] == CREATE_MAX
    async with proxied_chatd.client() as client:  # the limit is the shopper's, not the proxy's
        other = await client.post(
            "/api/chat/session", json={}, headers=via_proxy(NEIGHBOUR, "203.0.113.7")
        )
    assert other.status_code == 200


@pytest.mark.parametrize("proxied_chatd", TRUSTING, indirect=True)
async def test_spoofed_entries_do_not_escape_the_admin_token_lockout(
    proxied_chatd: RunningChatd,
) -> None:
    async with proxied_chatd.client() as client:
        statuses = [await admin_overview(client, "wrong", SHOPPER, i) for i in range(30)]
        assert statuses == [401] * AUTH_FAILURES_MAX + [429] * (30 - AUTH_FAILURES_MAX)
        assert await admin_overview(client, ADMIN_TOKEN, SHOPPER, 99) == 429  # locked out
        assert await admin_overview(client, ADMIN_TOKEN, NEIGHBOUR, 99) == 200  # not others


async def test_a_header_from_an_untrusted_peer_is_ignored(
    database_url: str, nursery: trio.Nursery
) -> None:
    """Only 10.0.0.0/8 are proxies; the test client (127.0.0.1) is not one, so whatever it
    writes, even a new rightmost entry every time, its own address is what counts."""
    settings = make_settings(database_url, server={"trusted_proxies": "10.0.0.0/8"})
    async with open_pool(PoolConfig(database_url)) as pool:
        chatd = await start_chatd(nursery, settings, pool)
        statuses = []
        async with chatd.client() as client:
            for i in range(CREATE_MAX + 5):
                response = await client.post(
                    "/api/chat/session", json={}, headers=via_proxy(spoofed(i), spoofed(i + 1))
                )
                statuses.append(response.status_code)
        assert statuses == [200] * CREATE_MAX + [429] * 5
        chatd.stop.set()


async def test_without_trusted_proxies_the_header_is_ignored(
    database_url: str, nursery: trio.Nursery
) -> None:
    settings = make_settings(database_url, chat={"session_create_per_ip_max": 3})
    async with open_pool(PoolConfig(database_url)) as pool:
        chatd = await start_chatd(nursery, settings, pool)
        async with chatd.client() as client:
            statuses = [
                (
                    await client.post(
                        "/api/chat/session", json={}, headers={"X-Forwarded-For": spoofed(i)}
                    )
                ).status_code
                for i in range(5)
            ]
        assert statuses == [200, 200, 200, 429, 429]
        chatd.stop.set()
