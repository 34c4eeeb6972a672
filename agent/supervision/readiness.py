"""Readiness: can this agent do its job right now? Cheap checks, cached, with change events.

``/ready``, the heartbeat, systemd's ``STATUS=`` and the metrics all read the same
``ReadinessState``, so they can never disagree. A background task re-runs the checks every
``poll_interval`` seconds (cheap: one X round trip, a one-pixel grab unless a screenshot just
succeeded, one D-Bus ping) so that a display that goes
away is noticed within that time even when nobody calls the API; each change of the overall
verdict or of any check's ``ok`` is handed to the listeners at once (the heartbeat beats, systemd
gets a new STATUS=).

No aiohttp here: this is a service; GET /ready (``agent.actions.service``) renders it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from agent.errors import AgentError
from agent.tasks import cancel_and_wait

if TYPE_CHECKING:
    from agent.desktop.backend import DesktopBackend, Size

LOG = logging.getLogger(__name__)

# A check answers with a short description or raises (any exception: it is not ok).
CheckFn = Callable[[], Awaitable[str]]
Listener = Callable[["ReadinessState"], None]


class Status(StrEnum):
    STARTING = "starting"  # not ready yet, within the start-up grace period
    READY = "ready"
    DEGRADED = "degraded"  # a required check fails after start-up
    STOPPING = "stopping"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class ReadinessState:
    status: Status
    checks: tuple[Check, ...]
    screen: Size | None
    checked_at: float  # time.monotonic() of the run

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks if check.required)

    def summary(self) -> str:
        """One line for systemd's STATUS= and for logs."""
        failing = [f"{c.name}: {c.detail}" for c in self.checks if not c.ok and c.required]
        if self.status is Status.STOPPING:
            return "stopping"
        if not failing:
            return "ready"
        return f"{self.status.value}: " + "; ".join(failing)

    def check_fields(self) -> dict[str, dict[str, Any]]:
        """Each check by name, as /ready and the heartbeat report it: ok, required, detail."""
        return {c.name: {"ok": c.ok, "required": c.required, "detail": c.detail} for c in self.checks}

    def screen_fields(self) -> dict[str, int] | None:
        """The screen size as /ready and the heartbeat report it (None until the display answers)."""
        return None if self.screen is None else {"width": self.screen.width, "height": self.screen.height}

    def verdicts(self) -> tuple[bool, tuple[tuple[str, bool], ...]]:
        """What a change event is about: the overall verdict and each check's ok."""
        return self.ready, tuple((c.name, c.ok) for c in self.checks)


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    fn: CheckFn
    required: bool


