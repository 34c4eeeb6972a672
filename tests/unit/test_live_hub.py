"""The event hub's numbering, replay and gaps, its filters, and single-use tickets."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from agent.actions.outputs import Event
from agent.errors import InvalidArgument
from agent.live.hub import EventHub, event_filter
from agent.live.tickets import TicketBook


def screen(width: int) -> dict[str, Any]:
    return {"type": "screen.resized", "width": width, "height": 600}


async def take(stream: AsyncGenerator[Event, None], count: int) -> list[dict[str, Any]]:
    found = []
    for _ in range(count):
        event = await asyncio.wait_for(anext(stream), 2)
        found.append(event.model.model_dump(by_alias=True))
        assert event.offset == found[-1]["id"]  # the SSE id is the event's id
    return found


async def test_ids_increase_by_one_from_the_start_time_in_microseconds() -> None:
    before = time.time_ns() // 1000
    hub = EventHub(8)
    hub.bind(asyncio.get_running_loop())
    assert before <= hub.first_id <= time.time_ns() // 1000
    for width in (1, 2, 3):
        hub.publish(screen(width))
    stream = hub.follow(hub.first_id - 1, event_filter(None))
    events = await take(stream, 3)
    assert [e["id"] for e in events] == [hub.first_id, hub.first_id + 1, hub.first_id + 2]
    assert [e["width"] for e in events] == [1, 2, 3]
    await stream.aclose()


async def test_a_new_reader_starts_now_and_a_resumed_one_gets_exactly_what_it_missed() -> None:
    hub = EventHub(8)
    hub.bind(asyncio.get_running_loop())
    hub.publish(screen(1))
    fresh = hub.follow(None, event_filter(None))
    hub.publish(screen(2))
    assert [e["width"] for e in await take(fresh, 1)] == [2]
    seen = hub.last_id
    hub.publish(screen(3))
    hub.publish(screen(4))
    resumed = hub.follow(seen, event_filter(None))
    assert [e["width"] for e in await take(resumed, 2)] == [3, 4]
    for stream in (fresh, resumed):
        await stream.aclose()


async def test_beyond_the_ring_a_gap_names_the_lost_ids_then_the_ring_follows() -> None:
    hub = EventHub(3)
    hub.bind(asyncio.get_running_loop())
    for width in range(10):
        hub.publish(screen(width))
    stream = hub.follow(hub.first_id, event_filter(None))  # saw only the first
    gap, *rest = await take(stream, 4)
    assert gap["type"] == "gap"
    assert (gap["missed_from"], gap["missed_to"]) == (hub.first_id + 1, hub.first_id + 6)
    assert gap["id"] == gap["missed_to"]
    assert [e["width"] for e in rest] == [7, 8, 9]
    await stream.aclose()


async def test_an_id_from_an_earlier_run_of_the_agent_is_a_gap() -> None:
    hub = EventHub(4)
    hub.bind(asyncio.get_running_loop())
    hub.publish(screen(1))
    stream = hub.follow(hub.first_id - 500, event_filter(None))
    gap, first = await take(stream, 2)
    assert gap["type"] == "gap" and first["width"] == 1
    await stream.aclose()


async def test_a_slow_reader_costs_a_gap_not_memory() -> None:
    hub = EventHub(4)
    hub.bind(asyncio.get_running_loop())
    stream = hub.follow(None, event_filter(None))
    hub.publish(screen(0))
    assert [e["width"] for e in await take(stream, 1)] == [0]
    for width in range(1, 20):  # the reader is busy elsewhere meanwhile
        hub.publish(screen(width))
    gap, *rest = await take(stream, 5)
    assert gap["type"] == "gap" and [e["width"] for e in rest] == [16, 17, 18, 19]
    await stream.aclose()


async def test_events_published_on_another_thread_wake_the_reader() -> None:
    hub = EventHub(4)
    hub.bind(asyncio.get_running_loop())
    stream = hub.follow(None, event_filter(["screen"]))
    waiting = asyncio.ensure_future(take(stream, 1))
    await asyncio.sleep(0.05)
    threading.Thread(target=hub.publish, args=(screen(42),)).start()
    assert [e["width"] for e in await waiting] == [42]
    await stream.aclose()


def test_filters_take_types_and_families() -> None:
    assert event_filter(None)("window.moved")
    only_windows = event_filter(["window"])
    assert only_windows("window.moved") and not only_windows("clipboard.changed")
    assert event_filter(["window.*"])("window.created")
    exact = event_filter(["process.exited", "clipboard.changed"])
    assert exact("process.exited") and not exact("app.exited")
    with pytest.raises(InvalidArgument) as refused:
        event_filter(["window.exploded"])
    assert "window.exploded" in refused.value.message


def test_a_ticket_opens_once_and_only_in_time() -> None:
    book = TicketBook()
    ticket = book.issue(30)
    assert book.redeem(ticket)
    assert not book.redeem(ticket)
    assert not book.redeem("made-up")
    late = book.issue(0.01)
    time.sleep(0.05)
    assert not book.redeem(late)


def test_tickets_held_are_bounded() -> None:
    book = TicketBook(max_tickets=3)
    tickets = [book.issue(30) for _ in range(5)]
    assert [book.redeem(t) for t in tickets] == [False, False, True, True, True]
