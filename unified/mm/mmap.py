"""Address-space lifetime on the unified ports: ``mmap_region``, ``do_munmap``,
``exit_mmap``/``mmput``, ``dup_mm``, and the vma splits that may split a huge leaf.

The vma bookkeeping is the legacy one (:mod:`legacy.mm.vma`: the sorted vma list, lookups,
``vm_area_dup``...); what touches page tables is unified: ``vma_adjust_trans_huge`` splits
a huge leaf straddling a new vma boundary with :func:`~unified.mm.split.split_leaf_at`,
munmap zaps and frees with :mod:`unified.mm.unmap`, fork copies with
:mod:`unified.mm.copy`.  The steps and their order are those of mm/mmap.c, mm/vma.c and
kernel/fork.c (legacy/mm/mmap.py), so the frames both paths allocate and free match.
"""

from __future__ import annotations

import bisect

from legacy import MAP_FIXED, mm_struct, vm_area_struct
from legacy.mm.internal import EINVAL, ENOMEM, PAGE_ALIGN
from legacy.mm.mmu_gather import tlb_finish_mmu, tlb_gather_mmu, tlb_gather_mmu_fullmm
from legacy.mm.vm_flags import VM_DONTCOPY
from legacy.mm.vma import (
    anon_vma_fork,
    find_vma_intersection,
    insert_vm_struct,
    range_in_vma,
    remove_vma,
    vm_area_alloc,
    vm_area_dup,
    vma_next,
    vma_prev,
)
from legacy.mm_types import mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock
from unified.levels import Level
from unified.mm._common import group_of_level
from unified.mm.copy import copy_page_range
from unified.mm.split import split_leaf_at
from unified.mm.unmap import free_pgtables, unmap_vmas
from unified.pagetables import PageTables

__all__ = [
    "detach_range", "do_munmap", "dup_mm", "dup_mmap", "exit_mmap", "mmap_region", "mmput",
    "split_vma", "vma_adjust_trans_huge",
]

THP_LEVEL = Level.PMD
"""The level of the huge leaves a vma boundary splits (``HPAGE_PMD_SIZE``): transparent
huge pages are PMD leaves; a huge PUD cut by a boundary is split when it is zapped or
protected, as in the kernel."""


def _split_if_needed(pt: PageTables, vma: vm_area_struct, address: int) -> None:
    """``split_huge_pmd_if_needed``: split if the new boundary is not huge-page aligned and
    a huge leaf could cover it."""
    group = group_of_level(pt, vma.vm_mm, THP_LEVEL)
    if group is None:
        return
    hpage = pt.level_size(group)
    down = address & ~(hpage - 1)
    up = (address + hpage - 1) & ~(hpage - 1)
    if address & (hpage - 1) and range_in_vma(vma, down, up):
        split_leaf_at(pt, vma, address, (THP_LEVEL,))


def vma_adjust_trans_huge(pt: PageTables, vma: vm_area_struct, start: int, end: int,
                          next: vm_area_struct | None) -> None:
    _split_if_needed(pt, vma, start)
    _split_if_needed(pt, vma, end)
    if next is not None:
        _split_if_needed(pt, next, end)


def split_vma(pt: PageTables, vma: vm_area_struct, addr: int, new_below: bool) -> int:
    """mm/vma.c ``__split_vma``: cut ``vma`` at ``addr``; returns 0."""
    k = pt.k
    if not vma.vm_start < addr < vma.vm_end:
        raise ValueError(f"split of [{vma.vm_start:#x}, {vma.vm_end:#x}) at {addr:#x}")
    new = vm_area_dup(k, vma)
    if new_below:
        new.vm_end = addr
    else:
        new.vm_start = addr
        new.vm_pgoff += (addr - vma.vm_start) >> k.PAGE_SHIFT
    vma_adjust_trans_huge(pt, vma, vma.vm_start, addr, None)
    if new_below:
        vma.vm_start = addr
        vma.vm_pgoff += (addr - new.vm_start) >> k.PAGE_SHIFT
    else:
        vma.vm_end = addr
    bisect.insort(vma.vm_mm.mmap, new, key=lambda v: v.vm_start)
    return 0


def detach_range(pt: PageTables, mm: mm_struct, start: int, end: int
                 ) -> tuple[list[vm_area_struct], vm_area_struct | None, vm_area_struct | None]:
    """The gathering half of munmap (``vms_gather_munmap_vmas``): split at ``start`` and
    ``end``, unlink the vmas inside; returns ``(detached, prev, next)``."""
    k = pt.k
    vma = find_vma_intersection(k, mm, start, end)
    if vma is None:
        return [], None, None
    if start > vma.vm_start:
        split_vma(pt, vma, start, True)
    detached: list[vm_area_struct] = []
    nxt = find_vma_intersection(k, mm, start, end)
    while nxt is not None:
        if nxt.vm_end > end:
            split_vma(pt, nxt, end, False)
        detached.append(nxt)
        nxt = vma_next(k, nxt)
        if nxt is not None and nxt.vm_start >= end:
            break
    prev = vma_prev(k, detached[0])
    following = vma_next(k, detached[-1])
    for v in detached:
        remove_vma(k, v)
    return detached, prev, following


