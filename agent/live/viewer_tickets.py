"""Single-use links to the live viewer page (GET /viewer?ticket=...), each carrying its rights.

Why apart from the /ws tickets (``agent.live.tickets``): a viewer link says whether the page may
forward input (``control``), and that right must travel inside the secret, not in a query flag
the link's holder could add. The page a link opens carries fresh /screencast and (with control)
/ws tickets of its own; the link is spent when the page is served.
"""

from __future__ import annotations

import hashlib
import secrets
import time

MAX_LINKS = 256  # outstanding at once; past it the oldest is dropped


def _digest(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode("utf-8", "surrogateescape")).digest()


class ViewerTickets:
    def __init__(self, max_links: int = MAX_LINKS) -> None:
        self._links: dict[bytes, tuple[float, bool]] = {}  # digest -> (monotonic deadline, control)
        self._max = max_links

    def issue(self, ttl: float, *, control: bool) -> str:
        now = time.monotonic()
        for digest, (deadline, _) in list(self._links.items()):
            if deadline < now:
                del self._links[digest]
        while len(self._links) >= self._max:
            del self._links[next(iter(self._links))]
        ticket = secrets.token_urlsafe(24)
        self._links[_digest(ticket)] = (now + ttl, control)
        return ticket

    def redeem(self, ticket: str) -> bool | None:
        """The link's control right if ``ticket`` is valid (None if not); spent either way."""
        found = self._links.pop(_digest(ticket), None)
        if found is None or time.monotonic() > found[0]:
            return None
        return found[1]
