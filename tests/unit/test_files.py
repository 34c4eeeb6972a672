"""The files API against a real agent process, checked on disk (and with ps for memory)."""

from __future__ import annotations

import hashlib
import http.client
import os
import pwd
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import RunningAgent, start_agent
from tests.displays import unused_display
from tests.unit.test_exec import agent_env
from tests.waiting import wait_until

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    running = start_agent(agent_env(), tmp_path_factory.mktemp("files-agent"), "--display", unused_display())
    yield running
    running.stop()


class PeakRSS:
    """Samples a process's resident memory in the background."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.baseline = self.proc.memory_info().rss
        self.peak = self.baseline
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)  # pacing: a memory sample every 20 ms

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / MIB


def test_100_mb_round_trip_is_byte_exact_with_flat_memory(
    client: httpx.Client, agent: RunningAgent, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as out:
        for _ in range(100):
            block = os.urandom(MIB)
            digest.update(block)
            out.write(block)
    target = tmp_path / "uploaded" / "big.bin"

    def body() -> Iterator[bytes]:
        with source.open("rb") as src:
            while block := src.read(256 * 1024):
                yield block

    client.get("/files/stat", params={"path": str(source)})  # warm up
    with PeakRSS(agent.process.pid) as upload_memory:
        answer = client.put("/files", params={"path": str(target)}, content=body(), timeout=120)
    assert answer.status_code == 200, answer.text
    assert answer.json()["size"] == 100 * MIB
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest.hexdigest()
    assert upload_memory.growth_mib < 40, upload_memory.growth_mib

    received = hashlib.sha256()
    size = 0
    with (
        PeakRSS(agent.process.pid) as download_memory,
        client.stream("GET", "/files", params={"path": str(target)}, timeout=120) as download,
    ):
        assert download.status_code == 200
        assert download.headers["content-length"] == str(100 * MIB)
        for block in download.iter_bytes():
            received.update(block)
            size += len(block)
    assert size == 100 * MIB and received.hexdigest() == digest.hexdigest()
    assert download_memory.growth_mib < 40, download_memory.growth_mib


def test_replace_is_atomic(client: httpx.Client, tmp_path: Path) -> None:
    target = tmp_path / "atomic.bin"
    size = 4 * MIB
    target.write_bytes(b"0" * size)
    bad: list[str] = []
    stop = threading.Event()
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            data = target.read_bytes()
            reads += 1
            if len(data) != size or data.count(data[:1]) != size:
                bad.append(f"len={len(data)} first={data[:1]!r}")

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        for i in range(12):
            letter = b"ab"[i % 2 : i % 2 + 1]
            answer = client.put("/files", params={"path": str(target)}, content=letter * size)
            assert answer.status_code == 200
    finally:
        stop.set()
        watcher.join()
    assert bad == [] and reads > 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atomic.bin"]  # no temp file left behind


def test_range_requests(client: httpx.Client, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4
    path = tmp_path / "r.bin"
    path.write_bytes(data)
    params = {"path": str(path)}
    answer = client.get("/files", params=params, headers={"Range": "bytes=10-19"})
    assert answer.status_code == 206
    assert answer.content == data[10:20]
    assert answer.headers["content-range"] == "bytes 10-19/1024"
    answer = client.get("/files", params=params, headers={"Range": "bytes=-5"})
    assert answer.status_code == 206 and answer.content == data[-5:]
    answer = client.get("/files", params=params, headers={"Range": "bytes=1000-"})
    assert answer.status_code == 206 and answer.content == data[1000:]
    answer = client.get("/files", params=params, headers={"Range": "bytes=1000-5000"})
    assert answer.status_code == 206 and answer.content == data[1000:]
    answer = client.get("/files", params=params, headers={"Range": "bytes=2000-"})
    assert answer.status_code == 416 and answer.headers["content-range"] == "bytes */1024"
    answer = client.get("/files", params=params)
    assert answer.status_code == 200 and answer.content == data
    assert answer.headers["accept-ranges"] == "bytes"
    # Numbers longer than Python converts (4,300 digits) are just far past the end: never a 500.
    huge = "9" * 5000
    answer = client.get("/files", params=params, headers={"Range": f"bytes={huge}-"})
    assert answer.status_code == 416 and answer.json()["error"]["code"] == "INVALID_ARGUMENT"
    answer = client.get("/files", params=params, headers={"Range": f"bytes=1000-{huge}"})
    assert answer.status_code == 206 and answer.content == data[1000:]
    answer = client.get("/files", params=params, headers={"Range": f"bytes=-{huge}"})
    assert answer.status_code == 206 and answer.content == data


def _get(connection: http.client.HTTPConnection, agent: RunningAgent, path: str) -> http.client.HTTPResponse:
    connection.request("GET", f"/files?path={path}", headers={"Authorization": f"Bearer {agent.token}"})
    return connection.getresponse()


def test_pseudo_files_are_sent_as_they_read(agent: RunningAgent) -> None:
    """/proc and /sys files declare sizes (0, 4096) that are not their content: the download
    sends what reading gives, and the keep-alive connection stays in step for the next request."""
    host, port = agent.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)  # a hang fails, not blocks
    try:
        for path in ("/proc/version", "/sys/devices/system/cpu/online", "/proc/self/status"):
            answer = _get(connection, agent, path)
            body = answer.read()
            assert answer.status == 200, body
            declared = answer.getheader("Content-Length")
            assert declared is None or int(declared) == len(body), (path, declared, len(body))
            if path == "/proc/self/status":  # the agent's own: seen through its pid
                assert body.startswith(b"Name:") and f"\nPid:\t{agent.process.pid}\n".encode() in body
            else:
                assert body == Path(path).read_bytes() and body, path
        connection.request(
            "GET", "/files/stat?path=/proc/version", headers={"Authorization": f"Bearer {agent.token}"}
        )
        stat = connection.getresponse()
        assert stat.status == 200 and stat.read()  # same connection: nothing was left unread
    finally:
        connection.close()


def test_file_shrinking_during_download_ends_the_connection(agent: RunningAgent, tmp_path: Path) -> None:
    """A file truncated after its Content-Length went out: the client gets the declared bytes
    or sees the connection end; it never waits for bytes that will not come."""
    path = tmp_path / "shrinking.bin"
    size = 64 * MIB
    with path.open("wb") as out:
        out.truncate(size)
    host, port = agent.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(
            f"GET /files?path={path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {agent.token}\r\n\r\n".encode()
        )
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        head, _, body_start = received.partition(b"\r\n\r\n")
        declared = int(
            next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")).split(
                b":"
            )[1]
        )
        assert declared == size
        os.truncate(path, MIB)  # after the first bytes arrived
        total = len(body_start)
        closed = False
        while total < declared:
            chunk = sock.recv(1 << 20)  # socket.timeout here: the client would hang
            if not chunk:
                closed = True
                break
            total += len(chunk)
    assert total == declared or closed
    assert total < declared  # it did shrink under the agent (the test saw the case it is about)


def test_folder_operations(client: httpx.Client, tmp_path: Path) -> None:
    base = str(tmp_path)
    made = client.post("/files/mkdir", json={"path": f"{base}/a/b", "mode": "0750"}).json()
    assert made["type"] == "directory" and made["mode"] == "0750"
    assert (tmp_path / "a" / "b").is_dir() and oct((tmp_path / "a" / "b").stat().st_mode & 0o777) == "0o750"
    assert (
        client.post("/files/mkdir", json={"path": f"{base}/a/b"}).status_code == 200
    )  # parents: exists is fine
    answer = client.post("/files/mkdir", json={"path": f"{base}/a/b", "parents": False})
    assert answer.status_code == 409
    client.put("/files", params={"path": f"{base}/a/one.txt", "mode": "600"}, content=b"1")
    os.symlink("one.txt", tmp_path / "a" / "link")
    listing = client.get("/files/list", params={"path": f"{base}/a"}).json()
    assert [(e["name"], e["type"]) for e in listing["entries"]] == [
        ("b", "directory"),
        ("link", "symlink"),
        ("one.txt", "file"),
    ]
    one = listing["entries"][2]
    assert one["size"] == 1 and one["mode"] == "0600" and abs(one["mtime"] - time.time()) < 60
    assert listing["entries"][1]["target"] == "one.txt"
    stat = client.get("/files/stat", params={"path": f"{base}/a/link"}).json()
    assert stat["type"] == "symlink"

    moved = client.post("/files/move", json={"source": f"{base}/a/one.txt", "destination": f"{base}/two.txt"})
    assert moved.status_code == 200 and (tmp_path / "two.txt").read_bytes() == b"1"
    assert not (tmp_path / "a" / "one.txt").exists()
    (tmp_path / "three.txt").write_bytes(b"3")
    clash = {"source": f"{base}/two.txt", "destination": f"{base}/three.txt"}
    assert client.post("/files/move", json=clash).status_code == 409
    assert client.post("/files/move", json={**clash, "overwrite": True}).status_code == 200
    assert (tmp_path / "three.txt").read_bytes() == b"1"

    assert client.delete("/files", params={"path": f"{base}/a"}).status_code == 409  # not empty
    assert client.delete("/files", params={"path": f"{base}/a", "recursive": "true"}).status_code == 200
    assert not (tmp_path / "a").exists()
    assert client.delete("/files", params={"path": f"{base}/three.txt"}).json() == {"success": True}
    assert not (tmp_path / "three.txt").exists()


def test_not_found_and_conflicts(client: httpx.Client, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    for method, route in (
        ("GET", "/files"),
        ("GET", "/files/stat"),
        ("GET", "/files/list"),
        ("DELETE", "/files"),
    ):
        answer = client.request(method, route, params={"path": missing})
        assert answer.status_code == 404, (method, route)
        assert answer.json()["error"]["code"] == "FILE_NOT_FOUND"
    assert client.get("/files", params={"path": str(tmp_path)}).status_code == 409  # a folder
    (tmp_path / "f").write_bytes(b"x")
    assert client.get("/files/list", params={"path": str(tmp_path / "f")}).status_code == 409
    answer = client.put("/files", params={"path": str(tmp_path / "f" / "below")}, content=b"x")
    assert answer.status_code == 409
    answer = client.put(
        "/files", params={"path": f"{tmp_path}/new/dir/x", "create_parents": "false"}, content=b"x"
    )
    assert answer.status_code == 404 and not (tmp_path / "new").exists()
    assert client.put("/files", params={"path": f"{tmp_path}/new/dir/x"}, content=b"x").status_code == 200
    assert (tmp_path / "new" / "dir" / "x").read_bytes() == b"x"
    assert client.get("/files", params={}).status_code == 400
    assert (
        client.put("/files", params={"path": str(tmp_path / "m"), "mode": "999"}, content=b"").status_code
        == 400
    )


def test_mode_is_kept_on_replace(client: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "script.sh"
    path.write_text("old")
    path.chmod(0o751)
    assert client.put("/files", params={"path": str(path)}, content=b"new").json()["mode"] == "0751"
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o751


def test_relative_paths_are_under_home(client: httpx.Client) -> None:
    name = f"computer-agent-test-{os.getpid()}.txt"
    home = Path(pwd.getpwuid(os.geteuid()).pw_dir)
    try:
        answer = client.put("/files", params={"path": name}, content=b"home")
        assert answer.status_code == 200 and answer.json()["path"] == str(home / name)
        assert (home / name).read_bytes() == b"home"
        assert client.get("/files", params={"path": f"~/{name}"}).content == b"home"
    finally:
        (home / name).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def fenced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningAgent, Path, Path]]:
    base = tmp_path_factory.mktemp("fenced")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, root / "escape")
    os.symlink(outside / "secret.txt", root / "secret-link")
    (root / "inside.txt").write_text("inside")
    running = start_agent(
        agent_env(),
        base,
        "--display",
        unused_display(),
        "--files-allowed-roots",
        str(root),
        "--files-max-bytes",
        str(MIB),
    )
    yield running, root, outside
    running.stop()


def test_traversal_and_symlink_escapes_are_refused(fenced: tuple[RunningAgent, Path, Path]) -> None:
    agent, root, outside = fenced
    with agent.client() as http:
        assert http.get("/files", params={"path": str(root / "inside.txt")}).content == b"inside"
        attempts = [
            ("GET", "/files", str(root / ".." / "outside" / "secret.txt")),
            ("GET", "/files", str(root / "escape" / "secret.txt")),
            ("GET", "/files", str(root / "secret-link")),
            ("GET", "/files", "../../../../etc/passwd"),
            ("GET", "/files", "/etc/passwd"),
            ("GET", "/files/list", str(root / "escape")),
            ("PUT", "/files", str(root / "escape" / "planted.txt")),
            ("PUT", "/files", str(root / "secret-link")),
            ("DELETE", "/files", str(root / "escape" / "secret.txt")),
        ]
        for method, route, path in attempts:
            answer = http.request(
                method, route, params={"path": path}, content=b"pwned" if method == "PUT" else None
            )
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json()["error"]["code"] == "PATH_NOT_ALLOWED"
        move = {"source": str(root / "inside.txt"), "destination": str(root / "escape" / "moved.txt")}
        assert http.post("/files/move", json=move).status_code == 403
        # The fence holds for the source of a move (nothing is pulled in) and for new folders.
        for source in (root / "escape" / "secret.txt", root / ".." / "outside" / "secret.txt"):
            pull = {"source": str(source), "destination": str(root / "pulled.txt")}
            assert http.post("/files/move", json=pull).status_code == 403, source
        for folder, parents in ((root / "escape" / "made", False), (root / "escape" / "a" / "b", True)):
            made = http.post("/files/mkdir", json={"path": str(folder), "parents": parents})
            assert made.status_code == 403, (folder, made.text)
        assert not (root / "pulled.txt").exists()
        # The link itself lives inside the root: describing or deleting it is allowed.
        assert http.get("/files/stat", params={"path": str(root / "secret-link")}).json()["type"] == "symlink"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"


def test_size_cap_is_413_and_leaves_nothing(fenced: tuple[RunningAgent, Path, Path]) -> None:
    agent, root, _ = fenced
    target = root / "big.bin"
    target.write_bytes(b"old")
    with agent.client() as http:
        answer = http.put("/files", params={"path": str(target)}, content=b"x" * (2 * MIB))
        assert answer.status_code == 413 and answer.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

        def chunked() -> Iterator[bytes]:  # no Content-Length: the cap is found while streaming
            for _ in range(8):
                yield b"y" * (256 * 1024 + 1)

        answer = http.put("/files", params={"path": str(target)}, content=chunked())
        assert answer.status_code == 413
    assert target.read_bytes() == b"old"
    assert not [p for p in root.iterdir() if p.name.startswith(".big.bin")]


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the desktop user needs root")
def test_commands_and_files_run_as_the_desktop_user() -> None:
    # Not under pytest's tmp: that is private to root, and the desktop user must reach this folder.
    base = Path(tempfile.mkdtemp(prefix="computer-agent-as-user-", dir="/tmp"))
    base.chmod(0o755)
    private = base / "root-only.txt"
    private.write_text("root's")
    private.chmod(0o600)
    shared = base / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    nobody = pwd.getpwnam("nobody")
    # The user's session: a runtime dir with a bus socket, made here unless a real one exists.
    runtime = Path(f"/run/user/{nobody.pw_uid}")
    made_runtime = not runtime.exists()
    bus = socket.socket(socket.AF_UNIX)
    if made_runtime:
        runtime.mkdir(mode=0o700, parents=True)
        os.chown(runtime, nobody.pw_uid, nobody.pw_gid)
        bus.bind(str(runtime / "bus"))
    display = unused_display()
    agent = start_agent(agent_env(), base, "--display", display, "--desktop-user", "nobody")
    try:
        with agent.client() as http:
            env = http.post(
                "/exec", json={"command": "echo $DISPLAY $XDG_RUNTIME_DIR $DBUS_SESSION_BUS_ADDRESS $LOGNAME"}
            ).json()["stdout"]
            if made_runtime:  # a pre-existing session dir may lack a bus
                assert env == f"{display} {runtime} unix:path={runtime}/bus nobody\n"
            body = http.post(
                "/exec", json={"command": "id -u; id -g; echo $HOME $USER; cat " + str(private)}
            ).json()
            lines = body["stdout"].splitlines()
            assert lines[:3] == [str(nobody.pw_uid), str(nobody.pw_gid), f"{nobody.pw_dir} nobody"]
            assert "Permission denied" in body["stderr"]
            answer = http.get("/files", params={"path": str(private)})
            assert answer.status_code == 403 and answer.json()["error"]["code"] == "FILE_PERMISSION_DENIED"
            assert http.put("/files", params={"path": str(base / "x")}, content=b"x").status_code == 403
            assert http.put("/files", params={"path": str(shared / "mine")}, content=b"x").status_code == 200
        assert (shared / "mine").stat().st_uid == nobody.pw_uid
        assert not (base / "x").exists()
    finally:
        agent.stop()
        shutil.rmtree(base, ignore_errors=True)
        bus.close()
        if made_runtime:
            shutil.rmtree(runtime, ignore_errors=True)


def test_upload_cut_off_leaves_the_target_alone(agent: RunningAgent, tmp_path: Path) -> None:
    target = tmp_path / "kept.txt"
    target.write_bytes(b"original")
    host, port = agent.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"PUT /files?path={target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent.token}\r\n"
            f"Content-Length: {10 * MIB}\r\n\r\n".encode()
            + b"z" * MIB
        )
        time.sleep(0.3)  # pacing: the agent is reading the body when the client goes away
    wait_until(lambda: len(list(tmp_path.iterdir())) <= 1, timeout=3, what="the partial upload removed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
    assert target.read_bytes() == b"original"
    assert "unhandled error" not in agent.log_path.read_text()
