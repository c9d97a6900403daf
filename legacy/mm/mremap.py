"""mm/mremap.c: ``move_page_tables`` and the moves it is made of, plus ``move_vma``.

``move_page_tables(k, vma, old_addr, new_vma, new_addr, len)`` keeps the classic signature
and builds the kernel's ``struct pagetable_move_control`` from it (mm/mremap.c since 6.15).
Per PUD/PMD extent it moves, in order of preference: a huge pud (``move_huge_pud``), a whole
PMD table (``move_normal_pud``, ``CONFIG_HAVE_MOVE_PUD``), a huge pmd
(:func:`legacy.mm.huge_memory.move_huge_pmd`), a whole PTE table (``move_normal_pmd``,
``CONFIG_HAVE_MOVE_PMD``), else the ptes one by one (``move_ptes``) under both PTE locks.
Destination tables come from the ``*_alloc`` wrappers.  Each move flushes the old range
before its locks are dropped, as the kernel does (``move_ptes``: ``flush_tlb_range(vma,
old_end - len, old_end)`` when it moved a present pte; ``move_normal_pmd``/``_pud``:
``flush_tlb_range`` of the entry; ``move_huge_pud``: ``flush_pud_tlb_range``;
``move_huge_pmd`` in legacy/mm/huge_memory.py).  ``mremap_to`` is the syscall's
``MREMAP_FIXED`` path for a same-size move.

As in the kernel, ``get_old_pud`` uses ``pud_none_or_clear_bad``: on x86, whose ``pud_bad``
counts PSE as bad, a huge pud is cleared as bad there before ``pud_trans_huge`` is tested.
"""

from __future__ import annotations

from dataclasses import dataclass

from legacy.generic import MAP_FIXED, GenericKernel
from legacy.mm.internal import EAGAIN, EFAULT, ENOMEM, is_swap_pmd, pte_offset_map_rw_nolock
from legacy.mm.mmap import do_munmap
from legacy.mm.vma import find_vma_intersection, insert_vm_struct, vm_area_dup
from legacy.mm_types import (
    mm_struct,
    mmap_assert_write_locked,
    spin_lock,
    spin_unlock,
    vm_area_struct,
)
from legacy.types import PmdPtr, PudPtr, pte_t

NORMAL_PMD, HPAGE_PMD, NORMAL_PUD, HPAGE_PUD = range(4)
"""``enum pgt_entry``."""


@dataclass
class pagetable_move_control:
    """``struct pagetable_move_control``."""

    old: vm_area_struct
    new: vm_area_struct
    old_addr: int
    old_end: int
    new_addr: int
    len_in: int
    need_rmap_locks: bool = False
    for_stack: bool = False


# -- lookup and allocation ---------------------------------------------------------------


def get_old_pud(k: GenericKernel, mm: mm_struct, addr: int) -> PudPtr | None:
    pgd = k.pgd_offset(mm, addr)
    if k.pgd_none_or_clear_bad(pgd):
        return None
    p4d = k.p4d_offset(pgd, addr)
    if k.p4d_none_or_clear_bad(p4d):
        return None
    pud = k.pud_offset(p4d, addr)
    if k.pud_none_or_clear_bad(pud):
        return None
    return pud


def get_old_pmd(k: GenericKernel, mm: mm_struct, addr: int) -> PmdPtr | None:
    pud = get_old_pud(k, mm, addr)
    if pud is None:
        return None
    pmd = k.pmd_offset(pud, addr)
    if k.pmd_none(k.pmdp_get(pmd)):
        return None
    return pmd


def alloc_new_pud(k: GenericKernel, mm: mm_struct, addr: int) -> PudPtr | None:
    pgd = k.pgd_offset(mm, addr)
    p4d = k.p4d_alloc(mm, pgd, addr)
    if p4d is None:
        return None
    return k.pud_alloc(mm, p4d, addr)


