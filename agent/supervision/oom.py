"""Under memory pressure the kernel should kill the apps before the agent that drives them.

Every child inherits its parent's OOM score. The system unit protects the agent with
``OOMScoreAdjust=-500``, which its commands and apps must not keep; a user unit cannot lower a
score at all. So after starting a command or app the agent gives the child a score
``CHILD_MARGIN`` above its own (at least 0, the default): raising a score needs no privilege, and
either way the child is the likelier victim. Best effort: a child that already exited, or a kernel
without /proc, is fine.
"""

from __future__ import annotations

import logging
from pathlib import Path

LOG = logging.getLogger(__name__)

CHILD_MARGIN = 200
MAX_SCORE = 1000


def own_score(proc: Path = Path("/proc")) -> int:
    try:
        return int((proc / "self" / "oom_score_adj").read_text())
    except (OSError, ValueError):
        return 0


def child_score(own: int) -> int:
    """-500 (system unit) -> 0, the default; 0 -> 200; 100 (a user session) -> 300."""
    return min(MAX_SCORE, max(0, own + CHILD_MARGIN))


def unprotect_child(pid: int, proc: Path = Path("/proc")) -> None:
    """Make ``pid`` a likelier OOM victim than the agent (it inherited the agent's score)."""
    score = child_score(own_score(proc))
    try:
        (proc / str(pid) / "oom_score_adj").write_text(str(score))
    except OSError as exc:
        LOG.debug("could not set the OOM score of pid %d: %s", pid, exc)
