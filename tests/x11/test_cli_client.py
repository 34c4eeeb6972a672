"""The client commands of ``computer-agent`` as a user runs them (a subprocess) against a real
agent on Xvfb: effects seen by xdotool, the GTK logger, the file system; exit codes; --json;
a 100 MB copy each way in flat memory (the CLI process's own peak RSS, from wait4)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from agent.session.devdesktop import DevDesktop
from tests.conftest import AGENT_BIN, RunningAgent, run_observer
from tests.observers import EventLogger

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def cli_env(agent: RunningAgent, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment a user sets once: the agent's URL and token file."""
    token_file = tmp_path_factory.mktemp("cli") / "token"
    token_file.write_text(agent.token + "\n")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTER_AGENT")}
    return {**environment, "COMPUTER_AGENT_URL": agent.url, "COMPUTER_AGENT_TOKEN_FILE": str(token_file)}


def cli(env: dict[str, str], *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGENT_BIN), *argv], env=env, capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def cli_peak_rss(env: dict[str, str], *argv: str) -> tuple[int, int]:
    """Run the CLI; its exit status and its own peak resident set in bytes (wait4's rusage)."""
    process = subprocess.Popen(
        [str(AGENT_BIN), *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss * 1024


def pointer(desktop: DevDesktop) -> tuple[int, int]:
    fields = dict(part.split(":") for part in run_observer(desktop, "xdotool", "getmouselocation").split())
    return int(fields["x"]), int(fields["y"])


def test_screenshot_to_a_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    done = cli(cli_env, "screenshot", "-o", str(tmp_path / "shot.png"))
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "shot.png") as image:
        assert image.size == (1280, 720)
    as_json = cli(cli_env, "screenshot", "--format", "jpeg", "--json", cwd=tmp_path)
    assert json.loads(as_json.stdout) == {
        "path": "screenshot.jpeg",
        "format": "jpeg",
        "width": 1280,
        "height": 720,
    }
    with Image.open(tmp_path / "screenshot.jpeg") as image:
        assert image.format == "JPEG"


def test_click_type_key(cli_env: dict[str, str], logger: EventLogger, desktop: DevDesktop) -> None:
    x, y = logger.area_center
    assert cli(cli_env, "click", str(x), str(y)).returncode == 0
    assert pointer(desktop) == (x, y)
    assert any(e["event"] == "button" for e in logger.collect())
    entry = logger.ready["area_x"] + 50, logger.ready["area_y"] - 15
    assert cli(cli_env, "click", str(entry[0]), str(entry[1])).returncode == 0
    assert cli(cli_env, "key", "ctrl+a BackSpace").returncode == 0
    assert cli(cli_env, "type", "from the shell").returncode == 0
    assert cli(cli_env, "key", "Return").returncode == 0
    assert logger.next("entry")["text"] == "from the shell"


def test_windows_tree_find(cli_env: dict[str, str], logger: EventLogger, desktop: DevDesktop) -> None:
    window = int(run_observer(desktop, "xdotool", "search", "--name", "^event-logger$").split()[0])
    listed = json.loads(cli(cli_env, "windows", "--json").stdout)["windows"]
    assert any(int(w["id"], 16) == window and w["title"] == "event-logger" for w in listed)
    assert "event-logger" in cli(cli_env, "windows").stdout
    pid = str(logger.process.pid)
    outline = cli(cli_env, "tree", "--app", pid)
    assert outline.returncode == 0 and "event-logger" in outline.stdout, outline.stderr
    found = json.loads(cli(cli_env, "find", "--role", "text", "--app", pid, "--json").stdout)
    assert found["nodes"] and all(n["role"] == "text" for n in found["nodes"])
    # No match is said so, and is a negative answer (exit 4) a script can test.
    nothing = cli(cli_env, "find", "--role", "text", "--name", "no such element here", "--app", pid)
    assert nothing.returncode == 4 and nothing.stdout == "" and "no element matches" in nothing.stderr
    as_json = cli(cli_env, "find", "--role", "text", "--name", "no such element here", "--app", pid, "--json")
    assert as_json.returncode == 4 and json.loads(as_json.stdout)["nodes"] == []


def test_exec_streams_and_exits_with_the_commands_status(cli_env: dict[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = cli(cli_env, "exec", "--", "sh", "-c", f"echo out; echo err >&2; touch {marker}; exit 7")
    assert (done.returncode, done.stdout, done.stderr) == (7, "out\n", "err\n")
    assert marker.exists()
    events = [json.loads(line) for line in cli(cli_env, "exec", "--json", "--", "true").stdout.splitlines()]
    assert events[0]["type"] == "start" and events[-1] == {**events[-1], "type": "exit", "exit_code": 0}


def test_exit_codes_and_errors(cli_env: dict[str, str], agent: RunningAgent) -> None:
    missing = cli(cli_env, "action", "window_size", "window_id=0x7fffffe")
    assert missing.returncode == 1 and "WINDOW_NOT_FOUND" in missing.stderr
    as_json = cli(cli_env, "click", "1", "2", "--button", "left", "--json", "--url", agent.url + "/nope")
    assert as_json.returncode == 1 and json.loads(as_json.stderr)["error"]["code"] == "ROUTE_NOT_FOUND"
    assert cli(cli_env, "click", "1").returncode == 2  # usage
    unreachable = cli({**cli_env, "COMPUTER_AGENT_URL": "http://127.0.0.1:9"}, "windows")
    assert unreachable.returncode == 3 and "cannot reach" in unreachable.stderr
    wrong = Path(cli_env["COMPUTER_AGENT_TOKEN_FILE"]).with_name("wrong")
    wrong.write_text("nope")
    denied = cli(cli_env, "windows", "--token-file", str(wrong))
    assert denied.returncode == 1 and "UNAUTHENTICATED" in denied.stderr


def test_options_before_the_subcommand_and_client_side_errors(
    cli_env: dict[str, str], agent: RunningAgent, desktop: DevDesktop, tmp_path: Path
) -> None:
    bare = {k: v for k, v in cli_env.items() if not k.startswith("COMPUTER_AGENT")}
    token_file = cli_env["COMPUTER_AGENT_TOKEN_FILE"]
    before = cli(bare, "--url", agent.url, "--token-file", token_file, "click", "77", "88")
    assert before.returncode == 0, before.stderr
    assert pointer(desktop) == (77, 88)
    listed = cli(bare, "--json", "--url", agent.url, "--token-file", token_file, "windows")
    assert listed.returncode == 0 and "windows" in json.loads(listed.stdout)
    # A value after the subcommand wins over one before it.
    later = cli(
        bare,
        "--url",
        "http://127.0.0.1:9",
        "--token-file",
        token_file,
        "click",
        "66",
        "77",
        "--url",
        agent.url,
    )
    assert later.returncode == 0, later.stderr
    assert pointer(desktop) == (66, 77)

    # Local problems are usage errors (2); with --json every error is the JSON envelope on stderr.
    no_token = cli(bare, "--url", agent.url, "--token-file", str(tmp_path / "absent"), "windows", "--json")
    assert no_token.returncode == 2
    error = json.loads(no_token.stderr)["error"]
    assert error["code"] == "LOCAL_FILE" and error["details"] == {"path": str(tmp_path / "absent")}
    no_source = cli(cli_env, "cp", str(tmp_path / "absent.bin"), "vm:/tmp/never.bin")
    assert no_source.returncode == 2 and "absent.bin" in no_source.stderr
    no_source_json = cli(cli_env, "--json", "cp", str(tmp_path / "absent.bin"), "vm:/tmp/never.bin")
    assert no_source_json.returncode == 2
    assert json.loads(no_source_json.stderr)["error"]["code"] == "LOCAL_FILE"
    unreachable = cli({**cli_env, "COMPUTER_AGENT_URL": "http://127.0.0.1:9"}, "windows", "--json")
    assert unreachable.returncode == 3
    assert json.loads(unreachable.stderr)["error"]["code"] == "UNREACHABLE"


@pytest.fixture()
def big_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "big.bin"
    with path.open("wb") as file:
        for _ in range(100):
            file.write(os.urandom(MiB))
    yield path


def test_cp_100_mb_each_way_in_flat_memory(cli_env: dict[str, str], big_file: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 1000)
    status, baseline = cli_peak_rss(cli_env, "cp", str(small), f"vm:{tmp_path}/remote-small.bin")
    assert status == 0
    remote = tmp_path / "remote" / "big.bin"
    status, up = cli_peak_rss(cli_env, "cp", str(big_file), f"vm:{remote}")
    assert status == 0 and remote.stat().st_size == 100 * MiB
    assert _same(remote, big_file)
    back = tmp_path / "back.bin"
    status, down = cli_peak_rss(cli_env, "cp", f"vm:{remote}", str(back))
    assert status == 0 and _same(back, big_file)
    # A copy held in memory would add 100 MB; streamed, the CLI stays within a few MiB of a tiny copy.
    print(f"peak RSS: tiny copy {baseline / MiB:.1f} MiB, 100 MB up {up / MiB:.1f}, down {down / MiB:.1f}")
    assert up - baseline < 20 * MiB, (up, baseline)
    assert down - baseline < 20 * MiB, (down, baseline)
    summary: dict[str, Any] = json.loads(cli(cli_env, "cp", f"vm:{remote}", str(tmp_path), "--json").stdout)
    assert summary == {"path": str(tmp_path / "big.bin"), "size": 100 * MiB}


def _same(a: Path, b: Path) -> bool:
    with a.open("rb") as left, b.open("rb") as right:
        while True:
            x, y = left.read(MiB), right.read(MiB)
            if x != y:
                return False
            if not x:
                return True


def test_cp_draws_progress_only_on_a_terminal(
    cli_env: dict[str, str], big_file: Path, tmp_path: Path
) -> None:
    import pty

    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(AGENT_BIN), "cp", str(big_file), f"vm:{tmp_path}/on-a-tty.bin"],
            env=cli_env,
            stdout=subprocess.DEVNULL,
            stderr=secondary,
        )
        os.close(secondary)
        drawn = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other side closed
                break
            if not chunk:
                break
            drawn += chunk
        assert process.wait(timeout=60) == 0
    finally:
        os.close(primary)
    assert b"100%" in drawn and b"MiB/s" in drawn and b"\r" in drawn
    piped = cli(cli_env, "cp", str(big_file), f"vm:{tmp_path}/piped.bin")
    assert piped.returncode == 0 and piped.stderr == ""  # a pipe gets no progress


def test_wait_for_exits_0_when_met_and_4_when_not(cli_env: dict[str, str], logger: EventLogger) -> None:
    met = cli(cli_env, "wait-for", "window", "--title", "^event-logger$", "--timeout-seconds", "5", "--json")
    assert met.returncode == 0, met.stderr
    assert json.loads(met.stdout)["window"]["title"] == "event-logger"
    missed = cli(cli_env, "wait-for", "window", "--title", "^nothing like it$", "--timeout-seconds", "0.3")
    assert missed.returncode == 4 and "not met" in missed.stdout


def test_wait_for_timeout_is_the_conditions(cli_env: dict[str, str]) -> None:
    """--timeout on wait-for is how long the condition may take (exit 4), not the HTTP timeout (exit 3)."""
    missed = cli(cli_env, "wait-for", "window", "--title", "^nothing like it$", "--timeout", "1")
    assert missed.returncode == 4 and "not met" in missed.stdout, missed.stderr
