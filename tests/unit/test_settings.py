"""Settings: defaults < config file < the guide's env names < CHATD_<SECTION>__<KEY>; errors named."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from chatd.errors import ConfigError
from chatd.settings import GUIDE_ENV, Settings, load_settings, reload_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chatd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path | None, environ: dict[str, str], *needles: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ)
    message = str(info.value)
    for needle in needles:
        assert needle in message
    return message


def test_defaults() -> None:
    s = load_settings(None, {})
    assert s == Settings()
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8000)
    assert s.chat.max_message_length == 1000
    assert (s.chat.rate_limit_max, s.chat.rate_limit_window_seconds) == (10, 60.0)
    assert (s.queue.max_attempts, s.queue.concurrency) == (3, 5)
    assert s.chat.guest_session_ttl_seconds == 86400
    assert s.chat.user_session_ttl_seconds == 604800
    assert s.database.url == ""
    assert s.identity.secret == ""
    assert s.log.level == "info"


def test_public_url_defaults_to_host_and_port() -> None:
    assert Settings().public_url == "http://127.0.0.1:8000"
    s = load_settings(None, {"CHATD_SERVER__HOST": "0.0.0.0", "CHATD_SERVER__PORT": "9000"})
    assert s.public_url == "http://0.0.0.0:9000"
    s = load_settings(None, {"CHATD_SERVER__PUBLIC_URL": "https://chat.shop.example/"})
    assert s.public_url == "https://chat.shop.example"


def test_file_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[server]
port = 9100
trust_forwarded_for = true

[chat]
max_message_length = 2000
rate_limit_window_seconds = 30.5

[log]
level = "debug"
""",
    )
    s = load_settings(path, {})
    assert s.server.port == 9100
    assert s.server.trust_forwarded_for is True
    assert s.chat.max_message_length == 2000
    assert s.chat.rate_limit_window_seconds == 30.5
    assert s.log.level == "debug"
    assert s.server.host == "127.0.0.1"  # untouched keys keep their defaults
    assert s.queue == Settings().queue


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, ""), {}) == Settings()


def test_chatd_env_beats_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9100\nhost = '10.0.0.1'\n")
    s = load_settings(
        path, {"CHATD_SERVER__PORT": "9200", "CHATD_DATABASE__MIGRATE_ON_START": "false"}
    )
    assert s.server.port == 9200
    assert s.server.host == "10.0.0.1"
    assert s.database.migrate_on_start is False


def test_process_environment_is_read_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATD_SERVER__PORT", "9301")
    assert load_settings(None, None).server.port == 9301


def test_guide_env_names_with_unit_conversion() -> None:
    s = load_settings(
        None,
        {
            "DATABASE_URL": "postgresql://chat@db/chat",
            "CHAT_WEBHOOK_SECRET": "whsec",
            "CHAT_N8N_WEBHOOK_URL": "https://n8n.example/webhook/chat",
            "CHAT_SESSION_TIMEOUT": "3600000",
            "CHAT_MAX_MESSAGE_LENGTH": "500",
            "CHAT_RATE_LIMIT_WINDOW": "30000",
            "CHAT_RATE_LIMIT_MAX": "20",
            "CHAT_QUEUE_WORKER_CONCURRENCY": "8",
            "CHAT_QUEUE_RETRY_ATTEMPTS": "7",
            "CHAT_QUEUE_RETRY_DELAY": "2500",
            "WEBSOCKET_HEARTBEAT_INTERVAL": "15000",
            "CHAT_LOG_LEVEL": "INFO",
        },
    )
    assert s.database.url == "postgresql://chat@db/chat"
    assert s.n8n.webhook_secret == "whsec"
    assert s.n8n.webhook_url == "https://n8n.example/webhook/chat"
    assert s.chat.guest_session_ttl_seconds == 3600.0
    assert s.chat.user_session_ttl_seconds == 604800.0  # the guide's timeout is for guests
    assert s.chat.max_message_length == 500
    assert s.chat.rate_limit_window_seconds == 30.0
    assert s.chat.rate_limit_max == 20
    assert s.queue.concurrency == 8
    assert s.queue.max_attempts == 7
    assert s.queue.retry_base_delay_seconds == 2.5
    assert s.websocket.heartbeat_interval_seconds == 15.0
    assert s.log.level == "info"


