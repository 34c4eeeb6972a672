"""Pure parsing and validation of the window, launch and wallpaper inputs (no display)."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import pwd
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from agent.config import Config
from agent.errors import AgentError, InvalidArgument, NotFound, PayloadTooLarge, PermissionDenied
from agent.files.service import FileService
from agent.models.windows import Window
from agent.session.environment import _xft_dpi
from agent.session.launcher import parse_command, resolve_program
from agent.session.user import DesktopUser
from agent.x11.ctext import decode_compound_text
from agent.x11.wallpaper import WallpaperService, cover, decode_image
from agent.x11.wallpaper_fetch import _decode_data_url, fetch
from agent.x11.window_list import Decoration, WindowInfo
from agent.x11.windows import format_window_id, parse_window_id
from tests.displays import unused_display


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0x2200003", 0x2200003), ("0X1a", 0x1A), ("35651587", 35651587), (" 0x10 ", 0x10)],
)
def test_window_ids_parse_hex_and_decimal(text: str, expected: int) -> None:
    assert parse_window_id(text) == expected


@pytest.mark.parametrize("text", ["", "0x", "xyz", "0x123456789", "-5", "0", "1e3", "0x2200003; rm"])
def test_bad_window_ids_are_a_400(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_window_id(text)


def test_window_id_round_trip() -> None:
    assert format_window_id(0x2200003) == "0x2200003"
    assert parse_window_id(format_window_id(0xA0000C)) == 0xA0000C


def test_window_model_serialises_class_by_its_seed_name() -> None:
    window = Window.model_validate(
        {
            "id": "0x1",
            "title": "t",
            "class": "XTerm",
            "instance": "xterm",
            "x": 1,
            "y": 2,
            "width": 3,
            "height": 4,
            "frame": {"left": 0, "right": 0, "top": 0, "bottom": 0},
            "pid": None,
            "focused": False,
            "minimized": False,
            "maximized": False,
            "desktop": 0,
        }
    )
    data = window.model_dump(mode="json")
    assert data["class"] == "XTerm"
    assert "wm_class" not in data


def test_window_model_reads_the_x_sides_window_info() -> None:
    """The model is filled from WindowInfo's attributes (no field-by-field copy to drift)."""
    info = WindowInfo(
        0x2200003, "t", "XTerm", "xterm", 1, 2, 3, 4, Decoration(5, 6, 7, 8), 42, True, False, True, -1
    )
    assert Window.model_validate(info).model_dump(mode="json") == {
        "id": "0x2200003",
        "title": "t",
        "class": "XTerm",
        "instance": "xterm",
        "x": 1,
        "y": 2,
        "width": 3,
        "height": 4,
        "frame": {"left": 5, "right": 6, "top": 7, "bottom": 8},
        "pid": 42,
        "focused": True,
        "minimized": False,
        "maximized": True,
        "desktop": -1,
    }


def test_command_lines_split_like_a_shell_without_one() -> None:
    assert parse_command("xfce4-terminal --title 'My T'") == ["xfce4-terminal", "--title", "My T"]
    # Shell syntax is passed through as plain arguments, never interpreted.
    assert parse_command("echo hi; rm -rf / && $(id)") == ["echo", "hi;", "rm", "-rf", "/", "&&", "$(id)"]


