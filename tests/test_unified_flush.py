"""TLB flush obligations of the unified API (unified/flush.py) and the ports that consume them.

- every restricting ``PageTables`` operation returns a :class:`TlbFlush` for the entry's
  range and level (none for a new translation);
- ``flush(vma)`` and ``gather(tlb)`` consume it and leave the emulated TLB clean; ``a | b``
  and ``add`` make one obligation of many;
- one dropped or left unconsumed is reported at the end of the call site
  (``k.syscall_exit``), naming the line that created it and the one that dropped it;
- bugs planted in copies of the unified ports -- a missing flush, a flush of the wrong
  range, a split without break-before-make, a store without its lock or under the wrong
  lock -- are each caught, on every configuration where they are observable.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import legacy
from arches.errors import LockError, PtshimError, TlbError
from legacy import GenericKernel, mm_struct, vm_area_struct
from legacy.mm.memory import remap_pfn_range
from legacy.mm.mmap import mmap_region
from legacy.mm.mmu_gather import tlb_finish_mmu, tlb_gather_mmu
from legacy.mm.vma import find_vma
from legacy.mm_types import mmap_write_locked
from ptshim.backends import user_vm_flags
from tests.conftest import ARCH_NAMES
from unified import Entry, Level, PageTables, Table, Value
from unified.flush import FlushKind, UnconsumedFlush
from unified.mm import protect, split, vmap
from unified.mm._common import ops_of

VA = 0x40_0000
PAGES = 8


def _setup(arch: str) -> tuple[GenericKernel, PageTables, mm_struct, vm_area_struct]:
    """A user mm with ``PAGES`` 4K pages mapped at ``VA`` (legacy remap_pfn_range)."""
    k = legacy.boot(arch)
    mm = k.mm_alloc()
    assert mm is not None
    size = PAGES * k.PAGE_SIZE
    with mmap_write_locked(mm):
        assert mmap_region(k, mm, VA, size, user_vm_flags("rw"), 0x1234) == VA
        vma = find_vma(k, mm, VA)
        assert vma is not None
        assert remap_pfn_range(k, vma, VA, 0x1234, size, legacy.pgprot_t(vma.vm_page_prot)) == 0
    k.syscall_exit("map")
    if k.SOFTWARE_YOUNG_DIRTY:  # a clean pte is read-only to the MMU: write-fault them
        with mmap_write_locked(mm):
            for va in range(VA, VA + size, k.PAGE_SIZE):
                r = k.pte_offset_map_lock(mm, k.pmd_off(mm, va), va)
                assert r is not None
                pte, ptl = r
                entry = k.pte_mkdirty(k.pte_mkyoung(k.ptep_get(pte)))  # handle_pte_fault
                k.ptep_set_access_flags(vma, va, pte, entry, 1)
                k.pte_unmap_unlock(pte, ptl)
        k.syscall_exit("write faults")
    return k, PageTables(k), mm, vma


def _table_lives(k: GenericKernel, pa: int) -> bool:
    """A PTE table is at ``pa``: its descriptor, and its frame where a PTE table is one (a
    ppc64 64K fragment's page may outlive it)."""
    whole = k.PTRS_PER_PTE * k.SIZEOF_PTE >= k.PAGE_SIZE
    return pa in k.ptdescs or (whole and k.mem.is_allocated(pa))


def _pte_table(pt: PageTables, mm: mm_struct, va: int = VA) -> Table:
    t = pt.root_for(mm, va)
    while t.level != Level.PTE:
        t = pt.descend(pt.entry(t, va))
    return t


def _kernel_base(k: GenericKernel) -> int:
    lo = k.config.kernel_range[0]
    return -(-lo // k.PMD_SIZE) * k.PMD_SIZE + 2 * k.PMD_SIZE


# -- what each operation owes -----------------------------------------------------------


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_restricting_operations_return_obligations(arch: str) -> None:
    k, pt, mm, vma = _setup(arch)
    t = _pte_table(pt, mm)
    e0, e1, e2, e3 = (pt.entry(t, VA + i * k.PAGE_SIZE) for i in range(4))
    page = k.PAGE_SIZE
    with pt.locked(t):
        v0 = pt.read(e0)
        same = pt.write(e0, v0)
        cleared = pt.clear(e0)
        again = pt.clear(e0)  # nothing left to flush
        old, got = pt.get_and_clear(e1)
        wp = pt.set_wrprotect(e2)
        wp_again = pt.set_wrprotect(e2)  # already read-only: nothing owed
        new = pt.write(e0, v0)  # valid again, same page: owes nothing (and BBM allows it)
        moved = pt.write(e3, pt.wrprotect(pt.read(e3)))  # a restricting write
        if k.config.break_before_make:  # another page over a live one: refused at once
            with pytest.raises(TlbError, match="break-before-make"):
                pt.write(e3, Value(Level.PTE, k.pfn_pte(0x9999, legacy.pgprot_t(
                    vma.vm_page_prot))))
    assert not same.pending and not again.pending and not new.pending
    assert not wp_again.pending
    assert pt.is_writable(old) and not pt.is_writable(pt.wrprotect(old))
    for owed, va in ((cleared, VA), (got, VA + page), (wp, VA + 2 * page),
                     (moved, VA + 3 * page)):
        assert owed.pending and (owed.start, owed.end) == (va, va + page), owed
        assert owed.levels == {Level.PTE} and owed.kind is FlushKind.LEAF
        assert "test_restricting_operations_return_obligations" in str(owed.site)
    owed = cleared | got | wp | moved  # one obligation over the hull
    assert not cleared.pending and owed.pending
    assert (owed.start, owed.end) == (VA, VA + 4 * page)
    with pytest.raises(UnconsumedFlush, match="not consumed by the end of mid-way"):
        k.syscall_exit("mid-way")
    # Reported once; the TLB itself still holds the stale translations.
    with pytest.raises(TlbError):
        k.syscall_exit("mid-way")
    k.flush_tlb_mm(mm)
    k.syscall_exit("after flush_tlb_mm")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_free_table_owes_a_walk_cache_flush_then_frees(arch: str) -> None:
    k, pt, mm, vma = _setup(arch)
    t = _pte_table(pt, mm)
    with pt.locked(t):
        owed = pt.owe(mm, Level.PTE)
        for e, _a, _n in pt.entries(t, VA, VA + PAGES * k.PAGE_SIZE):
            owed |= pt.clear(e)
    owed.flush(vma)
    assert t.parent is not None
    with pt.locked(t.parent.table):
        freed = pt.free_table(t)
    assert freed.kind is FlushKind.TABLE and freed.level == t.parent.level
    assert _table_lives(k, t.first.pa)  # not before the flush
    with pytest.raises(PtshimError):
        freed.waive("no")  # a table free cannot be waived
    freed.flush(vma)
    assert not _table_lives(k, t.first.pa)
    k.syscall_exit("free_table")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_obligations_gathered_into_an_mmu_gather(arch: str) -> None:
    k, pt, mm, vma = _setup(arch)
    t = _pte_table(pt, mm)
    tlb = tlb_gather_mmu(k, mm)
    with pt.locked(t):
        for e, _a, _n in pt.entries(t, VA, VA + PAGES * k.PAGE_SIZE):
            pt.clear(e).gather(tlb)
    assert tlb.cleared_ptes and (tlb.start, tlb.end) == (VA, VA + PAGES * k.PAGE_SIZE)
    assert t.parent is not None
    with pt.locked(t.parent.table):
        pt.free_table(t).gather(tlb)
    assert tlb.freed_tables and _table_lives(k, t.first.pa)
    tlb_finish_mmu(k, tlb)
    assert not _table_lives(k, t.first.pa)
    k.syscall_exit("gather")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_clear_flush_idiom_is_ptep_clear_flush(arch: str) -> None:
    """``v, owed = pt.get_and_clear(e); owed.flush(vma)`` makes the flush the legacy
    ``ptep_clear_flush`` makes (``flush_tlb_page``), on a second kernel.  Where
    ``flush_tlb_page`` is empty (s390: ``ptep_clear_flush`` is IPTE, the one-page flush of
    the clear itself) the idiom clears lazily (``ptep_get_and_clear``: ``flush_mm``) and
    flushes with ``flush_tlb_range``, which purges the whole space: both leave nothing
    stale."""
    k, pt, mm, vma = _setup(arch)
    k2, _pt2, mm2, vma2 = _setup(arch)
    k.hw_tlb.flushes.clear()
    k2.hw_tlb.flushes.clear()
    t = _pte_table(pt, mm)
    e = pt.entry(t, VA)
    with pt.locked(t):
        v, owed = pt.get_and_clear(e)
    owed.flush(vma)
    ptl = k2.pte_lockptr(mm2, k2.pmd_off(mm2, VA))
    legacy.spin_lock(ptl)
    v2 = k2.ptep_clear_flush(vma2, VA, k2.pte_offset_kernel(k2.pmd_off(mm2, VA), VA))
    legacy.spin_unlock(ptl)
    assert v.raw == v2
    if k.FLUSH_TLB_PAGE_EMPTY:
        assert [f[1:] for f in k2.hw_tlb.flushes] == [(VA, VA + k.PAGE_SIZE, False)]  # IPTE
        assert [f[1:] for f in k.hw_tlb.flushes] == [(0, 0, True)]  # IDTE of the ASCE
    else:
        assert [f[1:] for f in k.hw_tlb.flushes] == [f[1:] for f in k2.hw_tlb.flushes]
    k.syscall_exit("x")
    k2.syscall_exit("x")


# -- unconsumed obligations are reported where they were made -------------------------------


def _drop_one(pt: PageTables, e: Entry) -> int:
    with pt.locked(e.table):
        pt.clear(e)  # the obligation is dropped right here
    return inspect.currentframe().f_lineno - 1  # type: ignore[union-attr]


@pytest.mark.parametrize("arch", ["x86_64", "arm64-4k-48"])
def test_dropped_obligation_names_the_creating_and_dropping_line(arch: str) -> None:
    k, pt, mm, vma = _setup(arch)
    line = _drop_one(pt, pt.entry(_pte_table(pt, mm), VA))
    with pytest.raises(UnconsumedFlush) as e:
        k.syscall_exit("the planted call site")
    msg = str(e.value)
    assert f"created by _drop_one (tests/test_unified_flush.py:{line})" in msg
    assert f"dropped by _drop_one (tests/test_unified_flush.py:{line})" in msg
    assert f"[{VA:#x}, {VA + k.PAGE_SIZE:#x})" in msg
    k.flush_tlb_mm(mm)
    k.syscall_exit("clean again")
    pt.check_obligations("direct check")  # nothing owed any more


def test_consumed_twice_is_refused() -> None:
    k, pt, mm, vma = _setup("x86_64")
    t = _pte_table(pt, mm)
    with pt.locked(t):
        owed = pt.clear(pt.entry(t, VA))
    owed.flush(vma)
    with pytest.raises(PtshimError, match="consumed twice"):
        owed.flush(vma)
    with pytest.raises(PtshimError, match="consumed"):
        owed | pt.owe(mm, Level.PTE)
    k.syscall_exit("x")


# -- bugs planted in copies of the unified ports ----------------------------------------------


def planted(module: types.ModuleType, old: str, new: str) -> types.ModuleType:
    """A copy of ``module`` with ``old`` replaced by ``new`` (which must occur once)."""
    src = inspect.getsource(module)
    assert src.count(old) == 1, f"{old!r} not found once in {module.__name__}"
    name = module.__name__.rsplit(".", 1)[-1]
    copy = types.ModuleType(f"{module.__name__}_planted")
    code = compile(src.replace(old, new), f"planted/{name}_planted.py", "exec")
    exec(code, copy.__dict__)
    return copy


@contextmanager
def caught(exc: type[Exception], *words: str) -> Iterator[None]:
    with pytest.raises(exc) as e:
        yield
    for w in words:
        assert w in str(e.value), str(e.value)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_ports_pass_the_checks(arch: str) -> None:
    """The real ports: protect, vunmap, split consume what they owe on every configuration."""
    k, pt, mm, vma = _setup(arch)
    ro = legacy.pgprot_t(k.vm_get_page_prot(legacy.VM_READ))
    assert protect.change_protection(pt, vma, VA, VA + 3 * k.PAGE_SIZE, ro) == 3
    k.syscall_exit("change_protection")
    base = _kernel_base(k)
    assert vmap.vmap_range(pt, base, base + 4 * k.PAGE_SIZE, 0x200000, k.PAGE_KERNEL,
                           k.PAGE_SHIFT) == 0
    k.syscall_exit("vmap_range")
    protect.set_memory_prot(pt, base, base + k.PAGE_SIZE, k.PAGE_KERNEL_RO)
    k.syscall_exit("set_memory_prot")
    vmap.vunmap_range(pt, base, base + 4 * k.PAGE_SIZE)
    k.syscall_exit("vunmap_range")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_planted_missing_flush_in_change_protection(arch: str) -> None:
    k, pt, mm, vma = _setup(arch)
    bad = planted(protect, "        owed.gather(tlb)\n", "        owed.waive('planted')\n")
    ro = legacy.pgprot_t(k.vm_get_page_prot(legacy.VM_READ))
    bad.change_protection(pt, vma, VA, VA + 2 * k.PAGE_SIZE, ro)
    with caught(TlbError, "TLB not flushed", "_change_leaves (planted/protect_planted.py"):
        k.syscall_exit("planted change_protection")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_planted_dropped_obligation_in_change_protection(arch: str) -> None:
    k, pt, mm, vma = _setup(arch)
    bad = planted(protect, "        owed.gather(tlb)\n", "        del owed\n")
    ro = legacy.pgprot_t(k.vm_get_page_prot(legacy.VM_READ))
    bad.change_protection(pt, vma, VA, VA + 2 * k.PAGE_SIZE, ro)
    with caught(UnconsumedFlush, "created by _change_leaves (planted/protect_planted.py",
                "dropped by _change_leaves (planted/protect_planted.py"):
        k.syscall_exit("planted change_protection")


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_planted_wrong_flush_range_in_vunmap(arch: str) -> None:
    k, pt, _mm, _vma = _setup(arch)
    base = _kernel_base(k)
    end = base + 4 * k.PAGE_SIZE
    assert vmap.vmap_range(pt, base, end, 0x200000, k.PAGE_KERNEL, k.PAGE_SHIFT) == 0
    bad = planted(vmap, "owed = pt.owe(k.init_mm, 0, addr, end)",
                  "owed = pt.owe(k.init_mm, 0, addr, addr + k.PAGE_SIZE)")
    bad.vunmap_range(pt, base, end)
    if k.FLUSH_TLB_KERNEL_RANGE_ALL:  # ppc64 radix: any range flushes every kernel entry
        k.syscall_exit("planted vunmap_range")
        return
    with caught(TlbError, "TLB not flushed", f"[{base + k.PAGE_SIZE:#x}, {end:#x})", "kernel"):
        k.syscall_exit("planted vunmap_range")


def _kernel_huge_pmd(k: GenericKernel, pt: PageTables) -> Entry | None:
    """A kernel huge PMD leaf mapped with vmap_range, or None if the configuration has no
    kernel PMD leaves."""
    if not k.arch_vmap_pmd_supported(k.PAGE_KERNEL) or k.PMD_SIZE == k.PAGE_SIZE:
        return None
    base = -(-k.config.kernel_range[0] // k.PUD_SIZE) * k.PUD_SIZE + 2 * k.PMD_SIZE
    assert vmap.vmap_range(pt, base, base + k.PMD_SIZE, 4 * k.PMD_SIZE, k.PAGE_KERNEL,
                           k.PMD_SHIFT) == 0
    k.syscall_exit("vmap_range (huge)")
    t = pt.kernel_root()
    while True:
        e = pt.entry(t, base)
        if pt.is_leaf(pt.read(e)):
            return e if e.level == Level.PMD else None
        t = pt.descend(e)


BREAK = "        _, owed = pt.get_and_clear(entry)\n        owed.flush(None if kernel else vma)\n"


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_split_kernel_leaf_breaks_before_make(arch: str) -> None:
    k, pt, _mm, _vma = _setup(arch)
    e = _kernel_huge_pmd(k, pt)
    if e is None:
        pytest.skip(f"{arch} has no kernel PMD leaves")
    kvma = vm_area_struct(k.init_mm, e.va, e.va + k.PMD_SIZE, 0, 0)
    assert split.split_leaf(pt, kvma, e) == 0
    assert pt.is_table(pt.read(e))
    k.syscall_exit("split_leaf")


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize("bug", ["no-break", "no-flush"])
def test_planted_split_without_break_before_make(arch: str, bug: str) -> None:
    """Populating over the live leaf (no break), or breaking without the invalidation: on
    arm64 the store itself is refused (break-before-make); on x86 the leaf's translation is
    left stale, caught at the end of the call site."""
    k, pt, _mm, _vma = _setup(arch)
    e = _kernel_huge_pmd(k, pt)
    if e is None:
        pytest.skip(f"{arch} has no kernel PMD leaves")
    if k.ARCH_PAGE_TABLE_SYNC_MASK & ops_of(pt, k.init_mm, Level.PMD).modified:
        pytest.skip("not observable: the per-pgd copies' kernel flush covers the leaf too")
    new = "" if bug == "no-break" else "        pt.get_and_clear(entry)[1].waive('planted')\n"
    bad = planted(split, BREAK, new)
    kvma = vm_area_struct(k.init_mm, e.va, e.va + k.PMD_SIZE, 0, 0)
    if k.config.break_before_make:
        with caught(TlbError, "break-before-make", "split_leaf (planted/split_planted.py"):
            bad.split_leaf(pt, kvma, e)
    else:
        bad.split_leaf(pt, kvma, e)
        with caught(TlbError, "TLB not flushed", "split_leaf (planted/split_planted.py"):
            k.syscall_exit("planted split_leaf")


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize("bug", ["no-lock", "wrong-lock"])
def test_planted_lock_bugs_in_change_protection(arch: str, bug: str) -> None:
    k, pt, mm, vma = _setup(arch)
    if bug == "no-lock":
        bad = planted(protect, "    ptl = pt.lockptr(table)\n    spin_lock(ptl)\n    try:\n"
                      "        for ptr, a, nxt",
                      "    ptl = pt.lockptr(table)\n    try:\n        for ptr, a, nxt")
        # The lock was never taken: make the port's unmatched spin_unlock harmless.
        setattr(bad, "spin_unlock", lambda lock: None)  # noqa: B010
    else:
        bad = planted(protect, "    ptl = pt.lockptr(table)\n    spin_lock(ptl)\n    try:\n"
                      "        for ptr, a, nxt",
                      "    ptl = mm.page_table_lock\n    spin_lock(ptl)\n    try:\n"
                      "        for ptr, a, nxt")
    ro = legacy.pgprot_t(k.vm_get_page_prot(legacy.VM_READ))
    pt_table = _pte_table(pt, mm)
    if bug == "wrong-lock" and pt.lockptr(pt_table) is mm.page_table_lock:
        pytest.skip("no split PTE locks: page_table_lock is the right lock")
    with caught(LockError, "lockdep", "_change_leaves (planted/protect_planted.py",
                "without ptl@"):
        bad.change_protection(pt, vma, VA, VA + 2 * k.PAGE_SIZE, ro)

