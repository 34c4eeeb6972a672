"""Who commands run as, and with which environment.

In the VMs the agent runs as root (it needs uinput, the X authority, every user's files) but a
command a model sends must behave exactly as if the desktop user had typed it in a terminal of
their session: their uid, gid and groups, their HOME, and the variables that reach the session
(DISPLAY, XDG_RUNTIME_DIR, DBUS_SESSION_BUS_ADDRESS). When the agent is not root (development,
tests) commands simply run as the agent's own user.
"""

from __future__ import annotations

import logging
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass

from agent.config import ENV_PREFIX, ConfigError

LOG = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Variables of the agent's own service that must not leak into a user's commands.
_SERVICE_VARIABLES = frozenset(
    {
        "NOTIFY_SOCKET",
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "INVOCATION_ID",
        "JOURNAL_STREAM",
        "MANAGERPID",
        "CREDENTIALS_DIRECTORY",
    }
)


@dataclass(frozen=True, slots=True)
class DesktopUser:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    shell: str
    switch: bool  # the agent is root and children must drop to this user

    @property
    def workdir(self) -> str:
        """Where commands start and relative paths resolve: HOME, or / when HOME is missing."""
        return self.home if os.path.isdir(self.home) else "/"


def resolve_user(name: str | None) -> DesktopUser:
    """The configured desktop user (when the agent is root) or the agent's own user.

    A configured user that does not exist fails start-up: running commands as root instead
    would be a silent privilege escalation.
    """
    euid = os.geteuid()
    if name is not None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ConfigError(f"--desktop-user: no user named {name!r} on this machine") from None
        if euid == 0:
            return _user(entry, switch=entry.pw_uid != 0)
        if entry.pw_uid != euid:
            LOG.warning("not running as root: commands run as uid %d, not as desktop user %s", euid, name)
    try:
        entry = pwd.getpwuid(euid)
    except KeyError:  # a uid without a passwd entry (some containers)
        home = os.environ.get("HOME", "/")
        return DesktopUser(str(euid), euid, os.getegid(), (), home, "/bin/sh", switch=False)
    return _user(entry, switch=False)


def _user(entry: pwd.struct_passwd, *, switch: bool) -> DesktopUser:
    try:
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    except OSError:
        groups = (entry.pw_gid,)
    return DesktopUser(
        name=entry.pw_name,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        groups=groups,
        home=entry.pw_dir,
        shell=entry.pw_shell or "/bin/sh",
        switch=switch,
    )


def session_environment(user: DesktopUser, display: str, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of the desktop session, as a command should see it.

    Built per command (it is a handful of stat calls) so a session that starts after the agent,
    creating /run/user/<uid>/bus, is picked up.
    """
    env = {
        key: value
        for key, value in base.items()
        if key not in _SERVICE_VARIABLES and not key.startswith(ENV_PREFIX)
    }
    env["DISPLAY"] = display
    if user.switch:
        env.update(HOME=user.home, USER=user.name, LOGNAME=user.name, SHELL=user.shell)
        runtime_dir = f"/run/user/{user.uid}"
        # root's runtime dir and bus are useless (and closed) to the user: replace or drop them.
        env.pop("XDG_RUNTIME_DIR", None)
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        if os.path.isdir(runtime_dir):
            env["XDG_RUNTIME_DIR"] = runtime_dir
            bus = os.path.join(runtime_dir, "bus")
            if os.path.exists(bus):
                env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={bus}"
    else:
        env.setdefault("HOME", user.home)
        env.setdefault("USER", user.name)
        env.setdefault("LOGNAME", user.name)
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("LANG", "C.UTF-8")
    return env


def merge_environment(session: dict[str, str], overrides: Mapping[str, str | None]) -> dict[str, str]:
    """The caller's ``env`` over the session's; a null value removes the variable."""
    for key, value in overrides.items():
        if value is None:
            session.pop(key, None)
        else:
            session[key] = value
    return session
