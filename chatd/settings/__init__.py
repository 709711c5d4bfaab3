"""One typed, frozen Settings, strongest last: defaults < config file < systemd credentials
(files named `<section>.<key>` in $CREDENTIALS_DIRECTORY, e.g. `admin.token`) < the guide's env
names < CHATD_<SECTION>__<KEY>.

Every key is documented in the repo's config.toml. Unknown sections or keys and bad values raise
ConfigError naming the key and where it came from (file or environment variable).

The sections live in base, service, n8n, staff and attachments; the whole in model; where values
come from in sources; load_settings in loading. Import them from here.
"""

from chatd.settings.attachments import ATTACHMENT_TYPES, AttachmentSettings
from chatd.settings.base import HttpUrl, PostgresUrl, Section, check_http_url
from chatd.settings.loading import load_settings
from chatd.settings.model import RELOADABLE, Settings, reload_settings
from chatd.settings.n8n import RESERVED_HEADERS, N8nChatSettings, N8nSettings
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
from chatd.settings.sources import CREDENTIAL_PREFIX, ENV_PREFIX, GUIDE_ENV
from chatd.settings.staff import (
    ALWAYS,
    AlertEmailSettings,
    AlertSettings,
    CsatSettings,
    InboxSettings,
)

__all__ = [
    "ALWAYS",
    "ATTACHMENT_TYPES",
    "CREDENTIAL_PREFIX",
    "ENV_PREFIX",
    "GUIDE_ENV",
    "RELOADABLE",
    "RESERVED_HEADERS",
    "ActorSettings",
    "AdminSettings",
    "AlertEmailSettings",
    "AlertSettings",
    "AttachmentSettings",
    "ChatSettings",
    "CsatSettings",
    "DatabaseSettings",
    "HttpUrl",
    "IdentitySettings",
    "InboxSettings",
    "LogSettings",
    "MaintenanceSettings",
    "MetricsSettings",
    "N8nChatSettings",
    "N8nSettings",
    "PostgresUrl",
    "QueueSettings",
    "SearchSettings",
    "Section",
    "ServerSettings",
    "Settings",
    "WebsocketSettings",
    "check_http_url",
    "load_settings",
    "reload_settings",
]
