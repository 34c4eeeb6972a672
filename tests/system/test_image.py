"""The desktop image under a real container engine (`make test-image`, part of `make test-system`).

Starts Debian 12's own dockerd (docker.io 20.10) by hand on a private socket and data root,
imports a debootstrap Debian 12 root as the base image (no registry here), builds the Dockerfile
with the classic builder and with BuildKit, runs the image and checks, through docker, the
published port and /proc inside the container: the HEALTHCHECK turns healthy, a screenshot is a
PNG of the XFCE desktop, no process holds the token in its environment, `docker stop` ends it
gracefully (exit 0) before docker's 10 s kill, and the image is at most 600 MB.

Skipped (with the reason) unless COMPUTER_AGENT_SYSTEM_TEST=1, and where the machine cannot:
not root, no dockerd/debootstrap, or a dockerd that does not come up.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("COMPUTER_AGENT_TEST_CACHE", "/var/cache/computer-agent-test"))
BASE_ROOT = CACHE / "bookworm-root"
RUN_DIR = Path("/run/computer-agent-test")
SOCKET = RUN_DIR / "docker.sock"
DOCKER = "/usr/bin/docker"  # Debian's 20.10 client: the classic builder unless DOCKER_BUILDKIT=1
DOCKERD = "/usr/sbin/dockerd"
BASE_IMAGE = "computer-agent-test/bookworm-slim"
IMAGE = "computer-agent-test/desktop"
SIZE_LIMIT = 600 * 1000 * 1000  # docker's MB
# Made like debian:12-slim: its dpkg excludes for docs, manuals and translations, no apt caches.
SLIM_EXCLUDES = [
    "./usr/share/doc/*",
    "./usr/share/man/*",
    "./usr/share/info/*",
    "./usr/share/locale/*",
    "./var/cache/apt/archives/*.deb",
    "./var/lib/apt/lists/*",
]

pytestmark = pytest.mark.timeout(3600)  # skipped unless COMPUTER_AGENT_SYSTEM_TEST=1: tests/conftest.py


def report(line: str) -> None:
    """Numbers for the log of the run (pytest -s shows them)."""
    print(f"[image] {line}", flush=True)


def docker(
    *args: str, check: bool = True, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER, *args],
        env={**os.environ, "DOCKER_HOST": f"unix://{SOCKET}", **env},
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


def _mirror() -> str:
    """The first apt source of this machine that serves bookworm (deb822 or one-line)."""
    for path in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
            )
            if "bookworm" in fields.get("Suites", "").split() and fields.get("URIs", "").strip():
                return fields["URIs"].split()[0]
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt").glob("sources.list.d/*.list"))]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and words[2] == "bookworm":
                return words[1]
    return "http://deb.debian.org/debian"


def _base_root() -> Path:
    """The cached debootstrap Debian 12 root (`debootstrap --variant=minbase bookworm`), made once
    under a lock, in place atomically."""
    if (BASE_ROOT / "etc" / "debian_version").exists():
        return BASE_ROOT
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "bookworm-root.lock").open("w") as lock:
        subprocess.run(["flock", str(lock.fileno())], pass_fds=[lock.fileno()], check=True)
        if not (BASE_ROOT / "etc" / "debian_version").exists():
            staging = CACHE / "bookworm-root.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            subprocess.run(
                ["debootstrap", "--variant=minbase", "bookworm", str(staging), _mirror()],
                check=True, capture_output=True, timeout=1800,
            )  # fmt: skip
            staging.rename(BASE_ROOT)
    return BASE_ROOT


@dataclass
class Engine:
    pid: int
    log: Path
    storage_driver: str


def _start_dockerd(driver: str, log: Path) -> subprocess.Popen[bytes] | None:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                DOCKERD,
                "--iptables=false",
                f"--storage-driver={driver}",
                "-H", f"unix://{SOCKET}",
                f"--data-root={CACHE / 'docker'}",
                f"--exec-root={RUN_DIR / 'docker-exec'}",
                f"--pidfile={RUN_DIR / 'docker.pid'}",
            ],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if docker("version", check=False, timeout=10).returncode == 0:
            return process
        time.sleep(0.5)
    _stop(process)
    return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Debian's dockerd, started by hand: its own socket, data root (cached between runs: the
    layer cache makes later builds warm) and exec root; no iptables (none here), so published
    ports go through docker-proxy."""
    if os.geteuid() != 0:
        pytest.skip("needs root (dockerd, debootstrap)")
    for tool in (DOCKERD, DOCKER, shutil.which("debootstrap")):
        if tool is None or not Path(tool).exists():
            pytest.skip(
                f"{tool or 'debootstrap'} is not installed (make test-image installs docker.io and debootstrap)"
            )
    if docker("version", check=False, timeout=10).returncode == 0:
        pytest.skip(f"a docker daemon already serves {SOCKET}: another run is going on")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    process = None
    for driver in ("overlay2", "vfs"):
        process = _start_dockerd(driver, log)
        if process is not None:
            break
    if process is None:
        pytest.skip(f"dockerd does not start on this machine (overlay2 nor vfs): {log.read_text()[-1500:]}")
    try:
        yield Engine(process.pid, log, driver)
    finally:
        for container in docker("ps", "-aq", check=False).stdout.split():
            docker("rm", "-f", container, check=False)
        _stop(process)


