"""Schemathesis against an agent with exec and files ON: every answer of /files, /processes,
/exec, /bash and /exec/stream (2xx included) is checked against the document.

Generated commands and paths must not harm the machine, so the agent runs them as a throwaway
desktop user (made with useradd for this run, removed after with everything it started), whose
home is the only root the files API may touch (--files-allowed-roots), with short deadlines
(--exec-max-timeout, and a deadline for background processes from the hooks module). The
number of cases and operations covered is printed; every operation must have had a 2xx.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import ROOT, RunningAgent, start_agent
from tests.x11.test_schemathesis import CONFIG

pytestmark = pytest.mark.timeout(240)

INCLUDED = r"^/(files|processes|exec|bash)(/|$)"  # not /execute, /bash-action (seed vocabularies)
MAX_TIME = 90  # seconds of generation; the whole test stays under ~150 s
SEED_FILES = {"notes.txt": "notes\n", "old.txt": "old\n", "draft.txt": "draft\n"}  # the documented examples


def _processes_of(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
            except FileNotFoundError:
                continue
    return pids


@pytest.fixture(scope="module")
def throwaway_user() -> Iterator[pwd.struct_passwd]:
    """A desktop user that exists only for this run; its home is the files API's only root."""
    if os.geteuid() != 0:
        pytest.skip("needs root: generated commands must run as a throwaway user made with useradd")
    base = Path(tempfile.mkdtemp(prefix="computer-agent-fuzz-", dir="/tmp"))
    base.chmod(0o755)
    name = f"cafuzz{secrets.token_hex(3)}"
    home = base / "home"
    subprocess.run(
        ["useradd", "--home-dir", str(home), "--create-home", "--shell", "/bin/bash", "--user-group", name],
        check=True,
        capture_output=True,
    )
    user = pwd.getpwnam(name)
    try:
        for file_name, text in SEED_FILES.items():
            (home / file_name).write_text(text)
        (home / "Documents").mkdir()
        for path in [home / "Documents", *(home / n for n in SEED_FILES)]:
            os.chown(path, user.pw_uid, user.pw_gid)
        yield user
    finally:
        for pid in _processes_of(user.pw_uid):  # whatever the run left: ended by pid, then the user goes
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def exec_agent(
    throwaway_user: pwd.struct_passwd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningAgent]:
    with DevDesktop() as desktop:
        agent = start_agent(
            dict(desktop.env),
            tmp_path_factory.mktemp("schemathesis-exec"),
            "--display",
            desktop.display,
            "--desktop-user",
            throwaway_user.pw_name,
            "--files-allowed-roots",
            throwaway_user.pw_dir,
            "--files-max-bytes",
            str(1 << 20),
            "--exec-max-timeout",
            "5",
        )
        yield agent
        agent.stop()


def _templates(document: dict[str, object]) -> list[tuple[re.Pattern[str], str]]:
    return [
        (re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$"), path) for path in document
    ]


def _covered(har: Path, document: dict[str, object]) -> tuple[int, dict[tuple[str, str], Counter[int]]]:
    """Cases sent, and the statuses each documented operation answered (from the HAR report)."""
    templates = _templates(document)
    seen: dict[tuple[str, str], Counter[int]] = {}
    entries = json.loads(har.read_text())["log"]["entries"]
    for entry in entries:
        path = urlsplit(entry["request"]["url"]).path
        template = next((t for pattern, t in templates if pattern.match(path)), path)
        key = (entry["request"]["method"].lower(), template)
        seen.setdefault(key, Counter())[entry["response"]["status"]] += 1
    return len(entries), seen


def test_exec_and_files_answers_match_the_document(exec_agent: RunningAgent, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    har = tmp_path / "run.har"
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{exec_agent.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {exec_agent.token}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--include-path-regex",
        INCLUDED,
        "--max-examples",
        "10",
        "--max-time",
        str(MAX_TIME),
        "--seed",
        "20261130",
        "--request-timeout",
        "30",
        "--workers",
        "1",
        "--report",
        "har",
        "--report-har-path",
        str(har),
    ]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="tests.x11.schemathesis_hooks", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=200, cwd=tmp_path, env=env, check=False
    )
    (tmp_path / "schemathesis.out").write_text(result.stdout)  # the whole report, beside the HAR
    report = (
        re.sub(r"(.{1,12}?)\1{16,}", r"\1[...]", result.stdout[-200_000:])[-6000:] + result.stderr[-2000:]
    )
    assert result.returncode == 0, report
    assert exec_agent.process.poll() is None, "the agent died under fuzzing"

    with exec_agent.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    included = {(method, path) for path, item in paths.items() if re.match(INCLUDED, path) for method in item}
    cases, answered = _covered(har, paths)
    seen = {key: statuses for key, statuses in answered.items() if key in included}  # not the 405 probes
    print(f"\nschemathesis (exec and files on): {cases} cases over {len(seen)} of {len(included)} operations")
    for key in sorted(seen):
        print(f"  {key[0].upper():6} {key[1]:28} {dict(sorted(seen[key].items()))}")
    server_errors = {key: statuses for key, statuses in answered.items() if any(s >= 500 for s in statuses)}
    assert not server_errors, server_errors
    without_success = sorted(key for key in included if not any(200 <= s < 300 for s in seen.get(key, {})))
    assert not without_success, f"no 2xx answer was checked for {without_success}\n{report}"
