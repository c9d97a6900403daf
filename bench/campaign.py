"""Scenarios per second of the built-in side-by-side campaign (``ptshim diff``), per
configuration, in CPU seconds of one core, over the examples of several seeds: each example
runs a random scenario on a legacy and a unified machine, compares them after every op,
verifies and tears both down.

Target (issue 8): >= 100 scenarios/s per configuration per core on x86_64, no configuration
more than 3x slower than x86_64.

Each seed's examples run :data:`ROUNDS` times; the fastest round is the rate, as ``timeit``
takes the fastest of its repeats: the examples are deterministic, so a slower round measures
the machine's other load (on a shared machine, process CPU time of the same run varies by
+-15% from one minute to the next), not the code.  The median round is reported beside it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ptshim.diff import BackendsSubject

SEEDS = (0, 1, 2, 3)
"""The seeds a rate is measured over: the campaign's examples differ much from one seed to
the next (on x86_64 the first 40 examples of seed 1 run about twice as fast as seed 2's),
so one seed says little."""

ROUNDS = 3
"""Runs of each seed's examples; the fastest counts, the median is reported."""


@dataclass(frozen=True)
class Rate:
    arch: str
    examples: int
    seconds: float
    """CPU seconds of the fastest round of each seed, summed."""
    per_seed: tuple[float, ...] = ()
    """Scenarios/s of each seed of :data:`SEEDS` (fastest round), in order."""
    median_seconds: float = 0.0
    """CPU seconds of the median round of each seed, summed."""

    @property
    def per_second(self) -> float:
        return self.examples / self.seconds if self.seconds else float("inf")

    @property
    def median_per_second(self) -> float:
        return self.examples / self.median_seconds if self.median_seconds else float("inf")


def campaign_rate(arch: str, examples: int, seeds: tuple[int, ...] = SEEDS,
                  rounds: int = ROUNDS) -> Rate:
    """Run examples ``0 .. examples-1`` of each of ``seeds`` ``rounds`` times (after one
    warm-up) and time each round in process CPU time, so other load on the machine does
    not count."""
    subject = BackendsSubject()
    subject.example(arch, seeds[0], 0)
    best = median = 0.0
    per_seed: list[float] = []
    for seed in seeds:
        spent: list[float] = []
        for _ in range(rounds):
            start = time.process_time()
            for i in range(examples):
                result = subject.example(arch, seed, i)
                if result.divergence is not None:
                    raise AssertionError(f"{arch} seed {seed} example {i}: {result.divergence}")
            spent.append(time.process_time() - start)
        spent.sort()
        best += spent[0]
        median += spent[len(spent) // 2]
        per_seed.append(examples / spent[0] if spent[0] else float("inf"))
    return Rate(arch, examples * len(seeds), best, tuple(per_seed), median)
