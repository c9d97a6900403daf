"""A worked call-site pair: write-protect a user range, ``clear_refs`` style.

``make_range_readonly(start, end)`` write-protects every present, writable leaf that maps
any byte of ``[start, end)`` in the process ``mm``: PTEs, and huge PMD/PUD leaves.  Like
``clear_refs`` (fs/proc/task_mmu.c) it never splits a huge leaf: one the range covers only
partly is write-protected *whole*.  It allocates nothing, returns the number of leaves it
changed, and flushes the TLB for what it changed before returning (a call site that lowers
permissions must).

Two versions of one call site, for ``ptshim diff --pair`` (docs/pairs.md)::

    ptshim diff --pair examples/pairs/readonly.py:make_range_readonly_legacy,\
make_range_readonly_unified

- :func:`make_range_readonly_legacy` is the legacy per-level code, reading like kernel C:
  one ``*_range`` function per level, ``pXd_offset`` / ``pXd_addr_end`` loops,
  ``pte_offset_map_lock``, ``pmd_lock``/``pud_lock`` around a huge leaf,
  ``ptep_set_wrprotect``/``pmdp_set_wrprotect``/``pudp_set_wrprotect``;
- :func:`make_range_readonly_unified` is the port to the unified API: one ``walk_range``
  and one visit callback for every level.
"""

from __future__ import annotations

from dataclasses import dataclass

from legacy import GenericKernel, mm_struct, spin_unlock
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PudPtr
from unified import PageTables
from unified.handles import Entry, Value
from unified.levels import Level
from unified.walk import Action, walk_range


@dataclass
class wp_state:
    """What the walk changed: leaves write-protected and the VA extent to flush."""

    changed: int = 0
    lo: int = -1
    hi: int = 0

    def note(self, addr: int, size: int) -> None:
        self.changed += 1
        self.lo = addr if self.lo < 0 else min(self.lo, addr)
        self.hi = max(self.hi, addr + size)


def flush_tlb_changed(k: GenericKernel, mm: mm_struct, st: wp_state) -> None:
    """``flush_tlb_range(vma, ...)`` for every vma the change touched, where the kernel
    object emulates a TLB; ``flush_tlb_mm(mm)`` if it only has that; nothing otherwise."""
    if not st.changed:
        return
    flush_range = getattr(k, "flush_tlb_range", None)
    if flush_range is not None:
        for vma in mm.mmap:
            lo, hi = max(st.lo, vma.vm_start), min(st.hi, vma.vm_end)
            if lo < hi:
                flush_range(vma, lo, hi)
        return
    flush_mm = getattr(k, "flush_tlb_mm", None)
    if flush_mm is not None:
        flush_mm(mm)


# -- legacy: one function per level --------------------------------------------------------


def wrprotect_pte_range(k: GenericKernel, mm: mm_struct, pmd: PmdPtr, addr: int, end: int,
                        st: wp_state) -> None:
    r = k.pte_offset_map_lock(mm, pmd, addr)
    if r is None:
        return
    start_pte, ptl = r
    pte = start_pte
    while True:
        ptent = k.ptep_get(pte)
        if k.pte_present(ptent) and k.pte_write(ptent):
            k.ptep_set_wrprotect(mm, addr, pte)
            st.note(addr, k.PAGE_SIZE)
        pte = pte + 1
        addr = (addr + k.PAGE_SIZE) & k.ULONG_MASK
        if addr == end:
            break
    k.pte_unmap_unlock(start_pte, ptl)


def wrprotect_pmd_range(k: GenericKernel, mm: mm_struct, pud: PudPtr, addr: int, end: int,
                        st: wp_state) -> None:
    pmd = k.pmd_offset(pud, addr)
    while True:
        next = k.pmd_addr_end(addr, end)
        if k.pmd_leaf(k.pmdp_get(pmd)):
            ptl = k.pmd_lock(mm, pmd)
            val = k.pmdp_get(pmd)
            if k.pmd_leaf(val) and k.pmd_present(val) and k.pmd_write(val):
                k.pmdp_set_wrprotect(mm, addr & k.PMD_MASK, pmd)
                st.note(addr & k.PMD_MASK, k.PMD_SIZE)
            spin_unlock(ptl)
        elif not k.pmd_none_or_clear_bad(pmd):
            wrprotect_pte_range(k, mm, pmd, addr, next, st)
        pmd = pmd + 1
        addr = next
        if addr == end:
            break


