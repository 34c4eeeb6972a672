"""The Debian package, end to end: build it, install it with apt-get, verify both systemd units,
run the installed ``computer-agent serve`` against Xvfb, then purge it and find nothing left.

It installs into this machine's /usr and /etc, so it runs only as root (CI is root) and never
when a computer-agent package is already installed (it would not be ours to remove). Set
COMPUTER_AGENT_SKIP_DEB=1 to skip it on a developer machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent import __version__
from agent.session.devdesktop import DevDesktop
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
APT = ["apt-get", "-y", "-qq", "-o", "DPkg::Lock::Timeout=300"]
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
INSTALLED = [
    Path("/usr/bin/computer-agent"),
    Path("/usr/lib/computer-agent"),
    Path("/lib/systemd/system/computer-agent.service"),
    Path("/lib/systemd/system/computer-agent-xvfb.service"),
    Path("/usr/share/computer-agent"),
    Path("/usr/lib/systemd/user/computer-agent.service"),
    Path("/etc/computer-agent"),
]


def _package_installed() -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", "computer-agent"], capture_output=True, text=True, check=False
    )
    return "install ok installed" in result.stdout or "config-files" in result.stdout


def _skip_reason() -> str | None:
    if os.environ.get("COMPUTER_AGENT_SKIP_DEB"):
        return "COMPUTER_AGENT_SKIP_DEB is set"
    if os.geteuid() != 0:
        return "installs a package: needs root (CI runs as root)"
    if shutil.which("dpkg-deb") is None or shutil.which("apt-get") is None:
        return "not a Debian system"
    if _package_installed():
        return "a computer-agent package is already installed here; not touching it"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("deb")
    env = dict(os.environ, BUILD=str(work / "build"), DIST=str(work / "dist"))
    started = time.monotonic()
    subprocess.run(
        ["bash", str(ROOT / "packaging" / "build-deb.sh")], env=env, check=True, capture_output=True
    )
    print(f"\nbuilt the .deb in {time.monotonic() - started:.1f} s")
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout
    path = work / "dist" / f"computer-agent_{__version__}_{arch.strip()}.deb"
    assert path.is_file()
    yield path


@pytest.fixture
def installed(deb: Path) -> Iterator[Path]:
    try:
        subprocess.run([*APT, "install", str(deb)], env=APT_ENV, check=True, capture_output=True)
        yield deb
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run([*APT, "purge", "computer-agent"], env=APT_ENV, check=True, capture_output=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_package_metadata(deb: Path) -> None:
    control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout
    assert f"Version: {__version__}" in control
    depends = next(line for line in control.splitlines() if line.startswith("Depends:"))
    assert "python3.11" in depends and "python3 (<< 3.12)" in depends
    assert "python3-gi" in depends and "python3-pyatspi" in depends and "libx11-6" in depends
    contents = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    assert "./usr/lib/computer-agent/venv/bin/python" in contents
    assert "./usr/share/computer-agent/agent.toml" in contents
    assert "./usr/share/computer-agent/headless.toml" in contents
    assert "./etc/computer-agent/agent.d/" in contents
    assert ".pyc" not in contents  # compiled on the target, never with the build path inside
    assert "direct_url.json" not in contents  # it would name the build directory
    # No conffiles: the admin's settings live in agent.d, which no upgrade asks about.
    control_files = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True
    ).stdout
    listing = subprocess.run(["tar", "-t"], input=control_files, capture_output=True, check=True).stdout
    assert b"conffiles" not in listing


def test_install_verify_serve_and_purge(installed: Path, tmp_path: Path) -> None:
    # Installed: the command, a 0600 token, both units valid for systemd.
    version = subprocess.run(["computer-agent", "--version"], capture_output=True, text=True, check=True)
    assert __version__ in version.stdout
    token_file = Path("/etc/computer-agent/token")
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32
    subprocess.run(
        [
            "systemd-analyze", "verify",
            "/lib/systemd/system/computer-agent.service", "/lib/systemd/system/computer-agent-xvfb.service",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    subprocess.run(
        ["systemd-analyze", "--user", "verify", "/usr/lib/systemd/user/computer-agent.service"],
        env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)),
        check=True,
        capture_output=True,
    )

    # The installed agent serves a real Xvfb desktop.
    port = _free_port()
    with (
        DevDesktop(width=800, height=600, window_manager=None, session_bus=False) as desktop,
        (tmp_path / "agent.log").open("w") as log,
    ):
        agent = subprocess.Popen(
            [
                "/usr/bin/computer-agent", "serve",
                "--config", "/usr/share/computer-agent/agent.toml",
                "--config-dir", "/etc/computer-agent/agent.d",
                "--host", "127.0.0.1", "--port", str(port),
                "--token-file", str(token_file),
                "--display", desktop.display,
                "--accessibility", "false",
            ],
            env=desktop.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_until(lambda: healthy(url), timeout=30, what="the packaged agent to answer /health")
            except AssertionError as error:
                raise AssertionError((tmp_path / "agent.log").read_text()[-2000:]) from error
            shot = httpx.get(
                f"{url}/desktop/screenshot", headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            assert shot.status_code == 200
            assert shot.content[:8] == b"\x89PNG\r\n\x1a\n"
            assert shot.headers["X-Screen-Width"] == "800"
            assert httpx.get(f"{url}/desktop/screenshot", timeout=5).status_code == 401
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(timeout=15) == 0
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()

    # Reinstalling (as an upgrade does) keeps the token and the operator's drop-in, unasked.
    config = Path("/etc/computer-agent/agent.d/50-site.toml")
    config.write_text("# edited by the operator\n")
    subprocess.run(
        [*APT, "install", "--reinstall", str(installed)],
        env=APT_ENV,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    assert token_file.read_text().strip() == token
    assert "# edited by the operator" in config.read_text()
    assert Path("/usr/lib/computer-agent/venv/bin/python").exists()

    # Purged: nothing of ours is left, the token included.
    subprocess.run([*APT, "purge", "computer-agent"], env=APT_ENV, check=True, capture_output=True)
    assert not _package_installed()
    left = [str(path) for path in INSTALLED if path.exists() or path.is_symlink()]
    assert left == []
