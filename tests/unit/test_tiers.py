"""Every test belongs to a tier by its directory; a test file outside the tiers fails collection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, TESTS, tier_of


def collect(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_the_tier_is_the_directory() -> None:
    assert tier_of(TESTS / "unit" / "test_uncover.py") == "unit"
    assert tier_of(TESTS / "a11y" / "test_accessibility.py") == "a11y"
    assert tier_of(TESTS / "test_loose.py") is None
    assert tier_of(TESTS / "apps" / "test_thing.py") is None


def test_every_unit_file_is_selected_by_its_marker() -> None:
    """`-m unit` (make unit) selects every test under tests/unit, test_uncover.py's included."""
    selected = collect("-m", "unit", "tests/unit").stdout
    everything = collect("tests/unit").stdout
    assert "tests/unit/test_uncover.py::" in selected
    tests = [line for line in everything.splitlines() if "::" in line]
    assert tests and tests == [line for line in selected.splitlines() if "::" in line]


def test_a_test_file_without_a_tier_fails_collection(tmp_path: Path) -> None:
    loose = tmp_path / "test_loose.py"
    loose.write_text("def test_passes() -> None:\n    pass\n")
    # The tests' conftest as a plugin, so its hooks see a file outside tests/.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = collect("-p", "tests.conftest", "--rootdir", str(tmp_path), str(loose), env=env)
    assert result.returncode != 0, result.stdout
    assert "belongs to no test tier" in result.stdout, result.stdout
    assert "test_passes" not in result.stdout
