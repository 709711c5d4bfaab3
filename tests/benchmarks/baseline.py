"""What the insight benchmarks (analytics, search) share: a database of 1,000,000 messages over
the last 30 days, and their baseline, one session's GET /api/chat/messages on the same server,
measured before and after the endpoint under test (the worse p99 of the two is the baseline)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import psycopg

from tests.benchmarks.loadgen import LoadResult, request_bytes, run_load

SESSIONS = 20_000
PER_SESSION = 50
MESSAGES = SESSIONS * PER_SESSION
CONNECTIONS = 4
SECONDS = 5.0
QUESTIONS = 20  # the baseline session's messages (one page of them is the baseline request)

# Session g starts (g % 720) hours ago; its message k (1..50) is k * 10 s later: odd k the
# shopper's, even k the bot's answer to k - 1 (three in four naming an intent); half the
# sessions are rated.
FILL = [
    "ALTER TABLE chat_messages DISABLE TRIGGER chat_messages_events",  # no 1M NOTIFYs
    """
    INSERT INTO chat_sessions (id, token_hash, status, last_seq, expires_at, created_at, updated_at)
    SELECT md5('session' || g)::uuid::text, '\\x00', 'closed', %(per_session)s,
           now() + interval '1 day', t, t
      FROM generate_series(0, %(sessions)s - 1) AS g,
           LATERAL (SELECT now() - (g %% 720) * interval '1 hour' - interval '20 minutes' AS t) AS s
    """,
    """
    INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, status, seq,
                               reply_to, metadata, created_at, updated_at)
    SELECT md5(s.id || k)::uuid::text, s.id,
           CASE WHEN k %% 2 = 1 THEN 'user' ELSE 'bot' END,
           'Where is my order #' || k || '?', 'text', 'delivered', k,
           CASE WHEN k %% 2 = 0 THEN md5(s.id || (k - 1))::uuid::text END,
           CASE WHEN k %% 2 = 0 AND k %% 8 <> 0
                THEN jsonb_build_object('n8n', jsonb_build_object(
                         'intent', (ARRAY['order', 'shipping', 'return'])[k %% 3 + 1])) END,
           s.created_at + k * interval '10 seconds', s.created_at + k * interval '10 seconds'
      FROM chat_sessions s, generate_series(1, %(per_session)s) AS k
    """,
    "ALTER TABLE chat_messages ENABLE TRIGGER chat_messages_events",
    """
    INSERT INTO chat_ratings (session_id, rating, comment, created_at)
    SELECT id, 1 + abs(hashtext(id)) %% 5, NULL, created_at + interval '15 minutes'
      FROM chat_sessions WHERE abs(hashtext(id)) %% 2 = 0
    """,
]


def fill(database_url: str) -> None:
    """The 1,000,000 messages (blocking: run it in a thread)."""
    with psycopg.connect(database_url) as conn:
        for statement in FILL:
            conn.execute(statement, {"sessions": SESSIONS, "per_session": PER_SESSION})
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE chat_sessions, chat_messages, chat_ratings")


@dataclass(frozen=True)
class BaselineSession:
    """A session of the running server with QUESTIONS messages: its first page is the baseline."""

    session_id: str
    auth: dict[str, str]

    def request(self, host: str) -> bytes:
        path = f"/api/chat/messages/{self.session_id}?page=1&limit=50"
        return request_bytes("GET", path, host, b"", self.auth)


async def baseline_session(client: httpx.AsyncClient) -> BaselineSession:
    session = (await client.post("/api/chat/session", json={})).json()
    auth = {"Authorization": f"Bearer {session['sessionToken']}"}
    for n in range(QUESTIONS):
        body = {"sessionId": session["sessionId"], "content": f"question {n}"}
        assert (await client.post("/api/chat/send", json=body, headers=auth)).is_success
    return BaselineSession(session["sessionId"], auth)


@dataclass(frozen=True)
class Measured:
    before: LoadResult  # the baseline
    measured: LoadResult  # the endpoint under test
    after: LoadResult  # the baseline again

    @property
    def ratio(self) -> float:
        """p99 of the endpoint over the worse p99 of the baseline."""
        baseline = max(self.before.percentile(0.99), self.after.percentile(0.99))
        return self.measured.percentile(0.99) / baseline

    @property
    def errors(self) -> dict[int, int]:
        """Failed requests by status, of all three."""
        found: dict[int, int] = {}
        for result in (self.before, self.measured, self.after):
            for status, n in result.errors.items():
                found[status] = found.get(status, 0) + n
        return found

    def rows(self, name: str) -> str:
        return "\n".join(
            [
                row("GET /api/chat/messages (1 session)", self.before),
                row(name, self.measured),
                row("GET /api/chat/messages (again)", self.after),
            ]
        )


async def measure_against_baseline(url: str, session: BaselineSession, request: bytes) -> Measured:
    """After a warm-up: CONNECTIONS keep-alive connections asking back to back for SECONDS each,
    the baseline, then `request`, then the baseline again."""
    messages = session.request(urlsplit(url).netloc)
    await run_load(url, lambda n: messages, connections=CONNECTIONS, duration=1.0)  # warm-up
    before = await run_load(url, lambda n: messages, connections=CONNECTIONS, duration=SECONDS)
    measured = await run_load(url, lambda n: request, connections=CONNECTIONS, duration=SECONDS)
    after = await run_load(url, lambda n: messages, connections=CONNECTIONS, duration=SECONDS)
    return Measured(before, measured, after)


def row(name: str, result: LoadResult) -> str:
    return (
        f"  {name:<34} {result.rate:>7.0f} req/s   p50 {result.percentile(0.5) * 1000:6.2f} ms"
        f"   p99 {result.percentile(0.99) * 1000:6.2f} ms   errors {result.errors or 0}"
    )