def test_every_guide_env_name_maps_to_a_real_setting() -> None:
    sections = Settings.model_fields
    for name, (section, key, _convert) in GUIDE_ENV.items():
        assert section in sections, name
        assert key in type(getattr(Settings(), section)).model_fields, name


def test_guide_env_beats_file_and_chatd_env_beats_guide_env(tmp_path: Path) -> None:
    path = write(tmp_path, "[chat]\nrate_limit_max = 11\nguest_session_ttl_seconds = 100.0\n")
    s = load_settings(path, {"CHAT_RATE_LIMIT_MAX": "12", "CHAT_SESSION_TIMEOUT": "5000"})
    assert s.chat.rate_limit_max == 12
    assert s.chat.guest_session_ttl_seconds == 5.0
    s = load_settings(
        path,
        {
            "CHAT_RATE_LIMIT_MAX": "12",
            "CHATD_CHAT__RATE_LIMIT_MAX": "13",
            "CHAT_SESSION_TIMEOUT": "5000",
            "CHATD_CHAT__GUEST_SESSION_TTL_SECONDS": "7",
        },
    )
    assert s.chat.rate_limit_max == 13
    assert s.chat.guest_session_ttl_seconds == 7.0


def test_unrelated_environment_is_ignored() -> None:
    environ = {"PATH": "/bin", "CHATD_TEST_DATABASE_URL": "postgresql://x", "CHATD_CONFIG": "x"}
    assert load_settings(None, environ) == Settings()


def test_unknown_key_in_file_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[chat]\nmax_mesage_length = 5\n")
    config_error(path, {}, str(path), "chat.max_mesage_length", "unknown key")


def test_unknown_section_in_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[chats]\nmax_message_length = 5\n")
    config_error(path, {}, str(path), "chats", "unknown section")


def test_section_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "server = 8000\n")
    config_error(path, {}, str(path), "[server]")


def test_unknown_env_key_names_the_variable() -> None:
    config_error(None, {"CHATD_CHAT__NOPE": "1"}, "CHATD_CHAT__NOPE", "unknown key")


def test_unknown_env_section_names_the_variable() -> None:
    config_error(None, {"CHATD_NOPE__PORT": "1"}, "CHATD_NOPE__PORT", "unknown section")


def test_bad_value_in_file_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = -1\n")
    config_error(path, {}, str(path), "server.port", "-1")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CHATD_SERVER__PORT", "abc"),
        ("CHATD_SERVER__PORT", "70000"),
        ("CHATD_QUEUE__CONCURRENCY", "0"),
        ("CHATD_LOG__LEVEL", "loud"),
        ("CHATD_SERVER__TRUST_FORWARDED_FOR", "maybe"),
        ("CHAT_MAX_MESSAGE_LENGTH", "abc"),
        ("CHAT_RATE_LIMIT_MAX", "0"),
        ("CHAT_LOG_LEVEL", "LOUD"),
        ("CHAT_SESSION_TIMEOUT", "-5"),
    ],
)
def test_bad_env_value_names_the_variable(name: str, value: str) -> None:
    config_error(None, {name: value}, f"environment {name}")


@pytest.mark.parametrize(
    "name", ["CHAT_SESSION_TIMEOUT", "CHAT_RATE_LIMIT_WINDOW", "WEBSOCKET_HEARTBEAT_INTERVAL"]
)
def test_non_numeric_millisecond_env_names_the_variable(name: str) -> None:
    config_error(None, {name: "soon"}, name, "soon")


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\nport = \n")
    config_error(path, {}, str(path), "not valid TOML")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    config_error(path, {}, str(path), "not found")


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.server = s.server  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.server.port = 1  # type: ignore[misc]


def test_identity_secret_is_empty_or_at_least_32_characters() -> None:
    assert load_settings(None, {}).identity.secret == ""
    secret = "k" * 32
    assert load_settings(None, {"CHATD_IDENTITY__SECRET": secret}).identity.secret == secret
    config_error(None, {"CHATD_IDENTITY__SECRET": "k" * 31}, "environment CHATD_IDENTITY__SECRET")


def test_infinite_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="CHAT_SESSION_TIMEOUT"):
        load_settings(None, {"CHAT_SESSION_TIMEOUT": "inf"})


