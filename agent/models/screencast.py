"""The screencast's request (GET /screencast) and the description of its frames."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.models.base import MAX_HEIGHT, MAX_WIDTH, SCALE, Request, Result


class ScreencastRequest(Request):
    type: Literal["screencast"] = "screencast"
    fps: float = Field(
        default=30, gt=0, le=60, description="At most this many frames a second (frames come only on change)"
    )
    quality: int = Field(default=70, ge=1, le=100, description="JPEG quality")
    scale: float | None = SCALE
    max_width: int | None = MAX_WIDTH
    max_height: int | None = MAX_HEIGHT
    cursor: bool = Field(default=False, description="Draw the pointer into the frames")


class ScreencastFrame(Result):
    """The text message a WebSocket viewer gets before the first frame and whenever the frames'
    size changes: the JPEG frames that follow are ``width`` x ``height`` pictures of a
    ``screen_width`` x ``screen_height`` screen (map a point by the ratio)."""

    type: Literal["screen"] = "screen"
    width: int
    height: int
    screen_width: int
    screen_height: int


MAX_VIEWER_TTL = 600.0


class ViewerTicketRequest(Request):
    type: Literal["viewer_ticket"] = "viewer_ticket"
    control: bool = Field(
        default=False, description="The page may forward mouse and keyboard (through /ws); default: view only"
    )
    ttl_seconds: float = Field(
        default=60.0, gt=0, le=MAX_VIEWER_TTL, description="How long the link may wait to be opened"
    )
    fps: float = Field(default=30, gt=0, le=60, description="The page's screencast fps cap")
    quality: int = Field(default=70, ge=1, le=100, description="The page's JPEG quality")
    max_width: int | None = Field(default=None, ge=1, le=16384, description="The page's frame width cap")


class ViewerTicket(Result):
    url: str = Field(description="The viewer page's path with its single-use ticket: open it in a browser")
    ticket: str = Field(description="The ticket alone (GET /viewer?ticket=...)")
    control: bool
    expires_in: float = Field(description="Seconds left to open it")


class ViewerRequest(Request):
    type: Literal["viewer"] = "viewer"
    ticket: str | None = Field(
        default=None, max_length=200, description="The single-use link ticket from POST /viewer/ticket"
    )
    fps: float = Field(default=30, gt=0, le=60, description="The page's screencast fps cap")
    quality: int = Field(default=70, ge=1, le=100, description="The page's JPEG quality")
    max_width: int | None = Field(default=None, ge=1, le=16384, description="The page's frame width cap")
