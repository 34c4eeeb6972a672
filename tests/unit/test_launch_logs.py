"""Launched apps' logs in the desktop user's home are written and read as that user (issue 11):
a link the user plants there leads only where they could write themselves."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from agent.errors import Unavailable
from agent.session.launcher import Launcher
from agent.session.user import DesktopUser
from agent.x11.windows import WindowService
from tests.displays import unused_display
from tests.waiting import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="acting as the desktop user needs a root agent")


@pytest.fixture()
def user_home() -> Iterator[tuple[DesktopUser, Path]]:
    """``nobody`` with a home of their own (under /tmp, reachable by them) and a root-owned folder."""
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="computer-agent-launch-logs-", dir="/tmp"))
    base.chmod(0o755)
    home = base / "home"
    home.mkdir()
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    (base / "protected").mkdir(mode=0o755)
    yield DesktopUser("nobody", nobody.pw_uid, nobody.pw_gid, (), str(home), "/bin/sh", switch=True), base
    shutil.rmtree(base, ignore_errors=True)


def _plant(home: Path, target: Path, uid: int, gid: int) -> None:
    """As the user would: ~/.local/state/computer-agent/launch -> target."""
    state = home / ".local" / "state" / "computer-agent"
    state.mkdir(parents=True)
    for part in (home / ".local", home / ".local" / "state", state):
        os.chown(part, uid, gid)
    os.symlink(target, state / "launch")
    os.lchown(state / "launch", uid, gid)


async def test_a_planted_link_in_the_log_folder_gets_no_root_write(
    user_home: tuple[DesktopUser, Path],
) -> None:
    user, base = user_home
    protected = base / "protected"
    _plant(Path(user.home), protected, user.uid, user.gid)
    launcher = Launcher(user, unused_display(), cast(WindowService, None))
    try:
        with pytest.raises(Unavailable, match="--launch-log-dir"):
            await launcher.launch("true")
    finally:
        await launcher.close()
    assert protected.stat().st_uid == 0 and list(protected.iterdir()) == []


async def test_logs_in_the_home_belong_to_the_user(user_home: tuple[DesktopUser, Path]) -> None:
    user, _ = user_home
    launcher = Launcher(user, unused_display(), cast(WindowService, None))
    try:
        launched = await launcher.launch("echo hello")
        log = Path(launched.log_path)
        assert log.parent == Path(user.home) / ".local" / "state" / "computer-agent" / "launch"
        wait_until(lambda: log.read_bytes() == b"hello\n", timeout=10, what="the app's output in its log")
        for part in (log, log.parent, log.parent.parent, Path(user.home) / ".local"):
            assert part.stat().st_uid == user.uid, part
    finally:
        await launcher.close()
