"""The heartbeat: POST a beat to the control plane at an interval, at once on readiness change.

It runs as one task beside the API and shares nothing with request handling but the cached
readiness state, so a slow, failing or hanging control plane can never block or slow the API:
each POST has a deadline, host load is read in an executor, and failures back off
exponentially with full jitter (``delay = uniform(0, min(cap, base * 2**failures))``) so a
fleet of agents does not hammer a control plane that is coming back. Logging is per state
change (first success, outage begins, outage over), never per beat.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import random
import ssl
import time
import urllib.parse
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import __version__
from agent.config import Config, ConfigError, read_token
from agent.heartbeat.payload import Identity, build_beat, collect_host
from agent.heartbeat.poster import Poster
from agent.supervision.readiness import Readiness, ReadinessState, Status
from agent.tasks import cancel_and_wait, wait_at_most

LOG = logging.getLogger(__name__)

MAX_INTERVAL = 3600.0
STOP_BEAT_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Full-jitter exponential backoff: the n-th consecutive failure waits up to base*2**n."""

    base: float
    cap: float

    def delay(self, failures: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(failures, 30)))
        return rng(0.0, ceiling)


@dataclass(frozen=True, slots=True)
class BeatOutcome:
    ok: bool
    detail: str  # "HTTP 200", "HTTP 500", "timeout after 5 s", "ClientConnectorError: ..."
    interval: float | None = None  # the control plane's interval_seconds, if it sent one


