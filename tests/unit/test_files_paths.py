"""Path policy (home-relative, roots, symlinks), Range parsing and modes, on a real folder tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.api.download import RangeNotSatisfiableError, parse_range
from agent.errors import InvalidArgument, PermissionDenied
from agent.files.paths import PathPolicy
from agent.files.service import parse_mode


def test_relative_and_home_paths(tmp_path: Path) -> None:
    policy = PathPolicy(str(tmp_path), ())
    assert policy.absolute("a/b") == f"{tmp_path}/a/b"
    assert policy.absolute("~/a") == f"{tmp_path}/a"
    assert policy.absolute("~") == str(tmp_path)
    assert policy.absolute("/x/../y") == "/y"
    with pytest.raises(InvalidArgument):
        policy.absolute("")
    with pytest.raises(InvalidArgument):
        policy.absolute("a\x00b")


def opened_path(policy: PathPolicy, raw: str) -> str:
    fd, path = policy.open(raw, os.O_PATH)
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == path  # what was opened is what is reported
    finally:
        os.close(fd)
    return path


def test_roots_refuse_escapes_after_resolution(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "file").write_text("x")
    (root / "sub").mkdir()
    (outside / "x").write_text("x")
    os.symlink(outside, root / "out")
    os.symlink("../outside/x", root / "out-relative")
    os.symlink(root / "sub", root / "absolute-inside")
    os.symlink("sub", root / "relative-inside")
    os.symlink(root, tmp_path / "alias")
    policy = PathPolicy(str(root), (root,))
    assert opened_path(policy, "file") == f"{root}/file"
    assert opened_path(policy, str(tmp_path / "alias" / "file")) == f"{root}/file"  # a way in is fine
    # Links inside the root that stay inside are followed, relative or absolute.
    assert opened_path(policy, str(root / "relative-inside")) == f"{root}/sub"
    assert opened_path(policy, str(root / "absolute-inside")) == f"{root}/sub"
    with policy.locate(str(root / "out")) as located:  # the link itself is inside
        assert located.path == f"{root}/out" and located.name == "out"
    with policy.locate_target(str(root / "relative-inside")) as located:
        assert located.path == f"{root}/sub"
    escapes = (
        "../outside/x",
        str(root / "out" / "x"),
        str(root / "out"),
        str(root / "out-relative"),
        "/etc/passwd",
    )
    for escape in escapes:
        with pytest.raises(PermissionDenied):
            os.close(policy.open(escape, os.O_PATH)[0])
    with pytest.raises(PermissionDenied):
        policy.locate_target(str(root / "out-relative"))
    with pytest.raises(PermissionDenied):
        policy.locate(str(root / "out" / "new"), create_parents=True)
    with pytest.raises(PermissionDenied):
        PathPolicy(str(root), (root,)).locate(str(tmp_path / "rootless"))  # a sibling with a common prefix


@pytest.mark.parametrize(
    ("header", "span"),
    [
        (None, None),
        ("bytes=0-9", (0, 10)),
        ("bytes=90-", (90, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=-500", (0, 100)),
        ("bytes=50-5000", (50, 100)),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=0-" + "9" * 5000, (0, 100)),
        ("bytes=-" + "9" * 5000, (0, 100)),
    ],
)
def test_parse_range(header: str | None, span: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == span


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-2", "bytes=-0", "bytes=" + "9" * 5000 + "-"])
def test_unsatisfiable_range(header: str) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        parse_range(header, 100)


def test_parse_mode() -> None:
    assert parse_mode("644") == parse_mode("0644") == parse_mode("0o644") == 0o644
    assert parse_mode(None) is None and parse_mode("") is None
    for bad in ("9", "rwx", "77777"):
        with pytest.raises(InvalidArgument):
            parse_mode(bad)
