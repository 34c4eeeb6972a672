"""The CLIPBOARD (and PRIMARY) selection, owned in-process: no xclip, no helper process.

Why its own X connection and thread: owning a selection means answering ``SelectionRequest``
events whenever another client pastes, at any moment and for as long as we own it. That needs a
thread that is always reading this connection's events; sharing the input connection would make
every paste wait behind input (and vice versa). The thread waits in ``select`` on the X socket
and a wake-up pipe; calls from the event loop are queued to it and answered through futures.

Protocol (ICCCM 2): we answer TARGETS, TIMESTAMP, UTF8_STRING, STRING (Latin-1), TEXT and
``text/plain;charset=utf-8``; values larger than one X request go out incrementally (INCR).
Reading converts the owner's selection into a property on our window with a deadline, so a
dead or hung owner costs at most ``timeout`` seconds, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Literal, TypeVar

from Xlib import X, Xatom, error
from Xlib.display import Display
from Xlib.protocol import rq

from agent.errors import AgentError, DeadlineExceeded, DisplayUnavailable
from agent.x11.connection import CONNECTION_ERRORS, from_xlib_error, open_display
from agent.x11.selection import IncomingTransfer, OutgoingTransfers, SelectionAtoms

LOG = logging.getLogger(__name__)
T = TypeVar("T")
Selection = Literal["clipboard", "primary"]

READ_TIMEOUT = 2.0  # seconds a selection owner may take to answer (and between INCR chunks)
HANDOVER_TIMEOUT = 2.0  # seconds a clipboard manager may take to copy our clipboard on exit


class ClipboardService:
    """Owns and reads the CLIPBOARD selection on a private connection and thread."""

    def __init__(self, display_name: str, *, read_timeout: float = READ_TIMEOUT) -> None:
        self.display_name = display_name
        self.read_timeout = read_timeout
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # Only touched on the clipboard thread:
        self._display: Display | None = None
        self._atoms: SelectionAtoms | None = None
        self._window: Any = None
        # selection atom (CLIPBOARD, PRIMARY) -> (text, ownership time) while we own it
        self._owned: dict[int, tuple[str, int]] = {}
        self._outgoing: OutgoingTransfers | None = None

    # -- public API (event loop) ---------------------------------------------------------
    async def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="x11-clipboard", daemon=True)
            self._thread.start()

    async def close(self) -> None:
        if self._thread is not None and not self._stop.is_set():
            try:  # what we own would vanish with us: hand it to a clipboard manager first
                await asyncio.wait_for(self._call(self._hand_over), HANDOVER_TIMEOUT + 1)
            except (AgentError, TimeoutError) as exc:
                LOG.info("clipboard not handed to a clipboard manager: %s", exc)
        self._stop.set()
        self._wake()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 5.0)
            self._thread = None
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    async def set_text(self, text: str, selection: Selection = "clipboard") -> None:
        """Own the selection with ``text``; every X client pastes it from now on."""
        await self._call(lambda: self._set(text, self._selection_atom(selection)))

    async def get_text(self, selection: Selection = "clipboard") -> str:
        """The selection's current text ("" when nobody owns it or it holds no text)."""
        return await self._call(lambda: self._get(self._selection_atom(selection)))

    def _selection_atom(self, selection: Selection) -> int:
        self._ensure()
        assert self._atoms is not None
        return Xatom.PRIMARY if selection == "primary" else self._atoms.CLIPBOARD

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._stop.is_set():
            raise DisplayUnavailable("the agent is shutting down")
        await self.start()
        fut: Future[T] = Future()
        self._calls.put((fn, fut))
        self._wake()
        return await asyncio.wrap_future(fut)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    # -- the clipboard thread ------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            fds: list[int] = [self._wake_r]
            if self._display is not None:
                fds.append(self._display.fileno())
            timeout = 1.0 if self._outgoing and self._outgoing.active else None
            readable, _, _ = select.select(fds, [], [], timeout)
            if self._wake_r in readable:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.read(self._wake_r, 4096)
            try:
                self._pump()
                while True:
                    try:
                        fn, fut = self._calls.get_nowait()
                    except queue.Empty:
                        break
                    if fut.set_running_or_notify_cancel():
                        try:
                            fut.set_result(fn())
                        except CONNECTION_ERRORS as exc:  # the server went away mid-call
                            self._drop(f"{type(exc).__name__}: {exc}")
                            fut.set_exception(
                                DisplayUnavailable(f"lost the X display {self.display_name}", retry_after=1.0)
                            )
                        except error.XError as exc:  # a reply request failed: typed, like any X error
                            fut.set_exception(from_xlib_error(exc))
                        except BaseException as exc:  # handed to the caller, not swallowed
                            fut.set_exception(exc)
                if self._outgoing is not None:
                    self._outgoing.expire()
            except CONNECTION_ERRORS as exc:
                self._drop(f"{type(exc).__name__}: {exc}")
        if self._display is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._display.close()

    def _ensure(self) -> Display:
        if self._display is not None:
            return self._display
        try:
            display = open_display(self.display_name)
        except CONNECTION_ERRORS as exc:
            raise DisplayUnavailable(
                f"the X display {self.display_name} is not reachable",
                details={"reason": f"{type(exc).__name__}: {exc}"},
            ) from None
        # Errors about requestor windows that vanished mid-transfer are expected; log only.
        display.set_error_handler(_log_x_error)
        atoms = SelectionAtoms(display)
        window = display.screen().root.create_window(
            -10, -10, 1, 1, 0, X.CopyFromParent, X.InputOnly, event_mask=X.PropertyChangeMask
        )
        window.set_wm_name("computer-agent clipboard")
        display.sync()
        self._display, self._atoms, self._window = display, atoms, window
        self._outgoing = OutgoingTransfers(display, atoms, self._owned.get)
        self._owned.clear()
        LOG.info("clipboard connected to X display %s", self.display_name)
        return display

    def _drop(self, reason: str) -> None:
        LOG.warning("clipboard lost X display %s: %s", self.display_name, reason)
        if self._display is not None:
            with contextlib.suppress(Exception):
                self._display.close()
        self._display = None
        self._owned.clear()
        self._outgoing = None

    def _pump(self) -> None:
        """Handle every queued event without blocking."""
        display = self._display
        if display is None:
            return
        while display.pending_events():
            ev = display.next_event()
            try:
                self._dispatch(ev)
            except error.XError as exc:  # e.g. a requestor window gone before we read its request
                _log_x_error(exc, None)

    def _dispatch(self, ev: rq.Event) -> None:
        atoms, outgoing = self._atoms, self._outgoing
        if atoms is None or outgoing is None:
            return
        if ev.type == X.SelectionRequest:
            outgoing.answer(ev)
        elif ev.type == X.SelectionClear:
            self._owned.pop(ev.atom, None)  # another client owns it now; reads go to them
        elif ev.type == X.PropertyNotify and ev.state == X.PropertyDelete:
            outgoing.on_property_deleted(ev)

    def _server_time(self, display: Display) -> int:
        """A real server timestamp (ICCCM forbids CurrentTime for ownership), via a no-op
        property append on our own window and the PropertyNotify it causes."""
        assert self._atoms is not None
        prop = self._atoms.TIMESTAMP_PROP
        self._window.change_property(prop, Xatom.STRING, 8, b"", X.PropModeAppend)
        ev = self._wait_for(
            lambda e: e.type == X.PropertyNotify and e.window.id == self._window.id and e.atom == prop,
            self.read_timeout,
            "a server timestamp",
        )
        return int(ev.time)

    def _set(self, text: str, selection: int) -> None:
        display = self._ensure()
        when = self._server_time(display)
        self._owned[selection] = (text, when)
        self._window.set_selection_owner(selection, when)
        owner = display.get_selection_owner(selection)
        if owner is None or getattr(owner, "id", owner) != self._window.id:
            self._owned.pop(selection, None)
            raise AgentError("the X server did not give the clipboard to the agent")

    def _hand_over(self) -> None:
        """ICCCM/freedesktop clipboard manager protocol: ask the CLIPBOARD_MANAGER owner (e.g.
        xfsettingsd) to SAVE_TARGETS, serving its requests for our data until it confirms."""
        display, atoms = self._display, self._atoms
        if display is None or atoms is None or atoms.CLIPBOARD not in self._owned:
            return
        self._pump()
        owner = display.get_selection_owner(atoms.CLIPBOARD)
        manager = display.get_selection_owner(atoms.CLIPBOARD_MANAGER)
        if getattr(owner, "id", owner) != self._window.id or not getattr(manager, "id", manager):
            return
        # The property names the targets to keep (managers copy nothing when it is empty).
        keep = [t for t in atoms.targets() if t not in (atoms.TARGETS, atoms.TIMESTAMP, atoms.MULTIPLE)]
        self._window.change_property(atoms.AGENT_SELECTION, Xatom.ATOM, 32, keep)
        self._window.convert_selection(
            atoms.CLIPBOARD_MANAGER, atoms.SAVE_TARGETS, atoms.AGENT_SELECTION, X.CurrentTime
        )
        self._wait_for(
            lambda e: (
                e.type == X.SelectionNotify
                and e.requestor.id == self._window.id
                and e.selection == atoms.CLIPBOARD_MANAGER
            ),
            HANDOVER_TIMEOUT,
            "the clipboard manager to save the clipboard",
        )
        LOG.info("clipboard handed to the clipboard manager")

    def _get(self, selection: int) -> str:
        display = self._ensure()
        atoms = self._atoms
        assert atoms is not None
        self._pump()  # a pending SelectionClear means our copy is stale
        owner = display.get_selection_owner(selection)
        owner_id = getattr(owner, "id", owner) or 0
        if owner_id == self._window.id and selection in self._owned:
            return self._owned[selection][0]
        if not owner_id:
            return ""
        for target in (atoms.UTF8_STRING, Xatom.STRING):
            data = self._convert(display, selection, target)
            if data is not None:
                return data[1].decode("latin-1" if data[0] == Xatom.STRING else "utf-8", "replace")
        return ""

    def _convert(self, display: Display, selection: int, target: int) -> tuple[int, bytes] | None:
        """Ask the owner for ``target``; None when it refuses; DeadlineExceeded when it hangs."""
        atoms = self._atoms
        assert atoms is not None
        prop = atoms.AGENT_SELECTION
        self._window.delete_property(prop)
        self._window.convert_selection(selection, target, prop, X.CurrentTime)
        notify = self._wait_for(
            lambda e: e.type == X.SelectionNotify and e.requestor.id == self._window.id,
            self.read_timeout,
            "the clipboard owner to answer",
        )
        if notify.property == X.NONE:
            return None
        reply = self._window.get_property(prop, X.AnyPropertyType, 0, 0x1FFFFFFF, True)
        if reply is None:
            return None
        if reply.property_type == atoms.INCR:
            transfer = IncomingTransfer(self._window, prop)
            while not transfer.done:
                ev = self._wait_for(
                    lambda e: (
                        e.type == X.PropertyNotify
                        and e.window.id == self._window.id
                        and e.atom == prop
                        and e.state == X.PropertyNewValue
                    ),
                    self.read_timeout,
                    "the next part of the clipboard",
                )
                transfer.on_new_value(ev)
            return transfer.type, transfer.data
        fmt, value = reply.format, reply.value
        data = value if isinstance(value, bytes) else bytes(value) if fmt == 8 else b""
        return int(reply.property_type), data

    def _wait_for(self, match: Callable[[Any], bool], timeout: float, what: str) -> Any:
        """Wait for one event, serving every other event (e.g. paste requests) meanwhile."""
        display = self._display
        assert display is not None
        display.flush()
        deadline = time.monotonic() + timeout
        while True:
            while display.pending_events():
                ev = display.next_event()
                if match(ev):
                    return ev
                self._dispatch(ev)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded(f"timed out after {timeout:g}s waiting for {what}")
            select.select([display.fileno()], [], [], remaining)


def _log_x_error(err: error.XError, request: object | None) -> None:
    """Errors while serving other clients (asynchronous, or a reply request's while answering an
    event) are about their windows, which may vanish at any time, or forged: logged, never fatal
    to the clipboard's thread."""
    LOG.debug("clipboard X error %s", type(err).__name__)
