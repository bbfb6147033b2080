"""Scan progress on a terminal: a first scan of a big share takes a while, and silence reads as a hang."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Shown once a scan has run for a second; silent when stderr is not a tty."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr  # looked up now: stderr may have been replaced
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, done: int, found: int) -> None:
        if not self.stream.isatty() or time.monotonic() - self.started < 1.0:
            return
        self.stream.write(f"\rscanning: {done} of {found} done")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
