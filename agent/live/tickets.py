"""Single-use, short-lived tickets: how a browser opens GET /ws without the bearer token.

A browser cannot set ``Authorization`` on a WebSocket (nor on an ``<img>`` or an EventSource),
and the long-lived token must never appear in a URL (logs, history, Referer). So a holder of
the token asks ``POST /ws/ticket`` for a ticket and puts that in the URL instead: it opens one
connection, within seconds, and is worth nothing afterwards. Only a hash of each ticket is
kept, so a lookup's timing says nothing about the tickets held.
"""

from __future__ import annotations

import hashlib
import secrets
import time

MAX_TICKETS = 1024  # outstanding at once; past it the oldest is dropped


def _digest(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode("utf-8", "surrogateescape")).digest()


class TicketBook:
    def __init__(self, max_tickets: int = MAX_TICKETS) -> None:
        self._expiry: dict[bytes, float] = {}  # digest -> monotonic deadline, oldest first
        self._max = max_tickets

    def issue(self, ttl: float) -> str:
        self._prune()
        while len(self._expiry) >= self._max:
            del self._expiry[next(iter(self._expiry))]
        ticket = secrets.token_urlsafe(24)
        self._expiry[_digest(ticket)] = time.monotonic() + ttl
        return ticket

    def redeem(self, ticket: str) -> bool:
        """Whether ``ticket`` is valid; it is spent either way."""
        deadline = self._expiry.pop(_digest(ticket), None)
        return deadline is not None and time.monotonic() <= deadline

    def _prune(self) -> None:
        now = time.monotonic()
        for digest, deadline in list(self._expiry.items()):
            if deadline < now:
                del self._expiry[digest]