def alloc_new_pmd(k: GenericKernel, mm: mm_struct, addr: int) -> PmdPtr | None:
    pud = alloc_new_pud(k, mm, addr)
    if pud is None:
        return None
    return k.pmd_alloc(mm, pud, addr)


# -- moving ptes one by one --------------------------------------------------------------


def move_pte(k: GenericKernel, pte: pte_t, old_addr: int, new_addr: int) -> pte_t:
    """include/linux/pgtable.h: the pte itself (only sparc64 overrides it)."""
    return pte


def move_soft_dirty_pte(k: GenericKernel, pte: pte_t) -> pte_t:
    """Set soft dirty bit so we can notice in userspace the ptes were moved."""
    if k.MEM_SOFT_DIRTY:  # CONFIG_MEM_SOFT_DIRTY
        if k.pte_present(pte):
            pte = k.pte_mksoft_dirty(pte)
        elif k.is_swap_pte(pte):
            pte = k.pte_swp_mksoft_dirty(pte)
    return pte


def move_ptes(
    k: GenericKernel, pmc: pagetable_move_control, extent: int, old_pmd: PmdPtr,
    new_pmd: PmdPtr,
) -> int:
    """Move the ptes of ``[pmc.old_addr, +extent)``: 0, or -EAGAIN if the old PTE table
    went away (the caller retries)."""
    vma = pmc.old
    mm = vma.vm_mm
    m = k.ULONG_MASK
    old_addr = pmc.old_addr
    new_addr = pmc.new_addr
    old_end = (old_addr + extent) & m

    # We don't have to worry about the ordering of src and dst pte locks because exclusive
    # mmap_lock prevents deadlock.
    old_mapped = k.pte_offset_map_lock(mm, old_pmd, old_addr)
    if old_mapped is None:
        return EAGAIN
    old_ptep, old_ptl = old_mapped
    # Now new_pte is none, ... no need to get pmdval and do pmd_same() check.
    new_mapped = pte_offset_map_rw_nolock(k, mm, new_pmd, new_addr)
    if new_mapped is None:
        k.pte_unmap_unlock(old_ptep, old_ptl)
        return EAGAIN
    new_ptep, _dummy_pmdval, new_ptl = new_mapped
    if new_ptl is not old_ptl:
        spin_lock(new_ptl)  # spin_lock_nested(new_ptl, SINGLE_DEPTH_NESTING)

    length = old_end - old_addr  # len
    force_flush = False
    while old_addr < old_end:
        nr_ptes = 1
        old_pte = k.ptep_get(old_ptep)
        if not k.pte_none(old_pte):
            # If we are remapping a valid PTE, make sure to flush TLB before we drop the
            # PTL for the PTE.  NOTE! Both old and new PTL matter: the old one for racing
            # with folio_mkclean(), the new one to make sure the physical page stays valid
            # until the TLB entry for the old mapping has been flushed.
            if k.pte_present(old_pte):
                force_flush = True  # (no large folios here: never a batch)
            pte = k.ptep_get_and_clear(mm, old_addr, old_ptep)  # get_and_clear_ptes
            pte = move_pte(k, pte, old_addr, new_addr)
            pte = move_soft_dirty_pte(k, pte)
            k.set_pte_at(mm, new_addr, new_ptep, pte)  # set_ptes(..., nr_ptes)
        old_ptep, old_addr = old_ptep + nr_ptes, old_addr + nr_ptes * k.PAGE_SIZE
        new_ptep, new_addr = new_ptep + nr_ptes, new_addr + nr_ptes * k.PAGE_SIZE

    if force_flush:
        k.flush_tlb_range(vma, old_end - length, old_end)
    if new_ptl is not old_ptl:
        spin_unlock(new_ptl)
    k.pte_unmap(new_ptep - 1)
    k.pte_unmap_unlock(old_ptep - 1, old_ptl)
    return 0


# -- moving whole tables and huge entries ------------------------------------------------


