"""Attachments in the widget, in a real Chromium: files picked with the paperclip (the real file
chooser), dropped on the window and pasted into the input are uploaded to a real server on
127.0.0.1 (tests/standin.py, speaking issue 20's upload contract) with progress and cancel, and
go with the message by id; thumbnails and file cards render from `new_message`; the lightbox
works by keyboard; refusals are said in words; offline, a file waits in memory and goes once.
Screenshots go to build/screenshots/.
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest
import trio
from playwright.sync_api import Locator, Page, expect

from tests.browser import BrowserThread, axe_source
from tests.e2e.test_widget import MOBILE, SCREENSHOTS, open_widget
from tests.e2e.test_widget_stream import ROOT, SID, TOKEN, message, open_shop
from tests.standin import Connection, Message, StandIn, as_attachment

pytestmark = pytest.mark.timeout(120)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG: one colour, with a darker band so a thumbnail shows something."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    dark = bytes(c // 2 for c in rgb)
    rows = b"".join(
        b"\x00" + (dark if height // 3 < y < height // 2 else bytes(rgb)) * width
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def pdf(padding: int = 0) -> bytes:
    """A small real PDF (one empty page), padded with a comment to any size."""
    body = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    )
    return body + b"%" + b"x" * padding + b"\ntrailer<</Root 1 0 R>>\n%%EOF\n"


PHOTO = png(120, 80, (40, 120, 200))
SCREENSHOT = png(64, 64, (200, 90, 40))
INVOICE = pdf(12_000)


def payload(name: str, mime: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


def page_files(*files: tuple[str, str, bytes]) -> list[dict[str, str]]:
    return [{"name": n, "type": t, "b64": base64.b64encode(d).decode()} for n, t, d in files]


# A DataTransfer holding files, built in the page as the browser builds one for a real drag or
# paste; then the events a drag over the window fires, or a paste into the input.
DRAG = f"""(files) => {{
  const dt = window.__dt = new DataTransfer();
  for (const f of files) {{
    const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], f.name, {{ type: f.type }}));
  }}
  const target = {ROOT}.querySelector('.log');
  for (const type of ['dragenter', 'dragover']) {{
    target.dispatchEvent(new DragEvent(type, {{ dataTransfer: dt, bubbles: true, cancelable: true, composed: true }}));
  }}
}}"""
DROP = f"""() => {{
  const event = new DragEvent('drop', {{ dataTransfer: window.__dt, bubbles: true, cancelable: true, composed: true }});
  {ROOT}.querySelector('.log').dispatchEvent(event);
  return event.defaultPrevented;
}}"""
LEAVE = f"""() => {{
  {ROOT}.querySelector('.log').dispatchEvent(new DragEvent('dragleave', {{ dataTransfer: window.__dt, bubbles: true, composed: true }}));
}}"""
PASTE = f"""(files) => {{
  const dt = new DataTransfer();
  for (const f of files) {{
    const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], f.name, {{ type: f.type }}));
  }}
  const event = new ClipboardEvent('paste', {{ clipboardData: dt, bubbles: true, cancelable: true, composed: true }});
  {ROOT}.querySelector('[data-testid=message-input]').dispatchEvent(event);
  return event.defaultPrevented;
}}"""
# Every value a <progress> in the tray takes, from now on.
WATCH_PROGRESS = f"""() => {{
  window.__progress = [];
  new MutationObserver((records) => {{
    for (const r of records) if (r.target.tagName === 'PROGRESS') window.__progress.push(r.target.value);
  }}).observe({ROOT}.querySelector('[data-testid=attachment-tray]'),
    {{ subtree: true, attributes: true, attributeFilter: ['value'] }});
}}"""
# Everything said to screen readers from now on (the widget keeps only the last few).
WATCH_SAID = f"""() => {{
  window.__said = [];
  new MutationObserver((records) => {{
    for (const r of records) for (const n of r.addedNodes) window.__said.push(n.textContent);
  }}).observe({ROOT}.querySelector('[data-testid=announcer]'), {{ childList: true }});
}}"""
LOADED = "img => img.complete && img.naturalWidth > 0"


def intercept_file_choosers(page: Page) -> None:
    """Playwright turns on file chooser interception without waiting (fire and forget): a
    keyboard press right after `expect_file_chooser` can beat it. On from the start, it cannot."""
    page.on("filechooser", lambda _: None)
    page.evaluate("1")  # a round trip: the subscription went before it


def tray(page: Page) -> Locator:
    return page.get_by_test_id("attachment-tray").get_by_test_id("pending-attachment")


def sends(*conns: Connection) -> list[Message]:
    return [f for c in conns for f in c.frames if f["type"] == "send_message"]


def stored(seq: int, sender: str, content: str, attachments: list[Message], **kw: Any) -> Message:
    event = message(seq, sender, content, kw.get("message_id"))
    event["message"]["attachments"] = attachments
    return event


async def wait_for(predicate: Any, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.05)


async def test_files_by_chooser_drop_and_paste_upload_and_go_with_the_message(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin)
    await browser.run(intercept_file_choosers, page)
    conn = await standin.connection()

    def attach() -> dict[str, Any]:
        open_widget(page)
        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name="Attach files").click()
        assert chooser.value.is_multiple()
        chooser.value.set_files([payload("photo.png", "image/png", PHOTO)])
        page.evaluate(DRAG, page_files(("invoice.pdf", "application/pdf", INVOICE)))
        zone = page.get_by_test_id("drop-zone")
        expect(zone).to_be_visible()
        expect(zone).to_have_text("Drop files to attach them")
        dropped = page.evaluate(DROP)
        expect(zone).to_be_hidden()
        pasted = page.evaluate(PASTE, page_files(("image.png", "image/png", SCREENSHOT)))
        items = tray(page)
        expect(items).to_have_count(3)
        for i in range(3):
            expect(items.nth(i)).to_have_attribute("data-state", "done")
        return {
            "dropped": dropped,
            "pasted": pasted,
            "names": items.locator(".name").all_inner_texts(),
            "states": items.locator(".state").all_inner_texts(),
            "previews": items.locator("img").evaluate_all(
                "imgs => imgs.map(i => [i.src.slice(0, 5), i.complete && i.naturalWidth > 0])"
            ),
            "said": page.get_by_test_id("announcer").inner_text(),
        }

    seen = await browser.run(attach)
    assert seen["dropped"] is True  # the browser will not open the file itself
    assert seen["pasted"] is True  # nor paste its name as text
    assert seen["names"] == ["photo.png", "invoice.pdf", "image.png"]
    assert seen["states"][1].endswith("kB") or seen["states"][1].endswith("KB")
    assert seen["previews"] == [["blob:", True], ["blob:", True]]  # local previews, no upload
    assert "image.png uploaded" in seen["said"]
    uploads = standin.completed_uploads()
    assert [(u.name, u.data) for u in uploads] == [
        ("photo.png", PHOTO),
        ("invoice.pdf", INVOICE),
        ("image.png", SCREENSHOT),
    ]
    assert {(u.authorization, u.fields["sessionId"], u.origin) for u in uploads} == {
        (f"Bearer {TOKEN}", SID, "http://localhost:8111")
    }

    def send() -> None:
        page.get_by_test_id("message-input").fill("My order, see files")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("attachment-tray")).to_be_hidden()
        expect(
            page.get_by_test_id("message-user").get_by_test_id("pending-attachment")
        ).to_have_count(3)

    await browser.run(send)
    await wait_for(lambda: sends(conn))
    [frame] = sends(conn)
    assert frame["content"] == "My order, see files"
    assert frame["attachments"] == ["att-1", "att-2", "att-3"]
    files = [as_attachment(u.answer) for u in uploads]
    await conn.send(
        {
            "type": "message_ack",
            "clientMessageId": frame["clientMessageId"],
            "messageId": "m1",
            "seq": 1,
            "status": "sent",
        },
        stored(1, "user", "My order, see files", files, message_id="m1"),
    )

    def rendered() -> dict[str, Any]:
        user = page.get_by_test_id("message-user")
        images = user.get_by_test_id("attachment-image")
        expect(images).to_have_count(2)
        expect(images.locator("img").first).to_have_attribute("alt", "photo.png")
        images.locator("img").first.evaluate("img => img.decode()")
        card = user.get_by_test_id("attachment-file")
        expect(card).to_contain_text("invoice.pdf")
        return {
            "loaded": images.locator("img").evaluate_all(f"imgs => imgs.map({LOADED})"),
            "srcs": images.locator("img").evaluate_all("imgs => imgs.map(i => i.src)"),
            "card": card.inner_text(),
            "href": card.get_attribute("href"),
            "pending": user.get_by_test_id("pending-attachment").count(),
        }

    shown = await browser.run(rendered)
    assert shown["loaded"] == [True, True]
    assert shown["srcs"] == [files[0]["thumbnailUrl"], files[2]["thumbnailUrl"]]
    assert shown["href"] == files[1]["url"]
    assert "invoice.pdf" in shown["card"]
    assert "Download" in shown["card"]
    assert shown["pending"] == 0  # the stored message took the queued one's place
    assert page.errors == []  # type: ignore[attr-defined]  # the strict CSP refused nothing
    await browser.run(ctx.close)


async def test_progress_shows_while_uploading_and_cancel_drops_the_request(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin)
    await standin.connection()
    big = pdf(9 * 1024 * 1024)  # under the 10 MiB limit; far more than loopback's buffers
    standin.hold_uploads(1 << 20)
    file_input = page.get_by_test_id("file-input")

    def choose(name: str) -> None:
        if page.get_by_test_id("chat-bubble").is_visible():
            open_widget(page)
        page.evaluate(WATCH_PROGRESS)
        file_input.set_input_files(payload(name, "application/pdf", big))

    await browser.run(choose, "big.pdf")
    upload = await standin.held()
    item = tray(page).first
    bar = item.locator("progress")

    def midway() -> float:
        expect(item).to_have_attribute("data-state", "uploading")
        expect(bar).to_be_visible()
        expect(page.get_by_role("progressbar", name="Uploading big.pdf")).to_be_visible()
        page.wait_for_timeout(300)  # a progress event after the stand-in stopped reading
        value: float = bar.evaluate("p => p.value")
        page.get_by_role("button", name="Remove big.pdf").click()  # cancel
        expect(tray(page)).to_have_count(0)
        expect(page.get_by_test_id("message-input")).to_be_focused()
        return value

    value = await browser.run(midway)
    assert 0 < value < 1
    standin.release_uploads()
    with trio.fail_after(10):
        await upload.done.wait()
    assert upload.dropped  # the browser closed the connection: the upload is gone
    assert upload.received < len(big)
    assert standin.completed_uploads() == []

    standin.hold_uploads(1 << 20)
    await browser.run(choose, "big2.pdf")
    await standin.held()
    await browser.run(page.wait_for_timeout, 300)
    standin.release_uploads()

    def finished() -> list[float]:
        expect(item).to_have_attribute("data-state", "done", timeout=20_000)
        expect(bar).to_be_hidden()
        result: list[float] = page.evaluate("window.__progress")
        return result

    values = await browser.run(finished)
    assert any(0 < v < 1 for v in values), values  # seen midway
    assert values == sorted(values)  # only forward
    assert [u.data == big for u in standin.completed_uploads()] == [True]
    await browser.run(ctx.close)


async def test_refused_files_are_said_in_words_and_nothing_is_sent(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    standin.upload_limit = 2000  # chatd's limit is lower than the widget's: chatd says so
    ctx, page = await open_shop(browser, standin)
    conn = await standin.connection()
    file_input = page.get_by_test_id("file-input")
    zip_bytes = b"PK\x03\x04" + b"\x00" * 200

    def refuse() -> dict[str, Any]:
        open_widget(page)
        page.evaluate(WATCH_SAID)
        file_input.set_input_files(
            [
                payload("huge.pdf", "application/pdf", pdf(11 * 1024 * 1024)),  # the widget says
                payload("setup.exe", "application/x-msdownload", b"MZ" + b"\x00" * 100),
                payload("large.png", "image/png", png(200, 200, (1, 2, 3)) + b"\x00" * 3000),
                payload("fake.png", "image/png", zip_bytes),  # chatd looks at the bytes
            ]
        )
        items = tray(page)
        for i in range(4):
            expect(items.nth(i)).to_have_attribute("data-state", "error")
        page.get_by_test_id("send-button").click()  # nothing to send: nothing goes
        page.wait_for_timeout(300)
        return {
            "states": items.locator(".state").all_inner_texts(),
            "said": page.evaluate("window.__said"),
            "bars": items.locator("progress:visible").count(),
        }

    seen = await browser.run(refuse)
    assert seen["states"] == [
        "huge.pdf was not sent: files can be up to 10 MB.",
        "setup.exe was not sent: this type of file is not allowed.",
        "large.png was not sent: the limit is 2000 bytes",
        "fake.png was not sent: found application/zip",
    ]
    assert set(seen["states"]) <= set(seen["said"])  # each announced too
    assert seen["bars"] == 0
    assert sorted(u.status for u in standin.uploads) == [413, 415]  # only chatd's two asked
    assert sends(conn) == []

    def text_only() -> int:
        page.get_by_test_id("message-input").fill("Just text then")
        page.get_by_test_id("send-button").click()
        expect(page.get_by_test_id("message-user")).to_contain_text("Just text then")
        return tray(page).count()

    assert await browser.run(text_only) == 4  # the refused stay, saying why, until removed
    await wait_for(lambda: sends(conn))
    [frame] = sends(conn)
    assert frame["content"] == "Just text then"
    assert "attachments" not in frame  # a chatd without attachments sees what it always saw
    await browser.run(ctx.close)


async def test_thumbnails_cards_and_the_lightbox_by_keyboard(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin)
    conn = await standin.connection()
    label, invoice = standin.attachment("label.png", PHOTO), standin.attachment("a.pdf", INVOICE)
    await browser.run(open_widget, page)
    await conn.send(stored(1, "bot", "Your label and invoice:", [label, invoice]))
    bot = page.get_by_test_id("message-bot")
    thumb = bot.get_by_test_id("attachment-image")
    box = page.get_by_test_id("lightbox")
    axe = await trio.to_thread.run_sync(axe_source)

    def keyboard() -> dict[str, Any]:
        expect(thumb.locator("img")).to_have_attribute("alt", "label.png")
        thumb.locator("img").evaluate("img => img.decode()")
        expect(bot.get_by_test_id("attachment-file")).to_contain_text("a.pdf")
        thumb.focus()
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="label.png")
        expect(dialog).to_be_visible()
        close = page.get_by_role("button", name="Close image")
        expect(close).to_be_focused()
        full = box.locator("img")
        expect(full).to_have_attribute("alt", "label.png")
        expect(full).to_have_attribute("src", label["url"])
        full.evaluate("img => img.decode()")
        audit = page.evaluate(axe + "\n;axe.run(document)")
        download = box.get_by_role("link", name="Download")
        page.keyboard.press("Tab")
        expect(download).to_be_focused()
        page.keyboard.press("Tab")
        expect(close).to_be_focused()  # focus stays in the dialog
        page.keyboard.press("Shift+Tab")
        expect(download).to_be_focused()
        page.keyboard.press("Escape")
        expect(box).to_be_hidden()
        expect(thumb).to_be_focused()  # back where it was
        expect(page.get_by_test_id("chat-window")).to_be_visible()  # Escape closed only the image
        thumb.click()
        expect(box).to_be_visible()
        box.click(position={"x": 5, "y": 300})  # the backdrop
        expect(box).to_be_hidden()
        return {"audit": audit, "size": full.evaluate("i => i.naturalWidth")}

    seen = await browser.run(keyboard)
    assert seen["size"] == 120
    bad = [v["id"] for v in seen["audit"]["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == []
    assert any("thumb=1" in r for r in standin.file_requests)  # the thumbnail inline ...
    assert any(r.endswith("sig=1") for r in standin.file_requests)  # ... the full image enlarged
    await browser.run(ctx.close)


async def test_an_expired_image_url_is_refreshed_from_the_history_once(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin)
    conn = await standin.connection()
    old = standin.attachment("old.png", PHOTO)
    standin.expire_urls()  # as after an hour in an open tab
    fresh = {**old, "url": old["url"].replace("sig=1", "sig=2")}
    fresh["thumbnailUrl"] = fresh["url"] + "&thumb=1"
    standin.answer_poll({"messages": [stored(3, "user", "", [fresh])["message"]]})
    await browser.run(open_widget, page)
    await conn.send(message(2, "bot", "Hello"), stored(3, "user", "", [old]))
    img = page.get_by_test_id("attachment-image").locator("img")

    def refreshed() -> bool:
        expect(img).to_have_attribute("src", fresh["thumbnailUrl"])
        img.evaluate("img => img.decode()")
        return bool(img.evaluate(LOADED))

    assert await browser.run(refreshed)
    assert [(p["afterSeq"], p.get("wait")) for p in standin.polls] == [("2", None)]
    # Expired again, and the history has nothing fresher: the name, not a broken image.
    standin.expire_urls()
    other = {**fresh, "id": "att-9", "name": "gone.png", "thumbnailUrl": fresh["url"] + "&t=9"}
    await conn.send(stored(4, "bot", "", [other]))
    gone = page.get_by_test_id("attachment-image").nth(1)

    def named() -> int:
        expect(gone).to_have_text("gone.png")
        return gone.locator("img").count()

    assert await browser.run(named) == 0
    assert len(standin.polls) == 2  # one more look, not a loop
    await browser.run(ctx.close)


async def test_offline_a_file_waits_in_memory_and_goes_once_when_back(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin)
    first = await standin.connection()
    file_input = page.get_by_test_id("file-input")

    def offline() -> None:
        open_widget(page)
        ctx.set_offline(True)
        expect(page.get_by_test_id("connection-error")).to_be_visible()
        file_input.set_input_files(payload("photo.png", "image/png", PHOTO))
        expect(tray(page).first).to_have_attribute("data-state", "waiting")
        expect(tray(page).first).to_contain_text("Waiting for the connection")
        page.get_by_test_id("message-input").fill("Sent while offline")
        page.keyboard.press("Enter")
        status = page.get_by_test_id("message-status")
        expect(status).to_have_attribute("data-status", "pending")
        page.wait_for_timeout(500)

    await browser.run(offline)
    assert standin.uploads == []
    standin.refuse_upload(503, "storage_full", retry_after=1)  # chatd busy at first
    await browser.run(ctx.set_offline, False)
    second = await standin.connection(timeout=20)
    await wait_for(lambda: sends(first, second), timeout=20)
    [frame] = sends(first, second)
    assert frame["attachments"] == ["att-1"]
    assert [u.status for u in standin.uploads] == [503, 201]  # retried after Retry-After
    files = [as_attachment(standin.uploads[1].answer)]
    await second.send(
        {
            "type": "message_ack",
            "clientMessageId": frame["clientMessageId"],
            "messageId": "m1",
            "seq": 1,
            "status": "sent",
        },
        stored(1, "user", "Sent while offline", files, message_id="m1"),
    )

    def delivered() -> None:
        expect(
            page.get_by_test_id("message-user").get_by_test_id("attachment-image")
        ).to_be_visible()
        page.wait_for_timeout(500)

    await browser.run(delivered)
    assert len(sends(first, second)) == 1  # once
    assert len(standin.completed_uploads()) == 1
    await browser.run(ctx.close)


async def test_a_file_still_in_memory_when_the_page_reloads_asks_to_be_attached_again(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin)
    await browser.run(intercept_file_choosers, page)
    await standin.connection()
    standin.hold_uploads(1 << 20)
    big = pdf(9 * 1024 * 1024)  # more than loopback buffers hold: the reload cuts it
    file_input = page.get_by_test_id("file-input")

    def send_while_uploading() -> None:
        open_widget(page)
        file_input.set_input_files(payload("big.pdf", "application/pdf", big))
        expect(tray(page).first).to_have_attribute("data-state", "uploading")
        page.get_by_test_id("message-input").fill("Here it comes")
        page.keyboard.press("Enter")  # the message waits for its upload
        expect(page.get_by_test_id("message-status")).to_have_attribute("data-status", "pending")

    await browser.run(send_while_uploading)
    held = await standin.held()
    await browser.run(page.reload)
    standin.release_uploads()
    await standin.connection()

    def attach_again() -> str:
        open_widget(page)
        status = page.get_by_test_id("message-status")
        expect(status).to_have_attribute("data-status", "failed")
        expect(status).to_contain_text("Not sent: attach big.pdf again.")
        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name="Attach again").click()
        chooser.value.set_files(payload("big.pdf", "application/pdf", pdf(1000)))
        expect(page.get_by_test_id("message-user")).to_have_count(0)
        expect(tray(page).first).to_have_attribute("data-state", "done")
        return page.get_by_test_id("message-input").input_value()

    assert await browser.run(attach_again) == "Here it comes"
    with trio.fail_after(10):
        await held.done.wait()
    assert held.dropped
    assert len(standin.completed_uploads()) == 1
    await browser.run(ctx.close)


async def test_keyboard_attach_remove_and_turned_off(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin)
    await browser.run(intercept_file_choosers, page)
    await standin.connection()

    def keyboard() -> dict[str, Any]:
        open_widget(page)
        expect(page.get_by_test_id("message-input")).to_be_focused()
        page.keyboard.press("Shift+Tab")
        attach = page.get_by_role("button", name="Attach files")
        expect(attach).to_be_focused()
        with page.expect_file_chooser() as chooser:
            page.keyboard.press("Enter")
        chooser.value.set_files(
            [payload("a.png", "image/png", PHOTO), payload("b.pdf", "application/pdf", INVOICE)]
        )
        expect(tray(page)).to_have_count(2)
        remove = page.get_by_role("button", name="Remove a.png")
        for _ in range(6):
            if remove.evaluate("b => b.getRootNode().activeElement === b"):
                break
            page.keyboard.press("Shift+Tab")
        expect(remove).to_be_focused()
        page.keyboard.press("Enter")
        expect(tray(page)).to_have_count(1)
        expect(page.get_by_test_id("message-input")).to_be_focused()
        page.evaluate(
            "() => document.querySelector('chatd-widget').configure({attachments: false})"
        )
        hidden = attach.is_hidden()
        page.evaluate(DRAG, page_files(("c.pdf", "application/pdf", INVOICE)))
        return {"hidden": hidden, "dropped": page.evaluate(DROP), "count": tray(page).count()}

    seen = await browser.run(keyboard)
    assert seen == {"hidden": True, "dropped": False, "count": 1}
    await browser.run(ctx.close)


@pytest.mark.parametrize(
    "viewport", [{"width": 1280, "height": 800}, MOBILE], ids=["desktop", "mobile"]
)
async def test_screenshots_and_axe_of_the_tray_and_the_files(
    browser: BrowserThread, nursery: trio.Nursery, viewport: dict[str, int]
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin, viewport=viewport)
    conn = await standin.connection()
    where = "mobile" if viewport is MOBILE else "desktop"
    photo, invoice = (
        standin.attachment("trail-boots.png", PHOTO),
        standin.attachment("invoice-1042.pdf", INVOICE),
    )
    await conn.send(
        stored(1, "user", "The sole came off, photo attached", [photo]),
        stored(2, "bot", "Sorry about that! Here is your return label.", [invoice]),
    )
    axe = await trio.to_thread.run_sync(axe_source)
    standin.hold_uploads(256 * 1024)
    file_input = page.get_by_test_id("file-input")

    def tray_state() -> Any:
        open_widget(page)
        page.get_by_test_id("message-user").get_by_test_id("attachment-image").locator(
            "img"
        ).evaluate("img => img.decode()")
        file_input.set_input_files(
            [
                payload("receipt.png", "image/png", SCREENSHOT),
                payload("scan.pdf", "application/pdf", pdf(3 * 1024 * 1024)),
                payload("video.mov", "video/quicktime", b"\x00" * 100),
            ]
        )
        expect(tray(page).nth(0)).to_have_attribute("data-state", "done")
        expect(tray(page).nth(1)).to_have_attribute("data-state", "uploading")
        page.wait_for_timeout(300)
        page.screenshot(path=str(SCREENSHOTS / f"widget-attachments-{where}.png"))
        audit = page.evaluate(axe + "\n;axe.run(document)")
        page.evaluate(DRAG, page_files(("more.pdf", "application/pdf", INVOICE)))
        page.screenshot(path=str(SCREENSHOTS / f"widget-dropzone-{where}.png"))
        page.evaluate(LEAVE)
        expect(page.get_by_test_id("drop-zone")).to_be_hidden()
        page.get_by_test_id("attachment-image").click()
        page.get_by_test_id("lightbox").locator("img").evaluate("img => img.decode()")
        page.screenshot(path=str(SCREENSHOTS / f"widget-lightbox-{where}.png"))
        return audit

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    audit = await browser.run(tray_state)
    standin.release_uploads()
    bad = [
        (v["id"], [n["target"] for n in v["nodes"]])
        for v in audit["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == []
    if viewport is MOBILE:
        sizes = await browser.run(
            lambda: [
                page.get_by_test_id(n).first.bounding_box()
                for n in ("attach-button", "remove-attachment", "send-button")
            ]
        )
        assert all(b["width"] >= 44 and b["height"] >= 44 for b in sizes), sizes
    assert page.errors == []  # type: ignore[attr-defined]
    await browser.run(ctx.close)


async def test_over_sse_the_message_goes_by_post_with_its_attachment_ids(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin, "sse")
    conn = await standin.connection()
    assert conn.kind == "sse"

    def send() -> None:
        open_widget(page)
        page.get_by_test_id("file-input").set_input_files(payload("photo.png", "image/png", PHOTO))
        page.get_by_test_id("send-button").click()  # no text: the file alone
        user = page.get_by_test_id("message-user")
        expect(user.get_by_test_id("attachment-image").locator("img")).to_have_attribute(
            "alt", "photo.png"
        )  # acknowledged: shown from the upload's answer until chatd's event comes
        expect(user.locator(".text")).to_have_count(0)  # no empty bubble

    await browser.run(send)
    [body] = standin.sent
    assert (body["sessionId"], body["content"], body["attachments"]) == (SID, "", ["att-1"])
    assert body["clientMessageId"]
    await browser.run(ctx.close)


async def test_an_upload_cut_by_the_network_is_retried_when_it_is_back(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin)
    first = await standin.connection()
    big = pdf(9 * 1024 * 1024)
    standin.hold_uploads(1 << 20)

    def choose() -> None:
        open_widget(page)
        page.get_by_test_id("file-input").set_input_files(
            payload("big.pdf", "application/pdf", big)
        )

    await browser.run(choose)
    cut = await standin.held()
    standin.refuse_connections()  # chatd goes away mid-upload
    with trio.fail_after(10):
        await cut.done.wait()
    assert cut.dropped
    item = tray(page).first

    def waiting() -> None:
        expect(item).to_have_attribute("data-state", "waiting")
        expect(page.get_by_test_id("connection-error")).to_be_visible()
        page.get_by_test_id("message-input").fill("The scan")
        page.keyboard.press("Enter")  # queued with its file, still to upload

    await browser.run(waiting)
    standin.release_uploads()
    standin.accept_connections()
    second = await standin.connection(timeout=30)  # a WebSocket, or SSE after two failures
    with trio.fail_after(30):
        while not (sends(first, second) or standin.sent):
            await trio.sleep(0.05)
    [body] = sends(first, second) + standin.sent
    assert (body["content"], body["attachments"]) == ("The scan", ["att-1"])
    assert [(u.dropped, u.status) for u in standin.uploads] == [(True, 0), (False, 201)]
    assert standin.uploads[1].data == big  # all of it, the second time
    await browser.run(ctx.close)
