"""Changing the protection of a kernel range: the ``set_memory_*`` call site.

Structure from arch/arm64/mm/pageattr.c (``__change_memory_common``, 2025: one
``walk_kernel_page_table_range`` whose ``pud_entry``/``pmd_entry`` rewrite whole leaves with
``pXd_modify`` and skip their subtree, and whose ``pte_entry`` rewrites present ptes), plus
the x86 cpa rule for configurations where every pgd holds its own copy of a kernel level
(``CONFIG_X86_32``: ``__set_pmd_pte`` writes the new leaf into each pgd's copy).  The huge
leaves straddling ``start`` or ``end`` must have been split first (cpa splits them itself;
the caller does it here, through the same ``split_huge_p?d`` as munmap).

TLB and locks.  After the walk, ``flush_tlb_kernel_range(start, end)``: arm64
``__change_memory_common`` (last level only: no table changes here), and on x86 the same
INVLPGs as cpa's ``cpa_flush`` (one per page, ``flush_tlb_all`` past
``tlb_single_page_flush_ceiling``).  On x86 a large leaf is rewritten whole under cpa's
``pgd_lock`` (``should_split_large_page`` holds it around ``__set_pmd_pte``); other kernel
stores need no lock.

Not ``change_protection`` on an ``init_mm`` pseudo-vma: that takes the split PTE lock with
``pte_offset_map_lock``, and kernel PTE tables have none (``pte_alloc_one_kernel`` runs no
``pagetable_pte_ctor``).
"""

from __future__ import annotations

from collections.abc import Callable

from legacy.generic import GenericKernel
from legacy.mm.huge_memory import _set_pmd_pte, cpa_lock
from legacy.mm.internal import BUG_ON
from legacy.mm.pagewalk import ACTION_CONTINUE, mm_walk, mm_walk_ops, walk_kernel_page_table_range
from legacy.mm_types import spin_lock, spin_unlock
from legacy.pgtable import PGTBL_PMD_MODIFIED, PGTBL_PUD_MODIFIED
from legacy.types import PmdPtr, PtePtr, PudPtr, pgprot_t


def change_memory_common(k: GenericKernel, start: int, end: int, newprot: pgprot_t) -> int:
    """Give every leaf of ``init_mm`` in ``[start, end)`` the protection ``newprot``, then
    flush the range."""
    m = k.ULONG_MASK
    lock = cpa_lock(k)

    def set_large(write: Callable[[], None], kpte: PmdPtr | PudPtr, addr: int,
                  mod: int) -> None:
        """cpa ``__should_split_large_page`` keeping a whole large page: ``__set_pmd_pte``
        under ``pgd_lock`` (x86); arm64 ``pageattr_p?d_entry``: a plain ``set_p?d``."""
        if lock is not None:
            spin_lock(lock)
        write()
        if mod & k.ARCH_PAGE_TABLE_SYNC_MASK:
            _set_pmd_pte(k, kpte, addr)
        if lock is not None:
            spin_unlock(lock)

    def pud_entry(pud: PudPtr, addr: int, next: int, walk: mm_walk) -> int:
        v = k.pudp_get(pud)
        if k.pud_leaf(v):
            BUG_ON((next - addr) & m != k.PUD_SIZE, f"huge pud at {addr:#x} partly covered")
            set_large(lambda: k.set_pud(pud, k.pud_modify(v, newprot)), pud, addr,
                      PGTBL_PUD_MODIFIED)
            walk.action = ACTION_CONTINUE
        return 0

    def pmd_entry(pmd: PmdPtr, addr: int, next: int, walk: mm_walk) -> int:
        v = k.pmdp_get(pmd)
        if k.pmd_leaf(v):
            BUG_ON((next - addr) & m != k.PMD_SIZE, f"huge pmd at {addr:#x} partly covered")
            set_large(lambda: k.set_pmd(pmd, k.pmd_modify(v, newprot)), pmd, addr,
                      PGTBL_PMD_MODIFIED)
            walk.action = ACTION_CONTINUE
        return 0

    def pte_entry(pte: PtePtr, addr: int, next: int, walk: mm_walk) -> int:
        v = k.ptep_get(pte)
        if k.pte_present(v):
            k.set_pte_at(k.init_mm, addr, pte, k.pte_modify(v, newprot))
        return 0

    ops = mm_walk_ops(pud_entry=pud_entry, pmd_entry=pmd_entry, pte_entry=pte_entry)
    ret = walk_kernel_page_table_range(k, start, end, ops)
    k.flush_tlb_kernel_range(start, end)
    return ret