def move_normal_pmd(
    k: GenericKernel, pmc: pagetable_move_control, old_pmd: PmdPtr, new_pmd: PmdPtr
) -> bool:
    """Move a whole PTE table from ``old_pmd`` to ``new_pmd``."""
    vma = pmc.old
    mm = vma.vm_mm
    if not k.HAVE_MOVE_PMD:  # arch_supports_page_table_move()
        return False
    # The destination pmd shouldn't be established, free_pgtables() should have released
    # it (WARN_ON_ONCE).
    if not k.pmd_none(k.pmdp_get(new_pmd)):
        return False
    old_ptl = k.pmd_lock(mm, old_pmd)
    new_ptl = k.pmd_lockptr(mm, new_pmd)
    if new_ptl is not old_ptl:
        spin_lock(new_ptl)
    res = False
    pmd = k.pmdp_get(old_pmd)
    # Racing with collapse?
    if k.pmd_present(pmd) and not k.pmd_leaf(pmd):
        k.pmd_clear(old_pmd)  # Clear the pmd
        res = True
        k.pmd_populate(mm, new_pmd, k.pmd_pgtable(pmd))
        k.flush_tlb_range(vma, pmc.old_addr, (pmc.old_addr + k.PMD_SIZE) & k.ULONG_MASK)
    if new_ptl is not old_ptl:
        spin_unlock(new_ptl)
    spin_unlock(old_ptl)
    return res


def move_normal_pud(
    k: GenericKernel, pmc: pagetable_move_control, old_pud: PudPtr, new_pud: PudPtr
) -> bool:
    """Move a whole PMD table from ``old_pud`` to ``new_pud`` (CONFIG_PGTABLE_LEVELS > 2)."""
    vma = pmc.old
    mm = vma.vm_mm
    if not k.HAVE_MOVE_PUD or k.PAGETABLE_PMD_FOLDED:
        return False
    # The destination pud shouldn't be established, free_pgtables() should have released
    # it.
    if not k.pud_none(k.pudp_get(new_pud)):
        return False
    old_ptl = k.pud_lock(mm, old_pud)
    new_ptl = k.pud_lockptr(mm, new_pud)
    if new_ptl is not old_ptl:
        spin_lock(new_ptl)
    pud = k.pudp_get(old_pud)  # Clear the pud
    k.pud_clear(old_pud)
    k.pud_populate(mm, new_pud, k.pud_pgtable(pud))
    k.flush_tlb_range(vma, pmc.old_addr, (pmc.old_addr + k.PUD_SIZE) & k.ULONG_MASK)
    if new_ptl is not old_ptl:
        spin_unlock(new_ptl)
    spin_unlock(old_ptl)
    return True


def move_huge_pud(
    k: GenericKernel, pmc: pagetable_move_control, old_pud: PudPtr, new_pud: PudPtr
) -> bool:
    """Move a huge pud leaf (this one lives in mm/mremap.c, not mm/huge_memory.c)."""
    vma = pmc.old
    mm = vma.vm_mm
    if not k.pud_none(k.pudp_get(new_pud)):
        return False
    old_ptl = k.pud_lock(mm, old_pud)
    new_ptl = k.pud_lockptr(mm, new_pud)
    if new_ptl is not old_ptl:
        spin_lock(new_ptl)
    pud = k.pudp_get(old_pud)  # Clear the pud
    k.pud_clear(old_pud)
    k.set_pud_at(mm, pmc.new_addr, new_pud, pud)  # Set the new pud
    k.flush_pud_tlb_range(vma, pmc.old_addr, (pmc.old_addr + k.PUD_SIZE) & k.ULONG_MASK)
    if new_ptl is not old_ptl:
        spin_unlock(new_ptl)
    spin_unlock(old_ptl)
    return True


