"""Kernel mappings (``init_mm``): level-generic ``vmap_range`` and ``vunmap_range``
(mm/vmalloc.c ``vmap_p4d_range`` ... ``vmap_pte_range``, ``vunmap_p4d_range`` ...
``vunmap_pte_range``, mm/pgalloc-track.h).

**vmap** (:func:`vmap_range`): at every level, an entry whose range is exactly one aligned
entry of VA and PA, where ``max_page_shift`` allows it and the architecture supports a huge
vmap at that level (``arch_vmap_pXd_supported``), becomes a huge leaf (``pXd_set_huge``;
a lower table in the way is freed with ``pXd_free_pYd_page``); otherwise the lower table is
allocated if missing (the raw ``__pXd_alloc``, as ``pXd_alloc_track``) and the walk goes
down; PTE tables get ``pfn_pte`` leaves.  Each level records what it changed in the
``pgtbl_mod_mask`` (``PGTBL_<level>_MODIFIED`` of the entry that got a table or a leaf,
``PGTBL_PTE_MODIFIED`` for PTEs); if the mask meets the legacy ``ARCH_PAGE_TABLE_SYNC_MASK``,
``arch_sync_kernel_mappings(start, end)`` copies the kernel entries into every pgd, as on the
legacy path (x86: ``sync_global_pgds``, the i386 pmd copy).

**vunmap** (:func:`vunmap_range`): huge leaves are cleared whole (``pXd_clear_huge``), PTEs
with ``ptep_get_and_clear``; bad entries are reported and cleared; no table is freed.  The
range owes one flush obligation, consumed by ``flush_tlb_kernel_range(addr, end)`` after the
walk (mm/vmalloc.c ``vunmap_range``; ``vunmap_range_noflush`` leaves it to the caller).
"""

from __future__ import annotations

from legacy import BadInput
from unified.handles import Table
from unified.mm._common import EINVAL, ENOMEM, ops_of
from unified.pagetables import PageTables

__all__ = ["vmap_range", "vunmap_range"]


def _remapping(what: str, addr: int) -> BadInput:
    """The kernel's ``BUG()`` ("remapping already mapped page")."""
    return BadInput(f"vmap: remapping already mapped {what} at {addr:#x}")


def _vmap(pt: PageTables, table: Table, addr: int, end: int, phys: int, prot: int,
          max_page_shift: int, mask: list[int]) -> int:
    k = pt.k
    m = k.ULONG_MASK
    mm = k.init_mm
    lv = ops_of(pt, mm, table.level)
    if pt.is_bottom(table):
        pfn = phys >> k.PAGE_SHIFT
        get, none, set_at, pfn_entry = lv.get, lv.none, lv.set_at, lv.pfn_entry
        for ptr, a, _ in pt.slots(table, addr, end):
            if not none(get(ptr)):
                raise _remapping("page", a)
            set_at(mm, a, ptr, pfn_entry(pfn, prot))
            pfn += 1
        mask[0] |= lv.modified
        return 0
    for entry, a, nxt in pt.entries(table, addr, end):
        ptr = entry.ptr
        if _try_huge(pt, table.level, ptr, a, nxt, phys, prot, max_page_shift):
            mask[0] |= lv.modified
        else:
            if pt.lower(table.group, mm) == pt.levels(mm)[-1] and (nxt - a) & m & ~k.PAGE_MASK:
                return EINVAL  # vmap_pte_range: WARN_ON_ONCE(!PAGE_ALIGNED(end - addr))
            cur = lv.get(ptr)
            if lv.leaf(cur):
                raise _remapping(f"huge level-{table.level} leaf", a)
            if lv.none(cur):
                if lv.alloc_track(mm, ptr, a):
                    return ENOMEM
                mask[0] |= lv.modified
            err = _vmap(pt, pt.descend(entry), a, nxt, phys, prot, max_page_shift, mask)
            if err:
                return err
        phys += (nxt - a) & m
    return 0


def _try_huge(pt: PageTables, level: int, ptr: object, addr: int, end: int, phys: int,
              prot: int, max_page_shift: int) -> int:
    """``vmap_try_huge_pXd``: 1 if a huge leaf now maps ``[addr, end)``."""
    lv = ops_of(pt, pt.k.init_mm, level)
    if max_page_shift < lv.shift:
        return 0
    if not lv.vmap_supported(prot):
        return 0
    if (end - addr) & pt.k.ULONG_MASK != lv.size:
        return 0
    if addr & (lv.size - 1) or phys & (lv.size - 1):
        return 0
    cur = lv.get(ptr)
    if lv.leaf(cur):
        raise _remapping(f"huge level-{level} leaf", addr)
    if lv.present(cur) and not lv.free_lower(ptr, addr):
        return 0
    return lv.set_huge(ptr, phys, prot)


def vmap_range(pt: PageTables, addr: int, end: int, phys_addr: int, prot: int,
               max_page_shift: int) -> int:
    """Map ``[addr, end)`` of ``init_mm`` to ``phys_addr`` with leaves of up to ``1 <<
    max_page_shift`` bytes.  0, -ENOMEM or -EINVAL."""
    k = pt.k
    if addr >= end:
        raise BadInput(f"vmap_range: empty range {addr:#x}..{end:#x}")  # BUG_ON
    mask = [0]
    err = _vmap(pt, pt.kernel_root(), addr, end, phys_addr, prot, max_page_shift, mask)
    if mask[0] & k.ARCH_PAGE_TABLE_SYNC_MASK:
        k.arch_sync_kernel_mappings(addr, end)
    return err


def _vunmap(pt: PageTables, table: Table, addr: int, end: int, mask: list[int]) -> None:
    k = pt.k
    mm = k.init_mm
    lv = ops_of(pt, mm, table.level)
    if pt.is_bottom(table):
        get_and_clear = lv.get_and_clear
        for ptr, a, _ in pt.slots(table, addr, end):
            get_and_clear(mm, a, ptr)
        mask[0] |= lv.modified
        return
    for entry, a, nxt in pt.entries(table, addr, end):
        ptr = entry.ptr
        cleared = lv.clear_huge(ptr)
        if cleared or lv.bad(lv.get(ptr)):
            mask[0] |= lv.modified
        # cleared: WARN_ON(next - addr < PXD_SIZE) -- a partial unmap drops the whole leaf.
        if not cleared and not lv.none_or_clear_bad(ptr):
            _vunmap(pt, pt.descend(entry), a, nxt, mask)


def vunmap_range(pt: PageTables, addr: int, end: int) -> None:
    """Clear the kernel mappings of ``[addr, end)``; page tables stay allocated."""
    k = pt.k
    if addr >= end:
        raise BadInput(f"vunmap_range: empty range {addr:#x}..{end:#x}")  # BUG_ON
    owed = pt.owe(k.init_mm, 0, addr, end)  # flush_cache_vunmap + the walk ...
    mask = [0]
    _vunmap(pt, pt.kernel_root(), addr, end, mask)
    if mask[0] & k.ARCH_PAGE_TABLE_SYNC_MASK:
        k.arch_sync_kernel_mappings(addr, end)
    owed.flush()  # ... flush_tlb_kernel_range(addr, end)