@pytest.fixture(scope="module")
def base_image(engine: Engine) -> str:
    root = _base_root()
    stamp = str(int(root.joinpath("etc", "debian_version").stat().st_mtime))
    known = docker("image", "inspect", "-f", '{{index .Config.Labels "root-stamp"}}', BASE_IMAGE, check=False)
    if known.returncode != 0 or known.stdout.strip() != stamp:
        tar = subprocess.Popen(
            ["tar", "-C", str(root), *[f"--exclude={pattern}" for pattern in SLIM_EXCLUDES], "-c", "."],
            stdout=subprocess.PIPE,
        )
        subprocess.run(
            [DOCKER, "import", "--change", f"LABEL root-stamp={stamp}", "-", BASE_IMAGE],
            stdin=tar.stdout, env={**os.environ, "DOCKER_HOST": f"unix://{SOCKET}"},
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        assert tar.stdout is not None
        tar.stdout.close()
        assert tar.wait() == 0
    size = int(docker("image", "inspect", "-f", "{{.Size}}", BASE_IMAGE).stdout)
    report(f"base image {BASE_IMAGE} (debootstrap minbase, slimmed like debian:12-slim): {size / 1e6:.0f} MB")
    return BASE_IMAGE


def _deb() -> Path:
    """The package to build the image from: COMPUTER_AGENT_DEB, else the newest in dist/."""
    if os.environ.get("COMPUTER_AGENT_DEB"):
        return Path(os.environ["COMPUTER_AGENT_DEB"]).resolve()
    debs = sorted((ROOT / "dist").glob("computer-agent_*.deb"), key=lambda path: path.stat().st_mtime)
    if not debs:
        pytest.fail("no dist/computer-agent_*.deb: `make deb` first (make test-image does)")
    return debs[-1]


@dataclass
class Build:
    tag: str
    seconds: float
    context_bytes: int | None
    output: str = field(repr=False)


def _build(base: str, tag: str, buildkit: bool) -> Build:
    deb = _deb()
    started = time.monotonic()
    result = docker(
        "build", "--network", "host", "--build-arg", f"BASE={base}",
        "--build-arg", f"DEB={deb.relative_to(ROOT)}", "-t", tag, str(ROOT),
        check=False, timeout=3000, DOCKER_BUILDKIT="1" if buildkit else "0",
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    sent = re.search(
        r"Sending build context to Docker daemon\s+([\d.]+)([kMG]?B)", result.stdout + result.stderr
    )
    context = None
    if sent:
        context = int(float(sent.group(1)) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[sent.group(2)])
    report(f"{'BuildKit' if buildkit else 'classic builder'} build of {tag}: {seconds:.0f} s")
    return Build(tag, seconds, context, result.stdout + result.stderr)


@pytest.fixture(scope="module")
def image(base_image: str) -> Build:
    """Built by the classic builder, as Debian 12's docker.io does by default."""
    return _build(base_image, IMAGE, buildkit=False)


def test_classic_builder_builds_it_from_a_small_context(image: Build) -> None:
    """Finding 1: no BuildKit-only syntax; the context is the .deb and docker/, not the tree."""
    assert image.context_bytes is not None, image.output[-2000:]
    deb = _deb().stat().st_size
    report(f"build context: {image.context_bytes / 1e6:.1f} MB (the .deb is {deb / 1e6:.1f} MB)")
    assert image.context_bytes < deb + 2_000_000


def test_buildkit_builds_it_too(base_image: str, image: Build) -> None:
    build = _build(base_image, f"{IMAGE}:buildkit", buildkit=True)
    size = int(docker("image", "inspect", "-f", "{{.Size}}", build.tag).stdout)
    report(f"BuildKit image: {size / 1e6:.0f} MB")


def test_image_is_small_and_its_package_database_is_whole(image: Build) -> None:
    """Finding 7: at most 600 MB; no .deb, compiler, pip or test suites inside; dpkg consistent."""
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image.tag).stdout)
    report(f"image size: {size / 1e6:.0f} MB")
    for line in docker("history", "--format", "{{.Size}}\t{{.CreatedBy}}", image.tag).stdout.splitlines():
        report(f"  layer {line[:110]}")
    probe = docker(
        "run", "--rm", "--network", "none", "-u", "0", "--entrypoint", "bash", image.tag, "-c",
        "set -e; venv=/usr/lib/computer-agent/venv; "
        "echo debs: $(find / -xdev -name '*.deb' | wc -l); "
        "echo cc1: $(find /usr/lib/gcc -name cc1 2>/dev/null | wc -l); "
        "echo pip: $(find $venv -path '*/site-packages/pip/*' -type f | wc -l); "
        "echo tests: $(find $venv -path '*/tests/*' -type f | wc -l); "
        "echo audit: $(dpkg --audit | wc -l); apt-get check >/dev/null && echo apt-check: ok; "
        "dpkg-query -W -f='status: ${Status}\\n' computer-agent; computer-agent --version",
    )  # fmt: skip
    facts = probe.stdout
    for expected in ("debs: 0", "cc1: 0", "pip: 0", "tests: 0", "audit: 0", "apt-check: ok",
                     "status: install ok installed", "computer-agent "):  # fmt: skip
        assert expected in facts, facts
    assert size <= SIZE_LIMIT, f"{size / 1e6:.0f} MB"