def move_pgt_entry(
    k: GenericKernel, pmc: pagetable_move_control, entry: int, old_entry: PmdPtr | PudPtr,
    new_entry: PmdPtr | PudPtr,
) -> bool:
    """Attempts to speedup the move by moving entry at the level corresponding to
    pgt_entry.  Returns true if the move was successful, else false.  (No rmap locks.)"""
    if entry == NORMAL_PMD:
        return move_normal_pmd(k, pmc, PmdPtr(old_entry.pa, old_entry.size),
                               PmdPtr(new_entry.pa, new_entry.size))
    if entry == NORMAL_PUD:
        return move_normal_pud(k, pmc, PudPtr(old_entry.pa, old_entry.size),
                               PudPtr(new_entry.pa, new_entry.size))
    if entry == HPAGE_PMD:
        from legacy.mm.huge_memory import move_huge_pmd

        return move_huge_pmd(k, pmc.old, pmc.old_addr, pmc.new_addr,
                             PmdPtr(old_entry.pa, old_entry.size),
                             PmdPtr(new_entry.pa, new_entry.size))
    return move_huge_pud(k, pmc, PudPtr(old_entry.pa, old_entry.size),
                         PudPtr(new_entry.pa, new_entry.size))


def get_extent(k: GenericKernel, entry: int, pmc: pagetable_move_control) -> int:
    """An extent of the entry's size if valid, else a smaller extent bounded by the end of
    the source and destination entry."""
    m = k.ULONG_MASK
    if entry in (HPAGE_PMD, NORMAL_PMD):
        mask, size = k.PMD_MASK, k.PMD_SIZE
    else:
        mask, size = k.PUD_MASK, k.PUD_SIZE
    next = (pmc.old_addr + size) & mask & m
    # even if next overflowed, extent below will be ok
    extent = (next - pmc.old_addr) & m
    if extent > pmc.old_end - pmc.old_addr:
        extent = pmc.old_end - pmc.old_addr
    next = (pmc.new_addr + size) & mask & m
    if extent > (next - pmc.new_addr) & m:
        extent = (next - pmc.new_addr) & m
    return extent


# -- realignment ---------------------------------------------------------------------


def can_align_down(
    k: GenericKernel, pmc: pagetable_move_control, vma: vm_area_struct, addr_to_align: int,
    mask: int,
) -> bool:
    addr_masked = addr_to_align & mask
    # If @addr_to_align of either source or destination is not the beginning of the
    # corresponding VMA, we can't align down or we will destroy part of the current
    # mapping.
    if not pmc.for_stack and vma.vm_start != addr_to_align:
        return False
    # In the stack case we explicitly permit in-VMA alignment.
    if pmc.for_stack and addr_masked >= vma.vm_start:
        return True
    # Make sure the realignment doesn't cause the address to fall on an existing mapping.
    return find_vma_intersection(k, vma.vm_mm, addr_masked, vma.vm_start) is None


def can_realign_addr(k: GenericKernel, pmc: pagetable_move_control, pagetable_mask: int) -> bool:
    align_mask = ~pagetable_mask & k.ULONG_MASK
    old_align = pmc.old_addr & align_mask
    new_align = pmc.new_addr & align_mask
    pagetable_size = align_mask + 1
    old_align_next = pagetable_size - old_align
    # Only realign if the end of the range being copied reaches or crosses the page table
    # boundary, the addresses are not aligned already, and are mutually aligned.
    if pmc.len_in < old_align_next:
        return False
    if old_align == 0:
        return False
    if old_align != new_align:
        return False
    # Ensure realignment doesn't cause overlap with existing mappings.
    return can_align_down(k, pmc, pmc.old, pmc.old_addr, pagetable_mask) and can_align_down(
        k, pmc, pmc.new, pmc.new_addr, pagetable_mask
    )


def try_realign_addr(k: GenericKernel, pmc: pagetable_move_control, pagetable_mask: int) -> None:
    """Opportunistically realign to the page-table boundary for faster copy (the start of
    the copy moves down; ``old_end`` does not)."""
    if not can_realign_addr(k, pmc, pagetable_mask):
        return
    pmc.old_addr &= pagetable_mask
    pmc.new_addr &= pagetable_mask


