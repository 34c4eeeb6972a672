"""Sending a stream of frames: MJPEG (``multipart/x-mixed-replace``) or WebSocket binary messages.

Each write waits until the socket takes it (aiohttp drains past its buffer limit), so a slow
reader holds at most one frame in its socket buffer and one at its viewer: the source skips frames
for it (``agent.desktop.screencast.Viewer``) rather than queueing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import hdrs, web
from aiohttp.http import WSMsgType  # not `from aiohttp`: see agent.api.lazy_client

from agent.actions.outputs import Frame, FrameStream
from agent.api.appkeys import CONFIG_KEY
from agent.models.screencast import ScreencastFrame

LOG = logging.getLogger(__name__)
BOUNDARY = "frame"
MJPEG = f"multipart/x-mixed-replace; boundary={BOUNDARY}"


def wants_websocket(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


async def send_frames(request: web.Request, stream: FrameStream) -> web.StreamResponse:
    """The frames as the request asks; the stream is closed however the sending ends."""
    try:
        if wants_websocket(request):
            return await _send_websocket(request, stream)
        if request.method == "HEAD":  # the headers of the stream, none of its frames
            return web.StreamResponse(headers={hdrs.CONTENT_TYPE: MJPEG})
        return await _send_mjpeg(request, stream)
    finally:
        await stream.close()


def _part(frame: Frame) -> bytes:
    image = frame.image
    headers = (
        f"--{BOUNDARY}\r\n"
        f"Content-Type: {image.content_type}\r\n"
        f"Content-Length: {len(image.data)}\r\n"
        f"X-Frame-Seq: {frame.seq}\r\n"
        f"X-Captured-At: {frame.captured_at:.6f}\r\n"
        f"X-Screen-Width: {image.screen_width}\r\n"
        f"X-Screen-Height: {image.screen_height}\r\n\r\n"
    )
    return headers.encode("ascii") + image.data + b"\r\n"


async def _send_mjpeg(request: web.Request, stream: FrameStream) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            hdrs.CONTENT_TYPE: MJPEG,
            hdrs.CACHE_CONTROL: "no-cache, no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    try:
        async for frame in stream.frames:
            await response.write(_part(frame))
        await response.write_eof()
    except ConnectionResetError:
        LOG.info("screencast viewer disconnected")
    return response


async def _send_websocket(request: web.Request, stream: FrameStream) -> web.WebSocketResponse:
    from agent.api.websocket import check_origin  # it runs actions: imported late (no cycle)

    config = request.app[CONFIG_KEY]
    check_origin(request, config)  # no CORS on a WebSocket: only our own pages
    # Pings as on /ws (ws_heartbeat): a viewer that misses a pong for as long is closed.
    ws = web.WebSocketResponse(heartbeat=config.ws_heartbeat, max_msg_size=64 * 1024, compress=False)
    await ws.prepare(request)
    sender = asyncio.create_task(_send_ws_frames(ws, stream), name="screencast-ws-sender")
    try:
        async for message in ws:  # the viewer's messages mean nothing; reading them sees the close
            if message.type == WSMsgType.ERROR:
                break
            if sender.done():
                break
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
            await sender
        if not ws.closed:
            await ws.close()
    return ws


async def _send_ws_frames(ws: web.WebSocketResponse, stream: FrameStream) -> None:
    shape: tuple[int, int, int, int] | None = None
    try:
        async for frame in stream.frames:
            image = frame.image
            now = (image.width, image.height, image.screen_width, image.screen_height)
            if now != shape:
                shape = now
                info = ScreencastFrame(
                    width=image.width,
                    height=image.height,
                    screen_width=image.screen_width,
                    screen_height=image.screen_height,
                )
                await ws.send_str(info.model_dump_json())
            await ws.send_bytes(image.data)
        await ws.close(code=1011, message=b"the screencast ended (the display went away)")
    except ConnectionResetError:
        LOG.info("screencast viewer disconnected")
