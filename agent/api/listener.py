"""Listening sockets that survive running out of file descriptors (no accept storm)."""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

from agent.api.throttle import THROTTLE


class ListeningSocket(socket.socket):
    """A listening socket that, out of descriptors, sheds waiting connections instead of failing.

    On EMFILE/ENFILE asyncio logs a traceback and schedules a retry for every connection it tried
    in that tick (Python 3.11 does not stop its accept loop there), which became a storm of
    150,000 tracebacks and an unreachable agent. Here a spare descriptor is given up to accept and
    close each waiting connection (the "idle descriptor" trick), so the backlog drains, the loop
    never spins, and the agent answers again as soon as descriptors are free.
    """

    def __init__(self, family: int) -> None:
        super().__init__(family, socket.SOCK_STREAM)
        self._spare: int | None = os.open(os.devnull, os.O_RDONLY)

    def accept(self) -> tuple[socket.socket, Any]:
        while True:
            try:
                return super().accept()
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE) or not self._shed_one():
                    raise  # BlockingIOError: none waiting; or shedding failed: asyncio's retry
                THROTTLE.warning(
                    "out-of-descriptors",
                    "out of file descriptors: closed a new connection unanswered (LimitNOFILE?)",
                )

    def _shed_one(self) -> bool:
        if self._spare is None:  # lost to another thread last time: try to take it back
            try:
                self._spare = os.open(os.devnull, os.O_RDONLY)
            except OSError:
                return False
        os.close(self._spare)
        self._spare = None
        try:
            connection, _ = super().accept()
            connection.close()
            return True
        except BlockingIOError:
            raise  # none waiting (Linux reports EMFILE before looking): asyncio waits quietly
        except OSError:
            return False
        finally:
            try:
                self._spare = os.open(os.devnull, os.O_RDONLY)
            except OSError:
                self._spare = None  # retried at the next shed

    def close(self) -> None:
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
        super().close()


def listening_sockets(host: str, port: int, backlog: int = 128) -> list[ListeningSocket]:
    """Bound, listening sockets for every address ``host`` resolves to (as TCPSite would bind)."""
    sockets: list[ListeningSocket] = []
    seen = set()
    for family, _, _, _, address in socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        if (family, address) in seen:
            continue
        seen.add((family, address))
        sock = ListeningSocket(family)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            for opened in sockets:
                opened.close()
            raise
        sockets.append(sock)
    return sockets
