"""Staff at the edge: the sign-in cookie, its CSRF token, and who may do what.

The cookie holds a random token (only its hash is stored, chatd_agent_sessions); it is
HttpOnly, SameSite=Strict, Path=/, and Secure unless chatd is reached on a loopback address
over plain HTTP (a browser drops a Secure cookie there). Every request re-reads the session
row, so signing out, an idle timeout, disabling the account or resetting its password take
effect on the next request. Every state-changing request must also carry the CSRF token
(X-CSRF-Token), which a page learns only from sign-in or GET /api/staff/me.
"""

from __future__ import annotations

import ipaddress

from quart import Blueprint, Response, request
from werkzeug.datastructures import Headers
from werkzeug.datastructures.structures import ImmutableMultiDict

from chatd.core.staff import Agent, csrf_matches
from chatd.core.tokens import token_hash
from chatd.errors import Forbidden, Unauthorized
from chatd.http.services import Services

COOKIE = "chatd_staff"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TOKEN = 128


async def signed_in_agent(
    services: Services, cookies: ImmutableMultiDict[str, str], method: str, headers: Headers
) -> tuple[Agent, str]:
    """(the agent, its cookie token): 401 without a good sign-in, 403 for a state-changing
    request without the right CSRF token."""
    token = cookies.get(COOKIE)
    if not token or len(token) > MAX_TOKEN:
        raise Unauthorized("sign in first (POST /api/staff/sign-in)", code="not_signed_in")
    if method not in SAFE_METHODS and not csrf_matches(token, headers.get(CSRF_HEADER)):
        raise Forbidden(f"send the page's CSRF token as {CSRF_HEADER}", code="csrf_failed")
    idle = services.settings.inbox.session_idle_seconds
    agent = await services.agents.session_agent(token_hash(token), idle)
    if agent is None:
        raise Unauthorized("your sign-in has ended; sign in again", code="signed_out")
    return agent, token


async def request_agent(services: Services) -> Agent:
    """The signed-in agent of the HTTP request being served (as signed_in_agent)."""
    agent, _ = await signed_in_agent(services, request.cookies, request.method, request.headers)
    return agent


def staff_blueprint(name: str, services: Services, url_prefix: str | None = None) -> Blueprint:
    """A blueprint of staff endpoints: their answers are one agent's, so never cached."""
    bp = Blueprint(name, __name__, url_prefix=url_prefix)

    @bp.after_request
    async def never_cache(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        return response

    return bp


def require_admin(agent: Agent) -> None:
    if not agent.is_admin:
        raise Forbidden("only an admin may do this", code="admin_only")


def set_staff_cookie(response: Response, token: str, *, host: str, scheme: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=scheme == "https" or not is_loopback(host),
        path="/",
    )


def clear_staff_cookie(response: Response, *, host: str, scheme: str) -> None:
    response.delete_cookie(
        COOKIE,
        httponly=True,
        samesite="Strict",
        secure=scheme == "https" or not is_loopback(host),
        path="/",
    )


def is_loopback(host: str) -> bool:
    """`host` (a Host header: name or address, maybe with a port) is this machine."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
