"""Progress of a long scenario run on stderr: ``arch: op 2/5 (map): 1,048,576 of ~4,194,304
entries written (25%), 16 s``, rewritten once a second from a background thread, only when
stderr is a terminal and the run lasts; cleared when it ends.  It reads counters only
(``PhysMem.writes``), so it never changes what the run does."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

from arches.memory import PhysMem
from ptshim.scenario import Op, op_label

DELAY_S = 2.0
"""Runs shorter than this print nothing."""


class ScenarioProgress:
    """Context manager around the ops of one scenario; call :meth:`op` before each."""

    def __init__(self, arch: str, total_ops: int, mem: PhysMem,
                 stream: TextIO | None = None, enabled: bool | None = None,
                 period_s: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.arch, self.total, self.mem, self.period = arch, total_ops, mem, period_s
        self.label = ""
        self.index = 0
        self.expected = 0
        self.base = 0
        self.t0 = time.monotonic()
        self.width = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def op(self, index: int, op: Op, leaves: int) -> None:
        """Op ``index`` starts; about ``leaves`` entries will be written."""
        self.index, self.label, self.expected = index, op_label(op), leaves
        self.base = self.mem.writes

    def phase(self, name: str, entries: int = 0) -> None:
        """After the ops: ``verify`` (reads only), ``teardown`` (about ``entries`` writes)."""
        self.index, self.label, self.expected = self.total - 1, f"({name})", entries
        self.base = self.mem.writes

    def line(self) -> str:
        done = self.mem.writes - self.base
        el = time.monotonic() - self.t0
        if self.label == "(verify)":
            return f"{self.arch}: verify: walking the page tables, {el:.0f} s"
        part = (f"{done:,} of ~{self.expected:,} entries written "
                f"({min(99, 100 * done // self.expected)}%)" if self.expected
                else f"{done:,} entries written")
        what = self.label.split("(", 1)[-1].rstrip(")")
        where = (f"op {self.index + 1}/{self.total} ({what})" if self.label.startswith("op")
                 else what)
        return f"{self.arch}: {where}: {part}, {el:.0f} s"

    def _loop(self) -> None:
        if self._stop.wait(DELAY_S):
            return
        while not self._stop.is_set():
            msg = self.line()
            self.stream.write("\r" + msg.ljust(self.width))
            self.stream.flush()
            self.width = len(msg)
            self._stop.wait(self.period)

    def __enter__(self) -> ScenarioProgress:
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if self.width:
                self.stream.write("\r" + " " * self.width + "\r")
                self.stream.flush()