def wrprotect_pud_range(k: GenericKernel, mm: mm_struct, p4d: P4dPtr, addr: int, end: int,
                        st: wp_state) -> None:
    pud = k.pud_offset(p4d, addr)
    while True:
        next = k.pud_addr_end(addr, end)
        if k.pud_leaf(k.pudp_get(pud)):  # before pud_bad(), which calls a huge pud bad
            ptl = k.pud_lock(mm, pud)
            val = k.pudp_get(pud)
            if k.pud_leaf(val) and k.pud_present(val) and k.pud_write(val):
                k.pudp_set_wrprotect(mm, addr & k.PUD_MASK, pud)
                st.note(addr & k.PUD_MASK, k.PUD_SIZE)
            spin_unlock(ptl)
        elif not k.pud_none_or_clear_bad(pud):
            wrprotect_pmd_range(k, mm, pud, addr, next, st)
        pud = pud + 1
        addr = next
        if addr == end:
            break


def wrprotect_p4d_range(k: GenericKernel, mm: mm_struct, pgd: PgdPtr, addr: int, end: int,
                        st: wp_state) -> None:
    p4d = k.p4d_offset(pgd, addr)
    while True:
        next = k.p4d_addr_end(addr, end)
        if not k.p4d_none_or_clear_bad(p4d):
            wrprotect_pud_range(k, mm, p4d, addr, next, st)
        p4d = p4d + 1
        addr = next
        if addr == end:
            break


def make_range_readonly_legacy(k: GenericKernel, mm: mm_struct, start: int, end: int) -> int:
    """Write-protect the leaves mapping ``[start, end)`` (legacy API); leaves changed."""
    st = wp_state()
    addr = start
    pgd = k.pgd_offset(mm, addr)
    while True:
        next = k.pgd_addr_end(addr, end)
        if not k.pgd_none_or_clear_bad(pgd):
            wrprotect_p4d_range(k, mm, pgd, addr, next, st)
        pgd = pgd + 1
        addr = next
        if addr == end:
            break
    flush_tlb_changed(k, mm, st)
    return st.changed


# -- unified: one walk for every level ----------------------------------------------------------


def make_range_readonly_unified(pt: PageTables, mm: mm_struct, start: int, end: int) -> int:
    """Write-protect the leaves mapping ``[start, end)`` (unified API); leaves changed."""
    st = wp_state()
    ops = pt.ops(mm)

    def wrprotect(entry: Entry, addr: int) -> None:
        lv = ops[Level(entry.level)]
        raw = lv.get(entry.ptr)
        if lv.present(raw) and lv.write(raw):
            lv.set_wrprotect(mm, addr, entry.ptr)
            st.note(addr, lv.size)

    def visit(entry: Entry, value: Value, addr: int, next: int) -> Action:
        if pt.is_table(value):
            child = pt.descend(entry)
            if not pt.is_bottom(child):
                return Action.SUBTREE
            with pt.locked(child):  # a PTE table: its split lock, once for the table
                for e, a, _ in pt.entries(child, addr, next):
                    wrprotect(e, a)
            return Action.CONTINUE
        if pt.is_leaf(value):  # a huge leaf: the lock of the table holding it
            with pt.locked(entry.table):
                if pt.is_leaf(pt.read(entry)):
                    wrprotect(entry, entry.va)
        return Action.CONTINUE

    walk_range(pt, pt.root_for(mm, start), start, end, visit)
    flush_tlb_changed(pt.k, mm, st)
    return st.changed
