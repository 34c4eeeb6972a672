"""--files-allowed-roots against a desktop user who swaps a folder for a symlink while the agent
works (issue 11, finding 3): nothing is read from, created in or left behind outside the root.

The swapper runs as the desktop user and exchanges ``root/dir`` with ``root/link`` (a symlink to
a folder outside the root) with ``renameat2(RENAME_EXCHANGE)`` as fast as it can, while 8
clients read, upload, list, stat, mkdir, move and delete under ``root/dir`` through a real agent
running as root with ``--desktop-user``. What happened is checked on disk, not in the answers.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningAgent, start_agent
from tests.displays import unused_display
from tests.unit.test_exec import agent_env

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the desktop user's swapper and the agent need root"
)

SWAP_SECONDS = 12.0
CLIENTS = 8
INSIDE = b"inside the root\n"
OUTSIDE = b"OUTSIDE THE ROOT\n"

SWAPPER = """
import ctypes, os, platform, sys, time
libc = ctypes.CDLL(None, use_errno=True)
number = {"x86_64": 316, "aarch64": 276}[platform.machine()]
a, b = (os.fsencode(p) for p in sys.argv[1:3])
end = time.monotonic() + float(sys.argv[3])
swaps = 0
while time.monotonic() < end:
    if libc.syscall(number, -100, a, -100, b, 2) != 0:  # RENAME_EXCHANGE
        raise OSError(ctypes.get_errno(), "renameat2")
    swaps += 1
