"""Sending the previous walk's calls at once: a walk without idle rounds.

Why: a walk is a chain of dependent rounds (the cache; then the children the cache lacks; then
their properties; then positions). Between two rounds the application idles while we decide the
next calls, and it answers faster when its queue never runs dry (one wake-up reads many calls).
Two walks of the same application with the same options ask nearly the same calls, so a walk
starts by sending every call the previous one made, in one pipelined burst, and then takes each
answer when it gets to that call; calls it did not foresee are sent as before, and foreseen
calls it no longer needs are dropped. Every answer is fetched during this walk: the previous
walk only decides which calls go first, never what the tree contains.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass

from agent.a11y.dbus import Call, Connection, Failure, Outcome

REPLAY_LIMIT = 4096  # calls remembered per walk: the rounds of a large walk are long anyway
KEPT_SHAPES = 4  # walks remembered per application (options and subtree differ)
# The interface changed under the burst (its elements are gone): stop sending it after this
# many "no such object" answers, once they are a quarter of those received.
GONE_LIMIT = 64
# A round with this many calls the burst did not foresee, and more of them than foreseen ones,
# stops the rest of the burst: the interface changed since the last walk.
UNFORESEEN_LIMIT = 32

Send = Callable[[list[Call]], Awaitable[list[Outcome]]]


class Replays:
    """The calls of the last walks of one application, by the walk's shape."""

    def __init__(self) -> None:
        self._walks: OrderedDict[Hashable, tuple[Call, ...]] = OrderedDict()

    def get(self, shape: Hashable) -> tuple[Call, ...]:
        calls = self._walks.get(shape, ())
        if calls:
            self._walks.move_to_end(shape)
        return calls

    def put(self, shape: Hashable, calls: Sequence[Call]) -> None:
        self._walks[shape] = tuple(calls[:REPLAY_LIMIT])
        self._walks.move_to_end(shape)
        while len(self._walks) > KEPT_SHAPES:
            self._walks.popitem(last=False)


@dataclass(slots=True)
class _Waiter:
    left: int
    future: asyncio.Future[None]


class Ahead:
    """Calls sent before the walk asks for them; each answer is handed out once."""

    def __init__(self, conn: Connection, calls: Sequence[Call], deadline: float) -> None:
        self._slots: dict[Call, list[int]] = {}
        for index, call in enumerate(calls):
            self._slots.setdefault(call, []).append(index)
        self._results: list[Outcome] = [None] * len(calls)
        self._answered = bytearray(len(calls))
        self._waiters: dict[int, list[_Waiter]] = {}
        self._received = 0
        self._gone = 0
        self._untaken = len(calls)  # calls of the burst the walk has not asked for (yet)
        self._task = asyncio.ensure_future(conn.batch(calls, deadline, on_answer=self._answer))
        self._task.add_done_callback(self._finish)

    def _take(self, call: Call) -> int | None:
        """The slot of ``call`` in the burst, if it was sent and not yet handed out."""
        indexes = self._slots.get(call)
        if not indexes or (self._task.done() and not self._answered[indexes[0]]):
            return None  # not foreseen, or the burst stopped before sending or answering it
        self._untaken -= 1
        return indexes.pop(0) if len(indexes) > 1 else self._slots.pop(call)[0]

    async def answer(self, calls: list[Call], send: Send, deadline: float) -> tuple[list[Outcome], bool]:
        """The outcomes of a round: foreseen calls from the burst, the others through ``send``.

        Foreseen calls the burst left unanswered (it stopped) are sent again before the
        deadline; after it they stay None and the round is reported incomplete (False).
        """
        foreseen: list[tuple[int, int]] = []  # (position in calls, slot in the burst)
        unforeseen: list[int] = []
        for position, call in enumerate(calls):
            slot = self._take(call)
            if slot is None:
                unforeseen.append(position)
            else:
                foreseen.append((position, slot))
        if len(unforeseen) >= UNFORESEEN_LIMIT and len(unforeseen) > len(foreseen) and self._untaken:
            self.stop()
        if not foreseen:
            return await send(calls), True
        results: list[Outcome] = [None] * len(calls)
        if unforeseen:
            sent = asyncio.ensure_future(send([calls[p] for p in unforeseen]))
        answers = await self._collect([slot for _, slot in foreseen])
        missed = []  # the burst stopped (the interface changed) or its deadline passed first
        for (position, _), outcome in zip(foreseen, answers, strict=True):
            results[position] = outcome
            if outcome is None:
                missed.append(position)
        complete = True
        if missed:
            if asyncio.get_running_loop().time() < deadline:
                for position, outcome in zip(missed, await send([calls[p] for p in missed]), strict=True):
                    results[position] = outcome
            else:
                complete = False
        if unforeseen:
            for position, outcome in zip(unforeseen, await sent, strict=True):
                results[position] = outcome
        return results, complete

    async def _collect(self, indexes: list[int]) -> list[Outcome]:
        """Their outcomes, once answered (None: the burst stopped or its deadline passed first)."""
        pending = [index for index in indexes if not self._answered[index]]
        if pending and not self._task.done():
            waiter = _Waiter(len(pending), asyncio.get_running_loop().create_future())
            for index in pending:
                self._waiters.setdefault(index, []).append(waiter)
            await waiter.future
        return [self._results[index] for index in indexes]

    def _answer(self, index: int, outcome: Outcome) -> None:
        self._results[index] = outcome
        self._answered[index] = 1
        self._received += 1
        if isinstance(outcome, Failure) and outcome.gone:
            self._gone += 1
            if self._gone >= GONE_LIMIT and self._gone * 4 >= self._received:
                self.stop()
        for waiter in self._waiters.pop(index, ()):
            waiter.left -= 1
            if waiter.left == 0 and not waiter.future.done():
                waiter.future.set_result(None)

    def _finish(self, _: object) -> None:
        # The deadline passed (or the walk ended): release every waiter with what has arrived.
        waiters, self._waiters = self._waiters, {}
        for group in waiters.values():
            for waiter in group:
                if not waiter.future.done():
                    waiter.future.set_result(None)

    def stop(self) -> None:
        """Send nothing more (answers already on their way are dropped when they arrive)."""
        self._task.cancel()
