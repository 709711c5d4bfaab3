"""The whole Settings, one field per section, and what a reload (SIGHUP) may change."""

from __future__ import annotations

from chatd.settings.attachments import AttachmentSettings
from chatd.settings.base import Section
from chatd.settings.n8n import N8nChatSettings, N8nSettings
from chatd.settings.service import (
    ActorSettings,
    AdminSettings,
    ChatSettings,
    DatabaseSettings,
    IdentitySettings,
    LogSettings,
    MaintenanceSettings,
    MetricsSettings,
    QueueSettings,
    SearchSettings,
    ServerSettings,
    WebsocketSettings,
)
from chatd.settings.staff import AlertEmailSettings, AlertSettings, CsatSettings, InboxSettings


class Settings(Section):
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
