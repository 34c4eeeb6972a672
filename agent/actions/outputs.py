"""What operation handlers return besides a ``Result`` model: none of it knows HTTP.

The HTTP layer (``agent.api.replies``) turns each into a response; ``/actions`` and ``/batch``
take only JSON results and images. Services an idle agent runs (the event hub, the screencast)
import these: this module loads no pydantic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

from agent.models.image import ImageResult

if TYPE_CHECKING:  # the schema machinery is not loaded by what an idle agent runs (issue 19)
    from pydantic import BaseModel

    from agent.models.base import Result

# How an operation's successful answer is carried, as declared in the registry.
Media = Literal["json", "image", "bytes", "events", "text", "document", "websocket", "frames", "html"]


@dataclass(frozen=True, slots=True)
class RawBody:
    """Bytes already in their final form: the metrics exposition, the OpenAPI document, the
    probes' JSON (``agent.actions.probes``)."""

    data: bytes
    content_type: str
    headers: Mapping[str, str] | None = None  # more response headers (the viewer page's CSP)
    status: int = 200


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a stream: its model and, for resumable streams, the offset it ends at."""

    model: BaseModel
    offset: int | None = None

    @property
    def kind(self) -> str:
        return str(getattr(self.model, "type", "message"))


@dataclass(frozen=True, slots=True)
class EventStream:
    """Events produced as they come; closed (and its work ended) when the reader goes away."""

    events: AsyncIterator[Event]
    close: Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Download:
    """An open regular file to send; the HTTP layer applies a Range and closes ``fd``."""

    fd: int
    path: str
    size: int
    mtime: float
    inode: int
    size_known: bool  # False on /proc, /sys: read to the end and sent chunked
    read_chunk: Callable[[int], Awaitable[bytes]]  # read up to N bytes of ``fd`` off the event loop
    range: str | None = None  # the caller's Range (bytes=START-END): 206, or 416 outside the file


@dataclass(frozen=True, slots=True)
class ByteBody:
    """A raw request body read as it arrives (uploads); ``length`` is the declared size, if any."""

    chunks: AsyncIterator[bytes]
    length: int | None


@dataclass(frozen=True, slots=True)
class Frame:
    """One picture of a live stream (the screencast), numbered from 1 by its source."""

    image: ImageResult
    seq: int
    captured_at: float  # time.time() when its capture started


@dataclass(frozen=True, slots=True)
class FrameStream:
    """Pictures as they come (``media="frames"``): MJPEG, or binary WebSocket messages on an
    upgrade; closed (the viewer leaves its source) when the reader goes away."""

    frames: AsyncIterator[Frame]
    close: Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A WebSocket session to run on this request (``media="websocket"``): the HTTP layer
    upgrades the connection and runs the session named ``protocol`` with the validated
    ``request``, which carries its options."""

    protocol: str
    request: BaseModel


Output: TypeAlias = "Result | ImageResult | RawBody | EventStream | Download | FrameStream | Upgrade"
