import io

from PIL import Image

from tests.chat import new_session, send
from tests.conftest import RunningChatd
from tests.files import PDF, attachment_counts, jpeg_with_location, upload


async def test_smoke(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        s = await new_session(client)
        r = await upload(client, s, jpeg_with_location(), "photo.jpg")
        print(r.status_code, r.text)
        assert r.status_code == 201
        body = r.json()
        f = await client.get(body["url"])
        print(f.status_code, dict(f.headers))
        im = Image.open(io.BytesIO(f.content))
        print(im.size, dict(im.getexif()))
        t = await client.get(body["thumbnailUrl"])
        print(t.status_code, t.headers["content-type"], len(t.content))
        r2 = await upload(client, s, PDF, "../../x.pdf")
        print(r2.status_code, r2.text)
        r3 = await upload(client, s, b"<html><script>alert(1)</script>", "a.png")
        print(r3.status_code, r3.text)
        m = await send(client, s, "", attachments=[body["attachmentId"], r2.json()["attachmentId"]])
        print(m.status_code, m.text)
        h = await client.get(f"/api/chat/messages/{s.id}", headers=s.auth)
        print(h.json())
        rg = await client.get(r2.json()["url"], headers={"Range": "bytes=0-9"})
        print(rg.status_code, rg.content, rg.headers.get("content-range"))
        print(await attachment_counts(chatd.services.pool))
