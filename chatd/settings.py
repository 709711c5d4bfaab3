"""One typed, frozen Settings, strongest last: defaults < config file < systemd credentials
(files named `<section>.<key>` in $CREDENTIALS_DIRECTORY, e.g. `admin.token`) < the guide's env
names < CHATD_<SECTION>__<KEY>.

Every key is documented in the repo's config.toml. Unknown sections or keys and bad values raise
ConfigError naming the key and where it came from (file or environment variable).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from chatd.core.csat import Ending, parse_ask_on
from chatd.core.forwarded import ProxyTrust, parse_networks
from chatd.core.hours import DAYS, BusinessHours, parse_day, parse_holidays, parse_zone
from chatd.core.signing import decode_secret
from chatd.core.urls import without_secrets
from chatd.errors import ConfigError


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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ServerSettings(_Section):
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


class DatabaseSettings(_Section):
    url: PostgresUrl = ""  # empty: embedded PostgreSQL in the state directory
    pool_min_size: int = Field(2, ge=0)
    pool_max_size: int = Field(10, ge=1)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    acquire_timeout_seconds: float = Field(5.0, gt=0)
    statement_timeout_ms: int = Field(15000, ge=0)
    idle_in_transaction_timeout_ms: int = Field(30000, ge=0)
    migrate_on_start: bool = True
    embedded_restart_max: int = Field(5, ge=0)  # failed restarts in a row before chatd exits


class ChatSettings(_Section):
    guest_session_ttl_seconds: float = Field(86400.0, gt=0)
    user_session_ttl_seconds: float = Field(604800.0, gt=0)
    max_message_length: int = Field(1000, ge=1, le=100000)
    rate_limit_window_seconds: float = Field(60.0, gt=0)
    rate_limit_max: int = Field(10, ge=1)
    session_create_per_ip_max: int = Field(60, ge=1)
    session_create_per_ip_window_seconds: float = Field(60.0, gt=0)
    metadata_max_bytes: int = Field(4096, ge=2)
    metadata_max_depth: int = Field(5, ge=1, le=32)


class ActorSettings(_Section):
    mailbox_size: int = Field(64, ge=1)
    idle_timeout_seconds: float = Field(300.0, gt=0)
    call_timeout_seconds: float = Field(10.0, gt=0)
    restart_backoff_max_seconds: float = Field(5.0, gt=0)


class IdentitySettings(_Section):
    # empty: userId cannot be proven, so every session is a guest. HMAC-SHA256 keys shorter
    # than the hash (32 bytes) are weak (RFC 7518 3.2), so they are refused.
    secret: str = Field("", pattern=r"^(|.{32,})$")


# Headers chatd sets on every request to n8n: an auth header may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "accept-encoding",
        "connection",
        "content-length",
        "content-type",
        "host",
        "transfer-encoding",
        "user-agent",
        "webhook-id",
        "webhook-signature",
        "webhook-timestamp",
        "x-chatd-attempt",
        "x-webhook-secret",
    }
)


class N8nSettings(_Section):
    webhook_url: HttpUrl = ""  # empty: the built-in demo bot answers
    webhook_secret: str = ""
    previous_secrets: str = ""  # comma-separated older secrets still accepted while rotating
    mode: Literal["webhook", "chat_trigger"] = "webhook"
    timeout_seconds: float = Field(10.0, gt=0)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    max_response_bytes: int = Field(1048576, ge=1024)
    max_reply_length: int = Field(4000, ge=1)
    fallback_reply: str = Field(
        "Sorry, I can't answer right now. Please try again in a moment.", min_length=1
    )
    stream_idle_timeout_seconds: float = Field(60.0, gt=0)
    stream_max_seconds: float = Field(300.0, gt=0)
    basic_auth_user: str = Field("", pattern=r"^[^:\r\n]*$")  # RFC 7617: no colon in the user
    basic_auth_password: str = Field("", pattern=r"^[^\r\n]*$")
    auth_header_name: str = Field("", pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]*$")  # an HTTP token
    auth_header_value: str = Field("", pattern=r"^[ -~]*$")  # printable ASCII: an HTTP value

    @model_validator(mode="after")
    def _secrets_decode(self) -> N8nSettings:
        for secret in self.secrets:
            decode_secret(secret)  # a "whsec_" secret must be valid base64
        return self

    @model_validator(mode="after")
    def _auth(self) -> N8nSettings:
        if self.basic_auth_password and not self.basic_auth_user:
            raise ValueError("n8n.basic_auth_password needs n8n.basic_auth_user")
        if self.basic_auth_user and urlsplit(self.webhook_url).username is not None:
            raise ValueError(
                "n8n.webhook_url carries a user and password already: set either those or"
                " n8n.basic_auth_user, not both"
            )
        if bool(self.auth_header_name) != bool(self.auth_header_value):
            raise ValueError("n8n.auth_header_name and n8n.auth_header_value go together")
        name = self.auth_header_name.lower()
        if name in RESERVED_HEADERS:
            raise ValueError(
                f"n8n.auth_header_name {self.auth_header_name!r} is a header chatd sets itself"
                + (
                    " (n8n.webhook_secret is sent as X-Webhook-Secret)"
                    if name == "x-webhook-secret"
                    else ""
                )
            )
        if name == "authorization" and self.basic_auth_user:
            raise ValueError("set either n8n.basic_auth_user or an Authorization auth header")
        return self

    @property
    def secrets(self) -> tuple[str, ...]:
        """Active secrets, newest first: the first signs, all are accepted."""
        older = (s.strip() for s in self.previous_secrets.split(","))
        return tuple(s for s in (self.webhook_secret, *older) if s)


class N8nChatSettings(_Section):
    enabled: bool = False  # POST/GET /api/n8n-chat for n8n's own widget (@n8n/chat); off: 404
    reply_timeout_seconds: float = Field(30.0, gt=0, le=300)
    timeout_reply: str = Field(
        "Thanks! Your answer is taking a little longer; it will be here when you reopen the chat.",
        min_length=1,
    )


class QueueSettings(_Section):
    dispatch: bool = True  # false: take messages, leave delivery to other chatd processes
    concurrency: int = Field(5, ge=1, le=256)
    max_attempts: int = Field(3, ge=1, le=100)
    retry_base_delay_seconds: float = Field(1.0, gt=0)
    retry_max_delay_seconds: float = Field(300.0, gt=0)
    lease_seconds: float = Field(60.0, gt=0)
    poll_interval_seconds: float = Field(2.0, gt=0)


class WebsocketSettings(_Section):
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


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class AdminSettings(_Section):
    token: str = ""  # empty: the admin API is closed


ALWAYS = "00:00-24:00"


class InboxSettings(_Section):
    # A signed-in browser unused this long is signed out (the staff inbox, /inbox).
    session_idle_seconds: float = Field(7200.0, gt=0)
    # Business hours (chatd/core/hours.py): the shop's IANA time zone, each day's opening
    # ranges ("09:00-12:00, 13:00-17:00", "00:00-24:00" or "closed"), holidays (YYYY-MM-DD, ...).
    time_zone: str = "UTC"
    mon: str = ALWAYS
    tue: str = ALWAYS
    wed: str = ALWAYS
    thu: str = ALWAYS
    fri: str = ALWAYS
    sat: str = ALWAYS
    sun: str = ALWAYS
    holidays: str = ""
    expected_reply: str = Field("a few hours", min_length=1, max_length=100)
    presence_ttl_seconds: float = Field(60.0, ge=3)  # an agent's socket unheard of this long: gone
    handoff_check_interval_seconds: float = Field(1.0, gt=0)
    waiting_alert_seconds: float = Field(0.0, ge=0)  # 0: no alert for a long wait
    _hours: BusinessHours | None = PrivateAttr(default=None)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        parse_zone(value)
        return value

    @field_validator("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    @classmethod
    def _day(cls, value: str) -> str:
        parse_day(value)
        return value

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: str) -> str:
        parse_holidays(value)
        return value

    @model_validator(mode="after")
    def _build_hours(self) -> InboxSettings:
        week = tuple(parse_day(getattr(self, day)) for day in DAYS)
        zone = parse_zone(self.time_zone)
        self._hours = BusinessHours(zone, week, parse_holidays(self.holidays))
        return self

    @property
    def hours(self) -> BusinessHours:
        assert self._hours is not None  # built by the validator above
        return self._hours


class MetricsSettings(_Section):
    listen: str = Field("", pattern=r"^(|\[?[^\s\]]*\]?:\d{1,5})$")  # "host:port"; empty: main port
    token: str = ""  # empty: /metrics needs no token


class AlertSettings(_Section):
    webhook_url: HttpUrl = ""  # Slack-compatible incoming webhook; empty: alerts are only logged
    interval_seconds: float = Field(60.0, gt=0)
    window_seconds: float = Field(300.0, gt=0)
    timeout_seconds: float = Field(10.0, gt=0)
    failure_rate: float = Field(0.05, ge=0, le=1)
    failure_min_attempts: int = Field(20, ge=1)
    failure_rate_cooldown_seconds: float = Field(900.0, ge=0)
    queue_delay_seconds: float = Field(30.0, gt=0)
    queue_delay_cooldown_seconds: float = Field(600.0, ge=0)
    response_time_seconds: float = Field(5.0, gt=0)
    response_time_cooldown_seconds: float = Field(300.0, ge=0)


class AlertEmailSettings(_Section):
    # Alerts about shoppers waiting for a person, also by email (the alerts webhook gets them too).
    host: str = ""  # SMTP server; empty: no email
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""  # empty: no AUTH
    password: str = ""
    sender: str = Field("", pattern=r"^(|[^\s@]+@[^\s@]+)$")
    recipients: str = ""  # comma-separated addresses
    timeout_seconds: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> AlertEmailSettings:
        if self.host and not (self.sender and self.to):
            raise ValueError("alert_email.host needs alert_email.sender and alert_email.recipients")
        if self.password and not self.username:
            raise ValueError("alert_email.password needs alert_email.username")
        for address in self.to:
            if "@" not in address or any(c.isspace() for c in address):
                raise ValueError(f"alert_email.recipients: {address!r} is not an email address")
        return self

    @property
    def to(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.recipients.split(",") if a.strip())


class MaintenanceSettings(_Section):
    interval_seconds: float = Field(3600.0, ge=0)  # 0: no periodic cleanup (`chatd cleanup` only)
    batch_size: int = Field(1000, ge=1, le=100000)
    session_retention_days: float = Field(30.0, gt=0)
    completed_job_retention_days: float = Field(7.0, gt=0)
    dead_letter_retention_days: float = Field(30.0, gt=0)


class SearchSettings(_Section):
    # A PostgreSQL text search configuration (SELECT cfgname FROM pg_ts_config); checked there
    # at start. Not reloadable: `chatd search reindex` moves stored messages to a new one.
    language: str = Field("simple", pattern=r"^[a-z_][a-z0-9_]{0,62}$")


class CsatSettings(_Section):
    enabled: bool = True  # false: no rating is asked for or accepted
    ask_on: str = "shopper,staff,expired"  # the endings after which the widget asks (any of these)
    _ask_on: frozenset[Ending] = PrivateAttr(default_factory=frozenset)

    @field_validator("ask_on")
    @classmethod
    def _endings(cls, value: str) -> str:
        parse_ask_on(value)
        return value

    @model_validator(mode="after")
    def _parse(self) -> CsatSettings:
        self._ask_on = parse_ask_on(self.ask_on)
        return self

    @property
    def endings(self) -> frozenset[Ending]:
        """The endings after which a rating is asked for."""
        return self._ask_on


ATTACHMENT_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "application/pdf",
    "text/plain",
)


class AttachmentSettings(_Section):
    enabled: bool = True
    storage: Literal["postgres", "disk"] = "postgres"
    directory: str = ""  # storage = "disk": an absolute path, created if missing
    max_file_bytes: int = Field(10 * 1024 * 1024, ge=1, le=1 << 40)
    max_files_per_message: int = Field(5, ge=1, le=20)
    session_bytes_per_day: int = Field(50 * 1024 * 1024, ge=1)
    max_total_bytes: int = Field(0, ge=0)  # 0: unlimited
    allowed_types: str = ",".join(ATTACHMENT_TYPES)  # comma-separated, a subset of those
    url_ttl_seconds: float = Field(3600.0, ge=60, le=7 * 86400)
    url_secret: str = Field("", pattern=r"^(|.{32,})$")  # empty: generated once, in the database
    thumbnail_pixels: int = Field(320, ge=16, le=2048)
    max_image_pixels: int = Field(50_000_000, ge=1)
    image_threads: int = Field(2, ge=1, le=64)

    @field_validator("allowed_types")
    @classmethod
    def _known_types(cls, value: str) -> str:
        unknown = [t for t in _split(value) if t not in ATTACHMENT_TYPES]
        if unknown:
            raise ValueError(
                f"unknown type(s) {', '.join(unknown)}; choose among {', '.join(ATTACHMENT_TYPES)}"
            )
        return value

    @model_validator(mode="after")
    def _directory(self) -> AttachmentSettings:
        if self.storage == "disk" and not Path(self.directory).is_absolute():
            raise ValueError('storage = "disk" needs attachments.directory, an absolute path')
        return self

    @property
    def types(self) -> frozenset[str]:
        return frozenset(_split(self.allowed_types))


def _split(value: str) -> list[str]:
    return [item.strip().lower() for item in value.split(",") if item.strip()]


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    chat: ChatSettings = ChatSettings()
    actors: ActorSettings = ActorSettings()
    identity: IdentitySettings = IdentitySettings()
    n8n: N8nSettings = N8nSettings()
    n8n_chat: N8nChatSettings = N8nChatSettings()
    queue: QueueSettings = QueueSettings()
    websocket: WebsocketSettings = WebsocketSettings()
    log: LogSettings = LogSettings()
    admin: AdminSettings = AdminSettings()
    inbox: InboxSettings = InboxSettings()
    metrics: MetricsSettings = MetricsSettings()
    alerts: AlertSettings = AlertSettings()
    alert_email: AlertEmailSettings = AlertEmailSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    search: SearchSettings = SearchSettings()
    csat: CsatSettings = CsatSettings()
    attachments: AttachmentSettings = AttachmentSettings()

    @property
    def public_url(self) -> str:
        return self.server.public_url.rstrip("/") or f"http://{self.server.host}:{self.server.port}"


# What SIGHUP (`systemctl reload chatd`) may change in a running chatd: what is read where it is
# used. Loggers are cached on first use, so [log] is not among them.
RELOADABLE = (
    "admin",
    "inbox",
    "metrics.token",
    "alerts",
    "alert_email",
    "maintenance",
    "csat",
)


def reload_settings(current: Settings, new: Settings) -> tuple[Settings, list[str]]:
    """(`current` with the reloadable parts of `new`, the other changed keys: need a restart)."""
    merged = current.model_dump()
    fresh = new.model_dump()
    restart: list[str] = []
    for section, keys in fresh.items():
        for key, value in keys.items():
            if value == merged[section][key]:
                continue
            if section in RELOADABLE or f"{section}.{key}" in RELOADABLE:
                merged[section][key] = value
            else:
                restart.append(f"{section}.{key}")
    return Settings.model_validate(merged), restart


def _ms(value: str) -> float:
    return float(value) / 1000.0


# The original guide's environment names, with their units converted to ours.
GUIDE_ENV: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "DATABASE_URL": ("database", "url", str),
    "CHAT_WEBHOOK_SECRET": ("n8n", "webhook_secret", str),
    "CHAT_N8N_WEBHOOK_URL": ("n8n", "webhook_url", str),
    "CHAT_SESSION_TIMEOUT": ("chat", "guest_session_ttl_seconds", _ms),
    "CHAT_MAX_MESSAGE_LENGTH": ("chat", "max_message_length", str),
    "CHAT_RATE_LIMIT_WINDOW": ("chat", "rate_limit_window_seconds", _ms),
    "CHAT_RATE_LIMIT_MAX": ("chat", "rate_limit_max", str),
    "CHAT_QUEUE_WORKER_CONCURRENCY": ("queue", "concurrency", str),
    "CHAT_QUEUE_RETRY_ATTEMPTS": ("queue", "max_attempts", str),
    "CHAT_QUEUE_RETRY_DELAY": ("queue", "retry_base_delay_seconds", _ms),
    "WEBSOCKET_HEARTBEAT_INTERVAL": ("websocket", "heartbeat_interval_seconds", _ms),
    "CHAT_LOG_LEVEL": ("log", "level", str.lower),
}

ENV_PREFIX = "CHATD_"
CREDENTIAL_PREFIX = "chatd_"  # systemd/chatd.service: LoadCredential=chatd:/etc/chatd/credentials
# Never echoed in errors (a URL may carry a password: https://user:password@n8n.example/...).
_SECRET_KEYS = frozenset(
    {
        "secret",
        "webhook_secret",
        "previous_secrets",
        "token",
        "url",  # the database's: a DSN may carry its password anywhere
        "basic_auth_password",
        "auth_header_value",
        "url_secret",
        "password",
    }
)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from an optional TOML file and the environment; ConfigError if unusable."""
    env = os.environ if environ is None else environ
    raw: dict[str, dict[str, Any]] = {}
    origin: dict[tuple[str, str], str] = {}
    if path is not None:
        for section, keys in _read_toml(path).items():
            if not isinstance(keys, dict):
                raise ConfigError(f"{path}: [{section}] must be a table of keys")
            for key, value in keys.items():
                raw.setdefault(section, {})[key] = value
                origin[(section, key)] = f"{path}: {section}.{key}"
    if credentials := env.get("CREDENTIALS_DIRECTORY"):
        for (section, key), (value, where) in _read_credentials(Path(credentials)).items():
            raw.setdefault(section, {})[key] = value
            origin[(section, key)] = where
    for name, (section, key, convert) in GUIDE_ENV.items():
        if name in env:
            try:
                raw.setdefault(section, {})[key] = convert(env[name])
            except ValueError:
                raise ConfigError(f"environment {name}: not a number: {env[name]!r}") from None
            origin[(section, key)] = f"environment {name}"
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        raw.setdefault(section, {})[key] = value
        origin[(section, key)] = f"environment {name}"
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, path)) from None