@pytest.mark.parametrize("app", ["", "   ", "'unbalanced", 'a "b'])
def test_bad_command_lines_are_a_400(app: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_command(app)


def test_programs_resolve_on_the_given_path(tmp_path: Path) -> None:
    program = tmp_path / "my-app"
    program.write_text("#!/bin/sh\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    assert resolve_program("my-app", str(tmp_path)) == str(program)
    assert resolve_program(str(program), "") == str(program)
    with pytest.raises(NotFound):
        resolve_program("my-app", "/nonexistent")
    with pytest.raises(NotFound):
        resolve_program(str(tmp_path / "missing"), "")
    plain = tmp_path / "data.txt"
    plain.write_text("x")
    with pytest.raises(InvalidArgument):
        resolve_program(str(plain), "")
    with pytest.raises(InvalidArgument):
        resolve_program(str(tmp_path), "")


def _png(color: tuple[int, int, int] = (10, 20, 30), size: tuple[int, int] = (8, 4)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def test_data_urls_decode_base64_and_percent_encoding() -> None:
    png = _png()
    assert _decode_data_url("data:image/png;base64," + base64.b64encode(png).decode(), 1 << 20) == png
    assert _decode_data_url("data:text/plain,a%20b", 1 << 20) == b"a b"
    with pytest.raises(InvalidArgument):
        _decode_data_url("data:image/png;base64,@@@", 1 << 20)
    with pytest.raises(InvalidArgument):
        _decode_data_url("data:image/png;base64", 1 << 20)
    with pytest.raises(PayloadTooLarge):
        _decode_data_url("data:image/png;base64," + base64.b64encode(png).decode(), 10)


async def test_fetch_refuses_other_schemes_and_reads_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        await fetch("ftp://example.com/a.png", max_bytes=1 << 20, timeout=1)
    with pytest.raises(InvalidArgument):
        await fetch("/no/scheme.png", max_bytes=1 << 20, timeout=1)
    with pytest.raises(PermissionDenied, match="--wallpaper-fetch-urls"):
        await fetch("https://example.com/a.png", max_bytes=1 << 20, timeout=1)
    image = tmp_path / "a b.png"
    image.write_bytes(_png())
    with pytest.raises(PermissionDenied, match="--exec false"):  # no files service: no file URLs
        await fetch(f"file://{image}", max_bytes=1 << 20, timeout=1)
    files = FileService(Config(files_allowed_roots=(tmp_path,)))
    try:
        url = "file://" + str(image).replace(" ", "%20")
        assert await fetch(url, max_bytes=1 << 20, timeout=1, read_file=files.read_file) == _png()
        with pytest.raises(NotFound):
            await fetch(
                f"file://{tmp_path}/missing.png", max_bytes=1 << 20, timeout=1, read_file=files.read_file
            )
        with pytest.raises(PayloadTooLarge):
            await fetch(f"file://{image}", max_bytes=10, timeout=1, read_file=files.read_file)
        with pytest.raises(PermissionDenied):  # outside the files service's roots
            await fetch("file:///etc/hostname", max_bytes=1 << 20, timeout=1, read_file=files.read_file)
        os.mkfifo(tmp_path / "fifo")
        for not_a_file in ("fifo", ""):  # a FIFO (would block forever if opened), a folder
            with pytest.raises(InvalidArgument, match=r"not a regular file|a folder"):
                await fetch(
                    f"file://{tmp_path}/{not_a_file}", max_bytes=1 << 20, timeout=5, read_file=files.read_file
                )
    finally:
        await files.close()


def test_images_are_validated() -> None:
    image, kind = decode_image(_png((1, 2, 3)))
    assert kind == "PNG"
    assert image.getpixel((0, 0)) == (1, 2, 3)
    for junk in (b"", b"<html>not an image</html>", _png()[:40]):
        with pytest.raises(InvalidArgument):
            decode_image(junk)


def test_cover_fills_the_screen_and_keeps_the_center() -> None:
    wide = Image.new("RGB", (400, 100), (255, 0, 0))
    wide.paste((0, 0, 255), (150, 0, 250, 100))  # a blue band in the middle
    scaled = cover(wide, 160, 90)
    assert scaled.size == (160, 90)
    assert scaled.getpixel((80, 45)) == (0, 0, 255)


def test_xft_dpi_is_read_from_the_resource_database() -> None:
    assert _xft_dpi("Xcursor.size:\t24\nXft.dpi:\t144\n") == 144.0
    assert _xft_dpi("Xft.antialias:\t1\n") is None
    assert _xft_dpi("Xft.dpi: lots\n") is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"plain ascii", "plain ascii"),
        (b"caf\xe9", "café"),  # Latin-1 is the default right half
        (
            b"term \x1b%G\xe2\x80\x93\x1b%@ \xfc\x1b%G\xe2\x9c\x93\x1b%@",
            "term \u2013 ü✓",
        ),  # as xterm sends it
        (b"\x1b$(BF|K\\", "日本"),  # JIS X 0208 in GL
        (b"\x1b-L\xbf\xe0\xd8\xd2\xd5\xe2", "Привет"),  # ISO 8859-5 in GR
        (b"a\x1b$)A\xc4\xe3\x1b(Bb", "a你b"),  # GB 2312 in GR, then back to ASCII
    ],
)
def test_compound_text_titles_decode(data: bytes, expected: str) -> None:
    assert decode_compound_text(data) == expected


@pytest.mark.skipif(os.geteuid() != 0, reason="writing as the desktop user needs a root agent")
async def test_wallpaper_is_stored_as_the_desktop_user(tmp_path: Path) -> None:
    """The xfdesktop copy is written as the desktop user: a link they plant in their home
    leads only where they could write themselves (the old root write followed it and chowned
    the target folder to them)."""
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="computer-agent-store-", dir="/tmp"))
    try:
        base.chmod(0o755)
        home, protected = base / "home", base / "protected"
        (home / ".local" / "share" / "computer-agent").mkdir(parents=True)
        protected.mkdir(mode=0o755)
        for part in (
            home,
            home / ".local",
            home / ".local" / "share",
            home / ".local" / "share" / "computer-agent",
        ):
            os.chown(part, nobody.pw_uid, nobody.pw_gid)
        planted = home / ".local" / "share" / "computer-agent" / "wallpaper"
        os.symlink(protected, planted)
        os.lchown(planted, nobody.pw_uid, nobody.pw_gid)
        user = DesktopUser("nobody", nobody.pw_uid, nobody.pw_gid, (), str(home), "/bin/sh", switch=True)
        service = WallpaperService(unused_display(), user)
        image, kind = decode_image(_png())
        loop = asyncio.get_running_loop()
        try:
            with pytest.raises(AgentError, match="as nobody"):
                await loop.run_in_executor(service._user_threads(), service._store, _png(), image, kind)
            assert protected.stat().st_uid == 0 and list(protected.iterdir()) == []
            planted.unlink()
            stored = await loop.run_in_executor(service._user_threads(), service._store, _png(), image, kind)
            assert stored.read_bytes() == _png() and stored.stat().st_uid == nobody.pw_uid
            assert stored.parent.stat().st_uid == nobody.pw_uid
        finally:
            service.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
