"""The desktop event types (``agent.models.live`` documents each one's fields).

Apart from the models so the event hub and its filters run without the schema machinery.
"""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = (
    "window.created",
    "window.destroyed",
    "window.focused",
    "window.renamed",
    "window.moved",
    "window.resized",
    "clipboard.changed",
    "screen.resized",
    "readiness.changed",
    "process.exited",
    "app.exited",
)
EVENT_FAMILIES: tuple[str, ...] = tuple(sorted({name.split(".")[0] for name in EVENT_TYPES}))