def redact(url: str) -> str:
    """The URL for logs: no user:password@ and no query string (either may carry a secret)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


class Heartbeat:
    """Beats to ``url``; ``start()`` launches the loop, ``close()`` sends the last beat."""

    def __init__(
        self,
        url: str,
        readiness: Readiness,
        *,
        computer_id: str | None,
        interval: float,
        token: str | None = None,
        token_file: Path | None = None,
        ca_file: Path | None = None,
        advertise_url: str | None = None,
        backoff_cap: float = 300.0,
        on_success: Callable[[float], None] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self._shown_url = redact(url)
        self.readiness = readiness
        self.interval = interval
        self._min_interval = min(1.0, interval)
        self._token = token
        # Re-read when the file changes, so the image can rotate the token without a restart.
        self._token_file = token_file
        self._token_stamp = self._stamp()
        self._ca_file = ca_file
        self._backoff = Backoff(base=max(interval, 0.05), cap=max(backoff_cap, interval))
        self._identity = Identity(
            computer_id=computer_id,
            agent_version=__version__,
            boot_id=str(uuid.uuid4()),
            advertise_url=advertise_url,
            started_monotonic=time.monotonic(),
        )
        self._seq = 0
        self._failures = 0
        self._outage_started: float | None = None
        self._delivered = 0
        self._wake = asyncio.Event()
        self._poster: Poster | None = None
        self._sender: ThreadPoolExecutor | None = None  # the poster's one thread
        self._task: asyncio.Task[None] | None = None
        self._on_success = on_success
        self._on_failure = on_failure
        readiness.subscribe(self._readiness_changed)

    @property
    def boot_id(self) -> str:
        return self._identity.boot_id

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def failures(self) -> int:
        return self._failures

    def _readiness_changed(self, state: ReadinessState) -> None:
        if state.status is not Status.STOPPING:  # close() sends the one stopping beat
            self._wake.set()

    # -- lifecycle -------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        # Verification is always on; --control-plane-ca-file only adds the trust anchor.
        context = ssl.create_default_context(cafile=str(self._ca_file) if self._ca_file else None)
        return context

    async def start(self) -> None:
        self._poster = Poster(self.url, self._ssl_context())
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heartbeat")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeat")
        LOG.info("heartbeat to %s every %.3g s (boot id %s)", self._shown_url, self.interval, self.boot_id)

    async def close(self) -> None:
        """Stop the loop and send one last ``stopping`` beat (bounded by STOP_BEAT_TIMEOUT)."""
        await cancel_and_wait(self._task)
        self._task = None
        if self._poster is not None and self._sender is not None:
            outcome = await self.beat(stopping=True, timeout=STOP_BEAT_TIMEOUT)
            if not outcome.ok:
                LOG.warning("the last (stopping) heartbeat was not delivered: %s", outcome.detail)
            self._poster.close()
            self._sender.shutdown(wait=False)
            self._poster = self._sender = None

    # -- the loop --------------------------------------------------------------------
    def _timeout(self) -> float:
        return min(10.0, max(1.0, self.interval))

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            outcome = await self.beat()
            self._record(outcome)
            delay = self.interval if outcome.ok else self._backoff.delay(self._failures - 1)
            await wait_at_most(self._wake.wait(), delay)

    async def beat(self, *, stopping: bool = False, timeout: float | None = None) -> BeatOutcome:
        """Send one beat now; never raises (the outcome says what happened)."""
        assert self._poster is not None and self._sender is not None, "start() first"
        poster = self._poster
        timeout = self._timeout() if timeout is None else timeout
        loop = asyncio.get_running_loop()
        try:
            host: dict[str, Any] | None = await loop.run_in_executor(None, collect_host)
        except Exception:  # load figures are nice to have; the beat itself matters more
            LOG.debug("collecting host load failed", exc_info=True)
            host = None
        self._seq += 1
        body = build_beat(
            self._identity,
            self._seq,
            self.readiness.last,
            host,
            now_monotonic=time.monotonic(),
            stopping=stopping,
        )
        headers = {
            "User-Agent": f"computer-agent/{__version__}",
            "Content-Type": "application/json",
            **self._auth_header(),
        }
        sent = loop.run_in_executor(self._sender, poster.post, json.dumps(body).encode(), headers, timeout)
        try:
            status, payload = await asyncio.wait_for(asyncio.shield(sent), timeout)
        except TimeoutError:
            poster.abort()  # the thread's socket call ends now; the next beat connects afresh
            return BeatOutcome(False, f"no answer within {timeout:g} s")
        except asyncio.CancelledError:
            poster.abort()
            raise
        except (http.client.HTTPException, OSError, ValueError) as exc:
            return BeatOutcome(False, f"{type(exc).__name__}: {exc}")
        if not 200 <= status < 300:
            return BeatOutcome(False, f"HTTP {status}")
        return BeatOutcome(True, f"HTTP {status}", self._interval_from(payload))

    def _stamp(self) -> tuple[float, int] | None:
        if self._token_file is None:
            return None
        try:
            stat = self._token_file.stat()
        except OSError:
            return None
        return (stat.st_mtime, stat.st_size)

    def _auth_header(self) -> dict[str, str]:
        stamp = self._stamp()
        if self._token_file is not None and stamp is not None and stamp != self._token_stamp:
            try:
                self._token = read_token(self._token_file)
                LOG.info("re-read the control-plane token from %s", self._token_file)
            except ConfigError as exc:  # keep the old token; say so once per change of the file
                LOG.warning("keeping the old control-plane token: %s", exc)
            self._token_stamp = stamp
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def _interval_from(self, payload: bytes) -> float | None:
        if not payload:
            return None
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        value = data.get("interval_seconds") if isinstance(data, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            return None
        return min(MAX_INTERVAL, max(self._min_interval, float(value)))

    def _record(self, outcome: BeatOutcome) -> None:
        now = time.monotonic()
        if outcome.ok:
            if self._failures:
                assert self._outage_started is not None
                LOG.info(
                    "heartbeat delivered again after %d failed beat(s) over %.1f s",
                    self._failures,
                    now - self._outage_started,
                )
            elif self._delivered == 0:
                LOG.info("first heartbeat delivered to %s (%s)", self._shown_url, outcome.detail)
            self._failures = 0
            self._outage_started = None
            self._delivered += 1
            if outcome.interval is not None and outcome.interval != self.interval:
                LOG.info("control plane asks for a heartbeat every %.3g s", outcome.interval)
                self.interval = outcome.interval
            if self._on_success is not None:
                self._on_success(time.time())
            return
        if self._failures == 0:
            self._outage_started = now
            LOG.warning("heartbeat to %s failed: %s; backing off", self._shown_url, outcome.detail)
        else:
            LOG.debug("heartbeat failed again (%d): %s", self._failures + 1, outcome.detail)
        self._failures += 1
        if self._on_failure is not None:
            self._on_failure()


def from_config(
    config: Config,
    readiness: Readiness,
    *,
    on_success: Callable[[float], None] | None = None,
    on_failure: Callable[[], None] | None = None,
) -> Heartbeat | None:
    """The heartbeat the options ask for, or None without --control-plane-url."""
    if config.control_plane_url is None:
        return None
    token = None
    if config.control_plane_token_file is not None:
        try:
            token = read_token(config.control_plane_token_file)
        except ConfigError as exc:  # the same rules as the API token; name the right option
            raise ConfigError(str(exc).replace("--token-file", "--control-plane-token-file", 1)) from None
    return Heartbeat(
        config.control_plane_url,
        readiness,
        computer_id=config.computer_id,
        interval=config.heartbeat_interval,
        token=token,
        token_file=config.control_plane_token_file,
        ca_file=config.control_plane_ca_file,
        advertise_url=config.advertise_url,
        on_success=on_success,
        on_failure=on_failure,
    )
