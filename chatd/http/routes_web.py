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


def web_routes(*, demo: bool) -> Blueprint:
    bp = Blueprint("web", __name__)
    widget = Asset.of("widget.js", widget_source())
    markdown = Asset.load("markdown.js")
    page, style = Asset.load("demo.html"), Asset.load("demo.css")

    @bp.get("/widget.js")
    @documented(
        Doc(
            "The chat widget script, for any shop's page",
            "pages",
            "application/javascript",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def widget_js() -> Response:
        # Any shop may embed it: the API's own CORS and origin rules decide who may chat.
        return widget.response(
            max_age=300, headers={"Cross-Origin-Resource-Policy": "cross-origin"}
        )

    @bp.get("/markdown.js")
    @documented(
        Doc(
            "The Markdown renderer chatd's own pages share with the widget (which includes it)",
            "pages",
            "application/javascript",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def markdown_js() -> Response:
        # For this origin's pages (admin, later an inbox); revalidated so it matches them.
        return markdown.response(max_age=0)

    @bp.get("/")
    @documented(
        Doc(
            "The demo shop page (demo mode only: no n8n URL set)",
            "pages",
            "text/html",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def demo_page() -> Response:
        if not demo:
            raise NotFound("no page here: chatd's API is under /api/chat (see the README)")
        csp = demo_csp(request.host, request.scheme == "https")
        return page.response(max_age=0, headers={"Content-Security-Policy": csp})

    @bp.get("/demo.css")
    @documented(
        Doc(
            "The demo page's stylesheet (demo mode only)",
            "pages",
            "text/css",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def demo_css() -> Response:
        if not demo:
            raise NotFound("the demo shop is served only in demo mode")
        return style.response(max_age=300)

    search_js, search_css = Asset.load("admin-search.js"), Asset.load("admin-search.css")

    @bp.get("/admin-search.js")
    @documented(
        Doc(
            "The admin page's search, tags and shopper data (after admin.js)",
            "pages",
            "application/javascript",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def admin_search_script() -> Response:
        return search_js.response(max_age=0, headers=ADMIN_HEADERS)

    @bp.get("/admin-search.css")
    @documented(
        Doc(
            "The admin page's search, tags and shopper data: their styles (after admin.css)",
            "pages",
            "text/css",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def admin_search_style() -> Response:
        return search_css.response(max_age=0, headers=ADMIN_HEADERS)

    admin_page, admin_js, admin_css = (
        Asset.load("admin.html"),
        Asset.load("admin.js"),
        Asset.load("admin.css"),
    )

    @bp.get("/admin")
    @documented(
        Doc(
            "The admin page (it asks for the admin token)",
            "pages",
            "text/html",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def admin() -> Response:
        return admin_page.response(max_age=0, headers=ADMIN_HEADERS)

    @bp.get("/admin.js")
    @documented(
        Doc(
            "The admin page's script",
            "pages",
            "application/javascript",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def admin_script() -> Response:
        return admin_js.response(max_age=0, headers=ADMIN_HEADERS)

    @bp.get("/admin.css")
    @documented(
        Doc(
            "The admin page's stylesheet",
            "pages",
            "text/css",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def admin_style() -> Response:
        return admin_css.response(max_age=0, headers=ADMIN_HEADERS)

    inbox_page, inbox_js, inbox_css = (
        Asset.load("inbox.html"),
        Asset.load("inbox.js"),
        Asset.load("inbox.css"),
    )

    def inbox_headers() -> dict[str, str]:
        # The admin page's policy, plus this host's WebSocket (the inbox's live events).
        ws = f"{'wss' if request.scheme == 'https' else 'ws'}://{request.host}"
        csp = ADMIN_CSP.replace("connect-src 'self';", f"connect-src 'self' {ws};")
        return {**ADMIN_HEADERS, "Content-Security-Policy": csp}

    @bp.get("/inbox")
    @documented(
        Doc(
            "The staff inbox (sign in with an account from `chatd agent add`)",
            "pages",
            "text/html",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def inbox() -> Response:
        return inbox_page.response(max_age=0, headers=inbox_headers())

    @bp.get("/inbox.js")
    @documented(
        Doc(
            "The inbox page's script",
            "pages",
            "application/javascript",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def inbox_script() -> Response:
        return inbox_js.response(max_age=0, headers=ADMIN_HEADERS)

    presence_js = Asset.load("inbox-presence.js")

    @bp.get("/inbox-presence.js")
    @documented(
        Doc(
            "The inbox page's line of agents online and business hours",
            "pages",
            "application/javascript",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def inbox_presence_script() -> Response:
        return presence_js.response(max_age=0, headers=ADMIN_HEADERS)

    @bp.get("/inbox.css")
    @documented(
        Doc(
            "The inbox page's stylesheet",
            "pages",
            "text/css",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def inbox_style() -> Response:
        return inbox_css.response(max_age=0, headers=ADMIN_HEADERS)

    analytics_page, analytics_js, analytics_css, session_js = (
        Asset.load("analytics.html"),
        Asset.load("analytics.js"),
        Asset.load("analytics.css"),
        Asset.load("admin-session.js"),
    )

    @bp.get("/admin/analytics")
    @documented(
        Doc(
            "The analytics page (it asks for the admin token)",
            "pages",
            "text/html",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def analytics() -> Response:
        return analytics_page.response(max_age=0, headers=ADMIN_HEADERS)

    @bp.get("/analytics.js")
    @documented(
        Doc(
            "The analytics page's script",
            "pages",
            "application/javascript",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def analytics_script() -> Response:
        return analytics_js.response(max_age=0, headers=ADMIN_HEADERS)

    @bp.get("/analytics.css")
    @documented(
        Doc(
            "The analytics page's stylesheet (after admin.css)",
            "pages",
            "text/css",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def analytics_style() -> Response:
        return analytics_css.response(max_age=0, headers=ADMIN_HEADERS)

    @bp.get("/admin-session.js")
    @documented(
        Doc(
            "The admin token's handling, shared by the operator pages",
            "pages",
            "application/javascript",
            also={304: "Not Modified: If-None-Match matched"},
        )
    )
    async def admin_session_script() -> Response:
        return session_js.response(max_age=0, headers=ADMIN_HEADERS)

    return bp
