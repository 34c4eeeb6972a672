"""SIGTERM: held keys and buttons are released, in-flight work is bounded, /metrics counts actions.

The key state is read by an independent X client (python-xlib's QueryKeymap / QueryPointer on a
connection of the test's own), not by asking the agent.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
from Xlib import XK
from Xlib.display import Display

from agent.session.devdesktop import DevDesktop
from tests.conftest import start_agent


def _key_down(display: Display, keysym_name: str) -> bool:
    code = display.keysym_to_keycode(XK.string_to_keysym(keysym_name))
    keymap = display.query_keymap()
    return bool(keymap[code // 8] & (1 << (code % 8)))


def _button1_down(display: Display) -> bool:
    return bool(display.screen().root.query_pointer().mask & (1 << 8))  # Button1Mask


def test_sigterm_releases_held_input_and_bounds_in_flight_work(tmp_path: Path) -> None:
    with DevDesktop(width=800, height=600, window_manager=None, session_bus=False) as desktop:
        agent = start_agent(
            dict(desktop.env), tmp_path, "--display", desktop.display, "--accessibility", "false"
        )
        observer = Display(desktop.display)
        try:
            with agent.client() as client:
                assert client.post("/desktop/key-down", json={"key": "shift"}).status_code == 200
                assert client.post("/desktop/mouse-down", json={"x": 10, "y": 10}).status_code == 200
                assert _key_down(observer, "Shift_L")
                assert _button1_down(observer)

                metrics = client.get("/metrics").text
                assert 'computer_agent_actions_total{result="ok",type="key_down"} 1.0' in metrics
                assert client.post("/desktop/click", json={"x": 5000, "y": 1}).status_code == 400
                metrics = client.get("/metrics").text
                count = (
                    'computer_agent_http_request_duration_seconds_count{method="POST",route="/desktop/click",'
                )
                assert count + 'status="400"} 1.0' in metrics

            # A long request in flight when SIGTERM comes must not hold the stop up for long.
            answer: dict[str, int] = {}

            def slow() -> None:
                try:
                    response = httpx.post(
                        f"{agent.url}/desktop/wait",
                        json={"seconds": 30},
                        headers={"Authorization": f"Bearer {agent.token}"},
                        timeout=40,
                    )
                    answer["status"] = response.status_code
                except httpx.HTTPError:
                    answer["status"] = -1

            thread = threading.Thread(target=slow)
            thread.start()
            time.sleep(0.5)  # pacing: the wait is in flight (it lasts 30 s) when SIGTERM comes
            started = time.monotonic()
            agent.process.send_signal(signal.SIGTERM)
            assert agent.process.wait(timeout=20) == 0
            stop_seconds = time.monotonic() - started
            thread.join(timeout=10)
            print(f"\nstopped in {stop_seconds:.2f} s with a 30 s wait in flight")
            assert stop_seconds < 10

            observer.sync()
            assert not _key_down(observer, "Shift_L")
            assert not _button1_down(observer)
        finally:
            observer.close()
            agent.stop()