print(swaps)
"""


@pytest.fixture()
def fenced_race() -> Iterator[tuple[Path, Path, pwd.struct_passwd]]:
    user = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="computer-agent-race-", dir="/tmp"))
    base.chmod(0o755)
    root, outside = base / "root", base / "outside"
    for folder in (root, root / "dir", outside):
        folder.mkdir()
    (root / "dir" / "data.txt").write_bytes(INSIDE)
    (outside / "data.txt").write_bytes(OUTSIDE)
    (outside / "outside-only.txt").write_bytes(OUTSIDE)
    os.symlink(outside, root / "link")
    # The desktop user owns both folders: outside the root they could write themselves; the agent must not.
    for path in (root, root / "dir", root / "dir" / "data.txt", outside, *outside.iterdir()):
        os.lchown(path, user.pw_uid, user.pw_gid)
    os.lchown(root / "link", user.pw_uid, user.pw_gid)
    yield root, outside, user
    shutil.rmtree(base, ignore_errors=True)


def _client_loop(
    http: httpx.Client, root: Path, client: int, stop: threading.Event, seen: Counter[str]
) -> None:
    try:
        _client_rounds(http, root, client, stop, seen)
    except Exception as exc:  # a hang or a dropped connection is a failure too, not a quiet thread
        seen[f"client {client} crashed: {exc!r}"] += 1


def _client_rounds(
    http: httpx.Client, root: Path, client: int, stop: threading.Event, seen: Counter[str]
) -> None:
    folder, outside = root / "dir", root.parent / "outside"
    n = 0
    while not stop.is_set():
        n += 1
        name = f"c{client}-{n}"
        read = http.get("/files", params={"path": str(folder / "data.txt")})
        if read.status_code == 200:
            seen["read-ok"] += 1
            if read.content != INSIDE:
                seen["read-outside"] += 1
        listing = http.get("/files/list", params={"path": str(folder)})
        if listing.status_code == 200:
            seen["list-ok"] += 1
            if "outside-only.txt" in {entry["name"] for entry in listing.json()["entries"]}:
                seen["list-outside"] += 1
        if http.get("/files/stat", params={"path": str(folder / "outside-only.txt")}).status_code == 200:
            seen["stat-outside"] += 1
        put = http.put(
            "/files",
            params={"path": str(folder / f"{name}.txt")},
            content=b"x" * 70_000,
            headers={"Content-Type": "application/octet-stream"},
        )
        seen[f"put-{put.status_code}"] += 1
        made = http.post("/files/mkdir", json={"path": str(folder / f"{name}-d" / "sub")})
        seen[f"mkdir-{made.status_code}"] += 1
        # A folder made right in the swapped folder: made through the folder held open, never
        # by its name (which may lead outside by then).
        child = http.post("/files/mkdir", json={"path": str(folder / f"{name}-e"), "parents": False})
        seen[f"mkdir-child-{child.status_code}"] += 1
        # A decoy of the same name outside: a move that took its source by name could take it.
        (outside / f"{name}.txt").write_bytes(OUTSIDE)
        seen[f"decoy {name}.txt"] += 1
        moved = http.post(
            "/files/move",
            json={"source": str(folder / f"{name}.txt"), "destination": str(folder / f"{name}-moved.txt")},
        )
        seen[f"move-{moved.status_code}"] += 1
        for answer in (read, listing, put, made, child, moved):
            if answer.status_code >= 500:
                seen[f"{answer.request.method} {answer.request.url.path}: {answer.text}"] += 1
        # Moving a file of the outside folder in: the fence must hold for the source as well.
        stolen = http.post(
            "/files/move",
            json={
                "source": str(folder / "outside-only.txt"),
                "destination": str(root / f"{name}-stolen.txt"),
            },
        )
        if stolen.status_code == 200:
            seen["move-outside-in"] += 1
        for victim in (f"{name}-moved.txt", "outside-only.txt", "data.txt-never"):
            http.delete("/files", params={"path": str(folder / victim)})
        http.delete("/files", params={"path": str(folder / f"{name}-d"), "recursive": "true"})
        http.delete("/files", params={"path": str(folder / f"{name}-e")})


def test_symlink_swap_race_never_escapes_the_root(fenced_race: tuple[Path, Path, pwd.struct_passwd]) -> None:
    root, outside, user = fenced_race
    agent: RunningAgent = start_agent(
        agent_env(),
        root.parent,
        "--display",
        unused_display(),
        "--desktop-user",
        "nobody",
        "--files-allowed-roots",
        str(root),
    )
    swapper = subprocess.Popen(
        [sys.executable, "-c", SWAPPER, str(root / "dir"), str(root / "link"), str(SWAP_SECONDS)],
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        stdout=subprocess.PIPE,
        text=True,
    )
    seen: Counter[str] = Counter()
    stop = threading.Event()
    clients = [agent.client() for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=_client_loop, args=(http, root, i, stop, seen))
        for i, http in enumerate(clients)
    ]
    try:
        started = time.monotonic()
        for thread in threads:
            thread.start()
        swaps = int(swapper.communicate(timeout=SWAP_SECONDS + 30)[0])
        assert swapper.returncode == 0
        assert time.monotonic() - started >= 10
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        for http in clients:
            http.close()
        if swapper.poll() is None:
            swapper.kill()
            swapper.wait()
        agent.stop()
    # The race was run: many swaps, and each kind of operation got through many times.
    assert swaps > 1000, swaps
    for kind in ("read-ok", "list-ok", "put-200", "mkdir-200", "mkdir-child-200", "move-200"):
        assert seen[kind] > 10, seen
    # Nothing read or listed from outside, nothing created, moved in, deleted or left behind there.
    assert seen["read-outside"] == seen["list-outside"] == seen["stat-outside"] == 0, seen
    assert seen["move-outside-in"] == 0, seen
    assert not [kind for kind in seen if ": " in kind], seen  # no 5xx, no client crashed
    decoys = sorted(kind.split(" ", 1)[1] for kind in seen if kind.startswith("decoy "))
    assert decoys, "no decoys were planted"
    assert sorted(p.name for p in outside.iterdir()) == sorted(["data.txt", *decoys, "outside-only.txt"])
    assert [name for name in decoys if (outside / name).read_bytes() != OUTSIDE] == []  # none taken
    assert (outside / "data.txt").read_bytes() == OUTSIDE
    assert (outside / "outside-only.txt").read_bytes() == OUTSIDE
    assert not list(root.glob("*-stolen.txt"))
    # Temp files of uploads all went: inside the root too.
    assert not [p for p in root.rglob("*.upload")], list(root.rglob("*.upload"))
    assert "unhandled error" not in agent.log_path.read_text()
