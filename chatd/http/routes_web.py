"""What browsers load from chatd: the widget script, and in demo mode a small shop page.

The files live in chatd/web/ and are read once at start. The widget is served with an ETag and
gzip, and may be loaded from any shop's page; the demo page carries a strict
Content-Security-Policy (no inline script or style), which the widget is built to work under.
The admin page (/admin) is a static shell holding no data: it asks for the admin token and
reads the admin API (routes_admin.py) from this origin only, under a stricter policy still.
The Markdown renderer (markdown.js) is one file shared without a build step: pages of this
origin load /markdown.js, and /widget.js is it, csat.js (End chat and the rating prompt) and
widget.js joined in one function scope. The analytics page (/admin/analytics) is another static
shell under the admin policy, sharing the token with /admin through admin-session.js.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from quart import Blueprint, Response, request

from chatd.errors import NotFound
from chatd.http.openapi import Doc, documented

WEB = Path(__file__).resolve().parent.parent / "web"
TYPES = {
    ".js": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str  # unquoted
    content_type: str

    @classmethod
    def load(cls, name: str) -> Asset:
        return cls.of(name, (WEB / name).read_bytes())

    @classmethod
    def of(cls, name: str, body: bytes) -> Asset:
        etag = hashlib.sha256(body).hexdigest()[:20]
        gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        return cls(body, gzipped, etag, TYPES[Path(name).suffix])

    def response(self, *, max_age: int, headers: dict[str, str] | None = None) -> Response:
        common = {
            "ETag": f'"{self.etag}"',
            "Cache-Control": f"public, max-age={max_age}",
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        }
        if request.if_none_match.contains(self.etag):
            return Response(b"", status=304, headers=common)
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return Response(
                self.gzipped,
                content_type=self.content_type,
                headers={**common, "Content-Encoding": "gzip"},
            )
        return Response(self.body, content_type=self.content_type, headers=common)


# The widget's files, joined in this order: widget.js uses the others.
WIDGET_PARTS = ("markdown.js", "csat.js", "contact.js", "widget.js")


def widget_source() -> bytes:
    """The widget as served: markdown.js, csat.js (the rating prompt) and widget.js inside one
    arrow function, so one <script> tag brings them and their names stay out of the shop's
    global scope."""
    parts = b"\n".join((WEB / name).read_bytes() for name in WIDGET_PARTS)
    return (
        b"/* chatd widget: chatd/web/markdown.js + csat.js + contact.js + widget.js */\n(() => {\n"
        + parts
        + b"\n})();\n"
    )


def demo_csp(host: str, secure: bool) -> str:
    """The demo page's policy: scripts and styles from chatd only; WebSocket to this host;
    images from chatd (signed file URLs) and blob: (the widget's preview of a picked image)."""
    ws = f"{'wss' if secure else 'ws'}://{host}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data: blob:;"
        f" connect-src 'self' {ws}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


ADMIN_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
    " img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ADMIN_HEADERS = {"Content-Security-Policy": ADMIN_CSP, "Referrer-Policy": "no-referrer"}


def no_headers() -> dict[str, str]:
    return {}


def widget_headers() -> dict[str, str]:
    # Any shop may embed it: the API's own CORS and origin rules decide who may chat.
    return {"Cross-Origin-Resource-Policy": "cross-origin"}


def demo_headers() -> dict[str, str]:
    return {"Content-Security-Policy": demo_csp(request.host, request.scheme == "https")}


def admin_headers() -> dict[str, str]:
    return ADMIN_HEADERS


def inbox_headers() -> dict[str, str]:
    # The admin page's policy, plus this host's WebSocket (the inbox's live events).
    ws = f"{'wss' if request.scheme == 'https' else 'ws'}://{request.host}"
    csp = ADMIN_CSP.replace("connect-src 'self';", f"connect-src 'self' {ws};")
    return {**ADMIN_HEADERS, "Content-Security-Policy": csp}


@dataclass(frozen=True)
class Served:
    """One file served at one path: its cache policy and extra headers (per request)."""

    path: str
    endpoint: str  # the view's name: the OpenAPI operationId is "web.<endpoint>"
    file: str  # in chatd/web/ ("widget.js": widget_source())
    summary: str
    max_age: int  # seconds; 0: revalidated every time (pages of this origin, so they match)
    headers: Callable[[], dict[str, str]] = no_headers
    demo_only: str | None = None  # outside demo mode: 404 with this message


SERVED = (
    Served("/widget.js", "widget_js", "widget.js",
           "The chat widget script, for any shop's page", 300, widget_headers),
    Served("/markdown.js", "markdown_js", "markdown.js",
           "The Markdown renderer chatd's own pages share with the widget (which includes it)", 0),
    Served("/", "demo_page", "demo.html",
           "The demo shop page (demo mode only: no n8n URL set)", 0, demo_headers,
           demo_only="no page here: chatd's API is under /api/chat (see the README)"),
    Served("/demo.css", "demo_css", "demo.css",
           "The demo page's stylesheet (demo mode only)", 300,
           demo_only="the demo shop is served only in demo mode"),
    Served("/admin-search.js", "admin_search_script", "admin-search.js",
           "The admin page's search, tags and shopper data (after admin.js)", 0, admin_headers),
    Served("/admin-search.css", "admin_search_style", "admin-search.css",
           "The admin page's search, tags and shopper data: their styles (after admin.css)", 0,
           admin_headers),
    Served("/admin", "admin", "admin.html",
           "The admin page (it asks for the admin token)", 0, admin_headers),
    Served("/admin.js", "admin_script", "admin.js", "The admin page's script", 0, admin_headers),
    Served("/admin.css", "admin_style", "admin.css", "The admin page's stylesheet", 0,
           admin_headers),
    Served("/inbox", "inbox", "inbox.html",
           "The staff inbox (sign in with an account from `chatd agent add`)", 0, inbox_headers),
    Served("/inbox.js", "inbox_script", "inbox.js", "The inbox page's script", 0, admin_headers),
    Served("/inbox-tools.js", "inbox_tools_script", "inbox-tools.js",
           "The inbox page's tools: canned responses, files, the admins' editor", 0,
           admin_headers),
    Served("/inbox-presence.js", "inbox_presence_script", "inbox-presence.js",
           "The inbox page's line of agents online and business hours", 0, admin_headers),
    Served("/inbox.css", "inbox_style", "inbox.css", "The inbox page's stylesheet", 0,
           admin_headers),
    Served("/admin/analytics", "analytics", "analytics.html",
           "The analytics page (it asks for the admin token)", 0, admin_headers),
    Served("/analytics.js", "analytics_script", "analytics.js", "The analytics page's script", 0,
           admin_headers),
    Served("/analytics.css", "analytics_style", "analytics.css",
           "The analytics page's stylesheet (after admin.css)", 0, admin_headers),
    Served("/admin-session.js", "admin_session_script", "admin-session.js",
           "The admin token's handling, shared by the operator pages", 0, admin_headers),
)  # fmt: skip
MEDIA = {".js": "application/javascript", ".css": "text/css", ".html": "text/html"}


def web_routes(*, demo: bool) -> Blueprint:
    bp = Blueprint("web", __name__)
    for served in SERVED:
        bp.add_url_rule(served.path, served.endpoint, serve(served, demo), methods=["GET"])
    return bp


def serve(served: Served, demo: bool) -> Callable[[], Awaitable[Response]]:
    """The view of one file (read once, here)."""
    if served.file == "widget.js":
        asset = Asset.of(served.file, widget_source())
    else:
        asset = Asset.load(served.file)
    hidden = served.demo_only if not demo else None

    @documented(
        Doc(
            served.summary,
            "pages",
            MEDIA[Path(served.file).suffix],
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def view() -> Response:
        if hidden is not None:
            raise NotFound(hidden)
        return asset.response(max_age=served.max_age, headers=served.headers())

    view.__name__ = served.endpoint
    return view
