"""The event hub: one numbered stream of desktop events, a bounded ring of the latest, and
readers that follow it from any id.

Why a ring and cursors rather than a queue per reader: a reader that falls behind (a slow SSE
client, a /ws connection that stopped reading) costs nothing but its cursor. When it catches up
and the ring no longer holds what it missed, it gets one ``gap`` event naming the ids lost and
goes on from the oldest event held; memory is bounded by the ring whatever readers do.

Ids are integers that increase across agent restarts too (the first is the start time in
microseconds), so a Last-Event-ID from an earlier run of the agent is older than anything held:
it gets a gap, never events it did not miss. ``publish`` may be called from any thread.

The ring holds each event's fields as published; its model (``DesktopEvent``) is built when a
reader first takes it, once for all readers: an agent nobody follows publishes (readiness at
start, windows that come and go) without loading the schema machinery (issue 19).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import TYPE_CHECKING, Any

from agent.actions.outputs import Event
from agent.errors import InvalidArgument
from agent.live.kinds import EVENT_FAMILIES, EVENT_TYPES

if TYPE_CHECKING:
    from pydantic import BaseModel

DEFAULT_RING = 1024
Accept = Callable[[str], bool]


def event_filter(names: Iterable[str] | None) -> Accept:
    """Which event types a reader wants: exact types (window.created) or families (window,
    window.*); None or empty: all. Unknown names are a 400 naming the known ones."""
    wanted = [name.strip() for name in names or () if name.strip()]
    if not wanted:
        return lambda kind: True
    types: set[str] = set()
    for name in wanted:
        family = name.removesuffix(".*")
        if name in EVENT_TYPES:
            types.add(name)
        elif family in EVENT_FAMILIES:
            types.update(kind for kind in EVENT_TYPES if kind.startswith(family + "."))
        else:
            raise InvalidArgument(
                f"events: unknown event type {name!r}",
                details={"field": "events", "known": [*EVENT_TYPES, *EVENT_FAMILIES]},
            )
    return types.__contains__


class HeldEvent:
    """One event in the ring: its fields, and its model once a reader has wanted it."""

    __slots__ = ("_fields", "_model", "id", "type")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.id: int = fields["id"]
        self.type: str = fields["type"]
        self._fields: dict[str, Any] | None = fields
        self._model: BaseModel | None = None

    def model(self) -> BaseModel:
        """The event's model (its member of ``DesktopEvent``), validated on first use."""
        if self._model is None:
            from agent.models.live import DesktopEvent

            self._model = DesktopEvent.model_validate(self._fields).root
            self._fields = None
        return self._model


class EventHub:
    def __init__(self, ring_size: int = DEFAULT_RING) -> None:
        self._ring: deque[HeldEvent] = deque(maxlen=ring_size)
        self.first_id = time.time_ns() // 1000
        self._next_id = self.first_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._changed = asyncio.Event()
        self.closed = asyncio.Event()  # the agent is stopping: readers end once caught up

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop readers wait on; ``publish`` from other threads is handed to it."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    @property
    def last_id(self) -> int:
        """The id of the newest event (the one before the first when none yet)."""
        return self._next_id - 1

    def publish(self, fields: dict[str, Any]) -> None:
        """Number, stamp and store one event (``type`` and its own fields); wakes every reader."""
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._append, fields, time.time())
            return
        self._append(fields, time.time())

    def _append(self, fields: dict[str, Any], when: float) -> None:
        event = HeldEvent({**fields, "id": self._next_id, "time": when})
        self._next_id += 1
        self._ring.append(event)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def close(self) -> None:
        """End every reader after the events already published (the agent is stopping)."""
        self.closed.set()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _after(self, cursor: int) -> list[HeldEvent]:
        """The events held after ``cursor`` (a copy: readers yield while new ones arrive)."""
        if not self._ring:
            return []
        start = max(0, cursor + 1 - self._ring[0].id)
        return list(itertools.islice(self._ring, start, None))

    def _gap(self, cursor: int) -> HeldEvent | None:
        """A gap event when the ring no longer holds the event after ``cursor``."""
        oldest = self._ring[0].id if self._ring else self._next_id
        if cursor + 1 >= oldest:
            return None
        return HeldEvent(
            {
                "type": "gap",
                "id": oldest - 1,
                "time": time.time(),
                "missed_from": cursor + 1,
                "missed_to": oldest - 1,
            }
        )

    def follow(self, after: int | None, accept: Accept) -> AsyncGenerator[Event, None]:
        """Events from after id ``after`` (None: from now, the time of this call), as they come,
        forever."""
        return self._follow(self.last_id if after is None or after > self.last_id else after, accept)

    async def _follow(self, cursor: int, accept: Accept) -> AsyncGenerator[Event, None]:
        while True:
            gap = self._gap(cursor)
            if gap is not None:
                cursor = gap.id
                yield Event(gap.model(), cursor)
            changed = self._changed
            for event in self._after(cursor):
                cursor = event.id
                if accept(event.type):
                    yield Event(event.model(), cursor)
            if cursor == self.last_id:
                if self.closed.is_set():
                    return
                await changed.wait()
