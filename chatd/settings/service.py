"""The sections of the serving process itself: listening, database, sessions, actors, the queue,
WebSockets, logs, admin, metrics, maintenance and search."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from chatd.core.forwarded import ProxyTrust, parse_networks
from chatd.settings.base import PostgresUrl, Section


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    public_url: str = ""  # empty: http://{host}:{port}
    max_body_bytes: int = Field(65536, ge=1024)
    trust_forwarded_for: bool = False  # the old name of trusted_proxy_hops = 1
    trusted_proxy_hops: int = Field(0, ge=0, le=32)  # 0: X-Forwarded-For is ignored
    trusted_proxies: str = ""  # comma-separated networks; instead of trusted_proxy_hops
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    send_timeout_seconds: float = Field(10.0, gt=0)
    keep_alive_timeout_seconds: float = Field(75.0, gt=0)
    operator_auth_failures_max: int = Field(10, ge=1)
    operator_auth_failure_window_seconds: float = Field(300.0, gt=0)
    gc_freeze_interval_seconds: float = Field(1.0, ge=0)  # 0: nothing frozen
    gc_full_collection_interval_seconds: float = Field(3600.0, gt=0)
    gc_young_threshold: int = Field(50_000, ge=0)  # 0: CPython's
    _proxy_trust: ProxyTrust = PrivateAttr(default_factory=ProxyTrust)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str, info: ValidationInfo) -> str:
        if parse_networks(value) and (
            info.data.get("trusted_proxy_hops") or info.data.get("trust_forwarded_for")
        ):
            raise ValueError(
                "set either server.trusted_proxies or server.trusted_proxy_hops"
                " (trust_forwarded_for), not both"
            )
        return value

    @model_validator(mode="after")
    def _build_proxy_trust(self) -> ServerSettings:
        hops = self.trusted_proxy_hops or (1 if self.trust_forwarded_for else 0)
        self._proxy_trust = ProxyTrust(hops, parse_networks(self.trusted_proxies))
        return self

    @property
    def proxy_trust(self) -> ProxyTrust:
        """Whose X-Forwarded-For entries to believe (chatd/core/forwarded.py)."""
        return self._proxy_trust


class DatabaseSettings(Section):
    url: PostgresUrl = ""  # empty: embedded PostgreSQL in the state directory
    pool_min_size: int = Field(2, ge=0)
    pool_max_size: int = Field(10, ge=1)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    acquire_timeout_seconds: float = Field(5.0, gt=0)
    statement_timeout_ms: int = Field(15000, ge=0)
    idle_in_transaction_timeout_ms: int = Field(30000, ge=0)
    migrate_on_start: bool = True
    embedded_restart_max: int = Field(5, ge=0)  # failed restarts in a row before chatd exits


class ChatSettings(Section):
    guest_session_ttl_seconds: float = Field(86400.0, gt=0)
    user_session_ttl_seconds: float = Field(604800.0, gt=0)
    max_message_length: int = Field(1000, ge=1, le=100000)
    rate_limit_window_seconds: float = Field(60.0, gt=0)
    rate_limit_max: int = Field(10, ge=1)
    session_create_per_ip_max: int = Field(60, ge=1)
    session_create_per_ip_window_seconds: float = Field(60.0, gt=0)
    metadata_max_bytes: int = Field(4096, ge=2)
    metadata_max_depth: int = Field(5, ge=1, le=32)


class ActorSettings(Section):
    mailbox_size: int = Field(64, ge=1)
    idle_timeout_seconds: float = Field(300.0, gt=0)
    call_timeout_seconds: float = Field(10.0, gt=0)
    restart_backoff_max_seconds: float = Field(5.0, gt=0)


class IdentitySettings(Section):
    # empty: userId cannot be proven, so every session is a guest. HMAC-SHA256 keys shorter
    # than the hash (32 bytes) are weak (RFC 7518 3.2), so they are refused.
    secret: str = Field("", pattern=r"^(|.{32,})$")


class QueueSettings(Section):
    dispatch: bool = True  # false: take messages, leave delivery to other chatd processes
    concurrency: int = Field(5, ge=1, le=256)
    max_attempts: int = Field(3, ge=1, le=100)
    retry_base_delay_seconds: float = Field(1.0, gt=0)
    retry_max_delay_seconds: float = Field(300.0, gt=0)
    lease_seconds: float = Field(60.0, gt=0)
    poll_interval_seconds: float = Field(2.0, gt=0)


class WebsocketSettings(Section):
    heartbeat_interval_seconds: float = Field(30.0, gt=0)
    join_timeout_seconds: float = Field(10.0, gt=0)
    allowed_origins: str = ""  # comma-separated; empty: the server's own public origin
    max_frame_bytes: int = Field(16384, ge=1024, le=1 << 20)
    send_buffer: int = Field(256, ge=8)
    messages_per_second: float = Field(10.0, gt=0)
    max_connections_per_ip: int = Field(50, ge=1)
    long_poll_max_wait_seconds: float = Field(30.0, ge=0)

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip())


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class AdminSettings(Section):
    token: str = ""  # empty: the admin API is closed


class MetricsSettings(Section):
    listen: str = Field("", pattern=r"^(|\[?[^\s\]]*\]?:\d{1,5})$")  # "host:port"; empty: main port
    token: str = ""  # empty: /metrics needs no token


class MaintenanceSettings(Section):
    interval_seconds: float = Field(3600.0, ge=0)  # 0: no periodic cleanup (`chatd cleanup` only)
    batch_size: int = Field(1000, ge=1, le=100000)
    session_retention_days: float = Field(30.0, gt=0)
    completed_job_retention_days: float = Field(7.0, gt=0)
    dead_letter_retention_days: float = Field(30.0, gt=0)


class SearchSettings(Section):
    # A PostgreSQL text search configuration (SELECT cfgname FROM pg_ts_config); checked there
    # at start. Not reloadable: `chatd search reindex` moves stored messages to a new one.
    language: str = Field("simple", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
