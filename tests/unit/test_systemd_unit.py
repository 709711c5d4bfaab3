"""systemd/chatd.service and chatd.socket: valid for systemd, and hardened (exposure <= 2.0).

`systemd-analyze verify` insists that ExecStart's binary exists, and /usr/local/bin/chatd does
not on a developer's machine: it checks a copy whose ExecStart is this environment's real
`chatd` script, every other line unchanged.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
SERVICE = SYSTEMD / "chatd.service"
SOCKET = SYSTEMD / "chatd.socket"
INSTALLED_CHATD = "/usr/local/bin/chatd"
MAX_EXPOSURE = 2.0


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail(
            "systemd-analyze is missing: install Debian's `systemd` package"
            " (apt-get install --no-install-recommends systemd; .ci/run does)"
        )
    return found


def chatd_script() -> Path:
    script = Path(sys.executable).parent / "chatd"
    assert script.exists(), f"{script} missing: run `uv sync` to install the chatd command"
    return script


def rendered(directory: Path) -> list[Path]:
    """Copies of the units where ExecStart names an executable that exists here."""
    service = SERVICE.read_text()
    assert f"ExecStart={INSTALLED_CHATD} " in service
    (directory / SERVICE.name).write_text(
        service.replace(f"ExecStart={INSTALLED_CHATD} ", f"ExecStart={chatd_script()} ")
    )
    shutil.copy(SOCKET, directory / SOCKET.name)
    return [directory / SERVICE.name, directory / SOCKET.name]


def verify_complaints(units: list[Path]) -> list[str]:
    """What `systemd-analyze verify` says about these units: unknown keys, bad values, ..."""
    result = subprocess.run(
        [systemd_analyze(), "verify", *map(str, units)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # Bad lines are only warnings ("Unknown key ..., ignoring") and exit 0: read what it says.
    # Lines that name no unit are about the machine (a container, no /sys), not about ours.
    names = [unit.name for unit in units]
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if any(name in line for name in names)
    ]
    if result.returncode != 0:
        complaints.append(f"exit status {result.returncode}: {result.stderr.strip()}")
    return complaints


def test_units_verify_cleanly(tmp_path: Path) -> None:
    assert verify_complaints(rendered(tmp_path)) == []


@pytest.mark.parametrize(
    ("line", "replacement"),
    [
        ("ProtectSystem=strict", "ProtectSytem=strict"),  # misspelled directive
        ("TimeoutStopSec=45", "TimeoutStopSec=forty-five"),  # invalid value
    ],
)
def test_verify_catches_a_bad_line(tmp_path: Path, line: str, replacement: str) -> None:
    service, socket = rendered(tmp_path)
    text = service.read_text()
    assert f"\n{line}\n" in text
    service.write_text(text.replace(f"\n{line}\n", f"\n{replacement}\n"))
    assert verify_complaints([service, socket]) != []


def test_exposure_is_at_most_two() -> None:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", "--no-pager", str(SERVICE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for chatd\.service: (\d+\.\d+)", result.stdout)
    assert found, f"no exposure figure in:\n{result.stdout}\n{result.stderr}"
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout
