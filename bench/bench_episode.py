"""One scripted agent episode, two ways: fixed sleeps before screenshots, and act-then-observe.

    python bench/bench_episode.py [--runs N] [--delay S]

The episode (what a computer-use agent does, ten steps): launch a terminal, click into it, type a
command, press Return, wait for its output (it takes half a second and then sets the terminal's
title), type a command opening a zenity question, press Return, find the dialog's button in the
accessibility tree, click it (the shell then sets another title), and type `exit`.

- **fixed delay**: Anthropic's reference loop (anthropic-quickstarts, computer-use-demo,
  tools/computer.py: ``_screenshot_delay = 2.0``; every action is followed by
  ``asyncio.sleep(_screenshot_delay)`` then a screenshot, "to let things settle"). Each action is
  one request, then the delay, then ``GET /desktop/screenshot``. Where the step waits for
  something (the output, the dialog, the answer), the loop checks the screen as the model would
  (here: the window list or the accessibility tree stand in for reading the screenshot) and, if
  it is not there yet, does the vocabulary's ``wait`` (1 s) and another screenshot.
- **act, then observe**: each input action carries ``screenshot_after`` (the screenshot comes
  back once the screen settled), and waits are ``POST /desktop/wait-for`` conditions.

Both ways run on the same desktop and agent, alternately, and must reach the same outcome (the
terminal printed the output, the question was answered "Proceed", the terminal closed; checked
with wmctrl, not the agent). The results replace this benchmark's section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.session.devdesktop import DevDesktop  # noqa: E402
from bench.common import machine, write_section  # noqa: E402
from tests.conftest import start_agent  # noqa: E402

REFERENCE_DELAY = 2.0  # anthropic-quickstarts computer-use-demo: _screenshot_delay = 2.0
REFERENCE_WAIT = 1.0  # the reference loop's `wait` action when what it waits for is not there yet


@dataclass
class Episode:
    """One run of the episode: its wall time, round trips and what it achieved."""

    way: str
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    round_trips: int = 0
    screenshots: int = 0
    seconds: float = 0.0
    outcome: dict[str, bool] = field(default_factory=dict)


def titles(desktop: DevDesktop) -> list[str]:
    listing = subprocess.run(
        ["wmctrl", "-l"], env=desktop.env, capture_output=True, text=True, timeout=10, check=False
    )
    rows = [line.split(None, 3) for line in listing.stdout.splitlines()]
    return [row[3] if len(row) > 3 else "" for row in rows]


def commands(tag: str) -> tuple[str, str]:
    output = f"sleep 0.5; ls / | head -3; printf '\\033]0;%s\\007' out-{tag}\n"
    dialog = (
        f"zenity --question --title q-{tag} --text 'Continue the episode?' --ok-label Proceed-{tag} "
        f"&& printf '\\033]0;%s\\007' yes-{tag}\n"
    )
    return output, dialog


def terminal_centre(http: httpx.Client, window_id: str) -> tuple[int, int]:
    position = http.get(f"/desktop/window/{window_id}/position").json()
    size = http.get(f"/desktop/window/{window_id}/size").json()
    return position["x"] + size["width"] // 2, position["y"] + size["height"] // 2


def window_titled(http: httpx.Client, title: str) -> dict[str, Any] | None:
    windows: list[dict[str, Any]] = http.get("/desktop/windows").json()["windows"]
    return next((w for w in windows if w["title"] == title), None)


def reference(
    http: httpx.Client, eye: httpx.Client, desktop: DevDesktop, episode: Episode, delay: float
) -> None:
    """Anthropic's reference loop: act, sleep ``delay``, screenshot; `wait` until it shows.

    ``eye`` (not counted as round trips) stands in for the model reading the screenshot: where a
    window is, whether the output or the dialog is on screen yet."""
    tag = episode.tag
    output, dialog = commands(tag)

    def act(method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        answer = http.request(method, path, json=body)
        answer.raise_for_status()
        time.sleep(delay)
        http.get("/desktop/screenshot", params={"format": "png"}).raise_for_status()
        episode.screenshots += 1
        return answer

    def until(seen: Callable[[], Any]) -> Any:
        while not (found := seen()):
            act("POST", "/desktop/wait", {"duration": REFERENCE_WAIT})
        return found

    act("POST", "/desktop/launch", {"app": f"xterm -T term-{tag} -geometry 80x20+60+60"})
    terminal = until(lambda: window_titled(eye, f"term-{tag}"))
    x, y = terminal_centre(eye, terminal["id"])
    act("POST", "/desktop/click", {"x": x, "y": y})
    act("POST", "/desktop/type", {"text": output.rstrip("\n")})
    act("POST", "/desktop/key", {"key": "Return"})
    episode.outcome["output"] = bool(until(lambda: window_titled(eye, f"out-{tag}")))
    act("POST", "/desktop/type", {"text": dialog.rstrip("\n")})
    act("POST", "/desktop/key", {"key": "Return"})

    def button() -> list[dict[str, Any]]:  # the tree search is a real round trip of the episode
        found = http.get("/desktop/accessibility/find", params={"role": "button", "name": f"Proceed-{tag}"})
        nodes: list[dict[str, Any]] = found.json().get("nodes", []) if found.status_code == 200 else []
        return [node for node in nodes if "center" in node]

    [node] = until(button)
    act("POST", "/desktop/click", {"x": node["center"]["x"], "y": node["center"]["y"]})
    episode.outcome["answered"] = bool(until(lambda: window_titled(eye, f"yes-{tag}")))
    act("POST", "/desktop/type", {"text": "exit\n"})
    episode.outcome["closed"] = bool(until(lambda: not any(t.endswith(tag) for t in titles(desktop))))


def act_then_observe(http: httpx.Client, desktop: DevDesktop, episode: Episode) -> None:
    """Each action answers with its settled screenshot; waits are wait-for conditions."""
    tag = episode.tag
    output, dialog = commands(tag)
    after = {"screenshot_after": {"format": "png"}}

    def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = http.post(path, json=body)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        if "screenshot" in result:
            episode.screenshots += 1
        return result

    def wait_for(**condition: Any) -> dict[str, Any]:
        answer = call("/desktop/wait-for", {"timeout": 20, **condition})
        assert answer["met"], answer
        return answer

    call("/desktop/launch", {"app": f"xterm -T term-{tag} -geometry 80x20+60+60"})
    terminal = wait_for(condition="window", title=f"^term-{tag}$", state="focused")["window"]
    x, y = terminal["x"] + terminal["width"] // 2, terminal["y"] + terminal["height"] // 2
    call("/desktop/click", {"x": x, "y": y, **after})
    call("/desktop/type", {"text": output.rstrip("\n"), **after})
    call("/desktop/key", {"key": "Return", **after})
    episode.outcome["output"] = wait_for(condition="window", title=f"^out-{tag}$")["met"]
    call("/desktop/type", {"text": dialog.rstrip("\n"), **after})
    call("/desktop/key", {"key": "Return", **after})
    node = wait_for(condition="element", role="button", name=f"Proceed-{tag}", visible_only=True)["element"]
    call("/desktop/click", {"x": node["center"]["x"], "y": node["center"]["y"], **after})
    episode.outcome["answered"] = wait_for(condition="window", title=f"^yes-{tag}$")["met"]
    call("/desktop/type", {"text": "exit\n", **after})
    episode.outcome["closed"] = wait_for(condition="window", title=f"-{tag}$", state="disappears")["met"]


def run_episode(http: httpx.Client, desktop: DevDesktop, way: str, delay: float) -> Episode:
    episode = Episode(way)
    counted = httpx.Client(
        base_url=http.base_url,
        headers=http.headers,
        timeout=60,
        event_hooks={"request": [lambda _: setattr(episode, "round_trips", episode.round_trips + 1)]},
    )
    with counted:
        counted.post(
            "/desktop/wait-for", json={"condition": "screen_stable", "quiet_ms": 500}
        )  # a calm start
        episode.round_trips = 0
        started = time.perf_counter()
        if way == "fixed delay":
            reference(counted, http, desktop, episode, delay)
        else:
            act_then_observe(counted, desktop, episode)
        episode.seconds = time.perf_counter() - started
    # The outcome, checked without the agent: no window of this episode is left.
    episode.outcome["closed"] = episode.outcome.get("closed", False) and not any(
        title.endswith(episode.tag) for title in titles(desktop)
    )
    return episode


def summary(episodes: list[Episode], way: str) -> dict[str, Any]:
    mine = [e for e in episodes if e.way == way]
    return {
        "seconds": round(statistics.median(e.seconds for e in mine), 2),
        "round_trips": statistics.median(e.round_trips for e in mine),
        "screenshots": statistics.median(e.screenshots for e in mine),
        "outcome_ok": all(all(e.outcome.values()) and len(e.outcome) == 3 for e in mine),
        "runs": len(mine),
    }


def write_results(results: dict[str, Any]) -> None:
    fixed, observed = results["fixed delay"], results["act then observe"]
    ratio = observed["seconds"] / fixed["seconds"]
    lines = [
        "## Agent episode: fixed sleeps vs act-then-observe (bench/bench_episode.py)",
        "",
        f"Machine: {results['machine']}. A real `computer-agent serve` on Xvfb 1280x720 with xfwm4; "
        f"medians of {fixed['runs']} episodes each way, alternating, same desktop and agent.",
        "",
        "Episode (10 steps): launch xterm, click into it, type a command, Return, wait for its output "
        "(0.5 s, then a title change), type a zenity command, Return, find the dialog's button in the "
        "accessibility tree, click it, type `exit`. The fixed-delay way is Anthropic's reference loop "
        f"(computer-use-demo `tools/computer.py`: `_screenshot_delay = 2.0` s slept after every action "
        f"before the screenshot; its `wait` of {REFERENCE_WAIT:g} s when the thing is not on screen yet).",
        "",
        "| way | wall time | round trips | screenshots | same outcome |",
        "|---|---|---|---|---|",
        f"| fixed delay ({results['delay']:g} s, then GET screenshot) | {fixed['seconds']} s "
        f"| {fixed['round_trips']:g} | {fixed['screenshots']:g} | {'yes' if fixed['outcome_ok'] else 'NO'} |",
        f"| act then observe (`screenshot_after`, `wait-for`) | {observed['seconds']} s "
        f"| {observed['round_trips']:g} | {observed['screenshots']:g} | {'yes' if observed['outcome_ok'] else 'NO'} |",
        "",
        f"Act-then-observe takes {ratio:.2f}x the wall time of the fixed-delay loop (target <= 0.2x). "
        "Its screenshots are taken once X DAMAGE has been quiet for 250 ms after the action (at most 3 s).",
    ]
    write_section("bench_episode", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--delay", type=float, default=REFERENCE_DELAY, help="the fixed delay (s)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    episodes: list[Episode] = []
    with DevDesktop(window_manager="xfwm4") as desktop:
        env = dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display)
        agent = start_agent(env, Path(tempfile.mkdtemp()), "--display", desktop.display)
        try:
            with agent.client() as http:
                for _ in range(args.runs):
                    for way in ("fixed delay", "act then observe"):
                        episodes.append(run_episode(http, desktop, way, args.delay))
                        print(json.dumps(episodes[-1].__dict__), flush=True)
        finally:
            agent.stop()
    results: dict[str, Any] = {
        "machine": machine(),
        "delay": args.delay,
        "fixed delay": summary(episodes, "fixed delay"),
        "act then observe": summary(episodes, "act then observe"),
    }
    print(json.dumps(results, indent=2))
    if not args.no_write:
        write_results(results)


if __name__ == "__main__":
    main()
