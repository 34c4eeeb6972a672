"""unprotect_child against a stand-in /proc: children become likelier OOM victims than the agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.supervision.oom import child_score, own_score, unprotect_child


def _proc(tmp_path: Path, own: int) -> Path:
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "oom_score_adj").write_text(f"{own}\n")
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "oom_score_adj").write_text(f"{own}\n")  # inherited
    return tmp_path


@pytest.mark.parametrize(("own", "child"), [(-500, 0), (0, 200), (100, 300), (900, 1000)])
def test_child_scores(tmp_path: Path, own: int, child: int) -> None:
    proc = _proc(tmp_path, own)
    assert own_score(proc) == own
    unprotect_child(42, proc)
    assert int((proc / "42" / "oom_score_adj").read_text()) == child == child_score(own)


def test_a_child_that_is_gone_is_fine(tmp_path: Path) -> None:
    unprotect_child(4242, _proc(tmp_path, -500))  # no such process: nothing raised
