"""The grammar of running chatd and wiring it to n8n: serve, n8n-workflow, n8n-check."""

from __future__ import annotations

from chatd.cli.parser.common import Command

SERVE_DESCRIPTION = """\
Run chatd until SIGTERM or SIGINT (SIGHUP reloads what can change safely). It serves the API
under /api/chat, the widget at /widget.js, the admin page at /admin, /metrics, and, in demo
mode (no n8n.webhook_url), a demo shop at /. Before anything slow starts it checks the
configuration, that the port is free and that the state directory is not in use. With a
configured database.url that is down at start, it waits for it (systemd sees no READY until
then); a database that refuses chatd (wrong password, no such database or role) stops it.
"""

N8N_CHECK_DESCRIPTION = """\
Send one signed test request to n8n.webhook_url, with the headers and body shape chatd's
deliveries have (metadata.chatdCheck = true marks it as a test), and say what came back: a reply
(shown), an acknowledgement without one (fine in callback mode), or what is wrong and what to do
(404: the workflow is not active or the path is wrong; 401/403: n8n.webhook_secret does not match
the Webhook node's Header Auth; 5xx, a timeout, a refused connection, a TLS error, a redirect).
Exit 0 when n8n answered 2xx, else 1.
"""


def add_serve(command: Command) -> None:
    serve = command(
        "serve",
        help="run the chat server (HTTP API, WebSocket, widget, actors, database)",
        description=SERVE_DESCRIPTION,
    )
    serve.add_argument("--host", help="address to listen on (server.host; default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, help="port to listen on (server.port; default 8000; 0 = any free)"
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply migrations on start; refuse to start if any are pending",
    )


def add_n8n(command: Command) -> None:
    workflow = command(
        "n8n-workflow",
        help="print an importable n8n workflow wired to this chatd",
        description="Print an n8n workflow (JSON) that speaks chatd's protocol, with this chatd's"
        " URLs filled in (server.public_url). See README, 'Connect n8n'.",
    )
    workflow.add_argument(
        "--mode",
        choices=["sync", "callback", "agent"],
        default="sync",
        help="sync: reply in the HTTP response; callback: answer 202, reply later (slow bots);"
        " agent: an AI agent whose reply streams token by token (a Chat Trigger when"
        " n8n.mode = chat_trigger)",
    )
    workflow.add_argument("--path", default="chatd", help="the n8n webhook path (default chatd)")
    check = command(
        "n8n-check",
        help="send a signed test message to n8n.webhook_url and say what came back",
        description=N8N_CHECK_DESCRIPTION,
    )
    check.add_argument(
        "--url", help="the webhook URL to check (default: n8n.webhook_url from the configuration)"
    )
