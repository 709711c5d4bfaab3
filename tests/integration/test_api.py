"""The REST API's contracts: shapes, identity, authorization, idempotency, limits, expiry."""

from __future__ import annotations

import time
from datetime import datetime

import jwt
import pytest
import trio

from chatd.core.identity import user_hash
from chatd.db.pool import PoolConfig, open_pool
from chatd.settings import Settings
from tests.chat import Session, new_session, send, table_counts
from tests.conftest import RunningChatd, make_settings, start_chatd

SECRET = "shop-identity-secret-of-at-least-32-chars"
UNKNOWN = "0b6e2c1f-9a3d-4e5b-8c7f-1d2e3f4a5b6c"  # well-formed, never made


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_create_session_returns_the_guides_shape_with_a_secret_token(
    chatd: RunningChatd,
) -> None:
    async with chatd.client() as client:
        response = await client.post(
            "/api/chat/session",
            json={"guestEmail": "ann@shop.example", "metadata": {"page": "/cart"}},
        )
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"sessionId", "sessionToken", "status", "expiresAt"}
        assert body["status"] == "active"
        assert len(body["sessionToken"]) >= 43  # >= 256 bits, urlsafe base64
        hours = (_ts(body["expiresAt"]).timestamp() - time.time()) / 3600
        assert 23.9 < hours <= 24.0
        async with chatd.services.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT token_hash, guest_email, metadata, user_id FROM chat_sessions WHERE id = %s",
                    [body["sessionId"]],
                )
            ).fetchone()
        assert row is not None
        assert body["sessionToken"].encode() not in bytes(
            row["token_hash"]
        )  # only a hash is stored
        assert len(bytes(row["token_hash"])) == 32
        assert (row["guest_email"], row["metadata"], row["user_id"]) == (
            "ann@shop.example",
            {"page": "/cart"},
            None,
        )


async def test_get_session_returns_recent_messages_oldest_first(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client, metadata={"lang": "de"})
        for i in range(3):
            assert (await send(client, session, f"m{i}")).status_code == 200
        body = (await client.get(f"/api/chat/session/{session.id}", headers=session.auth)).json()
        assert set(body) == {
            "sessionId",
            "status",
            "messages",
            "metadata",
            "expiresAt",
            "rated",
            "ratingRequested",
        }
        assert [m["content"] for m in body["messages"]] == ["m0", "m1", "m2"]
        assert body["metadata"] == {"lang": "de"}
        first = body["messages"][0]
        assert set(first) == {
            "id",
            "sessionId",
            "senderType",
            "content",
            "messageType",
            "metadata",
            "status",
            "seq",
            "createdAt",
        }
        assert (first["senderType"], first["status"], first["seq"]) == ("user", "pending", 1)


async def test_send_stores_the_message_and_its_webhook_job_together(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client, guestEmail="bo@shop.example")
        response = await send(client, session, "Where is my order?", metadata={"sku": "A1"})
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"messageId", "status", "timestamp", "seq"}
        assert (body["status"], body["seq"]) == ("pending", 1)
        async with chatd.services.pool.connection() as conn:
            job = await (
                await conn.execute(
                    "SELECT status, payload, session_id, seq, attempts, max_attempts"
                    " FROM chat_webhook_queue WHERE message_id = %s",
                    [body["messageId"]],
                )
            ).fetchone()
        assert job is not None
        assert (
            job["status"],
            job["session_id"],
            job["seq"],
            job["attempts"],
            job["max_attempts"],
        ) == ("pending", session.id, 1, 0, 3)
        payload = job["payload"]
        assert payload["sessionId"] == session.id
        assert payload["messageId"] == body["messageId"]
        assert payload["guestEmail"] == "bo@shop.example"
        assert payload["userId"] is None
        assert payload["message"]["content"] == "Where is my order?"
        assert payload["message"]["type"] == "text"
        assert payload["userContext"] == {"isAuthenticated": False}