def test_errors_never_echo_secrets() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"CHATD_IDENTITY__SECRET": "short-but-secret"})
    assert "CHATD_IDENTITY__SECRET" in str(caught.value)
    assert "short-but-secret" not in str(caught.value)


def test_systemd_credentials_set_secrets_between_file_and_environment(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "admin.token").write_text("from-credential\n")  # `echo token > file` adds a newline
    (creds / "chatd_n8n.webhook_secret").write_text("s" * 40)  # loaded as a directory
    (creds / "unrelated").write_text("another program's")
    config = tmp_path / "config.toml"
    config.write_text('[admin]\ntoken = "from-file"\n[n8n]\nwebhook_secret = "file-secret"\n')
    settings = load_settings(config, {"CREDENTIALS_DIRECTORY": str(creds)})
    assert settings.admin.token == "from-credential"
    assert settings.n8n.webhook_secret == "s" * 40
    env = {"CREDENTIALS_DIRECTORY": str(creds), "CHATD_ADMIN__TOKEN": "from-env"}
    assert load_settings(config, env).admin.token == "from-env"


def test_a_misnamed_credential_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "admin.tokn").write_text("x")
    with pytest.raises(ConfigError, match=r"credential admin\.tokn: unknown key"):
        load_settings(None, {"CREDENTIALS_DIRECTORY": str(tmp_path)})


def test_reload_takes_what_is_safe_and_names_what_needs_a_restart() -> None:
    current = Settings()
    new = Settings.model_validate(
        {
            "log": {"level": "debug"},  # cached in every logger: at the next start
            "admin": {"token": "new-admin"},
            "metrics": {"token": "new-prom", "listen": "127.0.0.1:9100"},
            "alerts": {"webhook_url": "https://hooks.example/x"},
            "server": {"port": 9000},
        }
    )
    merged, restart = reload_settings(current, new)
    assert merged.log.level == "info"
    assert merged.admin.token == "new-admin"
    assert merged.metrics.token == "new-prom"
    assert merged.alerts.webhook_url == "https://hooks.example/x"
    assert merged.metrics.listen == ""
    assert merged.server.port == 8000
    assert sorted(restart) == ["log.level", "metrics.listen", "server.port"]
    assert reload_settings(current, current) == (current, [])


@pytest.mark.parametrize(
    "url", ["not a url", "ftp://n8n.example/webhook/x", "localhost:5678/webhook/x", "https://"]
)
def test_webhook_urls_must_be_absolute_http_urls(url: str) -> None:
    for env in ("CHATD_N8N__WEBHOOK_URL", "CHATD_ALERTS__WEBHOOK_URL"):
        with pytest.raises(ConfigError, match=f"environment {env}: not an http:// or https://"):
            load_settings(environ={env: url})


def test_good_webhook_urls_are_kept() -> None:
    for url in ("", "http://localhost:5678/webhook/chatd", "https://n8n.example/webhook/x?a=1"):
        assert load_settings(environ={"CHATD_N8N__WEBHOOK_URL": url}).n8n.webhook_url == url


def test_database_url_must_look_like_postgresql_and_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"DATABASE_URL": "mysql://root:hunter2@db/shop"})
    assert str(caught.value) == (
        "environment DATABASE_URL: not a PostgreSQL URL; write it as"
        " postgresql://user:password@host:5432/dbname (got hidden)"
    )
    for url in ("postgresql://u:p@db:5432/shop", "postgres://db/shop", "host=/run/pg dbname=x"):
        assert load_settings(environ={"DATABASE_URL": url}).database.url == url


def test_trusted_proxies_and_hops(tmp_path: Path) -> None:
    assert Settings().server.proxy_trust.ignores_header  # by default nobody is believed
    old = load_settings(write(tmp_path, "[server]\ntrust_forwarded_for = true\n"), {})
    assert (old.server.proxy_trust.hops, old.server.proxy_trust.networks) == (1, ())
    hops = load_settings(None, {"CHATD_SERVER__TRUSTED_PROXY_HOPS": "2"})
    assert hops.server.proxy_trust.hops == 2
    nets = load_settings(None, {"CHATD_SERVER__TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"})
    assert [str(n) for n in nets.server.proxy_trust.networks] == ["127.0.0.1/32", "10.0.0.0/8"]
    assert nets.server.proxy_trust.hops == 0


