"""Staff sign-in under /api/staff: sign in (sets the cookie), sign out, who am I (with the CSRF
token), and the list of agents (for transfers). Wrong passwords count against the client's
address like wrong admin tokens do (server.operator_auth_failures_max)."""

from __future__ import annotations

from typing import Any

import structlog
import trio
from quart import Blueprint, Response, jsonify, request

from chatd.core.inbox_wire import AgentOut, Agents, SignedOut, SignInRequest, StaffSession
from chatd.core.responses import wire
from chatd.core.staff import Agent, csrf_token, new_staff_token, verify_password
from chatd.core.tokens import token_hash
from chatd.errors import RateLimited, Unauthorized
from chatd.http.body import client_ip, json_body
from chatd.http.openapi import Doc, documented
from chatd.http.services import Services
from chatd.http.staff_auth import (
    clear_staff_cookie,
    set_staff_cookie,
    signed_in_agent,
    staff_blueprint,
)

log = structlog.get_logger(__name__)


def staff_routes(services: Services) -> Blueprint:
    bp = staff_blueprint("staff", services, url_prefix="/api/staff")
    failures = services.operator_auth_failures

    @bp.post("/sign-in")
    @documented(
        Doc("Sign in to the inbox: sets the session cookie", "staff", StaffSession, SignInRequest)
    )
    async def sign_in() -> Response:
        ip = client_ip(services.settings.server.proxy_trust)
        wait = await failures.retry_after(ip, trio.current_time())
        if wait is not None:
            raise RateLimited(
                "too many failed sign-ins from this address; retry later",
                code="too_many_auth_failures",
                retry_after=wait,
            )
        body = await json_body(SignInRequest)  # its errors never echo the password
        found = await services.agents.by_email(body.email.strip())
        agent, stored_hash = found if found else (None, None)
        good = await trio.to_thread.run_sync(verify_password, stored_hash, body.password)
        if agent is None or not good or agent.disabled:
            await failures.record(ip, trio.current_time())
            log.warning("staff_sign_in_failed", client_ip=ip)  # never the email or password
            raise Unauthorized("wrong email or password", code="bad_credentials")
        token = new_staff_token()
        await services.agents.open_session(token_hash(token), agent.id)
        await services.agents.sweep_sessions(services.settings.inbox.session_idle_seconds)
        log.info("staff_signed_in", agent_id=agent.id)
        response = jsonify(wire(StaffSession(agent=agent_out(agent), csrfToken=csrf_token(token))))
        set_staff_cookie(response, token, host=request.host, scheme=request.scheme)
        return response

    @bp.post("/sign-out")
    @documented(
        Doc("Sign out: ends the session and clears the cookie", "staff", SignedOut, auth="staff")
    )
    async def sign_out() -> Response:
        agent, token = await signed_in_agent(
            services, request.cookies, request.method, request.headers
        )
        await services.agents.close_session(token_hash(token))
        log.info("staff_signed_out", agent_id=agent.id)
        response = jsonify(wire(SignedOut(signedOut=True)))
        clear_staff_cookie(response, host=request.host, scheme=request.scheme)
        return response

    @bp.get("/me")
    @documented(
        Doc(
            "Who is signed in, and the CSRF token for this page",
            "staff",
            StaffSession,
            auth="staff",
        )
    )
    async def me() -> dict[str, Any]:
        agent, token = await signed_in_agent(
            services, request.cookies, request.method, request.headers
        )
        return wire(StaffSession(agent=agent_out(agent), csrfToken=csrf_token(token)))

    @bp.get("/agents")
    @documented(
        Doc("Every enabled account (to transfer a conversation)", "staff", Agents, auth="staff")
    )
    async def agents() -> dict[str, Any]:
        await signed_in_agent(services, request.cookies, request.method, request.headers)
        everyone = await services.agents.list()
        return wire(Agents(agents=[agent_out(a) for a in everyone if not a.disabled]))

    return bp


def agent_out(agent: Agent) -> AgentOut:
    return AgentOut(id=agent.id, name=agent.name, email=agent.email, role=agent.role.value)
