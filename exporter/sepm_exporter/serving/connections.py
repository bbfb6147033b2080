"""What one HTTP connection may cost: a deadline for its request's head, and a cap on connections.

The stdlib's socket timeout applies to each read, so a client that sends one byte every few seconds
keeps its connection, and its thread, for as long as it likes. `HeadReader` gives the request line
and headers one deadline in all: each read waits at most for what is left of it. `Slots` bounds how
many connections hold a thread at once.
"""

from __future__ import annotations

import io
import math
import socket
import threading
import time

HEAD_TIMEOUT = 30.0  # request line and headers, from the start of waiting for them
MAX_CONNECTIONS = 256  # open at once; each frees its slot within HEAD_TIMEOUT unless it is being answered


class HeadReader(io.RawIOBase):
    """The connection's reads, each bounded by the request head's deadline while one is set."""

    def __init__(self, sock: socket.socket, idle: float) -> None:
        self.sock = sock
        self.idle = idle
        self.deadline = math.inf

    def readable(self) -> bool:
        return True

    def start(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def clear(self) -> None:
        """The head is read: back to the plain per-read timeout (a body, the answer's writes)."""
        self.deadline = math.inf
        self.sock.settimeout(self.idle)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.deadline != math.inf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("request head not complete within its deadline")
            self.sock.settimeout(min(self.idle, left))
        return self.sock.recv_into(buffer)


class Slots:
    """A count of open connections, refused past `limit` (the refused ones are counted)."""

    def __init__(self, limit: int = MAX_CONNECTIONS) -> None:
        self.limit = limit
        self.open = 0
        self.refused = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.open >= self.limit:
                self.refused += 1
                return False
            self.open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1