def _read_credentials(directory: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """{(section, key): (value, where)} from systemd's credential files (LoadCredential=).

    A directory loaded as `LoadCredential=chatd:/etc/chatd/credentials` names its files
    `chatd_<file>`: that prefix is dropped. Files without a dot in their name are not settings
    (another program's credentials) and are left alone; a dotted name that is no setting is
    reported like an unknown key.
    """
    found: dict[tuple[str, str], tuple[str, str]] = {}
    try:
        files = sorted(p for p in directory.iterdir() if p.is_file())
    except OSError as exc:
        raise ConfigError(f"CREDENTIALS_DIRECTORY {directory}: cannot be read ({exc})") from None
    for path in files:
        section, dot, key = path.name.removeprefix(CREDENTIAL_PREFIX).partition(".")
        if not dot:
            continue
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")  # `echo` adds a newline
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"credential {path}: cannot be read ({exc})") from None
        found[(section, key)] = (value, f"credential {path.name}")
    return found


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _describe(
    exc: ValidationError, origin: Mapping[tuple[str, str], str], path: Path | None
) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        section, key = [*loc, "", ""][:2]
        where = origin.get((section, key)) or next(
            (src for (s, _), src in origin.items() if s == section and not key),
            f"{path or 'settings'}: {'.'.join(loc)}",
        )
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown {'key' if key else 'section'} (see config.toml)")
        else:
            message = err["msg"].removeprefix("Value error, ")
            if not key:  # a rule over the section: its input is every key, secrets included
                lines.append(f"{where}: {message}")
                continue
            value = err.get("input")
            if key in _SECRET_KEYS:
                shown = "hidden"
            elif key == "webhook_url" and isinstance(value, str):  # the place, not the password
                shown = repr(without_secrets(value))
            else:
                shown = repr(value)
            lines.append(f"{where}: {message} (got {shown})")
    return "\n".join(lines)
