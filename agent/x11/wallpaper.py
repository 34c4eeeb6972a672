"""Setting the desktop wallpaper from an http(s), file or data URL.

Where the bytes come from, and under which rules, is ``agent.x11.wallpaper_fetch`` (loaded
with the first wallpaper). The image is fetched with a size cap and a deadline, decoded (so a
web page or a truncated file is a 400, not a black desktop), then handed to whatever draws the desktop: xfdesktop through
xfconf when it runs (it owns the root window's background and would paint over ours), else
the root window itself, the way Esetroot and feh do it: a pixmap kept alive after our
connection closes (RetainPermanent), set as the root background and announced in
``_XROOTPMAP_ID``/``ESETROOT_PMAP_ID`` for pseudo-transparent apps; the previous such pixmap's
holder is released so repeated changes do not leak server memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hashlib
import io
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from Xlib import X, Xatom
from Xlib.display import Display

from agent.errors import (
    AgentError,
    DeadlineExceeded,
    InvalidArgument,
)
from agent.files.creds import file_executor
from agent.session.user import DesktopUser, session_environment
from agent.x11 import ewmh
from agent.x11.connection import XConnection

if TYPE_CHECKING:  # Pillow, psutil and the URL fetching load with the first wallpaper
    import psutil
    from PIL import Image

    from agent.x11.wallpaper_fetch import FileReader

LOG = logging.getLogger(__name__)

MAX_PIXELS = 64_000_000  # larger images are refused before decoding (decompression bombs)
_KEEP_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}


@dataclass(frozen=True, slots=True)
class WallpaperResult:
    method: Literal["xfconf", "root-pixmap"]
    width: int  # of the source image
    height: int
    path: str | None  # where the image was stored for the desktop (xfconf only)


class WallpaperService:
    def __init__(
        self,
        display: str,
        user: DesktopUser,
        *,
        max_bytes: int = 32 * 1024 * 1024,
        timeout: float = 20.0,
        base_env: dict[str, str] | None = None,
        read_file: FileReader | None = None,
        fetch_urls: bool = False,
    ) -> None:
        self._display = display
        self._user = user
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._base_env = base_env
        self._read_file = read_file  # None: file URLs are refused (the files API is off)
        self._fetch_urls = fetch_urls
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()

    async def set_from_url(self, url: str) -> WallpaperResult:
        from agent.x11.wallpaper_fetch import fetch

        data = await fetch(
            url,
            max_bytes=self._max_bytes,
            timeout=self._timeout,
            read_file=self._read_file,
            fetch_urls=self._fetch_urls,
        )
        loop = asyncio.get_running_loop()
        image, kind = await loop.run_in_executor(None, decode_image, data)
        async with self._lock:
            if await loop.run_in_executor(None, xfdesktop_running, self._user, self._display):
                path = await loop.run_in_executor(self._user_threads(), self._store, data, image, kind)
                await self._set_xfconf(path)
                return WallpaperResult("xfconf", image.width, image.height, str(path))
            await loop.run_in_executor(None, set_root_pixmap, self._display, image)
            return WallpaperResult("root-pixmap", image.width, image.height, None)

    def _user_threads(self) -> concurrent.futures.ThreadPoolExecutor:
        """A thread that writes files as the desktop user (made on first use)."""
        if self._writer is None:
            self._writer = file_executor(self._user, workers=1)
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=False, cancel_futures=True)
            self._writer = None

    def _store(self, data: bytes, image: Image.Image, kind: str) -> Path:
        """Keep the image where the desktop user's xfdesktop can read it. Runs as the desktop
        user: the folders are in their home, and whatever links they put there lead only where
        they could write themselves (the files are theirs without a chown)."""
        directory = Path(self._user.home) / ".local" / "share" / "computer-agent" / "wallpaper"
        directory.mkdir(parents=True, exist_ok=True)
        ext = _KEEP_FORMATS.get(kind)
        if ext is None:  # re-encode what gdk-pixbuf may not read (WebP, ICO, ...)
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            data, ext = buffer.getvalue(), "png"
        path = directory / f"wallpaper-{hashlib.sha256(data).hexdigest()[:16]}.{ext}"
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            with open(fd, "wb") as handle:
                handle.write(data)
                os.fchmod(handle.fileno(), 0o644)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise AgentError(
                f"cannot store the wallpaper in {directory} as {self._user.name}: {exc.strerror or exc}"
            ) from None
        return path

    async def _set_xfconf(self, path: Path) -> None:
        """Point every monitor's and workspace's ``last-image`` at ``path``."""
        listing = await self._xfconf("-c", "xfce4-desktop", "-l")
        props = [p for p in listing.split() if p.startswith("/backdrop/") and p.endswith("/last-image")]
        if not props:  # a fresh xfdesktop that has not written its defaults yet
            props = ["/backdrop/screen0/monitorscreen/workspace0/last-image"]
        for prop in props:
            await self._xfconf("-c", "xfce4-desktop", "-p", prop, "-n", "-t", "string", "-s", str(path))

    async def _xfconf(self, *args: str) -> str:
        env = session_environment(self._user, self._display, self._base_env or os.environ)
        switch = self._user.switch
        proc = await asyncio.create_subprocess_exec(
            "xfconf-query",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            user=self._user.uid if switch else None,
            group=self._user.gid if switch else None,
            extra_groups=list(self._user.groups) if switch else None,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 10.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise DeadlineExceeded("xfconf-query did not answer within 10s") from None
        if proc.returncode != 0:
            raise AgentError("xfconf-query failed", details={"stderr": err.decode("utf-8", "replace")[-500:]})
        return out.decode("utf-8", "replace")


def decode_image(data: bytes) -> tuple[Image.Image, str]:
    """Decode and fully load the image (RGB) and its format; 400 when it is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format or ""
            if probe.width * probe.height > MAX_PIXELS:
                raise InvalidArgument(
                    f"url: the image is {probe.width}x{probe.height}, more than {MAX_PIXELS} pixels",
                    details={"field": "url"},
                )
            probe.load()
            image = probe.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidArgument(
            f"url: not a decodable image ({type(exc).__name__})", details={"field": "url"}
        ) from None
    return image, kind


