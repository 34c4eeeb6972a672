"""GET /screencast: live JPEG frames of the screen (MJPEG, or binary WebSocket messages)."""

from __future__ import annotations

from agent.actions.outputs import FrameStream
from agent.actions.registry import REGISTRY
from agent.desktop.screencast import CastOptions
from agent.errors import DisplayUnavailable
from agent.models.screencast import ScreencastFrame, ScreencastRequest
from agent.services import Services

SCREENCAST_PROTOCOL = (
    "Without an upgrade: `multipart/x-mixed-replace; boundary=frame` (MJPEG), one `image/jpeg` "
    "part per frame, with `X-Frame-Seq`, `X-Captured-At` (Unix time), `X-Screen-Width`/`-Height` "
    "part headers; an `<img src>` shows it. With a WebSocket upgrade (`Upgrade: websocket`): a text "
    'message `{"type": "screen", "width", "height", "screen_width", "screen_height"}` before the '
    "first frame and whenever the size changes, then one binary message per frame (a JPEG file); "
    "messages from the client are ignored. The first frame is the current screen, sent at once; "
    "the next ones come only when the X server reports a change (DAMAGE), at most `fps` a second. "
    "Viewers with the same options share one capture and encode. A slow reader skips frames (it "
    "gets the newest), it never queues them. Browsers, which cannot set Authorization on an `<img>` "
    "or a WebSocket, authenticate with a single-use `?ticket=` from POST /ws/ticket; a WebSocket "
    "from a web page is accepted only from the agent's own origin (see docs/live.md)."
)


async def screencast(services: Services, req: ScreencastRequest) -> FrameStream:
    if services.screencasts is None:
        raise DisplayUnavailable("this agent cannot watch its screen for changes (no X DAMAGE monitor)")
    options = CastOptions(
        fps=req.fps,
        quality=req.quality,
        scale=req.scale,
        max_width=req.max_width,
        max_height=req.max_height,
        cursor=req.cursor,
    )
    viewer = await services.screencasts.watch(options)
    return FrameStream(viewer.frames(), viewer.leave)


REGISTRY.add(
    "screencast",
    ScreencastRequest,
    screencast,
    summary="Live JPEG frames of the screen, sent when it changes (MJPEG, or WebSocket frames)",
    description=SCREENCAST_PROTOCOL,
    route="/screencast",
    method="GET",
    result=ScreencastFrame,
    media="frames",
    ok="MJPEG (multipart/x-mixed-replace), or 101 Switching Protocols on a WebSocket upgrade",
    cancel_on_disconnect=True,
    actions=False,
    ticket=True,
    tag="live",
)
