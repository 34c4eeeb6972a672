"""Turning what a handler returned into the HTTP answer its declaration documents.

JSON results are serialised from their models by pydantic-core in one pass (an 8k-node
accessibility tree: ~20x faster than model_dump + json.dumps); images as bytes (or base64 JSON);
event streams as NDJSON lines or, when the client asks for ``text/event-stream``, Server-Sent
Events carrying the same objects; downloads by ``agent.api.download``.
"""

from __future__ import annotations

import base64
import contextlib
import logging

from aiohttp import web

from agent.actions.outputs import Download, EventStream, FrameStream, Output, RawBody, Upgrade
from agent.api.download import send_download
from agent.api.middleware import REQUEST_ID_HEADER
from agent.api.routes import raw_response
from agent.api.screencast import send_frames
from agent.models.base import ImageJSON
from agent.models.image import ImageResult
from agent.supervision.logs import REQUEST_ID

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
LOG = logging.getLogger(__name__)


def image_json(image: ImageResult) -> ImageJSON:
    return ImageJSON(
        image=base64.b64encode(image.data).decode("ascii"),
        format=image.format,  # type: ignore[arg-type]
        width=image.width,
        height=image.height,
    )


def _image(output: ImageResult) -> web.Response:
    headers = {
        "X-Screen-Width": str(output.screen_width),
        "X-Screen-Height": str(output.screen_height),
        "X-Image-Width": str(output.width),
        "X-Image-Height": str(output.height),
    }
    if output.cache is not None:  # documented in docs/screenshots.md
        headers["X-Screenshot-Cache"] = output.cache
    if output.as_json:
        return web.Response(
            text=image_json(output).model_dump_json(), content_type="application/json", headers=headers
        )
    return web.Response(body=output.data, content_type=output.content_type, headers=headers)


async def render(request: web.Request, output: Output) -> web.StreamResponse:
    if isinstance(output, ImageResult):
        return _image(output)
    if isinstance(output, RawBody):
        return raw_response(output)
    if isinstance(output, EventStream):
        if request.method == "HEAD":  # the headers of the stream, none of its events
            await output.close()
            return web.StreamResponse(
                headers={"Content-Type": SSE if SSE in request.headers.get("Accept", "") else NDJSON}
            )
        return await send_events(request, output)
    if isinstance(output, Download):
        return await send_download(request, output)
    if isinstance(output, Upgrade):
        from agent.api.websocket import serve  # it runs actions: imported late (no cycle)

        return await serve(request, output)
    if isinstance(output, FrameStream):
        return await send_frames(request, output)
    return web.Response(text=output.model_dump_json(), content_type="application/json")


async def send_events(request: web.Request, stream: EventStream) -> web.StreamResponse:
    """Each event as it comes; a reader that goes away ends the stream (and closes its source)."""
    sse = SSE in request.headers.get("Accept", "")
    response = web.StreamResponse(
        headers={
            "Content-Type": SSE if sse else NDJSON,
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    request_id = REQUEST_ID.get()
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    async with contextlib.aclosing(_Closing(stream)):
        await response.prepare(request)
        try:
            async for event in stream.events:
                data = event.model.model_dump_json(by_alias=True).encode()
                if sse:
                    prefix = f"id: {event.offset}\n" if event.offset is not None else ""
                    payload = f"{prefix}event: {event.kind}\ndata: ".encode() + data + b"\n\n"
                else:
                    payload = data + b"\n"
                await response.write(payload)
            await response.write_eof()
        except ConnectionResetError:  # the reader went away mid-write; closing the stream ends its work
            LOG.info("stream reader disconnected")
    return response


class _Closing:
    """``aclosing`` for an ``EventStream``: its ``close`` runs however the sending ends."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream

    async def aclose(self) -> None:
        await self.stream.close()
