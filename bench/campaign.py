"""Scenarios per second of the built-in side-by-side campaign (``ptshim diff``), per
configuration, in CPU seconds of one core, over the examples of several seeds: each example
runs a random scenario on a legacy and a unified machine, compares them after every op,
verifies and tears both down.

Target (issue 8): >= 100 scenarios/s per configuration per core on x86_64, no configuration
more than 3x slower than x86_64.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ptshim.diff import BackendsSubject

SEEDS = (0, 1, 2, 3)
"""The seeds a rate is measured over: the campaign's examples differ much from one seed to
the next (on x86_64 the first 40 examples of seed 1 run about twice as fast as seed 2's),
so one seed says little."""


@dataclass(frozen=True)
class Rate:
    arch: str
    examples: int
    seconds: float
    per_seed: tuple[float, ...] = ()
    """Scenarios/s of each seed of :data:`SEEDS`, in order."""

    @property
    def per_second(self) -> float:
        return self.examples / self.seconds if self.seconds else float("inf")


def campaign_rate(arch: str, examples: int, seeds: tuple[int, ...] = SEEDS) -> Rate:
    """Run examples ``0 .. examples-1`` of each of ``seeds`` (after one warm-up) and time
    them in process CPU time, so other load on the machine does not count."""
    subject = BackendsSubject()
    subject.example(arch, seeds[0], 0)
    total = 0.0
    per_seed: list[float] = []
    for seed in seeds:
        start = time.process_time()
        for i in range(examples):
            result = subject.example(arch, seed, i)
            if result.divergence is not None:
                raise AssertionError(f"{arch} seed {seed} example {i}: {result.divergence}")
        spent = time.process_time() - start
        total += spent
        per_seed.append(examples / spent if spent else float("inf"))
    return Rate(arch, examples * len(seeds), total, tuple(per_seed))
