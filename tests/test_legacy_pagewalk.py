"""The generic page-table walker (legacy/mm/pagewalk.py, after mm/pagewalk.c).

What each callback reports is checked against the hardware walker: a page it translates
is visited by ``pte_entry`` with its pfn; a page that faults at the PTE level is visited
with an empty pte; a page that faults higher up lies in exactly one ``pte_hole`` whose depth
is the Linux level of the missing entry (``real_depth`` of the level that reads it);
a page outside every vma lies in a depth -1 hole.  Runs on every configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import legacy
from arches.config import Fault, Translation
from legacy import GenericKernel, mm_struct
from legacy.mm.huge_memory import insert_pfn_pmd
from legacy.mm.memory import remap_pfn_range
from legacy.mm.mmap import mmap_region, mmput
from legacy.mm.pagewalk import (
    ACTION_AGAIN,
    ACTION_CONTINUE,
    mm_walk,
    mm_walk_ops,
    walk_kernel_page_table_range,
    walk_page_range,
)
from legacy.mm.vm_flags import (
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_PFNMAP,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
)
from legacy.mm.vma import find_vma
from legacy.mm.vmalloc import vmap_range
from legacy.mm_types import mmap_write_locked, spin_lock, spin_unlock
from legacy.types import EntryPtr, PmdPtr, PtePtr, pgprot_t

ARCHES = legacy.arch_names()
SHARED = VM_READ | VM_WRITE | VM_SHARED | VM_MAYREAD | VM_MAYWRITE | VM_MAYSHARE | VM_PFNMAP
VA = 0x4000_0000
PA = 0x4000_0000
HYP = settings(max_examples=30, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow])


def regs(k: GenericKernel, mm: mm_struct) -> dict[str, int]:
    kernel_root = k.mm_root(k.init_mm if k.SEPARATE_KERNEL_ROOT else mm)
    return k.config.make_registers(k.mm_root(mm), kernel_root)


def translate(k: GenericKernel, mm: mm_struct, va: int) -> Translation | Fault:
    return k.config.walker.translate(k.mem, regs(k, mm), va)


def hole_depth(k: GenericKernel, hw_level: int) -> int:
    """The Linux depth of a missing entry at hardware level ``hw_level``.  The entry is
    read by the *lowest* Linux level whose entry spans it (the folded ones above it have a
    constant ``pXd_none``, at compile time or, like riscv's, at run time): the one with
    that shift, or a wider one where a Linux entry is several hardware entries (classic
    arm: ``pmd_none`` reads the first of two 1M descriptors); mm/pagewalk.c reports it at
    ``real_depth``, which moves it up only across ``PTRS_PER_X == 1`` levels."""
    shift = k.config.hw_levels[hw_level].shift
    shifts = (k.PGDIR_SHIFT, k.P4D_SHIFT, k.PUD_SHIFT, k.PMD_SHIFT)
    depth = max(d for d in range(4) if shifts[d] >= shift)
    ptrs = (k.PTRS_PER_PGD, k.PTRS_PER_P4D, k.PTRS_PER_PUD, k.PTRS_PER_PMD)
    while depth > 0 and ptrs[depth] == 1:
        depth -= 1
    return depth


@dataclass
class Log:
    """Everything the callbacks saw."""

    k: GenericKernel
    ptes: dict[int, int] = field(default_factory=dict)
    holes: list[tuple[int, int, int]] = field(default_factory=list)
    entries: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    vma_calls: list[str] = field(default_factory=list)

    def entry(self, level: str):  # type: ignore[no-untyped-def]
        def cb(p: EntryPtr, addr: int, next: int, walk: mm_walk) -> int:
            self.entries.setdefault(level, []).append((p.pa, addr, next))
            return 0
        return cb

    def pte(self, p: PtePtr, addr: int, next: int, walk: mm_walk) -> int:
        assert next == addr + self.k.PAGE_SIZE and addr not in self.ptes
        self.ptes[addr] = self.k.ptep_get(p)
        return 0

    def hole(self, addr: int, next: int, depth: int, walk: mm_walk) -> int:
        assert addr < next
        self.holes.append((addr, next, depth))
        return 0

    def ops(self, **over: object) -> mm_walk_ops:
        base: dict[str, object] = dict(
            pgd_entry=self.entry("pgd"), p4d_entry=self.entry("p4d"),
            pud_entry=self.entry("pud"), pmd_entry=self.entry("pmd"), pte_entry=self.pte,
            pte_hole=self.hole, test_walk=lambda s, e, w: 0,
        )
        base.update(over)
        return mm_walk_ops(**base)  # type: ignore[arg-type]


def map_runs(k: GenericKernel, mm: mm_struct, runs: list[tuple[int, int]]) -> None:
    """``runs`` of (first page, pages) from ``VA``: shared pfn maps, later ones replacing
    (each an ``mmap`` syscall: under ``mmap_write_lock``, then the end-of-call-site check)."""
    for first, n in runs:
        va = VA + first * k.PAGE_SIZE
        pfn = (PA >> k.PAGE_SHIFT) + first
        with mmap_write_locked(mm):
            assert mmap_region(k, mm, va, n * k.PAGE_SIZE, SHARED, pfn) == va
            vma = find_vma(k, mm, va)
            assert vma is not None
            assert remap_pfn_range(k, vma, va, pfn, n * k.PAGE_SIZE,
                                   pgprot_t(vma.vm_page_prot)) == 0
        k.syscall_exit("mmap + remap_pfn_range")


def in_vma(mm: mm_struct, va: int) -> bool:
    return any(v.vm_start <= va < v.vm_end for v in mm.mmap)


def check_log(k: GenericKernel, mm: mm_struct, log: Log, start: int, end: int) -> None:
    last = len(k.config.hw_levels) - 1
    page_hole: dict[int, int] = {}
    for addr, next, depth in log.holes:
        assert start <= addr < next <= end
        for va in range(addr, next, k.PAGE_SIZE):
            assert va not in page_hole and va not in log.ptes
            page_hole[va] = depth
    for va in range(start, end, k.PAGE_SIZE):
        t = translate(k, mm, va)
        if not in_vma(mm, va):
            assert page_hole.get(va) == -1, hex(va)
        elif isinstance(t, Translation):
            assert va in log.ptes and not k.pte_none(log.ptes[va])
            assert k.pte_pfn(log.ptes[va]) == t.pa >> k.PAGE_SHIFT
        elif t.level == last:
            assert va in log.ptes and k.pte_none(log.ptes[va])
        else:
            assert t.level is not None
            assert page_hole.get(va) == hole_depth(k, t.level), hex(va)


@pytest.mark.parametrize("name", ARCHES)
@HYP
@given(data=st.data())
def test_walk_reports_every_pte_and_every_hole(name: str, data: st.DataObject) -> None:
    k = legacy.boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    span = 4 * k.PMD_SIZE // k.PAGE_SIZE  # pages of the window mapped into
    runs = data.draw(st.lists(
        st.tuples(st.integers(0, span - 1), st.integers(1, 64)).map(
            lambda r: (r[0], min(r[1], span - r[0]))), min_size=1, max_size=4))
    map_runs(k, mm, runs)
    lo = data.draw(st.integers(-k.PTRS_PER_PTE, span))
    hi = data.draw(st.integers(lo + 1, span + k.PTRS_PER_PTE))
    start, end = VA + lo * k.PAGE_SIZE, VA + hi * k.PAGE_SIZE

    log = Log(k)
    assert walk_page_range(k, mm, start, end, log.ops()) == 0
    check_log(k, mm, log, start, end)
    # p?d_entry callbacks run even on folded levels, and a folded level's entry *is* its
    # parent's entry: same address.
    levels = ("pgd", "p4d", "pud", "pmd")
    folded = {"p4d": k.mm_p4d_folded(mm), "pud": k.mm_pud_folded(mm),
              "pmd": k.mm_pmd_folded(mm)}
    for va in log.ptes:
        seen = {lv: [e for e in log.entries[lv] if e[1] <= va < e[2]] for lv in levels}
        assert all(len(seen[lv]) == 1 for lv in levels), hex(va)
        for parent, child in zip(levels, levels[1:], strict=False):
            if folded[child]:
                assert seen[child][0][0] == seen[parent][0][0]
    assert not mm.page_table_lock.held
    mmput(k, mm)


@pytest.mark.parametrize("name", ARCHES)
def test_actions_continue_skips_a_subtree_and_again_recalls(name: str) -> None:
    k = legacy.boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    per_pmd = k.PMD_SIZE // k.PAGE_SIZE
    map_runs(k, mm, [(0, 3), (per_pmd + 5, 2), (3 * per_pmd - 1, 2)])
    start, end = VA, VA + 4 * k.PMD_SIZE
    base = Log(k)
    walk_page_range(k, mm, start, end, base.ops())
    assert len([v for v, p in base.ptes.items() if not k.pte_none(p)]) == 7

    # ACTION_CONTINUE at the second pmd: none of its ptes is visited, the rest are.
    skip = VA + k.PMD_SIZE
    log = Log(k)

    def pmd_continue(p: PmdPtr, addr: int, next: int, walk: mm_walk) -> int:
        if skip <= addr < skip + k.PMD_SIZE:  # addr: where the vma starts in this pmd
            walk.action = ACTION_CONTINUE
        return 0

    walk_page_range(k, mm, start, end, log.ops(pmd_entry=pmd_continue))
    assert log.ptes == {v: p for v, p in base.ptes.items() if not skip <= v < skip + k.PMD_SIZE}

    # ACTION_AGAIN: each pmd_entry is called a second time for the same entry.
    calls: list[int] = []

    def pmd_again(p: PmdPtr, addr: int, next: int, walk: mm_walk) -> int:
        calls.append(addr)
        if calls.count(addr) == 1:
            walk.action = ACTION_AGAIN
        return 0

    log = Log(k)
    walk_page_range(k, mm, start, end, log.ops(pmd_entry=pmd_again))
    assert calls and all(calls.count(a) == 2 for a in calls)
    assert sorted(set(calls)) == sorted({a for _, a, _ in base.entries["pmd"]})
    assert log.ptes == base.ptes

    # A non-zero return stops the walk and is returned.
    seen: list[int] = []

    def stop_third(p: PtePtr, addr: int, next: int, walk: mm_walk) -> int:
        seen.append(addr)
        return 7 if len(seen) == 3 else 0

    assert walk_page_range(k, mm, start, end, log.ops(pte_entry=stop_third)) == 7
    assert seen == sorted(base.ptes)[:3]
    mmput(k, mm)


@pytest.mark.parametrize("name", ARCHES)
def test_vmas_gaps_test_walk_and_pfnmap_default(name: str) -> None:
    k = legacy.boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    map_runs(k, mm, [(0, 4), (16, 4)])
    start, end = VA - 4 * k.PAGE_SIZE, VA + 24 * k.PAGE_SIZE
    log = Log(k)
    pre: list[tuple[int, int]] = []
    ops = log.ops(pre_vma=lambda s, e, w: pre.append((s, e)) or 0,
                  post_vma=lambda w: log.vma_calls.append("post"))
    assert walk_page_range(k, mm, start, end, ops) == 0
    p = k.PAGE_SIZE
    assert pre == [(VA, VA + 4 * p), (VA + 16 * p, VA + 20 * p)]
    assert log.vma_calls == ["post", "post"]
    assert (start, VA, -1) in log.holes and (VA + 4 * p, VA + 16 * p, -1) in log.holes
    assert (VA + 20 * p, end, -1) in log.holes
    check_log(k, mm, log, start, end)

    # Without test_walk a VM_PFNMAP vma is skipped and reported as one depth -1 hole.
    log = Log(k)
    assert walk_page_range(k, mm, start, end, log.ops(test_walk=None)) == 0
    assert not log.ptes and (VA, VA + 4 * p, -1) in log.holes
    # test_walk: 1 skips the vma, < 0 aborts.
    log = Log(k)
    assert walk_page_range(k, mm, start, end,
                           log.ops(test_walk=lambda s, e, w: int(s == VA))) == 0
    assert sorted(log.ptes) == [VA + i * p for i in range(16, 20)]
    assert walk_page_range(k, mm, start, end, log.ops(test_walk=lambda s, e, w: -5)) == -5
    assert walk_page_range(k, mm, end, start, log.ops()) == -22
    mmput(k, mm)


@pytest.mark.parametrize("name", ARCHES)
def test_huge_pmd_split_only_when_ptes_are_wanted(name: str) -> None:
    k = legacy.boot(name)
    if k.PMD_SIZE not in k.config.leaf_sizes:
        pytest.skip("no pmd leaves")
    mm = k.mm_alloc()
    assert mm is not None
    assert mmap_region(k, mm, VA, k.PMD_SIZE, SHARED, PA >> k.PAGE_SHIFT) == VA
    vma = find_vma(k, mm, VA)
    assert vma is not None
    assert insert_pfn_pmd(k, vma, VA, PA >> k.PAGE_SHIFT, pgprot_t(vma.vm_page_prot)) == 0
    log = Log(k)
    walk_page_range(k, mm, VA, VA + k.PMD_SIZE, log.ops(pte_entry=None))
    assert [e[1:] for e in log.entries["pmd"]] == [(VA, VA + k.PMD_SIZE)]
    t = translate(k, mm, VA + 0x5000)
    assert isinstance(t, Translation) and t.size == k.PMD_SIZE  # not split

    log = Log(k)
    walk_page_range(k, mm, VA, VA + k.PMD_SIZE, log.ops())
    assert len(log.ptes) == k.PMD_SIZE // k.PAGE_SIZE  # split_huge_pmd, then every pte
    for va, pte in log.ptes.items():
        assert k.pte_pfn(pte) == (PA + va - VA) >> k.PAGE_SHIFT
    t = translate(k, mm, VA + 0x5000)
    assert isinstance(t, Translation) and (t.size, t.pa) == (k.PAGE_SIZE, PA + 0x5000)
    mmput(k, mm)


@pytest.mark.parametrize("name", ARCHES)
def test_kernel_walk_skips_leaves_without_splitting(name: str) -> None:
    k = legacy.boot(name)
    lo = k.config.kernel_range[0]
    kva = (lo + k.PUD_SIZE - 1) // k.PUD_SIZE * k.PUD_SIZE
    end = kva + k.PMD_SIZE + 4 * k.PAGE_SIZE
    assert vmap_range(k, kva, end, PA, k.PAGE_KERNEL, k.PMD_SHIFT) == 0
    image = list(k.mem.image())
    log = Log(k)
    assert walk_kernel_page_table_range(k, kva, end, log.ops(test_walk=None)) == 0
    assert list(k.mem.image()) == image  # nothing split, nothing cleared
    huge = k.arch_vmap_pmd_supported(k.PAGE_KERNEL)
    mapped = sorted(v for v, p in log.ptes.items() if not k.pte_none(p))
    first = k.PMD_SIZE if huge else 0
    assert mapped == list(range(kva + first, end, k.PAGE_SIZE))
    if huge:
        assert (kva, kva + k.PMD_SIZE) in [e[1:] for e in log.entries["pmd"]]


@pytest.mark.parametrize("name", [a for a in ARCHES if a.startswith("x86_64")])
def test_bad_p4d_is_cleared_but_bad_pud_is_handed_to_pud_entry(name: str) -> None:
    """pgd/p4d holes use pXd_none_or_clear_bad; pud/pmd only pXd_none (x86-64 entries)."""
    k = legacy.boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    map_runs(k, mm, [(0, 1)])
    p4d = k.p4d_offset(k.pgd_offset(mm, VA), VA)
    pud = k.pud_offset(p4d, VA)
    bad_pud = k.pudp_get(pud) | 1 << 9  # a table entry with a stray software bit
    ptl = k.pud_lock(mm, pud)
    k.set_pud(pud, bad_pud)
    spin_unlock(ptl)
    assert k.pud_bad(k.pudp_get(pud))
    log = Log(k)

    def pud_stop(p: EntryPtr, addr: int, next: int, walk: mm_walk) -> int:
        log.entries.setdefault("pud", []).append((k.pudp_get(p), addr, next))
        walk.action = ACTION_CONTINUE
        return 0

    walk_page_range(k, mm, VA, VA + k.PAGE_SIZE, log.ops(pud_entry=pud_stop))
    assert log.entries["pud"] == [(bad_pud, VA, VA + k.PAGE_SIZE)]
    assert k.pudp_get(pud) == bad_pud and not k.bad_entries

    bad_p4d = k.p4dp_get(p4d) | 1 << 7  # PSE in a p4d: p4d_bad
    spin_lock(mm.page_table_lock)
    k.set_p4d(p4d, bad_p4d)
    spin_unlock(mm.page_table_lock)
    log = Log(k)
    # Kernel quirk, not under test here: p4d_clear_bad (mm/pgtable-generic.c) clears the
    # bad entry without mm->page_table_lock (and without a flush), which the emulated
    # lockdep would refuse.  Only this walk runs without it.
    k.lockdep_enabled = False
    walk_page_range(k, mm, VA, VA + k.PAGE_SIZE, log.ops())
    k.lockdep_enabled = True
    assert log.holes == [(VA, VA + k.PAGE_SIZE, 1 if k.PTRS_PER_P4D > 1 else 0)]
    assert k.p4dp_get(p4d) == 0 and k.bad_entries == [("p4d", bad_p4d)]
    assert isinstance(translate(k, mm, VA), Fault)


@pytest.mark.parametrize("name", ARCHES)
def test_unpopulated_vmas_are_holes_at_the_missing_level(name: str) -> None:
    """One mapped page at VA; empty vmas one PMD, PUD and PGDIR span away: each is a single
    hole whose depth is the hardware level where the walk stops."""
    k = legacy.boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    map_runs(k, mm, [(0, 1)])
    depths = set()
    for span in sorted({k.PMD_SIZE, k.PUD_SIZE, k.PGDIR_SIZE}):
        x = VA + span
        if x + 4 * k.PAGE_SIZE > k.TASK_SIZE:
            continue
        assert mmap_region(k, mm, x, 4 * k.PAGE_SIZE, SHARED, 0) == x
        log = Log(k)
        assert walk_page_range(k, mm, x, x + 4 * k.PAGE_SIZE, log.ops()) == 0
        check_log(k, mm, log, x, x + 4 * k.PAGE_SIZE)
        assert len(log.holes) == 1 and not log.ptes
        depths.add(log.holes[0][2])
    assert depths  # at least one level exercised
    mmput(k, mm)
