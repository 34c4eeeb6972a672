"""Heartbeat against a fake control plane on loopback: what arrives, when, and how it backs off."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import logging
import random
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent import __version__
from agent.heartbeat import Backoff, Heartbeat
from agent.heartbeat.client import redact
from agent.supervision.readiness import Readiness
from tests.unit.fakes_health import FAKE_DISPLAY, FakeControlPlane, FlakyDesktop
from tests.waiting import wait_until_async


@pytest.fixture
async def plane() -> AsyncIterator[FakeControlPlane]:
    plane = await FakeControlPlane().start()
    yield plane
    await plane.close()


async def _heartbeat(
    plane: FakeControlPlane, desktop: FlakyDesktop, interval: float, **kwargs: object
) -> tuple[Readiness, Heartbeat]:
    readiness = Readiness(desktop, poll_interval=0.02)  # type: ignore[arg-type]
    heartbeat = Heartbeat(
        plane.url,
        readiness,
        computer_id="cmp_123",
        interval=interval,
        token="s3cret",
        advertise_url="http://10.0.0.5:8000",
        **kwargs,  # type: ignore[arg-type]
    )
    await readiness.start()
    await heartbeat.start()
    return readiness, heartbeat


async def test_beats_carry_the_fields_at_the_interval(plane: FakeControlPlane) -> None:
    readiness, heartbeat = await _heartbeat(plane, FlakyDesktop(), interval=0.2)
    beats = await plane.wait_for(4, timeout=3)
    await heartbeat.close()
    await readiness.close()
    first = beats[0].body
    assert first["computer_id"] == "cmp_123"
    assert first["agent_version"] == __version__
    assert first["status"] == "ready" and first["ready"] is True
    assert first["checks"]["display"] == {"ok": True, "required": True, "detail": f"{FAKE_DISPLAY} 1280x720"}
    assert first["screen"] == {"width": 1280, "height": 720}
    assert first["advertise_url"] == "http://10.0.0.5:8000"
    assert dt.datetime.fromisoformat(first["timestamp"]).tzinfo is not None
    assert first["timestamp"].endswith("Z")
    for key in ("cpu_percent", "load_average", "memory", "disk", "process_count"):
        assert key in first, key
    assert first["disk"][0]["path"] == "/"
    assert first["agent"]["rss_bytes"] > 10_000_000
    assert beats[0].headers["Authorization"] == "Bearer s3cret"
    # one boot id, seq strictly increasing, uptime growing
    assert len({b.body["boot_id"] for b in beats}) == 1
    seqs = [b.body["seq"] for b in beats]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    gaps = [b.at - a.at for a, b in itertools.pairwise(beats[:4])]
    assert all(0.15 <= gap <= 0.5 for gap in gaps), gaps
    # the last beat on close says stopping
    assert plane.beats[-1].body["status"] == "stopping"
    assert plane.beats[-1].body["ready"] is False


async def test_readiness_change_beats_at_once(plane: FakeControlPlane) -> None:
    desktop = FlakyDesktop()
    readiness, heartbeat = await _heartbeat(plane, desktop, interval=30)
    await plane.wait_for(1)
    desktop.up = False
    lost = time.monotonic()
    beats = await plane.wait_for(2, timeout=2)
    assert beats[1].body["ready"] is False
    assert beats[1].body["checks"]["display"]["ok"] is False
    assert beats[1].at - lost < 0.5
    desktop.up = True
    back = time.monotonic()
    beats = await plane.wait_for(3, timeout=2)
    assert beats[2].body["ready"] is True and beats[2].at - back < 0.5
    await heartbeat.close()
    await readiness.close()


async def test_control_plane_retunes_the_interval(plane: FakeControlPlane) -> None:
    plane.reply = {"interval_seconds": 1}  # from 30 s down to 1 s (the floor)
    readiness, heartbeat = await _heartbeat(plane, FlakyDesktop(), interval=30)
    beats = await plane.wait_for(3, timeout=4)
    assert 0.9 < beats[2].at - beats[1].at < 1.5
    await heartbeat.close()
    await readiness.close()


def test_backoff_is_full_jitter_under_a_growing_cap() -> None:
    backoff = Backoff(base=1.0, cap=8.0)
    assert [backoff.delay(n, lambda lo, hi: hi) for n in range(6)] == [1, 2, 4, 8, 8, 8]
    assert backoff.delay(3, lambda lo, hi: lo) == 0
    rng = random.Random(1)
    samples = {round(backoff.delay(2, rng.uniform), 6) for _ in range(50)}
    assert len(samples) > 40 and max(samples) <= 4.0


@pytest.mark.parametrize("mode", ["500", "hang"])
async def test_failing_control_plane_sees_growing_jittered_intervals(
    plane: FakeControlPlane, mode: str
) -> None:
    plane.mode = mode
    readiness, heartbeat = await _heartbeat(plane, FlakyDesktop(), interval=0.05)
    count = 7 if mode == "500" else 4
    await plane.wait_for(count, timeout=20)
    arrivals = plane.arrivals[:count]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    half = len(gaps) // 2
    assert sum(gaps[half:]) > sum(gaps[:half]), gaps
    assert heartbeat.failures >= count - 1
    started = time.monotonic()
    await heartbeat.close()  # the stopping beat is bounded even when the plane hangs
    assert time.monotonic() - started < 3
    await readiness.close()


async def test_outage_is_logged_once_and_recovery_once(
    plane: FakeControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.heartbeat")
    plane.mode = "500"
    readiness, heartbeat = await _heartbeat(plane, FlakyDesktop(), interval=0.02)
    await plane.wait_for(5, timeout=10)
    plane.mode = "ok"
    await wait_until_async(lambda: not heartbeat.failures, timeout=10, what="the failures to reset")
    await heartbeat.close()
    await readiness.close()
    warnings = [
        r for r in caplog.records if r.name == "agent.heartbeat.client" and r.levelno >= logging.WARNING
    ]
    infos = [
        r.getMessage()
        for r in caplog.records
        if r.name == "agent.heartbeat.client" and r.levelno == logging.INFO
    ]
    assert len(warnings) == 1 and "HTTP 500" in warnings[0].getMessage()
    assert sum("delivered again" in message for message in infos) == 1


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_is_verified_and_the_ca_file_is_trusted(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    plane = await FakeControlPlane().start(ssl_context=context)
    try:
        assert plane.url.startswith("https://")
        readiness = Readiness(FlakyDesktop())  # type: ignore[arg-type]
        await readiness.start()
        untrusting = Heartbeat(plane.url, readiness, computer_id="c", interval=10)
        await untrusting.start()
        refused = await untrusting.beat()
        assert not refused.ok and "certificate" in refused.detail.lower()
        trusting = Heartbeat(plane.url, readiness, computer_id="c", interval=10, ca_file=cert)
        await trusting.start()
        accepted = await trusting.beat()
        assert accepted.ok, accepted.detail
        await untrusting.close()
        await trusting.close()
        await readiness.close()
    finally:
        await plane.close()


def test_logged_urls_carry_no_credentials() -> None:
    assert redact("https://agent:s3cret@cp.example:8443/beat?token=abc") == "https://cp.example:8443/beat"
    assert redact("http://127.0.0.1/v1/heartbeat") == "http://127.0.0.1/v1/heartbeat"


async def test_a_rotated_token_file_is_used_from_the_next_beat(
    plane: FakeControlPlane, tmp_path: Path
) -> None:
    token_file = tmp_path / "cp-token"
    token_file.write_text("first\n")
    token_file.chmod(0o600)
    readiness = Readiness(FlakyDesktop())  # type: ignore[arg-type]
    await readiness.start()
    heartbeat = Heartbeat(
        plane.url, readiness, computer_id="c", interval=30, token="first", token_file=token_file
    )
    await heartbeat.start()
    await plane.wait_for(1)
    token_file.write_text("second-and-longer\n")
    assert (await heartbeat.beat()).ok
    token_file.chmod(0o644)  # refused (others may read it): the last good token stays
    token_file.write_text("third-but-unsafe\n")
    assert (await heartbeat.beat()).ok
    await heartbeat.close()
    await readiness.close()
    sent = [beat.headers["Authorization"] for beat in plane.beats]
    assert sent[0] == "Bearer first"
    assert sent[1] == "Bearer second-and-longer"
    assert sent[2] == "Bearer second-and-longer"


async def test_beats_share_one_kept_alive_connection(plane: FakeControlPlane) -> None:
    readiness, heartbeat = await _heartbeat(plane, FlakyDesktop(), interval=0.05)
    try:
        await plane.wait_for(4)
        peers = plane.peers[:4]  # (not the stopping beat: close() may abort a beat in flight)
    finally:
        await heartbeat.close()
        await readiness.close()
    assert len(set(peers)) == 1, peers


async def test_a_connection_the_plane_closed_while_idle_costs_no_beat() -> None:
    """A control plane (or a proxy) that closes idle connections sooner than the interval: the
    beat finds its kept-alive connection dead and is sent again on a new one, not lost."""
    plane = await FakeControlPlane(keepalive_timeout=0.02).start()
    readiness, heartbeat = await _heartbeat(plane, FlakyDesktop(), interval=0.15)
    try:
        await plane.wait_for(4)
        failures = heartbeat.failures
    finally:
        await heartbeat.close()
        await readiness.close()
        await plane.close()
    assert failures == 0
    assert len(set(plane.peers)) >= 3, plane.peers  # the plane did close them


async def test_credentials_in_the_url_are_sent_as_basic_auth(plane: FakeControlPlane) -> None:
    readiness = Readiness(FlakyDesktop(), poll_interval=0.02)  # type: ignore[arg-type]
    url = plane.url.replace("http://", "http://beat%40er:pa%3Ass@")
    heartbeat = Heartbeat(url, readiness, computer_id="cmp_1", interval=0.05)
    await readiness.start()
    await heartbeat.start()
    try:
        beats = await plane.wait_for(1)
    finally:
        await heartbeat.close()
        await readiness.close()
    assert beats[0].headers["Authorization"] == "Basic " + base64.b64encode(b"beat@er:pa:ss").decode()