def pmc_progress(pmc: pagetable_move_control) -> int:
    """How many bytes of the input range have had their page tables moved so far."""
    orig_old_addr = pmc.old_end - pmc.len_in
    old_addr = pmc.old_addr
    return 0 if old_addr < orig_old_addr else old_addr - orig_old_addr


# -- move_page_tables --------------------------------------------------------------------


def _move_page_tables(k: GenericKernel, pmc: pagetable_move_control) -> int:
    mm = pmc.old.vm_mm
    if not pmc.len_in:
        return 0
    # If possible, realign addresses to PMD boundary for faster copy.  Only realign if the
    # mremap copying hits a PMD boundary.
    try_realign_addr(k, pmc, k.PMD_MASK)

    while pmc.old_addr < pmc.old_end:  # !pmc_done(pmc)
        # If extent is PUD-sized try to speed up the move by moving at the PUD level if
        # possible.
        extent = get_extent(k, NORMAL_PUD, pmc)
        old_pud = get_old_pud(k, mm, pmc.old_addr)
        if old_pud is not None:
            new_pud = alloc_new_pud(k, mm, pmc.new_addr)
            if new_pud is None:
                break
            if k.pud_trans_huge(k.pudp_get(old_pud)):
                if extent == k.PUD_SIZE:  # HPAGE_PUD_SIZE
                    move_pgt_entry(k, pmc, HPAGE_PUD, old_pud, new_pud)
                    # We ignore and continue on error?
                    pmc.old_addr += extent
                    pmc.new_addr += extent
                    continue
            elif k.HAVE_MOVE_PUD and extent == k.PUD_SIZE:
                if move_pgt_entry(k, pmc, NORMAL_PUD, old_pud, new_pud):
                    pmc.old_addr += extent
                    pmc.new_addr += extent
                    continue

            extent = get_extent(k, NORMAL_PMD, pmc)
            old_pmd = get_old_pmd(k, mm, pmc.old_addr)
            if old_pmd is not None:
                new_pmd = alloc_new_pmd(k, mm, pmc.new_addr)
                if new_pmd is None:
                    break
                if not _move_pmd_extent(k, pmc, extent, old_pmd, new_pmd):
                    break
        pmc.old_addr += extent  # pmc_next(pmc, extent)
        pmc.new_addr += extent
    return pmc_progress(pmc)


def _move_pmd_extent(
    k: GenericKernel, pmc: pagetable_move_control, extent: int, old_pmd: PmdPtr,
    new_pmd: PmdPtr,
) -> bool:
    """The PMD half of the loop body, from ``again:``; False means ``break``."""
    while True:  # again:
        old = k.pmdp_get(old_pmd)
        if is_swap_pmd(k, old) or k.pmd_trans_huge(old):
            if extent == k.PMD_SIZE and move_pgt_entry(k, pmc, HPAGE_PMD, old_pmd, new_pmd):
                return True
            from legacy.mm.huge_memory import split_huge_pmd

            split_huge_pmd(k, pmc.old, old_pmd, pmc.old_addr)
        elif k.HAVE_MOVE_PMD and extent == k.PMD_SIZE:
            # If the extent is PMD-sized, try to speed the move by moving at the PMD level
            # if possible.
            if move_pgt_entry(k, pmc, NORMAL_PMD, old_pmd, new_pmd):
                return True
        if k.pmd_none(k.pmdp_get(old_pmd)):
            return True
        if k.pte_alloc(pmc.new.vm_mm, new_pmd):
            return False
        if move_ptes(k, pmc, extent, old_pmd, new_pmd) >= 0:
            return True


