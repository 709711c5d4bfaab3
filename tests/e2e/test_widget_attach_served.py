"""Attachments end to end through a real `chatd serve` (its own process, on the test's database)
and a real Chromium: a shopper attaches a phone photo (a JPEG with its EXIF GPS position) and a
PDF with the paperclip and sends them; the thumbnail and the file card show; n8n (tests/sink.py)
gets the message with signed URLs, and the photo behind its URL is re-encoded, without EXIF;
after a reload both are still there; an .exe renamed .png is refused in words in the widget.
Screenshots at 1280 and 375 px go to build/screenshots/.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from PIL import Image
from playwright.sync_api import expect

from tests.benchmarks.server import chatd_process
from tests.browser import BrowserThread
from tests.e2e.test_widget import MOBILE, SCREENSHOTS, SHOP, open_shop, open_widget
from tests.e2e.test_widget_attach import INVOICE, LOADED, intercept_file_choosers, payload, tray
from tests.files import jpeg_with_location
from tests.sink import Received, Reply, Sink

pytestmark = pytest.mark.timeout(180)

PHOTO = jpeg_with_location(640, 480)  # orientation 6: shown 480 x 640
GPS_IFD = 0x8825
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 500  # a Windows program's first bytes


@pytest.fixture
async def served(nursery: trio.Nursery, database_url: str) -> AsyncIterator[tuple[str, Sink]]:
    sink = await Sink.start(nursery)
    sink.behave(Reply("Thanks, we have your photo and your invoice."))
    async with chatd_process(
        database_url,
        CHATD_N8N__WEBHOOK_URL=sink.webhook_url,
        CHATD_WEBSOCKET__ALLOWED_ORIGINS=SHOP,
        CHATD_QUEUE__POLL_INTERVAL_SECONDS="0.2",
    ) as (url, _process):
        yield url, sink


def files_of(request: Received) -> list[dict[str, Any]]:
    return list(request.json["message"].get("attachments") or [])


async def test_a_photo_and_a_pdf_through_chatd_serve(
    browser: BrowserThread, served: tuple[str, Sink]
) -> None:
    url, sink = served
    ctx, page = await open_shop(browser, url)
    await browser.run(intercept_file_choosers, page)
    assert PHOTO.count(b"Exif") == 1  # what a phone sends: the position is in the file

    def attach_and_send() -> None:
        open_widget(page)
        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name="Attach files").click()
        chooser.value.set_files(
            [
                payload("IMG_2041.jpg", "image/jpeg", PHOTO),
                payload("invoice.pdf", "application/pdf", INVOICE),
            ]
        )
        for i in range(2):
            expect(tray(page).nth(i)).to_have_attribute("data-state", "done")
        page.get_by_test_id("message-input").fill("The parcel arrived damaged, see the photo")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("message-bot")).to_contain_text("we have your photo")

    await browser.run(attach_and_send)
    [request] = await sink.wait_for(1)
    files = files_of(request)
    assert [(f["name"], f["type"], f["kind"]) for f in files] == [
        ("IMG_2041.jpg", "image/jpeg", "image"),
        ("invoice.pdf", "application/pdf", "file"),
    ]
    assert all(f["url"].startswith(f"{url}/api/chat/files/") for f in files)
    assert all("exp=" in f["url"] and "sig=" in f["url"] for f in files)  # signed, expiring
    async with httpx.AsyncClient(timeout=10) as n8n:  # n8n fetches what it was given
        photo, pdf = [await n8n.get(f["url"]) for f in files]
        tampered = await n8n.get(files[1]["url"].replace("sig=", "sig=x"))
    assert (photo.status_code, pdf.status_code, tampered.status_code) == (200, 200, 403)
    assert pdf.content == INVOICE
    assert [hashlib.sha256(r.content).hexdigest() for r in (photo, pdf)] == [
        f["sha256"] for f in files
    ]
    assert [len(r.content) for r in (photo, pdf)] == [f["size"] for f in files]
    image = Image.open(io.BytesIO(photo.content))
    assert image.format == "JPEG"
    assert photo.content != PHOTO  # re-encoded ...
    assert b"Exif" not in photo.content  # ... without EXIF: no position, no camera
    assert dict(image.getexif()) == {}
    assert image.getexif().get_ifd(GPS_IFD) == {}
    assert image.size == (480, 640)  # turned as the camera meant, with no tag left to say so

    def shown(name: str) -> dict[str, Any]:
        user = page.get_by_test_id("message-user")
        thumb = user.get_by_test_id("attachment-image").locator("img")
        expect(thumb).to_have_count(1)
        expect(thumb).to_have_attribute("alt", "IMG_2041.jpg")
        thumb.scroll_into_view_if_needed()
        thumb.evaluate("img => img.decode()")
        card = user.get_by_test_id("attachment-file")
        expect(card).to_contain_text("invoice.pdf")
        page.screenshot(path=str(SCREENSHOTS / name))
        return {
            "loaded": thumb.evaluate(LOADED),
            "thumb": thumb.get_attribute("src"),
            "card": card.inner_text(),
            "href": card.get_attribute("href"),
        }

    first = await browser.run(shown, "attachments-served-1280.png")
    assert first["loaded"] is True
    assert first["thumb"].startswith(f"{url}/api/chat/files/")
    assert "v=thumb" in first["thumb"]
    assert "Download" in first["card"]
    assert first["href"].split("?")[0] == files[1]["url"].split("?")[0]
    assert page.errors == []  # type: ignore[attr-defined]  # the strict CSP refused nothing

    def reload_narrow_and_refuse() -> dict[str, Any]:
        page.set_viewport_size(MOBILE)
        page.reload()
        open_widget(page)
        again = shown("attachments-served-375-history.png")
        page.get_by_test_id("file-input").set_input_files(
            payload("holiday.png", "image/png", EXE)  # a program, named as a picture
        )
        item = tray(page).first
        expect(item).to_have_attribute("data-state", "error")
        page.get_by_test_id("send-button").click()  # nothing to send: nothing goes
        page.screenshot(path=str(SCREENSHOTS / "attachments-served-375-refused.png"))
        return {**again, "refused": item.locator(".state").inner_text()}

    after = await browser.run(reload_narrow_and_refuse)
    assert after["loaded"] is True  # the history's thumbnail, under a newly signed URL
    assert after["card"] == first["card"]
    assert after["refused"].startswith(
        "holiday.png was not sent: its content is recognised as Windows executable"
    )
    assert "not accepted here" in after["refused"]
    assert "JPEG" in after["refused"]  # and what is
    await trio.sleep(0.5)
    assert len(sink.requests) == 1  # the refused file sent nothing to n8n
    await browser.run(ctx.close)
