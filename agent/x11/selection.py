"""ICCCM selection transfers: answering paste requests (with INCR) and reading INCR replies.

Kept apart from ``clipboard`` (which owns the thread and the calls) so the protocol details sit
in one place. Everything here runs on the clipboard thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from Xlib import X, Xatom
from Xlib.display import Display
from Xlib.protocol import event, request

LOG = logging.getLogger(__name__)

TRANSFER_IDLE_TIMEOUT = 10.0  # an INCR reader that stops deleting the property is abandoned
# Bytes per ChangeProperty: the X request limit minus the request header, never above 256 KiB.
MAX_CHUNK = 256 * 1024


class SelectionAtoms:
    """The atoms of the selection protocol, interned in one round trip."""

    CLIPBOARD: int
    TARGETS: int
    TIMESTAMP: int
    MULTIPLE: int
    UTF8_STRING: int
    TEXT: int
    TEXT_PLAIN_UTF8: int
    INCR: int
    AGENT_SELECTION: int
    TIMESTAMP_PROP: int
    CLIPBOARD_MANAGER: int
    SAVE_TARGETS: int

    NAMES = {
        "CLIPBOARD": "CLIPBOARD",
        "TARGETS": "TARGETS",
        "TIMESTAMP": "TIMESTAMP",
        "MULTIPLE": "MULTIPLE",
        "UTF8_STRING": "UTF8_STRING",
        "TEXT": "TEXT",
        "TEXT_PLAIN_UTF8": "text/plain;charset=utf-8",
        "INCR": "INCR",
        "AGENT_SELECTION": "_COMPUTER_AGENT_SELECTION",
        "TIMESTAMP_PROP": "_COMPUTER_AGENT_TIMESTAMP",
        "CLIPBOARD_MANAGER": "CLIPBOARD_MANAGER",
        "SAVE_TARGETS": "SAVE_TARGETS",
    }

    def __init__(self, display: Display) -> None:
        pending = {
            attr: request.InternAtom(display=display.display, defer=True, name=name, only_if_exists=False)
            for attr, name in self.NAMES.items()
        }
        for attr, req in pending.items():
            req.reply()
            setattr(self, attr, int(req.atom))

    def targets(self) -> list[int]:
        return [
            self.TARGETS,
            self.TIMESTAMP,
            self.MULTIPLE,
            self.UTF8_STRING,
            self.TEXT_PLAIN_UTF8,
            self.TEXT,
            Xatom.STRING,
        ]


@dataclass
class _Outgoing:
    requestor: Any
    prop: int
    kind: int
    data: bytes
    offset: int = 0
    last_activity: float = field(default_factory=time.monotonic)


# selection atom -> (text, time we took ownership), or None while we do not own it
Source = Callable[[int], "tuple[str, int] | None"]


def encode(atoms: SelectionAtoms, text: str, target: int) -> tuple[int, bytes] | None:
    """The (type, bytes) to send ``text`` as ``target``, or None for a target we do not offer."""
    if target in (atoms.UTF8_STRING, atoms.TEXT, atoms.TEXT_PLAIN_UTF8):
        return (atoms.UTF8_STRING if target == atoms.TEXT else target), text.encode("utf-8")
    if target == Xatom.STRING:
        return Xatom.STRING, text.encode("latin-1", "replace")  # ICCCM: STRING is Latin-1
    return None


class OutgoingTransfers:
    """Answers ``SelectionRequest``s for the selections we own, incrementally when large."""

    def __init__(self, display: Display, atoms: SelectionAtoms, source: Source) -> None:
        self._display = display
        self._atoms = atoms
        self._source = source
        self._chunk = min(MAX_CHUNK, display.display.info.max_request_length * 4 - 64)
        self._transfers: dict[tuple[int, int], _Outgoing] = {}

    @property
    def active(self) -> bool:
        return bool(self._transfers)

    def answer(self, req: Any) -> None:
        # ICCCM: an obsolete requestor may pass None as the property; use the target then.
        prop = req.property or req.target
        owned = self._source(req.selection)
        ok = owned is not None and self._fill(req.requestor, req.target, prop, owned)
        notify = event.SelectionNotify(
            time=req.time,
            requestor=req.requestor,
            selection=req.selection,
            target=req.target,
            property=prop if ok else X.NONE,
        )
        req.requestor.send_event(notify, event_mask=X.NoEventMask)
        self._display.flush()

    def _fill(self, requestor: Any, target: int, prop: int, owned: tuple[str, int]) -> bool:
        atoms = self._atoms
        text, owned_since = owned
        if target == atoms.TARGETS:
            requestor.change_property(prop, Xatom.ATOM, 32, atoms.targets())
            return True
        if target == atoms.TIMESTAMP:
            requestor.change_property(prop, Xatom.INTEGER, 32, [owned_since])
            return True
        if target == atoms.MULTIPLE:
            return self._fill_multiple(requestor, prop, owned)
        payload = encode(atoms, text, target)
        if payload is None:
            return False
        kind, data = payload
        if len(data) <= self._chunk:
            requestor.change_property(prop, kind, 8, data)
            return True
        # INCR: announce the size, then send a chunk each time the requestor deletes the property.
        requestor.change_attributes(event_mask=X.PropertyChangeMask)
        requestor.change_property(prop, atoms.INCR, 32, [len(data)])
        self._transfers[(requestor.id, prop)] = _Outgoing(requestor, prop, kind, data)
        LOG.debug("clipboard INCR transfer of %d bytes started", len(data))
        return True

    def _fill_multiple(self, requestor: Any, prop: int, owned: tuple[str, int]) -> bool:
        """ICCCM 2.6.2: ``prop`` lists (target, property) pairs; convert each and write back
        the list with None for the pairs we refused. Clipboard managers save this way."""
        pairs = requestor.get_property(prop, X.AnyPropertyType, 0, 4096)
        if pairs is None or pairs.format != 32:
            return False
        values = [int(v) for v in pairs.value]
        for i in range(0, len(values) - 1, 2):
            target, target_prop = values[i], values[i + 1]
            nested = target == self._atoms.MULTIPLE or not target_prop
            if nested or not self._fill(requestor, target, target_prop, owned):
                values[i + 1] = X.NONE
        requestor.change_property(prop, pairs.property_type, 32, values)
        return True

    def on_property_deleted(self, ev: Any) -> None:
        key = (ev.window.id, ev.atom)
        transfer = self._transfers.get(key)
        if transfer is None:
            return
        chunk = transfer.data[transfer.offset : transfer.offset + self._chunk]
        # The final, zero-length write tells the requestor the transfer is complete.
        transfer.requestor.change_property(transfer.prop, transfer.kind, 8, chunk)
        transfer.offset += len(chunk)
        transfer.last_activity = time.monotonic()
        if not chunk:
            del self._transfers[key]
            transfer.requestor.change_attributes(event_mask=X.NoEventMask)
        self._display.flush()

    def expire(self) -> None:
        now = time.monotonic()
        for key, transfer in list(self._transfers.items()):
            if now - transfer.last_activity > TRANSFER_IDLE_TIMEOUT:
                LOG.info("abandoning a stalled clipboard transfer to 0x%x", key[0])
                del self._transfers[key]


class IncomingTransfer:
    """Reads an INCR reply: each new value of the property is the next chunk; empty ends it."""

    def __init__(self, window: Any, prop: int) -> None:
        self._window = window
        self._prop = prop
        self._parts: list[bytes] = []
        self.type = 0
        self.done = False

    def on_new_value(self, ev: Any) -> None:
        reply = self._window.get_property(self._prop, X.AnyPropertyType, 0, 0x1FFFFFFF, True)
        if reply is None:
            return
        value = reply.value
        chunk = value if isinstance(value, bytes) else bytes(value) if reply.format == 8 else b""
        if not self.type:
            self.type = int(reply.property_type)
        if chunk:
            self._parts.append(chunk)
        else:
            self.done = True

    @property
    def data(self) -> bytes:
        return b"".join(self._parts)
