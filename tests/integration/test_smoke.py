from tests.conftest import RunningChatd


async def test_session_send_and_read_back(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        created = (await client.post("/api/chat/session", json={})).json()
        auth = {"Authorization": f"Bearer {created['sessionToken']}"}
        sent = await client.post(
            "/api/chat/send",
            headers=auth,
            json={"sessionId": created["sessionId"], "content": "hi"},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["seq"] == 1
        history = (
            await client.get(f"/api/chat/messages/{created['sessionId']}", headers=auth)
        ).json()
        assert [m["content"] for m in history["messages"]] == ["hi"]
