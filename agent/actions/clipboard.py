"""Clipboard actions: read and set the CLIPBOARD (or PRIMARY) selection as text."""

from __future__ import annotations

from agent.actions.registry import BULK_BODY, REGISTRY
from agent.errors import Unavailable
from agent.models.base import Success
from agent.models.windows import ClipboardText, GetClipboardRequest, SetClipboardRequest
from agent.services import Services
from agent.x11.clipboard import ClipboardService


def _clipboard(services: Services) -> ClipboardService:
    if services.clipboard is None:
        raise Unavailable("the clipboard is not available in this agent")
    return services.clipboard


async def get_clipboard(services: Services, req: GetClipboardRequest) -> ClipboardText:
    return ClipboardText(text=await _clipboard(services).get_text(req.selection))


async def set_clipboard(services: Services, req: SetClipboardRequest) -> Success:
    await _clipboard(services).set_text(req.text, req.selection)
    return Success()


REGISTRY.add(
    "get_clipboard",
    GetClipboardRequest,
    get_clipboard,
    route="/desktop/clipboard",
    method="GET",
    result=ClipboardText,
    tag="clipboard",
    summary="The clipboard's text (converted from its owner)",
)
REGISTRY.add(
    "set_clipboard",
    SetClipboardRequest,
    set_clipboard,
    route="/desktop/clipboard",
    result=Success,
    max_body=BULK_BODY,
    tag="clipboard",
    summary="Own the clipboard with this text; every app pastes it",
)
