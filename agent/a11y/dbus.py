"""A thin, pipelined D-Bus layer for AT-SPI on top of dbus-fast.

Why not ``bus.call`` per property: a tree of thousands of nodes needs thousands of small calls,
and one asyncio task (or one blocking round trip, as in pyatspi) per call is what makes other
accessibility trees slow. ``Connection.batch`` instead keeps up to ``MAX_IN_FLIGHT`` calls
outstanding on one connection, routes each reply to its slot through a single message
handler, and gives up at an absolute deadline, returning what has arrived so far. The bound
also matters for correctness: dbus-fast 5.2 treats a full socket buffer (EAGAIN) as a fatal
error and drops the connection, which unbounded pipelining triggers; 128 calls of ~200 bytes
stay far below a Unix socket's buffer (64 measured slower on a 1,000-row file list).

Each application gets its own ``Connection``: peer-to-peer to the application when it offers
an address (``Application.GetApplicationBusAddress``; this skips the bus daemon's copy and
routing, ~2x faster), else through the accessibility bus with the application as destination.

On peer-to-peer connections the calls are encoded and written by ``encode.BatchWriter``, many
per ``send()`` (~10% less of our CPU); replies are still decoded by dbus-fast. A fully
hand-written client was measured and rejected: dbus-fast's compiled decoder beats any Python
one, and most of the time left is the application's own (GTK answers each GetExtents with an
X round trip).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from agent.a11y.encode import BatchWriter, encode_call
from agent.errors import Conflict, DeadlineExceeded, ElementNotFound

LOG = logging.getLogger(__name__)

MAX_IN_FLIGHT = 128
BATCH_WRITES = True  # write calls on peer connections ourselves, many per send() (see encode.py)

# Errors that mean "this object or application no longer exists".
GONE_ERRORS = frozenset(
    {
        "org.freedesktop.DBus.Error.UnknownObject",
        "org.freedesktop.DBus.Error.UnknownMethod",
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.Disconnected",
    }
)


@dataclass(frozen=True, slots=True)
class Call:
    """One method call: object path, interface, member, signature and body."""

    path: str
    interface: str
    member: str
    signature: str = ""
    body: tuple[Any, ...] = ()
    destination: str | None = None  # overrides the connection's (e.g. the bus daemon itself)


@dataclass(frozen=True, slots=True)
class Failure:
    """A call answered with a D-Bus error (the slot of a batch holds this instead of a body)."""

    name: str
    text: str

    @property
    def gone(self) -> bool:
        return self.name in GONE_ERRORS


Outcome = list[Any] | Failure | None  # body, error, or None: not answered before the deadline


class Connection:
    """One dbus-fast bus connection with a reply router for pipelined calls."""

    def __init__(
        self, bus: MessageBus, destination: str | None, *, peer: bool, owns_bus: bool = True
    ) -> None:
        self.bus = bus
        self.destination = destination
        self.peer = peer  # True: a private connection straight to the application
        self.owns_bus = owns_bus
        self.provisional = False  # a stand-in while the application hangs (see Accessibility._peer)
        self.writer: BatchWriter | None = None  # set: every call is written by us, not dbus-fast
        self._pending: dict[int, Callable[[Message | None], None]] = {}
        self._abandoned: set[int] = set()
        bus.add_message_handler(self._on_message)
        self._watch = asyncio.ensure_future(self._watch_disconnect())

    @classmethod
    async def open(cls, address: str, destination: str | None, *, peer: bool, timeout: float) -> Connection:
        bus = MessageBus(bus_address=address)
        async with asyncio.timeout(timeout):
            await bus.connect()
        conn = cls(bus, destination, peer=peer)
        sock = getattr(bus, "_sock", None)  # dbus-fast keeps the connected socket here
        if peer and BATCH_WRITES and isinstance(sock, socket.socket):
            conn.writer = BatchWriter(sock, asyncio.get_running_loop())
        return conn

    @property
    def connected(self) -> bool:
        return bool(self.bus.connected)

    async def _watch_disconnect(self) -> None:
        with contextlib.suppress(Exception):
            await self.bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
        # Fail every call still waiting, so batches do not sit until their deadline.
        pending, self._pending = self._pending, {}
        for callback in pending.values():
            callback(None)

    def _on_message(self, msg: Message) -> bool:
        if msg.message_type is MessageType.SIGNAL or msg.message_type is MessageType.METHOD_CALL:
            return False
        callback = self._pending.pop(msg.reply_serial, None)
        if callback is None:
            return False
        if self._abandoned and msg.reply_serial not in self._abandoned:
            self._late(msg.reply_serial, msg)  # a current answer also proves the peer alive
        callback(msg)
        return True

    def _send(self, call: Call, callback: Callable[[Message | None], None]) -> int:
        serial = self.bus.next_serial()
        if self.writer is not None:  # the caller flushes
            self._pending[serial] = callback
            self.writer.queue(
                encode_call(
                    serial,
                    destination=call.destination or self.destination,
                    path=call.path,
                    interface=call.interface,
                    member=call.member,
                    signature=call.signature,
                    body=call.body,
                )
            )
            return serial
        msg = Message(
            destination=call.destination or self.destination,
            path=call.path,
            interface=call.interface,
            member=call.member,
            signature=call.signature,
            body=list(call.body),
            serial=serial,
            validate=False,
        )
        self._pending[serial] = callback
        # The write's own future is left alone: a failed write finalises the bus, which fails
        # every pending call through _watch_disconnect (a done-callback per call costs CPU).
        self.bus.send(msg)
        return serial

    async def batch(
        self,
        calls: Sequence[Call],
        deadline: float,
        on_answer: Callable[[int, Outcome], None] | None = None,
    ) -> tuple[list[Outcome], bool]:
        """Run ``calls`` with at most MAX_IN_FLIGHT outstanding; stop at ``deadline`` (loop time).

        Returns the outcomes in order and whether every call was answered. ``on_answer`` sees
        each outcome (with its index) as it arrives. Cancelling stops sending the rest.
        """
        results: list[Outcome] = [None] * len(calls)
        if not calls:
            return results, True
        if not self.connected:
            gone = Failure("org.freedesktop.DBus.Error.Disconnected", "the connection closed")
            return [gone] * len(calls), True
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        state = {"next": 0, "in_flight": 0, "answered": 0}
        serials: set[int] = set()

        # With our own writer, refill in chunks so that many calls share one write.
        refill_below = MAX_IN_FLIGHT // 2 if self.writer is not None else MAX_IN_FLIGHT

        def pump() -> None:
            if state["in_flight"] < refill_below:
                while state["in_flight"] < MAX_IN_FLIGHT and state["next"] < len(calls):
                    index = state["next"]
                    state["next"] += 1
                    state["in_flight"] += 1
                    serials.add(self._send(calls[index], functools.partial(on_reply, index)))
                if self.writer is not None:
                    self.writer.flush()
            if state["in_flight"] == 0 and not done.done():
                done.set_result(None)

        def on_reply(index: int, msg: Message | None) -> None:
            state["in_flight"] -= 1
            state["answered"] += 1
            results[index] = outcome = _outcome(msg)
            if on_answer is not None:
                on_answer(index, outcome)
            if not done.done():
                pump()

        pump()
        remaining = deadline - loop.time()
        try:
            if not done.done() and remaining > 0:
                await asyncio.wait([done], timeout=remaining)
        except asyncio.CancelledError:
            done.cancel()  # answers still on their way land in ``results`` and send nothing more
            raise
        if not done.done():
            done.cancel()
            self._abandon(serials)
        return results, state["answered"] == len(calls)

    def _abandon(self, serials: set[int]) -> None:
        """Keep listening for the late answers: until one arrives, the peer counts as stalled."""
        for serial in serials:
            if serial in self._pending:
                self._pending[serial] = functools.partial(self._late, serial)
                self._abandoned.add(serial)

    def _late(self, serial: int, msg: Message | None) -> None:
        # Any answer, even a late one, shows the peer is alive again: forget every abandoned call.
        for abandoned in self._abandoned:
            self._pending.pop(abandoned, None)
        self._abandoned.clear()

    @property
    def stalled(self) -> bool:
        """Calls given up at an earlier deadline are still unanswered (the peer hangs)."""
        return bool(self._abandoned)

    async def call(self, call: Call, deadline: float) -> list[Any]:
        """One call; D-Bus errors raise (NotFound when the object is gone), the deadline raises 504."""
        (outcome,), complete = await self.batch([call], deadline)
        if not complete or outcome is None:
            raise DeadlineExceeded(
                f"the application did not answer {call.interface}.{call.member} in time",
                details={"member": call.member},
            )
        if isinstance(outcome, Failure):
            if outcome.gone:
                raise ElementNotFound(
                    "the accessible element no longer exists", details={"dbus_error": outcome.name}
                )
            raise AccessibilityError(outcome)
        return outcome

    def routed(self, destination: str) -> Connection:
        """A view of this (bus) connection that addresses ``destination`` by default."""
        return Connection(self.bus, destination, peer=False, owns_bus=False)

    async def close(self) -> None:
        self._watch.cancel()
        self.bus.remove_message_handler(self._on_message)
        if self.writer is not None:
            self.writer.close()
        if self.owns_bus:
            with contextlib.suppress(Exception):
                self.bus.disconnect()


class AccessibilityError(Conflict):
    """The application answered an element call with an unexpected D-Bus error (409)."""

    code = "APPLICATION_REFUSED"

    def __init__(self, failure: Failure) -> None:
        super().__init__(
            f"the application refused the call: {failure.text or failure.name}",
            details={"dbus_error": failure.name},
        )


def _outcome(msg: Message | None) -> Outcome:
    if msg is None:
        return Failure("org.freedesktop.DBus.Error.Disconnected", "the connection closed")
    if msg.message_type is MessageType.ERROR:
        text = msg.body[0] if msg.body and isinstance(msg.body[0], str) else ""
        return Failure(msg.error_name or "", text)
    body: list[Any] = msg.body
    return body
