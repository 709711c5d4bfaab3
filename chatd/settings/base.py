"""What every section shares: the strict base model and the URL field types."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict


def check_http_url(value: str) -> str:
    """Empty, or an absolute http(s) URL with a host: anything else would fail at every call."""
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "not an http:// or https:// URL with a host, e.g. https://n8n.example/webhook/chatd"
        )
    try:
        parts.port  # noqa: B018 -- raises on a port that is not a number or out of range
    except ValueError as exc:
        raise ValueError(f"bad port in URL: {exc}") from None
    return value


def _postgres_url(value: str) -> str:
    """Empty, a postgresql:// URL, or a libpq key=value string (psycopg parses it fully)."""
    if not value or value.startswith(("postgresql://", "postgres://")) or "=" in value:
        return value
    raise ValueError(
        "not a PostgreSQL URL; write it as postgresql://user:password@host:5432/dbname"
    )


HttpUrl = Annotated[str, AfterValidator(check_http_url)]
PostgresUrl = Annotated[str, AfterValidator(_postgres_url)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
