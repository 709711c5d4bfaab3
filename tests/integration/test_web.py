"""What browsers load from chatd (/widget.js, the demo page) and CORS on the shopper's API."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from structlog.testing import capture_logs

import chatd as chatd_package
from chatd.settings import Settings
from tests.conftest import RunningChatd, make_settings, start_chatd
from tests.integration.test_delivery import open_pipeline

SHOP = "https://shop.example"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, websocket={"allowed_origins": f"{SHOP}, http://other.test"})


async def test_widget_is_served_gzipped_with_an_etag(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        plain = await client.get("/widget.js", headers={"Accept-Encoding": "identity"})
        zipped = await client.get("/widget.js", headers={"Accept-Encoding": "gzip"})
        again = await client.get("/widget.js", headers={"If-None-Match": plain.headers["ETag"]})
    assert plain.status_code == 200
    assert plain.headers["Content-Type"].startswith("application/javascript")
    assert plain.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert b"customElements.define" in plain.content
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert int(zipped.headers["Content-Length"]) < len(plain.content) / 2
    assert zipped.content == plain.content  # httpx decoded it: the same script
    assert (again.status_code, again.content) == (304, b"")


async def test_the_markdown_renderer_is_served_alone_and_inside_the_widget(
    chatd: RunningChatd,
) -> None:
    web = Path(chatd_package.__file__).parent / "web"
    async with chatd.client() as client:
        markdown = await client.get("/markdown.js", headers={"Accept-Encoding": "gzip"})
        again = await client.get(
            "/markdown.js", headers={"If-None-Match": markdown.headers["ETag"]}
        )
        widget = await client.get("/widget.js")
        admin = await client.get("/admin")
    assert markdown.status_code == 200
    assert markdown.headers["Content-Type"].startswith("application/javascript")
    assert markdown.headers["Content-Encoding"] == "gzip"
    assert markdown.content == (web / "markdown.js").read_bytes()
    assert (again.status_code, again.content) == (304, b"")
    # One script for shops: the renderer, then the widget, in one function scope (no global).
    assert widget.content.startswith(b"/* chatd widget")
    assert widget.content.index(markdown.content) < widget.content.index(
        (web / "widget.js").read_bytes()
    )
    assert widget.content.rstrip().endswith(b"})();")
    assert admin.text.index('src="/markdown.js"') < admin.text.index('src="/admin.js"')


async def test_demo_mode_serves_the_shop_page_with_a_strict_csp(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        page = await client.get("/")
        style = await client.get("/demo.css")
    assert page.status_code == 200
    assert '<script src="/widget.js"' in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert style.headers["Content-Type"].startswith("text/css")


async def test_with_n8n_configured_there_is_no_demo_page(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(nursery, database_url)
    async with pipe.chatd.client() as client:
        page = await client.get("/")
        widget = await client.get("/widget.js")
    assert page.status_code == 404
    assert page.json()["error"]["code"] == "not_found"
    assert widget.status_code == 200
    pipe.chatd.stop.set()


@pytest.mark.parametrize("origin", [SHOP, "http://other.test", "https://SHOP.example:443"])
async def test_allowed_origins_get_cors_headers_and_preflights(
    chatd: RunningChatd, origin: str
) -> None:
    async with chatd.client() as client:
        preflight = await client.options(
            "/api/chat/send",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        created = await client.post("/api/chat/session", json={}, headers={"Origin": origin})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert created.status_code == 200
    assert created.headers["Access-Control-Allow-Origin"] == origin
    assert "Origin" in created.headers["Vary"]


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "https://shop.example.evil.test", "null", "http://shop.example"],
)
async def test_other_origins_get_no_cors_headers(chatd: RunningChatd, origin: str) -> None:
    async with chatd.client() as client:
        created = await client.post("/api/chat/session", json={}, headers={"Origin": origin})
    assert created.status_code == 200  # CORS is the browser's to enforce: no headers, no read
    assert "Access-Control-Allow-Origin" not in created.headers


async def test_a_refused_preflight_is_logged_and_a_plain_request_is_not(
    chatd: RunningChatd,
) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    with capture_logs() as logs:
        async with chatd.client() as client:
            for _ in range(2):
                refused = await client.options("/api/chat/session", headers=preflight)
                assert "Access-Control-Allow-Origin" not in refused.headers
            # Same-origin pages send an Origin on POST too: a plain request is no evidence.
            await client.post("/api/chat/session", json={}, headers={"Origin": "https://x.test"})
            await client.options("/api/chat/session", headers={**preflight, "Origin": SHOP})
    (refusal,) = [e for e in logs if e["event"].endswith("_origin_refused")]
    assert (refusal["event"], refusal["origin"]) == ("cors_origin_refused", "https://evil.example")
    assert refusal["config_key"] == "websocket.allowed_origins"


async def test_n8ns_callback_is_not_a_browser_endpoint(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        response = await client.post("/api/chat/webhook", json={}, headers={"Origin": SHOP})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_default_allow_list_is_chatds_own_origin(
    nursery: trio.Nursery, database_url: str, pool: object
) -> None:
    chatd = await start_chatd(nursery, make_settings(database_url), pool)  # type: ignore[arg-type]
    async with chatd.client() as client:
        own = await client.post("/api/chat/session", json={}, headers={"Origin": chatd.url})
        shop = await client.post("/api/chat/session", json={}, headers={"Origin": SHOP})
    assert own.headers["Access-Control-Allow-Origin"] == chatd.url
    assert "Access-Control-Allow-Origin" not in shop.headers
    chatd.stop.set()
