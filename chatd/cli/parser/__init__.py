"""The grammar of `chatd`: every command, option and help text, and nothing else.

It imports only the standard library, so `chatd --help` and a typo answer at once; each
command's module (and the server stack behind it) is imported only when that command runs.

The commands are grouped by what they are about: serving (serve, n8n-*), ops (queue, cleanup,
export), staff (agent, shopper, search) and bench; common holds the global options.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from chatd.cli.parser.bench import add_bench
from chatd.cli.parser.common import anywhere, global_options
from chatd.cli.parser.ops import add_ops, add_queue
from chatd.cli.parser.serving import add_n8n, add_serve
from chatd.cli.parser.staff import add_agent, add_shopper

DESCRIPTION = """\
chatd: the chat back end of an online shop. Shoppers' messages are stored in PostgreSQL, queued
durably and delivered to an n8n workflow; the bot's replies come back to the browser.

Configuration: --config FILE (TOML; every key is documented in config.toml), then environment
variables CHATD_<SECTION>__<KEY> (e.g. CHATD_SERVER__PORT=9000) and the guide's names
(DATABASE_URL, CHAT_WEBHOOK_SECRET, CHAT_N8N_WEBHOOK_URL, CHAT_SESSION_TIMEOUT, ...).
With no database.url, an embedded PostgreSQL runs in the state directory. With no
n8n.webhook_url, a built-in demo bot answers and GET / serves a demo shop with the chat widget.
Shops embed the widget with <script src="{chatd}/widget.js" async></script> and list their
origin in websocket.allowed_origins; shops already embedding n8n's @n8n/chat point its
webhookUrl at /api/n8n-chat ([n8n_chat] enabled = true). --config and --state-dir go before or
after the command.

Staff: the inbox at /inbox, where people take over a chat from the bot (accounts: chatd agent
add), with business hours and who is online ([inbox]); outside hours or with nobody online a
shopper is told when to expect an answer and may leave an email, and the staff are alerted
(alerts.webhook_url, [alert_email] over SMTP); search, tags and a shopper's data on the admin
page; charts at /admin/analytics.

Operations: /livez, /readyz and /api/chat/health; /metrics (Prometheus; metrics.token,
metrics.listen); the admin page at /admin with admin.token; alerts to alerts.webhook_url;
periodic cleanup ([maintenance]). Under systemd (systemd/chatd.service) chatd speaks sd_notify
(READY, WATCHDOG, STATUS, STOPPING), reads secrets from $CREDENTIALS_DIRECTORY, and reloads
[admin], [inbox], metrics.token, [alerts], [alert_email] and [maintenance] on SIGHUP (systemctl
reload chatd).

Exit status: 0 done; 1 failed (e.g. PostgreSQL down); 2 bad usage or configuration (a key, a
port or state directory in use, a database that refuses chatd): starting again will not help.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatd", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    global_options(parser, default_config=os.environ.get("CHATD_CONFIG") or None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[anywhere()], **kwargs)

    add_serve(command)
    command(
        "migrate",
        help="apply pending database migrations and exit",
        description="Apply pending migrations (safe to run from several processes at once).",
    )
    add_queue(command)
    add_agent(command)
    add_bench(command)
    add_ops(command)
    add_shopper(command)
    add_n8n(command)
    return parser
