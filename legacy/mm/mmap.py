"""Address-space lifetime: ``mmap_region``, ``do_munmap``, ``exit_mmap``/``mmput`` and
fork's ``dup_mmap``/``dup_mm``.

Follows mm/mmap.c and mm/vma.c (``do_vmi_munmap`` -> ``vms_gather_munmap_vmas`` ->
``vms_clear_ptes``), kernel/fork.c (``dup_mm``, ``dup_mmap``, ``mmput``).  The page-table
work is the kernel's: ``unmap_vmas`` clears the ptes, ``free_pgtables`` frees the tables
with floor = end of the previous vma (or ``FIRST_USER_ADDRESS``) and ceiling = start of the
next one (or ``USER_PGTABLES_CEILING``), and ``tlb_finish_mmu`` frees them.
"""

from __future__ import annotations

from legacy.generic import MAP_FIXED, GenericKernel
from legacy.mm.internal import EINVAL, ENOMEM, PAGE_ALIGN
from legacy.mm.memory import copy_page_range, free_pgtables, unmap_vmas
from legacy.mm.mmu_gather import tlb_finish_mmu, tlb_gather_mmu, tlb_gather_mmu_fullmm
from legacy.mm.vm_flags import VM_DONTCOPY
from legacy.mm.vma import (
    anon_vma_fork,
    detach_range,
    find_vma_intersection,
    insert_vm_struct,
    vm_area_alloc,
    vm_area_dup,
)
from legacy.mm_types import (
    mm_struct,
    mmap_read_lock,
    mmap_read_unlock,
    mmap_write_lock,
    mmap_write_unlock,
)


def do_munmap(k: GenericKernel, mm: mm_struct, start: int, len: int) -> int:
    """munmap ``[start, start + PAGE_ALIGN(len))``: split the vmas at the edges, zap the
    range, free the page tables no other vma needs; 0, -EINVAL, or -ENOMEM when a huge pud
    straddling an edge could not be split (it is then zapped whole)."""
    if start & ~k.PAGE_MASK or start > k.TASK_SIZE or len > k.TASK_SIZE - start:
        return EINVAL
    end = (start + PAGE_ALIGN(k, len)) & k.ULONG_MASK
    if end == start:
        return EINVAL
    # Find the first overlapping VMA
    if find_vma_intersection(k, mm, start, end) is None:
        return 0
    detached, prev, next = detach_range(k, mm, start, end)
    unmap_start = prev.vm_end if prev else k.FIRST_USER_ADDRESS
    unmap_end = next.vm_start if next else k.USER_PGTABLES_CEILING
    # vms_clear_ptes()
    tlb = tlb_gather_mmu(k, mm)
    unmap_vmas(k, tlb, detached, start, end)
    # start and end may be different if there is no prev or next vma.
    free_pgtables(k, tlb, detached, unmap_start, unmap_end)
    tlb_finish_mmu(k, tlb)
    # A huge pud straddling an edge whose split ran out of memory was zapped whole
    # (zap_pud_range): the unmap is complete, nothing leaks, but the op failed.
    return ENOMEM if tlb.split_enomem else 0


def mmap_region(
    k: GenericKernel, mm: mm_struct, addr: int, len: int, vm_flags: int, pgoff: int = 0
) -> int:
    """A ``MAP_FIXED`` mapping of ``[addr, addr + len)`` with no backing yet: ask the arch's
    ``get_unmapped_area`` (``k.arch_get_unmapped_area``), unmap what was there, insert the
    vma; returns ``addr`` or a negative errno.  Drivers then fill it
    (``remap_pfn_range``)."""
    if addr & ~k.PAGE_MASK or not len or addr + len > k.TASK_SIZE:
        return EINVAL
    len = PAGE_ALIGN(k, len)
    # do_mmap(): __get_unmapped_area() -> the arch's get_unmapped_area, even for MAP_FIXED
    # (s390 upgrades the page-table levels there: arch/s390/mm/mmap.c check_asce_limit).
    ret = k.arch_get_unmapped_area(mm, addr, len, pgoff, MAP_FIXED)
    if ret < 0:
        return ret
    err = do_munmap(k, mm, addr, len)
    if err:
        return err
    vma = vm_area_alloc(k, mm, addr, addr + len, vm_flags, pgoff)
    err = insert_vm_struct(k, mm, vma)
    return err if err else addr


def exit_mmap(k: GenericKernel, mm: mm_struct) -> None:
    """Tear down every mapping and page table of a dying mm (the pgd stays)."""
    if not mm.mmap:
        return  # Can happen if dup_mmap() received an OOM
    vmas = list(mm.mmap)
    mmap_read_lock(mm)
    tlb = tlb_gather_mmu_fullmm(k, mm)
    # Use ULONG_MAX here to ensure all VMAs in the mm are unmapped
    unmap_vmas(k, tlb, vmas, 0, k.ULONG_MASK)
    mmap_read_unlock(mm)
    mmap_write_lock(mm)
    free_pgtables(k, tlb, vmas, k.FIRST_USER_ADDRESS, k.USER_PGTABLES_CEILING)
    tlb_finish_mmu(k, tlb)
    mmap_write_unlock(mm)
    # Walk the list again, actually closing and freeing it.
    mm.mmap.clear()


def mmput(k: GenericKernel, mm: mm_struct) -> None:
    """kernel/fork.c: the last user is gone: ``exit_mmap`` then ``mmdrop`` (frees the pgd
    and runs ``check_mm``)."""
    exit_mmap(k, mm)
    k.mmdrop(mm)


def dup_mmap(k: GenericKernel, mm: mm_struct, oldmm: mm_struct) -> int:
    """kernel/fork.c (mm/mmap.c since 6.16): give ``mm`` a copy of every vma of ``oldmm``
    and copy their page tables, under both ``mmap_lock``s held for write; ends with
    ``flush_tlb_mm(oldmm)``, which invalidates the parent's translations that
    ``copy_page_range`` write-protected for COW.  On failure the vma that failed stays in
    ``mm`` (its partial tables with it) and the later ones are dropped, as the kernel's
    ``XA_ZERO_ENTRY`` marker does, so that ``mmput`` frees everything."""
    mmap_write_lock(oldmm)  # mmap_write_lock_killable(oldmm)
    # Not linked in yet - no deadlock potential:
    mmap_write_lock(mm)  # mmap_write_lock_nested(mm, SINGLE_DEPTH_NESTING)
    retval = 0
    try:
        for mpnt in list(oldmm.mmap):
            if mpnt.vm_flags & VM_DONTCOPY:
                continue
            tmp = vm_area_dup(k, mpnt)
            if anon_vma_fork(k, tmp, mpnt):  # (no VM_WIPEONFORK here)
                retval = ENOMEM
                break
            tmp.vm_mm = mm
            if insert_vm_struct(k, mm, tmp):
                retval = ENOMEM
                break
            retval = copy_page_range(k, tmp, mpnt)
            if retval:
                break
    finally:
        mmap_write_unlock(mm)
        k.flush_tlb_mm(oldmm)
        mmap_write_unlock(oldmm)
    return retval


def dup_mm(k: GenericKernel, oldmm: mm_struct) -> mm_struct | None:
    """kernel/fork.c: a new mm (``mm_alloc``) holding a copy of ``oldmm``; None on
    -ENOMEM, after ``mmput`` of the partial copy."""
    mm = k.mm_alloc(oldmm)  # allocate_mm(); memcpy(mm, oldmm, sizeof(*mm)); mm_init()
    if mm is None:
        return None
    err = dup_mmap(k, mm, oldmm)
    if err:
        mmput(k, mm)
        return None
    return mm
