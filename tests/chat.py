"""Helpers for talking to a real chatd over HTTP in tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from chatd.db.pool import Pool


@dataclass(frozen=True)
class Session:
    id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_session(client: httpx.AsyncClient, **body: Any) -> Session:
    response = await client.post("/api/chat/session", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    return Session(data["sessionId"], data["sessionToken"])


async def send(
    client: httpx.AsyncClient, session: Session, content: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/api/chat/send",
        headers=session.auth,
        json={"sessionId": session.id, "content": content, **extra},
    )


async def table_counts(pool: Pool) -> dict[str, int]:
    """Row counts of the chat tables: "changes nothing" means these stay the same."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT (SELECT count(*) FROM chat_sessions) AS sessions,"
                " (SELECT count(*) FROM chat_messages) AS messages,"
                " (SELECT count(*) FROM chat_webhook_queue) AS jobs,"
                " (SELECT coalesce(sum(last_seq), 0) FROM chat_sessions) AS seqs"
            )
        ).fetchone()
    assert row is not None
    return {k: int(v) for k, v in row.items()}
