"""Starting Chromium on the desktop: as the desktop user, its own profile, a pipe for CDP.

The browser is an app the user sees (visible windows on ``DISPLAY``, so ``/desktop/click`` on a
page's button works), started like ``/desktop/launch`` starts apps: the desktop user's uid and
session environment, the leader of its own session, moved into a systemd scope of its own when
the agent runs under systemd. Unlike a launched app it is the agent's instrument: its debugging
channel is a pair of pipes the agent holds (``--remote-debugging-pipe``: fd 3 in, fd 4 out), so
it opens no port, and it exits when the agent closes the pipes (the agent stopping).

Chromium wants the pipes at exactly fds 3 and 4; ``subprocess`` keeps fds at their own numbers,
so the child is started through ``bash -c 'exec "$@" 3<&R 4>&W'`` (R and W our integers, the
command line passed as arguments: nothing is parsed by the shell) rather than a ``preexec_fn``,
which is unsafe in a threaded process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.errors import Unavailable
from agent.session.user import DesktopUser, session_environment
from agent.supervision.oom import unprotect_child

LOG = logging.getLogger(__name__)

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FIRST_FREE_FD = 10  # our ends of the pipes are kept off 3 and 4 so the dup in the child is real

# Quiet, sandbox-friendly defaults: no calls home (network time, component and extension updates,
# sign-in, safe-browsing and domain-reliability reports, field trials, hyperlink pings), no sync,
# no first-run UI, no GPU (Xvfb has none), no QUIC (proxies and captures see plain TCP); no
# "Restore pages?" bubble after a crash and no warning bar for --no-sandbox (--test-type), so the
# page sits where a screenshot expects it.
QUIET_FEATURES = (
    "Translate",
    "MediaRouter",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AutofillServerCommunication",
    "CertificateTransparencyComponentUpdater",
    "InterestFeedContentSuggestions",
    "PrivacySandboxSettings4",
    "SafeBrowsingBetterTelemetry",
    "AccountConsistency",
    "ChromeSignin",
)
FLAGS = (
    "--remote-debugging-pipe",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-component-extensions-with-background-pages",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--disable-field-trial-config",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--no-pings",
    "--disable-sync",
    "--disable-gpu",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    f"--disable-features={','.join(QUIET_FEATURES)}",
    "--hide-crash-restore-bubble",
    "--disable-session-crashed-bubble",
    "--test-type",
    "--password-store=basic",
    "--use-mock-keychain",
    "--start-maximized",
)


def find_browser(path: str) -> str:
    for name in BROWSERS:
        found = shutil.which(name, path=path)
        if found is not None:
            return found
    raise Unavailable(
        "no Chromium on this machine (apt-get install chromium)", details={"looked_for": list(BROWSERS)}
    )


def state_home(user: DesktopUser, env: Mapping[str, str]) -> Path | None:
    """The desktop user's XDG state directory: ``$XDG_STATE_HOME`` when the agent runs as that
    user (an absolute path, per the XDG spec), else ``~/.local/state``; None without a home."""
    configured = env.get("XDG_STATE_HOME", "")
    if not user.switch and os.path.isabs(configured):
        return Path(configured)
    return Path(user.home) / ".local" / "state" if os.path.isdir(user.home) else None


def profile_dir(user: DesktopUser, display: str, env: Mapping[str, str] | None = None) -> Path:
    """The browser's own profile (never the user's everyday one): one per display, so agents
    driving different displays never share Chromium's profile lock."""
    name = "chromium-" + ("".join(c if c.isalnum() else "_" for c in display) or "default")
    state = state_home(user, os.environ if env is None else env)
    if state is not None:
        return state / "computer-agent" / name
    directory = Path(tempfile.gettempdir()) / f"computer-agent-{user.uid}-{name}"
    if not directory.exists():
        directory.mkdir(mode=0o700)
        if user.switch:
            os.chown(directory, user.uid, user.gid)
    return directory


def mark_clean_exit(profile: Path) -> None:
    """Tell Chromium its last session ended cleanly (a killed browser leaves ``exit_type:
    Crashed``, and the next start offers "Restore pages?" over the page)."""
    preferences = profile / "Default" / "Preferences"
    try:
        values = json.loads(preferences.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a new profile: nothing to mark
    state = values.get("profile") if isinstance(values, dict) else None
    if not isinstance(state, dict) or (state.get("exit_type") == "Normal" and state.get("exited_cleanly")):
        return
    state.update(exit_type="Normal", exited_cleanly=True)
    with contextlib.suppress(OSError):
        preferences.write_text(json.dumps(values), encoding="utf-8")


def command_line(executable: str, user: DesktopUser, profile: Path, proxy_url: str | None) -> list[str]:
    argv = [executable, *FLAGS, f"--user-data-dir={profile}"]
    if (user.uid if user.switch else os.geteuid()) == 0:
        argv.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox on
    if proxy_url is not None:
        argv.append(f"--proxy-server={proxy_url}")
    argv.append("about:blank")
    return argv


@dataclass
class BrowserProcess:
    process: subprocess.Popen[bytes]
    read_fd: int  # Chromium's fd 4 (replies and events)
    write_fd: int  # Chromium's fd 3 (commands)
    argv: list[str]

    @property
    def pid(self) -> int:
        return self.process.pid


def _high(fd: int) -> int:
    """``fd`` moved to a number >= FIRST_FREE_FD (close-on-exec), the original closed."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, FIRST_FREE_FD)
    os.close(fd)
    return moved


def spawn(
    user: DesktopUser, display: str, proxy_url: str | None, base_env: Mapping[str, str] | None = None
) -> BrowserProcess:
    """Start Chromium (blocking: run it off the event loop)."""
    env = session_environment(user, display, base_env or os.environ)
    executable = find_browser(env.get("PATH", ""))
    profile = profile_dir(user, display, base_env or os.environ)
    mark_clean_exit(profile)
    argv = command_line(executable, user, profile, proxy_url)
    commands_read, commands_write = (_high(fd) for fd in os.pipe())  # we write, Chromium reads fd 3
    events_read, events_write = (_high(fd) for fd in os.pipe())  # Chromium writes fd 4, we read
    script = f'exec "$@" 3<&{commands_read} 4>&{events_write} {commands_read}<&- {events_write}>&-'
    switch = user.switch
    try:
        process = subprocess.Popen(
            ["/bin/bash", "-c", script, "chromium", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=user.workdir,
            env=env,
            start_new_session=True,
            close_fds=True,
            pass_fds=(commands_read, events_write),
            user=user.uid if switch else None,
            group=user.gid if switch else None,
            extra_groups=list(user.groups) if switch else None,
        )
    except OSError as exc:
        for fd in (commands_write, events_read):
            with contextlib.suppress(OSError):
                os.close(fd)
        raise Unavailable(f"cannot start {executable}: {exc.strerror or exc}") from None
    finally:
        for fd in (commands_read, events_write):  # the child's ends: only the child holds them now
            with contextlib.suppress(OSError):
                os.close(fd)
    unprotect_child(process.pid)
    LOG.info("started %s as pid %d (profile %s)", executable, process.pid, profile)
    return BrowserProcess(process, events_read, commands_write, argv)
