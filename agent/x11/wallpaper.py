"""Setting the desktop wallpaper from an http(s), file or data URL.

The image is fetched with a size cap and a deadline, decoded (so a web page or a truncated file
is a 400, not a black desktop), then handed to whatever draws the desktop: xfdesktop through
xfconf when it runs (it owns the root window's background and would paint over ours), else
the root window itself, the way Esetroot and feh do it: a pixmap kept alive after our
connection closes (RetainPermanent), set as the root background and announced in
``_XROOTPMAP_ID``/``ESETROOT_PMAP_ID`` for pseudo-transparent apps; the previous such pixmap's
holder is released so repeated changes do not leak server memory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import io
import logging
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil
from PIL import Image, UnidentifiedImageError
from Xlib import X, Xatom
from Xlib.display import Display

from agent.errors import AgentError, DeadlineExceeded, InvalidArgument, NotFound, PayloadTooLarge
from agent.exec.user import DesktopUser, session_environment
from agent.x11 import ewmh
from agent.x11.connection import CONNECTION_ERRORS

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
    ) -> None:
        self._display = display
        self._user = user
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._base_env = base_env
        self._lock = asyncio.Lock()

    async def set_from_url(self, url: str) -> WallpaperResult:
        data = await fetch(url, max_bytes=self._max_bytes, timeout=self._timeout)
        loop = asyncio.get_running_loop()
        image, kind = await loop.run_in_executor(None, decode_image, data)
        async with self._lock:
            if xfdesktop_running(self._user):
                path = await loop.run_in_executor(None, self._store, data, image, kind)
                await self._set_xfconf(path)
                return WallpaperResult("xfconf", image.width, image.height, str(path))
            await loop.run_in_executor(None, set_root_pixmap, self._display, image)
            return WallpaperResult("root-pixmap", image.width, image.height, None)

    def _store(self, data: bytes, image: Image.Image, kind: str) -> Path:
        """Keep the image where the desktop user's xfdesktop can read it."""
        directory = Path(self._user.home) / ".local" / "share" / "computer-agent" / "wallpaper"
        directory.mkdir(parents=True, exist_ok=True)
        ext = _KEEP_FORMATS.get(kind)
        if ext is None:  # re-encode what gdk-pixbuf may not read (WebP, ICO, ...)
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            data, ext = buffer.getvalue(), "png"
        path = directory / f"wallpaper-{hashlib.sha256(data).hexdigest()[:16]}.{ext}"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.chmod(0o644)
        os.replace(tmp, path)
        if self._user.switch:
            for part in (path, directory, directory.parent, directory.parent.parent):
                os.chown(part, self._user.uid, self._user.gid)
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


async def fetch(url: str, *, max_bytes: int, timeout: float) -> bytes:
    """The bytes behind an http(s), file or data URL, at most ``max_bytes`` of them."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        try:
            return await asyncio.wait_for(_fetch_http(url, max_bytes), timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"url: no complete answer within {timeout:g}s") from None
    if scheme == "file":
        return await asyncio.get_running_loop().run_in_executor(None, _read_file, url, max_bytes)
    if scheme == "data":
        return _decode_data_url(url, max_bytes)
    raise InvalidArgument(
        f"url: unsupported scheme {scheme or '(none)'!r}; use http, https, file or data",
        details={"field": "url"},
    )


async def _fetch_http(url: str, max_bytes: int) -> bytes:
    import aiohttp  # the client only; imported here so that importing this module stays cheap

    try:
        async with aiohttp.ClientSession() as session, session.get(url, max_redirects=5) as response:
            if response.status != 200:
                raise InvalidArgument(
                    f"url: the server answered HTTP {response.status}",
                    details={"field": "url", "status": response.status},
                )
            if response.content_length is not None and response.content_length > max_bytes:
                raise _too_large(max_bytes)
            chunks, size = [], 0
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                chunks.append(chunk)
            return b"".join(chunks)
    except aiohttp.ClientError as exc:
        raise InvalidArgument(
            f"url: cannot fetch: {type(exc).__name__}: {exc}", details={"field": "url"}
        ) from None


def _read_file(url: str, max_bytes: int) -> bytes:
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InvalidArgument(
            "url: file URLs must name a local file (file:///path)", details={"field": "url"}
        )
    path = urllib.parse.unquote(parts.path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise NotFound(f"url: no file {path}", details={"path": path}) from None
    except OSError as exc:
        raise InvalidArgument(f"url: cannot read {path}: {exc.strerror}", details={"path": path}) from None
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def _decode_data_url(url: str, max_bytes: int) -> bytes:
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise InvalidArgument("url: a data URL needs a ',' before its data", details={"field": "url"})
    if len(payload) > max_bytes * 4 // 3 + 4:
        raise _too_large(max_bytes)
    if header.lower().endswith(";base64"):
        try:
            data = base64.b64decode(urllib.parse.unquote(payload), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument("url: the data URL is not valid base64", details={"field": "url"}) from None
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"url: the image is larger than {max_bytes} bytes", details={"max_bytes": max_bytes}
    )


def decode_image(data: bytes) -> tuple[Image.Image, str]:
    """Decode and fully load the image (RGB) and its format; 400 when it is not an image."""
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


def xfdesktop_running(user: DesktopUser) -> bool:
    for proc in psutil.process_iter(["name", "uids"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["name"] == "xfdesktop" and proc.info["uids"].real == user.uid:
                return True
    return False


def cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to fill ``width x height`` and crop the overflow evenly (what "zoomed" means)."""
    scale = max(width / image.width, height / image.height)
    size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    scaled = image.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return scaled.crop((left, top, left + width, top + height))


def set_root_pixmap(display_name: str, image: Image.Image) -> None:
    """Paint ``image`` as the root background on a connection whose resources outlive it."""
    try:
        display = Display(display_name)
    except CONNECTION_ERRORS as exc:
        from agent.errors import DisplayUnavailable

        raise DisplayUnavailable(f"the X display {display_name} is not reachable: {exc}") from None
    try:
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
        # Release the previous Esetroot-style pixmap (only one we or a peer setter retained).
        if old_eset is not None and old_xroot is not None and old_eset.first_int() == old_xroot.first_int():
            previous = old_eset.first_int()
            if previous:
                display.create_resource_object("pixmap", previous).kill_client()
        display.set_close_down_mode(X.RetainPermanent)
        display.sync()
    finally:
        display.close()
    LOG.info("root window background set (%dx%d)", width, height)
