"""Operations: what keeps chatd running unattended (systemd, metrics, alerts, maintenance)."""