@dataclass
class Container:
    name: str
    url: str
    token: str
    healthy_after: float


def _run(image: str, name: str, tmp_path: Path, token: str, via_env: bool) -> Container:
    args = ["run", "-d", "--name", name, "-p", "127.0.0.1::8000"]
    if via_env:
        args += ["-e", f"COMPUTER_AGENT_TOKEN={token}"]
    else:
        secret = tmp_path / f"{name}.token"
        secret.write_text(token + "\n")
        secret.chmod(0o644)  # as mounts often come: the entrypoint copies it to a 0600 file
        args += ["-v", f"{secret}:/run/secrets/computer-agent-token:ro"]
    started = time.monotonic()
    docker(*args, image)
    port = docker("port", name, "8000/tcp").stdout.split("\n")[0].rsplit(":", 1)[1]
    deadline = started + 120
    status = ""
    while time.monotonic() < deadline:
        status = docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip()
        if status in ("healthy", "unhealthy"):
            break
        time.sleep(0.5)
    logs = docker("logs", name, check=False)
    assert status == "healthy", (status, (logs.stdout + logs.stderr)[-3000:])
    return Container(name, f"http://127.0.0.1:{port}", token, time.monotonic() - started)


@pytest.fixture
def container(image: Build, tmp_path: Path) -> Iterator[Container]:
    running = _run(
        image.tag, "agent-image-test", tmp_path, "image-test-token-" + os.urandom(8).hex(), via_env=False
    )
    try:
        yield running
    finally:
        docker("rm", "-f", running.name, check=False)


