"""Scenarios per second of the built-in side-by-side campaign (``ptshim diff``), per
configuration, in CPU seconds of one core: each example runs a random scenario on a legacy
and a unified machine, compares them after every op, verifies and tears both down.

Target (issue 8): >= 100 scenarios/s per configuration per core on x86_64, no configuration
more than 3x slower than x86_64.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ptshim.diff import BackendsSubject


@dataclass(frozen=True)
class Rate:
    arch: str
    examples: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.examples / self.seconds if self.seconds else float("inf")


def campaign_rate(arch: str, examples: int, seed: int = 1) -> Rate:
    """Run examples ``0 .. examples-1`` of ``seed`` (after one warm-up) and time them in
    process CPU time, so other load on the machine does not count."""
    subject = BackendsSubject()
    subject.example(arch, seed, 0)
    start = time.process_time()
    for i in range(examples):
        result = subject.example(arch, seed, i)
        if result.divergence is not None:
            raise AssertionError(f"{arch} example {i}: {result.divergence}")
    return Rate(arch, examples, time.process_time() - start)
