"""The unified API's overhead over the legacy API, call site for call site (review point R9:
"not sure if it's possible without measurable overhead").

:func:`run_ratio` maps, walks and unmaps ``pages`` 4K pages on x86_64 twice in one process,
on two fresh kernels: through the legacy call sites (``mmap_region`` +
``remap_pfn_range``; ``walk_page_range`` with a ``pte_entry`` callback; ``do_munmap``) and
through their unified ports (:func:`unified.mm.mmap_region` + :func:`unified.mm.remap_pfn_range`;
:func:`unified.walk.walk_range` with a ``visit`` callback; :func:`unified.mm.do_munmap`).
Both walks count the present leaves.  Each phase is timed with ``time.perf_counter`` and the
best of ``repeat`` runs is kept (less noise from the machine); the result is the
unified/legacy time ratio per phase.  Target: <= 1.25.

``python -m bench.unified_vs_legacy [PAGES] [--profile PHASE]`` prints the ratios, or a
cProfile of one unified phase.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from collections.abc import Callable

import legacy
from legacy.generic import VM_READ, VM_SHARED, VM_WRITE
from legacy.mm import memory as lmemory
from legacy.mm import mmap as lmmap
from legacy.mm.pagewalk import mm_walk, mm_walk_ops, walk_page_range
from legacy.mm.vma import find_vma
from legacy.mm_types import mmap_write_locked
from legacy.types import PtePtr
from unified import Entry, PageTables, Value
from unified import mm as umm
from unified.walk import Action, walk_range

ARCH = "x86_64"
VA = 0x10_0000_0000
PFN = 0x10_0000
FLAGS = VM_READ | VM_WRITE | VM_SHARED

Phases = dict[str, Callable[[], None]]


def _legacy_phases(pages: int, counted: list[int]) -> Phases:
    k = legacy.boot(ARCH)
    mm = k.mm_alloc()
    assert mm is not None
    size = pages * k.PAGE_SIZE

    def do_map() -> None:
        with mmap_write_locked(mm):
            assert lmmap.mmap_region(k, mm, VA, size, FLAGS) == VA
            vma = find_vma(k, mm, VA)
            assert vma is not None
            assert lmemory.remap_pfn_range(k, vma, VA, PFN, size,
                                           k.vm_get_page_prot(FLAGS)) == 0
        k.syscall_exit("map")

    def pte_entry(pte: PtePtr, addr: int, next: int, walk: mm_walk) -> int:
        if k.pte_present(k.ptep_get(pte)):
            counted[0] += 1
        return 0

    # test_walk: walk the VM_PFNMAP vma (walk_page_test skips those by default).
    ops = mm_walk_ops(pte_entry=pte_entry, test_walk=lambda start, end, walk: 0)

    def do_walk() -> None:
        walk_page_range(k, mm, VA, VA + size, ops)

    def do_unmap() -> None:
        with mmap_write_locked(mm):
            assert lmmap.do_munmap(k, mm, VA, size) == 0
        k.syscall_exit("munmap")

    return {"map": do_map, "walk": do_walk, "unmap": do_unmap}


def _unified_phases(pages: int, counted: list[int]) -> Phases:
    k = legacy.boot(ARCH)
    pt = PageTables(k)
    mm = k.mm_alloc()
    assert mm is not None
    size = pages * k.PAGE_SIZE

    def do_map() -> None:
        with mmap_write_locked(mm):
            assert umm.mmap_region(pt, mm, VA, size, FLAGS) == VA
            vma = find_vma(k, mm, VA)
            assert vma is not None
            assert umm.remap_pfn_range(pt, vma, VA, PFN, size,
                                       k.vm_get_page_prot(FLAGS)) == 0
        k.syscall_exit("map")

    is_present = pt.is_present

    def visit(entry: Entry, value: Value, addr: int, next: int) -> Action | None:
        if value.level == 0 and is_present(value):
            counted[0] += 1
        return None

    def do_walk() -> None:
        walk_range(pt, pt.root_for(mm, VA), VA, VA + size, visit)

    def do_unmap() -> None:
        with mmap_write_locked(mm):
            assert umm.do_munmap(pt, mm, VA, size) == 0
        k.syscall_exit("munmap")

    return {"map": do_map, "walk": do_walk, "unmap": do_unmap}


def _time(phases: Phases) -> dict[str, float]:
    out = {}
    for name, fn in phases.items():
        gc.collect()
        t = time.perf_counter()
        fn()
        out[name] = time.perf_counter() - t
    return out


def run_times(pages: int, repeat: int = 3) -> dict[str, dict[str, float]]:
    """Best-of-``repeat`` seconds per phase for each API: ``{"legacy": {...}, "unified":
    {...}}``; both walks must see every page."""
    best: dict[str, dict[str, float]] = {"legacy": {}, "unified": {}}
    for _ in range(repeat):
        for api, make in (("legacy", _legacy_phases), ("unified", _unified_phases)):
            counted = [0]
            times = _time(make(pages, counted))
            if counted[0] != pages:
                raise AssertionError(f"{api} walk saw {counted[0]} of {pages} pages")
            for name, t in times.items():
                best[api][name] = min(t, best[api].get(name, t))
    return best


def run_ratio(pages: int) -> dict[str, float]:
    """unified/legacy time ratio for ``map``, ``walk`` and ``unmap`` of ``pages`` 4K pages
    on x86_64 (best of three runs of each)."""
    best = run_times(pages, repeat=3 if pages <= 65536 else 1)
    return {name: best["unified"][name] / best["legacy"][name] for name in best["legacy"]}


def profile(pages: int, phase: str, api: str = "unified", top: int = 25) -> None:
    """cProfile of one phase of one API (the phases before it run unprofiled)."""
    make = _unified_phases if api == "unified" else _legacy_phases
    phases = make(pages, [0])
    for name, fn in phases.items():
        if name == phase:
            prof = cProfile.Profile()
            prof.runcall(fn)
            pstats.Stats(prof).sort_stats("tottime").print_stats(top)
            return
        fn()
    raise SystemExit(f"no phase {phase!r}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.unified_vs_legacy")
    ap.add_argument("pages", type=int, nargs="?", default=65536)
    ap.add_argument("--profile", metavar="PHASE", choices=("map", "walk", "unmap"))
    ap.add_argument("--api", default="unified", choices=("unified", "legacy"))
    args = ap.parse_args(argv)
    if args.profile:
        profile(args.pages, args.profile, args.api)
        return 0
    best = run_times(args.pages)
    print(f"{args.pages} x 4K pages on {ARCH}, best of 3 (seconds):")
    print("  phase   legacy  unified  ratio")
    for name in best["legacy"]:
        lt, ut = best["legacy"][name], best["unified"][name]
        mark = "ok" if ut / lt <= 1.25 else "MISSED"
        print(f"  {name:6s} {lt:7.3f}  {ut:7.3f}  {ut / lt:5.2f}x  {mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