def _token_holders(name: str, token: str) -> list[tuple[int, int, str]]:
    """(pid, ppid, command) of every process in the container whose environment holds the token,
    or that the probe cannot read (counted as holding it: an unreadable environment proves
    nothing). The probe runs as the image's user, who owns every process there: a root
    `docker exec` lacks CAP_SYS_PTRACE and may not read other users' /proc/PID/environ. The token
    goes in on stdin, so the probe's own command line stays clean."""
    script = (
        "read -r token; for dir in /proc/[0-9]*; do pid=${dir#/proc/}; "
        'ppid=$(sed "s/.*) //" "$dir/stat" 2>/dev/null | cut -d" " -f2); '
        'if ! environ=$(tr "\\0" "\\n" < "$dir/environ" 2>/dev/null); then '
        '[ -d "$dir" ] && echo "$pid ${ppid:-0} unreadable: $(tr "\\0" " " < "$dir/cmdline")"; continue; fi; '
        'case $environ in *"$token"*) echo "$pid $ppid $(tr "\\0" " " < "$dir/cmdline")";; esac; done'
    )
    result = subprocess.run(
        [DOCKER, "exec", "-i", name, "bash", "-c", script],
        input=token + "\n", env={**os.environ, "DOCKER_HOST": f"unix://{SOCKET}"},
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    holders = []
    for line in result.stdout.splitlines():
        pid, ppid, command = [*line.split(" ", 2), ""][:3]
        holders.append((int(pid), int(ppid), command))
    return holders


def _probe_sees_a_holder(name: str) -> None:
    """The probe itself must be able to find a token: one put in a process's environment."""
    canary = "canary-" + os.urandom(8).hex()
    sleeper = subprocess.Popen(
        [DOCKER, "exec", "-e", f"CANARY={canary}", name, "sleep", "30"],
        env={**os.environ, "DOCKER_HOST": f"unix://{SOCKET}"},
    )
    try:
        deadline = time.monotonic() + 10
        found: list[tuple[int, int, str]] = []
        while not found and time.monotonic() < deadline:
            found = [holder for holder in _token_holders(name, canary) if "sleep" in holder[2]]
            time.sleep(0.2)
        assert found, "the probe does not see a variable in a process's environment"
    finally:
        sleeper.kill()
        sleeper.wait()


def _supervised(name: str) -> set[int]:
    """PID 1 and its descendants (not what `docker exec` starts: those hang off PID 0)."""
    table = docker("exec", name, "ps", "-e", "-o", "pid=,ppid=").stdout.split()
    parents = {int(pid): int(ppid) for pid, ppid in zip(table[::2], table[1::2], strict=True)}
    tree = {1}
    changed = True
    while changed:
        grown = {pid for pid, ppid in parents.items() if ppid in tree}
        changed = not grown <= tree
        tree |= grown
    return tree


def test_image_serves_the_desktop_and_stops_gracefully(container: Container) -> None:
    """The HEALTHCHECK turns healthy; a screenshot through the published port shows the XFCE
    desktop; no process holds the token (finding 7); `docker stop` is graceful and quick."""
    report(f"healthy after {container.healthy_after:.1f} s")
    headers = {"Authorization": f"Bearer {container.token}"}
    # The session's panel is mapped (seen with xdotool inside, not through the agent).
    deadline = time.monotonic() + 60
    panel = ""
    while not panel.strip() and time.monotonic() < deadline:
        panel = docker(
            "exec", container.name, "xdotool", "search", "--class", "xfce4-panel", check=False
        ).stdout
        time.sleep(0.5)
    assert panel.strip(), "no xfce4-panel window in the container"
    assert httpx.get(f"{container.url}/desktop/screenshot", timeout=30).status_code == 401
    shot = httpx.get(f"{container.url}/desktop/screenshot", headers=headers, timeout=30)
    assert shot.status_code == 200, shot.text[:500]
    assert shot.content[:8] == b"\x89PNG\r\n\x1a\n"
    picture = Image.open(io.BytesIO(shot.content))
    assert picture.size == (1280, 720)
    colors = picture.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50, "the screenshot is nearly one colour: no desktop drawn"

    # The token: in no process's environment, PID 1 included; the copy the agent reads is 0600.
    _probe_sees_a_holder(container.name)
    assert _token_holders(container.name, container.token) == []
    mode = docker(
        "exec", container.name, "stat", "-c", "%a %U", "/tmp/runtime-1000/computer-agent-token"
    ).stdout.split()
    assert mode == ["600", "desktop"], mode

    # docker stop: SIGTERM reaches the entrypoint, which stops the agent and the rest and exits 0
    # (137 would mean docker had to kill it after its 10 s).
    started = time.monotonic()
    docker("stop", container.name, timeout=60)
    stopped_after = time.monotonic() - started
    report(f"docker stop took {stopped_after:.1f} s")
    assert docker("inspect", "-f", "{{.State.ExitCode}}", container.name).stdout.strip() == "0"
    assert stopped_after < 10


def test_a_token_from_the_environment_leaves_no_process_holding_it(image: Build, tmp_path: Path) -> None:
    """-e COMPUTER_AGENT_TOKEN: docker keeps it in the container config (docker exec processes
    inherit it, we cannot help that), but PID 1 and everything it started are clean."""
    token = "image-env-token-" + os.urandom(8).hex()
    running = _run(image.tag, "agent-image-env-test", tmp_path, token, via_env=True)
    try:
        answer = httpx.get(
            f"{running.url}/desktop/screen-size", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        supervised = _supervised(running.name)
        assert len(supervised) >= 5
        leaked = [holder for holder in _token_holders(running.name, token) if holder[0] in supervised]
        assert leaked == [], leaked
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            docker("rm", "-f", running.name, check=False)
