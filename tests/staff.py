"""Helpers for staff in tests: accounts made in the database, signed-in HTTP clients."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import httpx

from chatd.core.staff import Agent, Role, hash_password
from chatd.db.agents import AgentStore
from chatd.db.pool import Pool

PASSWORD = "correct horse battery staple"


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: once per run


async def add_agent(pool: Pool, name: str, role: Role = Role.AGENT) -> Agent:
    email = f"{name.lower()}@shop.example"
    return await AgentStore(pool).add(
        name=name, email=email, role=role, password_hash=password_hash()
    )


@dataclass
class Staff:
    """A signed-in browser: its client carries the cookie, `csrf` the page's token."""

    agent: Agent
    client: httpx.AsyncClient
    csrf: str

    async def post(self, path: str, json: object | None = None) -> httpx.Response:
        return await self.client.post(path, json=json, headers={"X-CSRF-Token": self.csrf})


async def sign_in(client: httpx.AsyncClient, agent: Agent) -> Staff:
    response = await client.post(
        "/api/staff/sign-in", json={"email": agent.email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return Staff(agent, client, response.json()["csrfToken"])