def xfdesktop_running(user: DesktopUser, display: str) -> bool:
    """Whether the desktop user's xfdesktop draws *this* display's desktop (one on another
    display, say a second session or a container's, must not take the wallpaper elsewhere)."""
    import psutil

    wanted = display_number(display)
    for proc in psutil.process_iter(["name", "uids"]):
        with contextlib.suppress(psutil.Error):
            if (
                proc.info["name"] == "xfdesktop"
                and proc.info["uids"].real == user.uid
                and _process_display(proc) in (wanted, UNKNOWN)
            ):
                return True
    return False


UNKNOWN = "?"


def _process_display(proc: psutil.Process) -> str | None:
    """The display number a process was started on; UNKNOWN when its environment cannot be read
    (the system unit leaves the agent without CAP_SYS_PTRACE): then it counts as ours."""
    import psutil

    try:
        return display_number(proc.environ().get("DISPLAY", ""))
    except psutil.AccessDenied:
        return UNKNOWN


def display_number(display: str) -> str | None:
    """``:1``, ``:1.0``, ``unix:1`` and ``localhost:1.0`` all name local display 1; None for
    a remote or malformed name."""
    host, _, rest = display.rpartition(":")
    if host not in ("", "unix", "localhost") or not rest:
        return None
    number = rest.split(".", 1)[0]
    return number if number.isdigit() else None


def cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to fill ``width x height`` and crop the overflow evenly (what "zoomed" means)."""
    from PIL import Image

    scale = max(width / image.width, height / image.height)
    size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    scaled = image.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return scaled.crop((left, top, left + width, top + height))


def set_root_pixmap(display_name: str, image: Image.Image) -> None:
    """Paint ``image`` as the root background on a one-shot connection whose resources outlive
    it; its X errors are mapped like every other connection's."""
    connection = XConnection(display_name, name="x11-wallpaper")
    try:
        width, height = connection.call(functools.partial(_paint_root, image=image))
    finally:
        connection.disconnect()
    LOG.info("root window background set (%dx%d)", width, height)


def _paint_root(display: Display, image: Image.Image) -> tuple[int, int]:
    screen = display.screen()
    root = screen.root
    width, height = int(screen.width_in_pixels), int(screen.height_in_pixels)
    if screen.root_depth not in (24, 32):
        raise AgentError(f"root pixmaps need a 24-bit screen, this one has depth {screen.root_depth}")
    atoms = {name: display.intern_atom(name) for name in ("_XROOTPMAP_ID", "ESETROOT_PMAP_ID")}
    old_xroot = ewmh.read_prop(display, root.id, atoms["_XROOTPMAP_ID"], Xatom.PIXMAP)
    old_eset = ewmh.read_prop(display, root.id, atoms["ESETROOT_PMAP_ID"], Xatom.PIXMAP)
    pixmap = root.create_pixmap(width, height, screen.root_depth)
    gc = pixmap.create_gc()
    pixmap.put_pil_image(gc, 0, 0, cover(image, width, height))
    gc.free()
    for atom in atoms.values():
        root.change_property(atom, Xatom.PIXMAP, 32, [pixmap.id])
    root.change_attributes(background_pixmap=pixmap)
    root.clear_area(0, 0, 0, 0)
    # Release the previous Esetroot-style pixmap (only one we or a peer setter retained); its
    # client may be gone already, which is what we wanted.
    if old_eset is not None and old_xroot is not None and old_eset.first_int() == old_xroot.first_int():
        previous = old_eset.first_int()
        if previous:
            display.create_resource_object("pixmap", previous).kill_client(onerror=_already_gone)
    display.set_close_down_mode(X.RetainPermanent)
    return width, height


def _already_gone(err: object, request: object) -> bool:
    """The previous wallpaper's client was released by someone else first.

    True tells python-xlib the error is handled; anything falsy hands it on to the connection's
    trap, which fails the whole call.
    """
    return True