class Readiness:
    """Runs the checks, caches the last state and tells listeners when it changes.

    ``a11y_check`` is the accessibility helper's bus check (None when accessibility is off);
    ``max_age``: a /ready within this long of the last run reuses it instead of asking X again.
    """

    def __init__(
        self,
        desktop: DesktopBackend,
        *,
        a11y_check: CheckFn | None = None,
        a11y_required: bool = True,
        poll_interval: float = 0.5,
        max_age: float = 0.25,
        check_timeout: float = 2.0,
        startup_grace: float = 30.0,
    ) -> None:
        self.desktop = desktop
        self.a11y_check = a11y_check
        self.a11y_required = a11y_required
        self.poll_interval = poll_interval
        self.max_age = max_age
        self.check_timeout = check_timeout
        self.startup_grace = startup_grace
        self._listeners: list[Listener] = []
        self._state: ReadinessState | None = None
        self._run_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._started_at = time.monotonic()
        self._was_ready = False
        self._pending: dict[str, asyncio.Future[str]] = {}

    # -- listeners -----------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(state)`` on the event loop each time the verdicts change."""
        self._listeners.append(listener)

    # -- state ---------------------------------------------------------------------
    @property
    def last(self) -> ReadinessState | None:
        """The last computed state without running anything (None before the first run)."""
        return self._state

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def current(self, max_age: float | None = None) -> ReadinessState:
        """The state at most ``max_age`` seconds old; concurrent callers share one run."""
        max_age = self.max_age if max_age is None else max_age
        state = self._state
        if state is not None and time.monotonic() - state.checked_at <= max_age:
            return state
        async with self._run_lock:
            state = self._state
            if state is not None and time.monotonic() - state.checked_at <= max_age:
                return state
            return await self._refresh()

    def begin_shutdown(self) -> None:
        """From now on the agent is not ready; listeners hear it at once."""
        if self._stopping:
            return
        self._stopping = True
        previous = self._state
        kept = previous.checks if previous else ()
        stopping = Check("not_stopping", False, "the agent is shutting down")
        checks = (*(c for c in kept if c.name != "not_stopping"), stopping)
        self._publish(
            ReadinessState(Status.STOPPING, checks, previous.screen if previous else None, time.monotonic())
        )

    # -- running -------------------------------------------------------------------
    def _specs(self) -> list[_Spec]:
        specs = [_Spec("display", self._check_display, True), _Spec("capture", self._check_capture, True)]
        if self.a11y_check is not None:
            specs.append(_Spec("accessibility", self.a11y_check, self.a11y_required))
        return specs

    async def _check_display(self) -> str:
        return await self.desktop.check()

    async def _check_capture(self) -> str:
        # Screenshots use a connection of their own, which can be broken while input works.
        return await self.desktop.check_capture()

    async def _run_one(self, spec: _Spec) -> Check:
        # A check that outlives its timeout (an X server that is stopped, not gone) keeps running
        # and later runs wait on it rather than queue another call behind it on the X thread.
        task = self._pending.get(spec.name)
        if task is None or task.done():
            task = asyncio.ensure_future(spec.fn())
            task.add_done_callback(_consume)
            self._pending[spec.name] = task
        try:
            detail = await asyncio.wait_for(asyncio.shield(task), self.check_timeout)
        except TimeoutError:
            return Check(spec.name, False, f"no answer within {self.check_timeout:g} s", spec.required)
        except AgentError as exc:
            return Check(spec.name, False, exc.message, spec.required)
        except Exception as exc:  # a check that fails in an unexpected way is still just "not ok"
            LOG.debug("readiness check %s failed", spec.name, exc_info=True)
            return Check(spec.name, False, f"{type(exc).__name__}: {exc}", spec.required)
        return Check(spec.name, True, detail, spec.required)

    async def _screen(self) -> Size | None:
        try:
            return await asyncio.wait_for(self.desktop.screen_size(), self.check_timeout)
        except Exception:  # the display check already says why
            return None

    async def _refresh(self) -> ReadinessState:
        checks = list(await asyncio.gather(*(self._run_one(spec) for spec in self._specs())))
        display_ok = checks[0].ok
        screen = await self._screen() if display_ok else None
        if self._stopping:
            checks.append(Check("not_stopping", False, "the agent is shutting down"))
        else:
            checks.append(Check("not_stopping", True, "serving"))
        state_checks = tuple(checks)
        ready = all(c.ok for c in state_checks if c.required)
        if self._stopping:
            status = Status.STOPPING
        elif ready:
            status = Status.READY
            self._was_ready = True
        elif not self._was_ready and time.monotonic() - self._started_at < self.startup_grace:
            status = Status.STARTING
        else:
            status = Status.DEGRADED
        state = ReadinessState(status, state_checks, screen, time.monotonic())
        self._publish(state)
        return state

    def _publish(self, state: ReadinessState) -> None:
        previous = self._state
        self._state = state
        changed = (
            previous is None or previous.verdicts() != state.verdicts() or previous.status != state.status
        )
        if not changed:
            return
        if previous is not None or not state.ready:
            log = LOG.info if state.ready else LOG.warning
            log("readiness: %s", state.summary())
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception:  # one broken listener must not silence the others
                LOG.exception("readiness listener failed")

    async def start(self) -> None:
        """Run the first checks now, then poll in the background."""
        self._started_at = time.monotonic()
        await self.current(max_age=0)
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="readiness")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.current(max_age=self.poll_interval / 2)
            except Exception:  # never let the poller die: readiness would freeze
                LOG.exception("readiness poll failed")

    async def close(self) -> None:
        self.begin_shutdown()
        await cancel_and_wait(self._task)
        self._task = None
        for pending in self._pending.values():
            pending.cancel()
        self._pending.clear()


def _consume(future: asyncio.Future[str]) -> None:
    """Retrieve the outcome of a check nobody awaits any more, so asyncio does not complain."""
    if not future.cancelled():
        future.exception()