def test_a_bad_trusted_proxy_network_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\ntrusted_proxies = "127.0.0.1, 10.0.0.0/33"\n')
    config_error(path, {}, "server.trusted_proxies", "'10.0.0.0/33' is not an IP network")
    config_error(
        None,
        {"CHATD_SERVER__TRUSTED_PROXIES": "proxy.lan"},
        "CHATD_SERVER__TRUSTED_PROXIES",
        "'proxy.lan' is not an IP network",
    )
    config_error(
        None, {"CHATD_SERVER__TRUSTED_PROXY_HOPS": "-1"}, "CHATD_SERVER__TRUSTED_PROXY_HOPS"
    )


def test_trusted_proxies_and_hops_together_are_refused(tmp_path: Path) -> None:
    both = '[server]\ntrusted_proxy_hops = 1\ntrusted_proxies = "127.0.0.1"\n'
    config_error(write(tmp_path, both), {}, "server.trusted_proxies", "not both")
    config_error(
        None,
        {"CHATD_SERVER__TRUST_FORWARDED_FOR": "true", "CHATD_SERVER__TRUSTED_PROXIES": "::1"},
        "not both",
    )


def test_n8n_auth_from_systemd_credentials_and_its_rules(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "n8n.basic_auth_user").write_text("chatd\n")
    (creds / "n8n.basic_auth_password").write_text("s3cret-pässword\n")
    n8n = load_settings(None, {"CREDENTIALS_DIRECTORY": str(creds)}).n8n
    assert (n8n.basic_auth_user, n8n.basic_auth_password) == ("chatd", "s3cret-pässword")
    url = "CHATD_N8N__WEBHOOK_URL"
    for environ, needle in [
        ({"CHATD_N8N__BASIC_AUTH_PASSWORD": "hunter2"}, "needs n8n.basic_auth_user"),
        (
            {url: "https://u:hunter2@n8n.example/webhook/x", "CHATD_N8N__BASIC_AUTH_USER": "u"},
            "carries a user and password already",
        ),
        ({"CHATD_N8N__AUTH_HEADER_NAME": "X-Key"}, "go together"),
        ({"CHATD_N8N__AUTH_HEADER_VALUE": "hunter2"}, "go together"),
        (
            {
                "CHATD_N8N__AUTH_HEADER_NAME": "x-webhook-secret",
                "CHATD_N8N__AUTH_HEADER_VALUE": "hunter2",
            },
            "n8n.webhook_secret is sent as X-Webhook-Secret",
        ),
        (
            {
                "CHATD_N8N__AUTH_HEADER_NAME": "Content-Type",
                "CHATD_N8N__AUTH_HEADER_VALUE": "hunter2",
            },
            "a header chatd sets itself",
        ),
        (
            {"CHATD_N8N__AUTH_HEADER_NAME": "X Key", "CHATD_N8N__AUTH_HEADER_VALUE": "hunter2"},
            "CHATD_N8N__AUTH_HEADER_NAME",
        ),
        (
            {"CHATD_N8N__AUTH_HEADER_NAME": "X-Key", "CHATD_N8N__AUTH_HEADER_VALUE": "hünter2"},
            "CHATD_N8N__AUTH_HEADER_VALUE",
        ),
        (
            {"CHATD_N8N__BASIC_AUTH_USER": "a:b", "CHATD_N8N__BASIC_AUTH_PASSWORD": "hunter2"},
            "USER",
        ),
    ]:
        message = config_error(None, environ, needle)
        assert "hunter2" not in message
        assert "hünter2" not in message


def test_stream_limits_are_positive_seconds() -> None:
    n8n = load_settings(None, {}).n8n
    assert (n8n.stream_idle_timeout_seconds, n8n.stream_max_seconds) == (60.0, 300.0)
    config_error(None, {"CHATD_N8N__STREAM_IDLE_TIMEOUT_SECONDS": "0"}, "greater than 0")
    config_error(None, {"CHATD_N8N__STREAM_MAX_SECONDS": "-1"}, "greater than 0")


def test_a_bad_webhook_url_is_shown_without_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"CHAT_N8N_WEBHOOK_URL": "ftp://chatd:s3cret@n8n.example/x?key=k"})
    assert "s3cret" not in str(caught.value)
    assert "key=k" not in str(caught.value)
    assert str(caught.value).endswith("(got 'ftp://n8n.example/x')")