def do_munmap(pt: PageTables, mm: mm_struct, start: int, len: int) -> int:
    """munmap ``[start, start + PAGE_ALIGN(len))``: 0, -EINVAL or -ENOMEM (a straddling
    huge leaf could not be split and was zapped whole)."""
    k = pt.k
    if start & ~k.PAGE_MASK or start > k.TASK_SIZE or len > k.TASK_SIZE - start:
        return EINVAL
    end = (start + PAGE_ALIGN(k, len)) & k.ULONG_MASK
    if end == start:
        return EINVAL
    if find_vma_intersection(k, mm, start, end) is None:
        return 0
    detached, prev, nxt = detach_range(pt, mm, start, end)
    unmap_start = prev.vm_end if prev else k.FIRST_USER_ADDRESS
    unmap_end = nxt.vm_start if nxt else k.USER_PGTABLES_CEILING
    tlb = tlb_gather_mmu(k, mm)
    unmap_vmas(pt, tlb, detached, start, end)
    free_pgtables(pt, tlb, detached, unmap_start, unmap_end)
    tlb_finish_mmu(k, tlb)
    return ENOMEM if tlb.split_enomem else 0  # a straddling leaf could not be split


def mmap_region(pt: PageTables, mm: mm_struct, addr: int, len: int, vm_flags: int,
                pgoff: int = 0) -> int:
    """A ``MAP_FIXED`` vma ``[addr, addr + len)`` with nothing mapped yet; ``addr`` or
    -errno."""
    k = pt.k
    if addr & ~k.PAGE_MASK or not len or addr + len > k.TASK_SIZE:
        return EINVAL
    len = PAGE_ALIGN(k, len)
    ret = k.arch_get_unmapped_area(mm, addr, len, pgoff, MAP_FIXED)  # do_mmap's get_area
    if ret < 0:
        return ret
    err = do_munmap(pt, mm, addr, len)
    if err:
        return err
    vma = vm_area_alloc(k, mm, addr, addr + len, vm_flags, pgoff)
    err = insert_vm_struct(k, mm, vma)
    return err if err else addr


def exit_mmap(pt: PageTables, mm: mm_struct) -> None:
    """Tear down every mapping and page table of a dying mm (the root stays)."""
    k = pt.k
    if not mm.mmap:
        return
    vmas = list(mm.mmap)
    mmap_read_lock(mm)
    tlb = tlb_gather_mmu_fullmm(k, mm)
    unmap_vmas(pt, tlb, vmas, 0, k.ULONG_MASK)
    mmap_read_unlock(mm)
    mmap_write_lock(mm)
    free_pgtables(pt, tlb, vmas, k.FIRST_USER_ADDRESS, k.USER_PGTABLES_CEILING)
    tlb_finish_mmu(k, tlb)
    mmap_write_unlock(mm)
    mm.mmap.clear()


def mmput(pt: PageTables, mm: mm_struct) -> None:
    """``exit_mmap`` then ``mmdrop`` (the root freed with ``pgd_free``, ``check_mm``)."""
    exit_mmap(pt, mm)
    pt.k.mmdrop(mm)


def dup_mmap(pt: PageTables, mm: mm_struct, oldmm: mm_struct) -> int:
    """Give ``mm`` a copy of every vma of ``oldmm`` and their page tables, under both
    ``mmap_lock``s held for write, then ``flush_tlb_mm(oldmm)`` (the parent's COW
    write-protects); 0 or -ENOMEM."""
    k = pt.k
    mmap_write_lock(oldmm)
    mmap_write_lock(mm)  # mmap_write_lock_nested: not linked in yet
    retval = 0
    try:
        for mpnt in list(oldmm.mmap):
            if mpnt.vm_flags & VM_DONTCOPY:
                continue
            tmp = vm_area_dup(k, mpnt)
            if anon_vma_fork(k, tmp, mpnt):
                retval = ENOMEM
                break
            tmp.vm_mm = mm
            if insert_vm_struct(k, mm, tmp):
                retval = ENOMEM
                break
            retval = copy_page_range(pt, tmp, mpnt)
            if retval:
                break
    finally:
        mmap_write_unlock(mm)
        k.flush_tlb_mm(oldmm)
        mmap_write_unlock(oldmm)
    return retval


def dup_mm(pt: PageTables, oldmm: mm_struct) -> mm_struct | None:
    """fork's new mm holding a copy of ``oldmm``; None on -ENOMEM (after ``mmput``)."""
    mm = pt.k.mm_alloc(oldmm)  # dup_mm: memcpy(mm, oldmm) carries mm->context
    if mm is None:
        return None
    if dup_mmap(pt, mm, oldmm):
        mmput(pt, mm)
        return None
    return mm
