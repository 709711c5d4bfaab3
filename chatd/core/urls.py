"""URLs as shown to people (the admin page, logs): without the secrets a URL may carry."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def without_secrets(url: str) -> str:
    """`url` without userinfo, query and fragment: "https://n8n.example/webhook/chat".

    n8n URLs may carry a password (https://user:pass@…) or a token (…?key=…); the scheme, host,
    port and path say where chatd delivers, which is all a person needs to check.
    """
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