def move_page_tables(
    k: GenericKernel, vma: vm_area_struct, old_addr: int, new_vma: vm_area_struct,
    new_addr: int, len: int, need_rmap_locks: bool = False, for_stack: bool = False,
) -> int:
    """Move the translations of ``[old_addr, old_addr + len)`` of ``vma`` to ``new_addr``
    in ``new_vma`` (same mm).  Returns how many bytes were moved; less than ``len`` when a
    destination table could not be allocated."""
    pmc = pagetable_move_control(
        old=vma, new=new_vma, old_addr=old_addr, old_end=old_addr + len, new_addr=new_addr,
        len_in=len, need_rmap_locks=need_rmap_locks, for_stack=for_stack,
    )
    return _move_page_tables(k, pmc)


# -- move_vma ----------------------------------------------------------------------------


def copy_vma(
    k: GenericKernel, vma: vm_area_struct, addr: int, len: int, pgoff: int
) -> vm_area_struct | None:
    """mm/vma.c: a new vma for the destination of a move (no merging is emulated)."""
    new_vma = vm_area_dup(k, vma)
    new_vma.vm_start = addr
    new_vma.vm_end = addr + len
    new_vma.vm_pgoff = pgoff
    if insert_vm_struct(k, vma.vm_mm, new_vma):
        return None
    return new_vma


def move_vma(
    k: GenericKernel, vma: vm_area_struct, old_addr: int, old_len: int, new_len: int,
    new_addr: int,
) -> int:
    """mremap(MREMAP_MAYMOVE|MREMAP_FIXED) of a vma range to a free ``new_addr``: copy the
    vma, move the page tables, unmap the old range; on failure move back and unmap the new
    one.  Returns ``new_addr`` or a negative errno."""
    mm = vma.vm_mm
    new_pgoff = vma.vm_pgoff + ((old_addr - vma.vm_start) >> k.PAGE_SHIFT)
    new_vma = copy_vma(k, vma, new_addr, new_len, new_pgoff)
    if new_vma is None:
        return ENOMEM
    moved_len = move_page_tables(k, vma, old_addr, new_vma, new_addr, old_len)
    err = 0
    if moved_len < old_len:
        err = ENOMEM
    if err:
        # On error, move entries back from new area to old, which will succeed since page
        # tables still there, and then proceed to unmap new area instead of old.
        move_page_tables(k, new_vma, new_addr, vma, old_addr, moved_len, True)
        old_addr, old_len, ret = new_addr, new_len, err
    else:
        ret = new_addr
    do_munmap(k, mm, old_addr, old_len)
    return ret


def mremap_to(k: GenericKernel, mm: mm_struct, addr: int, old_len: int, new_addr: int,
              new_len: int) -> int:
    """``mremap(addr, old_len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr)`` of a
    range inside one vma (mm/mremap.c ``mremap_to``, reduced: the caller checked the
    alignment, that the old range lies in one vma, and that the ranges do not overlap; same
    size only): unmap the destination, ask the arch's ``get_unmapped_area`` for it
    (``vrm_set_new_addr``), then :func:`move_vma`.  ``mmap_lock`` must be held
    for write.  Returns ``new_addr`` or a negative errno."""
    mmap_assert_write_locked(mm)
    # MREMAP_FIXED: "VMA is moved to dst address, and munmap dst first."
    err = do_munmap(k, mm, new_addr, new_len)
    if err:
        return err
    vma = find_vma_intersection(k, mm, addr, addr + old_len)
    if vma is None or vma.vm_start > addr or vma.vm_end < addr + old_len:
        return EFAULT
    # vrm_set_new_addr: get_unmapped_area(..., MAP_FIXED), the arch's hook even for a fixed
    # address (s390: check_asce_limit adds the page-table levels the new range needs)
    pgoff = vma.vm_pgoff + ((addr - vma.vm_start) >> k.PAGE_SHIFT)
    ret = k.arch_get_unmapped_area(mm, new_addr, new_len, pgoff, MAP_FIXED)
    if ret < 0:
        return ret
    return move_vma(k, vma, addr, old_len, new_len, new_addr)
