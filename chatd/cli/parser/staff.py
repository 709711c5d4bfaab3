"""The grammar of the commands about people: agent (staff accounts), shopper (a shopper's data
on request) and search (the index over their messages)."""

from __future__ import annotations

import argparse

from chatd.cli.parser.common import Command, anywhere

SHOPPER_DESCRIPTION = """\
A shopper's data on request (a GDPR-style "give me my data" or "delete everything about me").
Name the shopper by --user-id (the shop's id for them, exact) or --email (the email a guest
gave, ignoring case). Their conversations are every session with that user id or email.
Attachments are links in messages (chatd stores no files): they are exported and deleted with
the messages; the files they point to are the shop's to delete.
"""

SHOPPER_DELETE_DESCRIPTION = """\
Delete every conversation of one shopper with all that hangs on it: messages (and their search
index entries), queued deliveries to n8n, tags. It first says what will go and asks you to type
yes (--yes: do not ask, for scripts). Then an audit record is written: when, by whom ("cli"),
whether a user id or an email, a salted hash of it, and how many rows went from each table,
never the deleted content (GET /api/admin/shoppers/erasures lists them). The tables are vacuumed
afterwards so the deleted bytes leave the files now. A shopper with nothing stored is recorded
too: the request was answered. Exit 1 when not confirmed (nothing deleted).
"""

SEARCH_DESCRIPTION = """\
Full-text search indexes each message with the language (search.language, a PostgreSQL text
search configuration) set when it was stored. After changing search.language, reindex moves the
messages already stored to the new one, in batches of 1,000 (short transactions, safe while
chatd serves); --all reindexes every message (after a dictionary changed).
"""


AGENT_DESCRIPTION = """\
Manage the staff who answer shoppers in the inbox (/inbox). Roles: admin (everything, the admin
page included) and agent (works conversations). Passwords are never taken on the command line:
they are asked for at a terminal, or read as one line from standard input (for scripts:
`printf '%s\\n' "$PASSWORD" | chatd agent add ...`). At least 12 characters. Disabling an
account or resetting its password signs it out of every browser at once.
"""


def add_agent(command: Command) -> None:
    agent = command(
        "agent",
        help="manage staff accounts for the inbox (add, list, disable, reset-password)",
        description=AGENT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = agent.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", parents=[anywhere()], help="create an account (asks for its password)"
    )
    add.add_argument("email", help="the sign-in email (unique, case ignored)")
    add.add_argument("--name", required=True, help="the name shoppers see, e.g. Anna")
    add.add_argument("--role", choices=["agent", "admin"], default="agent", help="default agent")
    listing = actions.add_parser("list", parents=[anywhere()], help="every account")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    disable = actions.add_parser(
        "disable", parents=[anywhere()], help="disable an account and sign it out everywhere"
    )
    disable.add_argument("email")
    reset = actions.add_parser(
        "reset-password",
        parents=[anywhere()],
        help="set a new password (asks for it) and sign the account out everywhere",
    )
    reset.add_argument("email")


def add_shopper(command: Command) -> None:
    shopper = command(
        "shopper",
        help="a shopper's data on request: export it, or delete it with an audit record",
        description=SHOPPER_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = shopper.add_subparsers(dest="shopper_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        parents=[anywhere(), _who()],
        help="print all their conversations, messages and attachment links",
        description="Print everything stored about one shopper, oldest conversation first, on"
        " stdout (a summary on stderr): json (default), one document {shopper, exportedAt,"
        " sessions: [{session, messages}]}, or text (readable transcripts).",
    )
    export.add_argument(
        "--format", choices=["json", "text"], default="json", help="json (default) or text"
    )
    delete = actions.add_parser(
        "delete",
        parents=[anywhere(), _who()],
        help="delete all their conversations (asks first; --yes for scripts), with an audit record",
        description=SHOPPER_DELETE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    search = command("search", help="the full-text search index", description=SEARCH_DESCRIPTION)
    search_actions = search.add_subparsers(dest="search_command", required=True, metavar="ACTION")
    reindex = search_actions.add_parser(
        "reindex",
        parents=[anywhere()],
        help="index stored messages with search.language (after changing it)",
        description=SEARCH_DESCRIPTION,
    )
    reindex.add_argument(
        "--all", action="store_true", help="every message, also those indexed with it already"
    )


def _who() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    who = parent.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", metavar="ID", help="the shopper's user id (exact)")
    who.add_argument("--email", metavar="EMAIL", help="the guest's email (ignoring case)")
    return parent
