"""``python -m bench [--pages N] [--arch NAME] [--no-ratio]``: the project's benchmarks.

1. Legacy workload on one configuration: pages/second for map, walk and unmap, and peak
   RSS growth against the peak ``pgtables_bytes``.  Target: 262,144 pages (1 GiB) on
   x86_64 in under 10 s in all, RSS growth at most 1.5x ``pgtables_bytes``.
2. The same workload through the unified API: the unified/legacy time ratio per phase.
3. The built-in side-by-side campaign: scenarios/s per configuration per core
   (``--campaign N`` examples of each of bench.campaign.SEEDS, 0 to skip).
4. Time to detection (bench/detection.py): examples and CPU seconds the campaign takes to
   find each planted bug of bench/plants.py on x86_64 and arm64-64k-42, within ``make
   run``'s 25 examples (``--detection N`` seeds, 0 to skip).
"""

from __future__ import annotations

import argparse
import platform
import sys

from bench.legacy_workload import run, traced_map_bytes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--pages", type=int, default=262_144)
    ap.add_argument("--arch", default="x86_64")
    ap.add_argument("--no-ratio", action="store_true", help="skip the unified/legacy ratio")
    ap.add_argument("--campaign", type=int, default=40, metavar="N",
                    help="examples per configuration for the campaign rate (0: skip)")
    ap.add_argument("--detection", type=int, default=1, metavar="N",
                    help="seeds for the time to detection of planted bugs (0: skip)")
    args = ap.parse_args(argv)

    print(f"python {platform.python_version()} ({sys.executable}, "
          f"{platform.python_implementation()} {' '.join(platform.python_build())})")
    phases, tables, rss = run(args.arch, args.pages)
    total = sum(p.seconds for p in phases)
    print(f"legacy API, {args.arch}, {args.pages} x 4K pages")
    for p in phases:
        print(f"  {p.name:6s} {p.seconds:7.2f} s  {p.pages_per_second:12,.0f} pages/s")
    print(f"  total  {total:7.2f} s   (target < 10 s: {'ok' if total < 10 else 'MISSED'})")
    ratio = rss / tables if tables else float("inf")
    print(
        f"  peak pgtables_bytes {tables:,} B; RSS growth {rss:,} B = {ratio:.2f}x "
        f"(target <= 1.5x: {'ok' if ratio <= 1.5 else 'MISSED'})"
    )
    held, tables2 = traced_map_bytes(args.arch, args.pages)
    print(
        f"  Python heap held by the mapped machine (tracemalloc) {held:,} B = "
        f"{held / tables2:.2f}x pgtables_bytes"
    )
    if args.campaign:
        campaign(args.campaign)
    if args.detection:
        from bench.detection import MAKE_RUN_EXAMPLES
        from bench.detection import main as detection

        detection(["--seeds", ",".join(map(str, range(args.detection))),
                   "--limit", str(MAKE_RUN_EXAMPLES)])
    if not args.no_ratio:
        try:
            from bench.unified_vs_legacy import run_ratio
        except ImportError:
            print("unified/legacy ratio: bench.unified_vs_legacy not available")
            return 0
        ratios = run_ratio(args.pages)
        print("unified API / legacy API time ratio (target <= 1.25):")
        for name, r in ratios.items():
            print(f"  {name:6s} {r:5.2f}x  {'ok' if r <= 1.25 else 'MISSED'}")
    return 0


def campaign(examples: int) -> None:
    from bench.campaign import ROUNDS, SEEDS, campaign_rate
    from legacy import arch_names

    print(f"side-by-side campaign, examples 0-{examples - 1} of seeds "
          f"{', '.join(map(str, SEEDS))} per configuration, CPU time of one core, the "
          f"fastest of {ROUNDS} rounds per seed (the median round's rate in brackets)")
    base = None
    for arch in arch_names():
        r = campaign_rate(arch, examples)
        base = base or r.per_second
        seeds = " ".join(f"{x:.0f}" for x in r.per_seed)
        print(f"  {arch:16s} {r.per_second:6.1f} scenarios/s [{r.median_per_second:6.1f}]  "
              f"({base / r.per_second:.1f}x x86_64's time; per seed {seeds})", flush=True)
    print("  target: >= 100/s on x86_64, none more than 3x slower")


if __name__ == "__main__":
    sys.exit(main())