async def test_same_client_message_id_is_one_message(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        first = await send(client, session, "hello", clientMessageId="c-1")
        again = await send(client, session, "hello", clientMessageId="c-1")
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        before = await table_counts(chatd.services.pool)
        other = await send(client, session, "something else", clientMessageId="c-1")
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "client_message_id_conflict"
        assert await table_counts(chatd.services.pool) == before
        assert before["messages"] == 1
        assert before["jobs"] == 1
        # the replay used no seq: the next message is 2
        assert (await send(client, session, "next")).json()["seq"] == 2


async def test_tokens_open_only_their_own_session(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        mine, theirs = await new_session(client), await new_session(client)
        await send(client, theirs, "private")
        before = await table_counts(chatd.services.pool)
        probes = [
            await client.get(f"/api/chat/messages/{theirs.id}", headers=mine.auth),
            await client.get(f"/api/chat/session/{theirs.id}", headers=mine.auth),
            await client.post(
                "/api/chat/send",
                headers=mine.auth,
                json={"sessionId": theirs.id, "content": "intrude"},
            ),
            await client.get(f"/api/chat/session/{UNKNOWN}", headers=mine.auth),
            await client.post(
                "/api/chat/send",
                headers=mine.auth,
                json={"sessionId": UNKNOWN, "content": "x"},
            ),
        ]
        # wrong token and unknown session are indistinguishable
        assert {(p.status_code, p.json()["error"]["code"]) for p in probes} == {
            (401, "invalid_session")
        }
        missing = await client.get(f"/api/chat/messages/{mine.id}")
        assert (missing.status_code, missing.json()["error"]["code"]) == (401, "missing_token")
        basic = await client.get(
            f"/api/chat/messages/{mine.id}", headers={"Authorization": f"Basic {mine.token}"}
        )
        assert basic.status_code == 401
        assert await table_counts(chatd.services.pool) == before


async def set_expiry(chatd: RunningChatd, session: Session, from_now: str) -> None:
    async with chatd.services.pool.connection() as conn:
        await conn.execute(
            "UPDATE chat_sessions SET expires_at = now() + %s::interval WHERE id = %s",
            [from_now, session.id],
        )


async def test_expired_session_is_gone(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        await set_expiry(chatd, session, "-1 second")
        before = await table_counts(chatd.services.pool)
        for response in (
            await send(client, session, "late"),
            await client.get(f"/api/chat/messages/{session.id}", headers=session.auth),
        ):
            assert response.status_code == 410
            assert response.json()["error"]["code"] == "session_expired"
        assert await table_counts(chatd.services.pool) == before


async def test_activity_extends_expiry(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        await set_expiry(chatd, session, "1 hour")
        await send(client, session, "still here")
        body = (await client.get(f"/api/chat/session/{session.id}", headers=session.auth)).json()
        assert _ts(body["expiresAt"]).timestamp() - time.time() > 23 * 3600


async def test_pagination_counts_pages_from_the_newest(
    database_url: str, nursery: trio.Nursery
) -> None:
    settings = make_settings(database_url, chat={"rate_limit_max": 1000})
    async with open_pool(PoolConfig(database_url)) as pool:
        chatd = await start_chatd(nursery, settings, pool)
        async with chatd.client() as client:
            session = await new_session(client)
            for i in range(1, 121):
                assert (await send(client, session, f"m{i}")).status_code == 200

            async def seqs(query: str) -> tuple[list[int], dict[str, int]]:
                body = (
                    await client.get(
                        f"/api/chat/messages/{session.id}?{query}", headers=session.auth
                    )
                ).json()
                return [m["seq"] for m in body["messages"]], body["pagination"]

            assert await seqs("") == (list(range(71, 121)), {"page": 1, "limit": 50, "total": 120})
            assert await seqs("page=3&limit=50") == (
                list(range(1, 21)),
                {"page": 3, "limit": 50, "total": 120},
            )
            assert (await seqs("page=9"))[0] == []
            assert (await seqs("afterSeq=100"))[0] == list(range(101, 121))
            assert (await seqs("afterSeq=10&limit=5"))[0] == [11, 12, 13, 14, 15]
            assert (await seqs("afterSeq=120"))[0] == []
        chatd.stop.set()


async def test_rate_limit_per_session_answers_429_with_retry_after(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session, other = await new_session(client), await new_session(client)
        for i in range(10):
            assert (
                await send(client, session, f"m{i}", clientMessageId=f"c{i}")
            ).status_code == 200
        # replays are not new messages and do not count
        assert (await send(client, session, "m0", clientMessageId="c0")).status_code == 200
        before = await table_counts(chatd.services.pool)
        limited = await send(client, session, "one too many")
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert await table_counts(chatd.services.pool) == before
        assert (await send(client, other, "unaffected")).status_code == 200


async def test_session_creation_is_limited_per_client_ip(
    database_url: str, nursery: trio.Nursery
) -> None:
    settings = make_settings(database_url, chat={"session_create_per_ip_max": 3})
    async with open_pool(PoolConfig(database_url)) as pool:
        chatd = await start_chatd(nursery, settings, pool)
        async with chatd.client() as client:
            for _ in range(3):
                await new_session(client)
            limited = await client.post("/api/chat/session", json={})
            assert limited.status_code == 429
            assert "Retry-After" in limited.headers
            assert (await table_counts(pool))["sessions"] == 3
        chatd.stop.set()


@pytest.fixture
def identity_settings(database_url: str) -> Settings:
    return make_settings(
        database_url, identity={"secret": SECRET}, chat={"user_session_ttl_seconds": 7200}
    )


async def test_user_identity_proven_by_hmac_or_jwt(
    identity_settings: Settings, nursery: trio.Nursery
) -> None:
    async with open_pool(PoolConfig(identity_settings.database.url)) as pool:
        chatd = await start_chatd(nursery, identity_settings, pool)
        async with chatd.client() as client:
            by_hash = await client.post(
                "/api/chat/session", json={"userId": "u-42", "userHash": user_hash("u-42", SECRET)}
            )
            assert by_hash.status_code == 200
            hours = (_ts(by_hash.json()["expiresAt"]).timestamp() - time.time()) / 3600
            assert 1.9 < hours <= 2.0  # the user TTL, not the guest one
            token = jwt.encode(
                {"sub": "u-7", "exp": int(time.time()) + 600, "membershipLevel": "gold"},
                SECRET,
                algorithm="HS256",
            )
            by_jwt = await client.post("/api/chat/session", json={"identityToken": token})
            assert by_jwt.status_code == 200
            session = by_jwt.json()
            sent = await client.post(
                "/api/chat/send",
                json={"sessionId": session["sessionId"], "content": "hi"},
                headers={"Authorization": f"Bearer {session['sessionToken']}"},
            )
            async with pool.connection() as conn:
                job = await (
                    await conn.execute(
                        "SELECT payload FROM chat_webhook_queue WHERE message_id = %s",
                        [sent.json()["messageId"]],
                    )
                ).fetchone()
            assert job is not None
            assert job["payload"]["userId"] == "u-7"
            assert job["payload"]["userContext"] == {
                "isAuthenticated": True,
                "membershipLevel": "gold",
            }

            before = await table_counts(pool)
            forged = [
                await client.post(
                    "/api/chat/session",
                    json={"userId": "u-42", "userHash": user_hash("u-43", SECRET)},
                ),
                await client.post("/api/chat/session", json={"userId": "u-42"}),
                await client.post(
                    "/api/chat/session",
                    json={
                        "identityToken": jwt.encode(
                            {"sub": "u-7", "exp": int(time.time()) - 3600},
                            SECRET,
                            algorithm="HS256",
                        )
                    },
                ),
                await client.post(
                    "/api/chat/session",
                    json={
                        "identityToken": jwt.encode(
                            {"sub": "u-7", "exp": int(time.time()) + 600},
                            "not-the-secret-but-just-as-long-as-it",
                            algorithm="HS256",
                        )
                    },
                ),
                await client.post(
                    "/api/chat/session", json={"userId": "u-8", "identityToken": token}
                ),
            ]
            assert [f.status_code for f in forged] == [401] * 5
            assert await table_counts(pool) == before

            # Signed, yet not storable (text and jsonb refuse a NUL; jsonb a NaN): a 400.
            for claims in ({"sub": "u\u0000"}, {"sub": "u-9", "plan": float("nan")}):
                unstorable = jwt.encode({**claims, "exp": int(time.time()) + 600}, SECRET)
                refused = await client.post("/api/chat/session", json={"identityToken": unstorable})
                assert refused.status_code == 400, refused.text
                assert refused.json()["error"]["field"] == "identityToken"
            assert await table_counts(pool) == before
        chatd.stop.set()


async def test_health_reports_the_guides_format(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        await send(client, session, "hi")
        response = await client.get("/api/chat/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "healthy"
        assert body["checks"]["database"] == "healthy"
        assert body["checks"]["queue"] == "healthy"
        metrics = body["metrics"]
        assert (
            metrics["pendingWebhooks"],
            metrics["activeSessions"],
            metrics["messagesLast24h"],
        ) == (1, 1, 1)
        assert (metrics["deadLetters"], metrics["webhookSuccessRate"]) == (0, None)
        assert metrics["oldestPendingSeconds"] >= 0
        assert body["checks"]["webhook"] == "unknown"  # this process does not deliver
        assert _ts(body["timestamp"])


async def test_health_is_503_unhealthy_when_the_database_is_unreachable(
    settings: Settings, nursery: trio.Nursery, tmp_path: object
) -> None:
    dead = PoolConfig(
        "postgresql://nobody@/postgres?host=/nonexistent-socket-dir",
        connect_timeout=0.5,
        acquire_timeout=0.5,
    )
    async with open_pool(dead, fill=False) as pool:
        chatd = await start_chatd(nursery, settings, pool)
        async with chatd.client() as client:
            health = await client.get("/api/chat/health")
            assert health.status_code == 503
            body = health.json()
            assert body["status"] == "unhealthy"
            assert body["checks"]["database"] == "unhealthy"
            created = await client.post("/api/chat/session", json={})
            assert created.status_code == 503
            assert created.json()["error"]["code"] == "database_unavailable"
            assert created.headers["Retry-After"]
        chatd.stop.set()


async def test_livez_answers_without_the_database(
    settings: Settings, nursery: trio.Nursery
) -> None:
    dead = PoolConfig(
        "postgresql://nobody@/postgres?host=/nonexistent-socket-dir",
        connect_timeout=0.5,
        acquire_timeout=0.5,
    )
    async with open_pool(dead, fill=False) as pool:
        chatd = await start_chatd(nursery, settings, pool)
        async with chatd.client() as client:
            response = await client.get("/livez")
            assert (response.status_code, response.json()) == (200, {"status": "alive"})
        chatd.stop.set()
