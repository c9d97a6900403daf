"""Time to detection: how fast the built-in campaign (``ptshim diff``) finds planted bugs.

``python -m bench.detection [--arch NAME ...] [--seeds 0,1,2] [--limit N] [--rate N]``

For each bug of :data:`bench.plants.PLANTS`, each configuration and each seed, the
campaign's examples ``0, 1, 2, ...`` of that seed (:class:`ptshim.diff.BackendsSubject`,
exactly what ``ptshim diff --seed S`` runs; for the :data:`PAIR_PLANTS`, ``ptshim diff
--pair``'s :class:`ptshim.pairs.PairSubject`) are run with the bug planted until the first
divergence, at most ``--limit`` of them.  Reported per bug and configuration: the examples
run to the first divergence (one the same example shows without the plant is not counted)
and the CPU seconds of one core they took (``process_time``,
so other load on the machine does not count), as medians over the seeds, and how many
seeds found it within the limit and within ``make run``'s 25 examples.  ``--rate N``
also measures the campaign's scenarios/s on ``N`` clean examples; ``--json FILE`` keeps
every run, and ``--compare BEFORE AFTER`` sets two such files side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from bench.plants import PLANTS, planted
from ptshim.diff import BackendsSubject

if TYPE_CHECKING:
    from ptshim.pairs import Subject

MAKE_RUN_EXAMPLES = 25
"""Examples per configuration of the built-in campaign in ``make run`` (Makefile)."""


@dataclass(frozen=True)
class Detection:
    plant: str
    arch: str
    seed: int
    examples: int | None
    """Examples run up to and including the first divergence; None: none within the limit."""
    seconds: float
    """CPU seconds those examples took (all ``limit`` of them when undetected)."""
    what: str = ""


PAIR_PLANTS = ("skip-last-entry", "folded-root-leaf", "partial-leaf", "no-lock")
"""The bugs tests/test_pairs.py plants in copies of the worked pair's unified side
(examples/pairs/readonly.py), run as ``pair:NAME``: ``ptshim diff --pair`` campaigns draw
their scenarios from the same generator."""


def _subject(plant: str) -> tuple[Subject, Callable[[], AbstractContextManager[None]]]:
    """The campaign subject that runs with ``plant``, and what plants it (for a block)."""
    if plant.startswith("pair:"):
        from ptshim.pairs import PairSubject
        from tests.test_pairs import _buggy

        return PairSubject(_buggy(plant[5:])), nullcontext
    return BackendsSubject(), lambda: planted(plant)


def time_to_detection(plant: str, arch: str, seed: int, limit: int) -> Detection:
    """Run examples ``0 .. limit-1`` of ``seed`` on ``arch`` with ``plant`` planted until
    the first divergence."""
    subject, plant_it = _subject(plant)
    clean = BackendsSubject() if isinstance(subject, BackendsSubject) else None
    BackendsSubject().example(arch, seed, 0)  # warm-up (boot caches), unplanted
    spent = 0.0
    for i in range(limit):
        start = time.process_time()
        with plant_it():
            result = subject.example(arch, seed, i)
        spent += time.process_time() - start
        if result.divergence is None:
            continue
        if clean is not None and clean.example(arch, seed, i).divergence is not None:
            continue  # a divergence without the plant too: not the plant's (not timed)
        return Detection(plant, arch, seed, i + 1, spent, result.divergence[:160])
    return Detection(plant, arch, seed, None, spent)


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


@dataclass(frozen=True)
class Summary:
    plant: str
    arch: str
    found: int
    """Seeds whose campaign found the bug within the limit."""
    found_in_make_run: int
    """... within :data:`MAKE_RUN_EXAMPLES` examples."""
    seeds: int
    examples: float
    """Median examples to detection (an undetected seed counts as the limit)."""
    seconds: float
    """Median CPU seconds to detection (an undetected seed counts as all it ran)."""


def summarise(runs: list[Detection], limit: int) -> list[Summary]:
    out = []
    keys = dict.fromkeys((d.plant, d.arch) for d in runs)
    for plant, arch in keys:
        ds = [d for d in runs if d.plant == plant and d.arch == arch]
        out.append(Summary(
            plant, arch, sum(d.examples is not None for d in ds),
            sum(d.examples is not None and d.examples <= MAKE_RUN_EXAMPLES for d in ds),
            len(ds), _median([float(d.examples or limit) for d in ds]),
            _median([d.seconds for d in ds])))
    return out


def table(summaries: list[Summary], arches: list[str]) -> str:
    """One row per plant: per configuration, median examples and CPU seconds to detection
    and the seeds that found it (``found/seeds``, ``*`` if one needed more than 25)."""
    lines = ["plant                 " + "".join(f"{a:>28s}" for a in arches)]
    by = {(s.plant, s.arch): s for s in summaries}
    for plant in dict.fromkeys(s.plant for s in summaries):
        cells = []
        for a in arches:
            s = by.get((plant, a))
            if s is None:
                cells.append(f"{'':>28s}")
                continue
            flag = "" if s.found_in_make_run == s.seeds else "*"
            cells.append(f"{s.examples:6.1f} ex {s.seconds:6.2f} s {s.found}/{s.seeds}{flag:1s}"
                         .rjust(28))
        lines.append(f"{plant:22s}" + "".join(cells))
    return "\n".join(lines)


def load(path: str) -> list[Detection]:
    """Runs written by ``--json``."""
    with open(path, encoding="utf-8") as f:
        return [Detection(**d) for d in json.load(f)]


def compare(before: list[Detection], after: list[Detection]) -> str:
    """Per plant and configuration, on the seeds both have: mean and median CPU seconds
    to detection (an undetected seed counts as all it ran) before and after, the seeds
    found, and ``SLOWER`` where the mean rose."""
    key = {(d.plant, d.arch, d.seed): d for d in after}
    lines = [f"{'plant':22s} {'configuration':14s} {'mean s before':>14s} {'after':>7s} "
             f"{'median before':>14s} {'after':>7s}  found before/after"]
    pairs = dict.fromkeys((d.plant, d.arch) for d in before)
    for plant, arch in pairs:
        b = [d for d in before if (d.plant, d.arch) == (plant, arch)
             and (plant, arch, d.seed) in key]
        a = [key[(plant, arch, d.seed)] for d in b]
        if not b:
            continue
        mb, ma = statistics.mean(d.seconds for d in b), statistics.mean(d.seconds for d in a)
        found = (f"{sum(d.examples is not None for d in b)}/{len(b)} -> "
                 f"{sum(d.examples is not None for d in a)}/{len(a)}")
        lines.append(f"{plant:22s} {arch:14s} {mb:14.3f} {ma:7.3f} "
                     f"{_median([d.seconds for d in b]):14.3f} "
                     f"{_median([d.seconds for d in a]):7.3f}  {found}"
                     + ("  SLOWER" if ma > mb else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.detection")
    ap.add_argument("--arch", action="append", default=None,
                    help="configuration (repeatable; default x86_64 and arm64-64k-42)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--limit", type=int, default=100, help="examples per campaign at most")
    ap.add_argument("--plant", action="append", default=None, help="only this plant")
    ap.add_argument("--rate", type=int, default=0, metavar="N",
                    help="also time N clean examples (scenarios/s)")
    ap.add_argument("--json", default=None, help="write every run to this file")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), default=None,
                    help="compare two --json files instead of running")
    args = ap.parse_args(argv)
    if args.compare:
        print(compare(load(args.compare[0]), load(args.compare[1])))
        return 0
    arches = args.arch or ["x86_64", "arm64-64k-42"]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    plants = args.plant or [*PLANTS, *(f"pair:{b}" for b in PAIR_PLANTS)]
    bad = [p for p in plants if p not in PLANTS and p[5:] not in PAIR_PLANTS]
    if bad or args.limit < 1 or not seeds:
        print(f"bench.detection: bad input: unknown plant {bad}" if bad else
              "bench.detection: --limit must be >= 1 and --seeds non-empty", file=sys.stderr)
        return 2
    runs = [time_to_detection(p, a, s, args.limit)
            for p in plants for a in arches for s in seeds]
    print(f"time to detection: median over seeds {seeds} of examples and CPU seconds to the "
          f"first divergence (limit {args.limit}; found/seeds, * = not all within "
          f"{MAKE_RUN_EXAMPLES})")
    print(table(summarise(runs, args.limit), arches))
    if args.rate:
        from bench.campaign import campaign_rate

        for a in arches:
            print(f"  {a:14s} {campaign_rate(a, args.rate).per_second:6.1f} scenarios/s "
                  f"({args.rate} clean examples of each seed of bench.campaign.SEEDS)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([asdict(d) for d in runs], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
