"""Map, walk and unmap N 4K pages on one configuration through the legacy API.

The workload is the kernel's own: ``mmap_region`` + ``remap_pfn_range`` to map,
``walk_page_range`` with a ``pte_entry`` callback to walk, ``do_munmap`` (zap +
``free_pgtables``) to unmap.
"""

from __future__ import annotations

import resource
import time
import tracemalloc
from dataclasses import dataclass

import legacy
from legacy.generic import VM_READ, VM_SHARED, VM_WRITE
from legacy.mm.memory import remap_pfn_range
from legacy.mm.mmap import do_munmap, mmap_region, mmput
from legacy.mm.pagewalk import mm_walk, mm_walk_ops, walk_page_range
from legacy.mm.vma import find_vma
from legacy.mm_types import mmap_write_locked
from legacy.types import PtePtr

VA = 0x10_0000_0000
PFN = 0x10_0000


@dataclass
class PhaseResult:
    name: str
    seconds: float
    pages: int

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds else float("inf")


def rss_bytes() -> int:
    """Current resident set size of this process (``VmRSS`` of /proc/self/status)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def traced_map_bytes(arch: str, pages: int) -> tuple[int, int]:
    """Python heap bytes held after mapping ``pages`` (tracemalloc, so slower; counted
    apart from the timed run), and the ``pgtables_bytes`` then."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    k = legacy.boot(arch)
    mm = k.mm_alloc()
    assert mm is not None
    size = pages * k.PAGE_SIZE
    flags = VM_READ | VM_WRITE | VM_SHARED
    assert mmap_region(k, mm, VA, size, flags) == VA
    vma = find_vma(k, mm, VA)
    assert vma is not None
    assert remap_pfn_range(k, vma, VA, PFN, size, k.vm_get_page_prot(flags)) == 0
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return held, mm.pgtables_bytes


def run(arch: str, pages: int) -> tuple[list[PhaseResult], int, int]:
    """Returns the phases, the peak ``pgtables_bytes`` and the RSS growth at that peak."""
    rss_before = rss_bytes()
    k = legacy.boot(arch)
    mm = k.mm_alloc()
    assert mm is not None
    size = pages * k.PAGE_SIZE
    flags = VM_READ | VM_WRITE | VM_SHARED
    results = []

    t = time.perf_counter()
    with mmap_write_locked(mm):
        assert mmap_region(k, mm, VA, size, flags) == VA
        vma = find_vma(k, mm, VA)
        assert vma is not None
        assert remap_pfn_range(k, vma, VA, PFN, size, k.vm_get_page_prot(flags)) == 0
    k.syscall_exit("map")
    results.append(PhaseResult("map", time.perf_counter() - t, pages))
    peak_tables = mm.pgtables_bytes
    rss_growth = rss_bytes() - rss_before  # everything is mapped: the peak

    present = 0

    def pte_entry(pte: PtePtr, addr: int, next: int, walk: mm_walk) -> int:
        nonlocal present
        if k.pte_present(k.ptep_get(pte)):
            present += 1
        return 0

    def test_walk(start: int, end: int, walk: mm_walk) -> int:
        return 0  # walk VM_PFNMAP vmas too (the default test skips them)

    t = time.perf_counter()
    walk_page_range(k, mm, VA, VA + size, mm_walk_ops(pte_entry=pte_entry, test_walk=test_walk))
    results.append(PhaseResult("walk", time.perf_counter() - t, pages))
    assert present == pages, f"walk saw {present} of {pages} pages"

    t = time.perf_counter()
    with mmap_write_locked(mm):
        assert do_munmap(k, mm, VA, size) == 0
    k.syscall_exit("munmap")
    results.append(PhaseResult("unmap", time.perf_counter() - t, pages))
    mmput(k, mm)
    return results, peak_tables, rss_growth
