"""Changing the protection of a kernel range: the ``set_memory_*`` call site.

Structure from arch/arm64/mm/pageattr.c (``__change_memory_common``, 2025: one
``walk_kernel_page_table_range`` whose ``pud_entry``/``pmd_entry`` rewrite whole leaves with
``pXd_modify`` and skip their subtree, and whose ``pte_entry`` rewrites present ptes), plus
the x86 cpa rule for configurations where every pgd holds its own copy of a kernel level
(``CONFIG_X86_32``: ``__set_pmd_pte`` writes the new leaf into each pgd's copy).  The huge
leaves straddling ``start`` or ``end`` must have been split first (cpa splits them itself;
the caller does it here, through the same ``split_huge_p?d`` as munmap).

Not ``change_protection`` on an ``init_mm`` pseudo-vma: that takes the split PTE lock with
``pte_offset_map_lock``, and kernel PTE tables have none (``pte_alloc_one_kernel`` runs no
``pagetable_pte_ctor``).
"""

from __future__ import annotations

from legacy.generic import GenericKernel
from legacy.mm.huge_memory import _set_pmd_pte
from legacy.mm.internal import BUG_ON
from legacy.mm.pagewalk import ACTION_CONTINUE, mm_walk, mm_walk_ops, walk_kernel_page_table_range
from legacy.pgtable import PGTBL_PMD_MODIFIED, PGTBL_PUD_MODIFIED
from legacy.types import PmdPtr, PtePtr, PudPtr, pgprot_t


def change_memory_common(k: GenericKernel, start: int, end: int, newprot: pgprot_t) -> int:
    """Give every leaf of ``init_mm`` in ``[start, end)`` the protection ``newprot``."""
    m = k.ULONG_MASK

    def pud_entry(pud: PudPtr, addr: int, next: int, walk: mm_walk) -> int:
        v = k.pudp_get(pud)
        if k.pud_leaf(v):
            BUG_ON((next - addr) & m != k.PUD_SIZE, f"huge pud at {addr:#x} partly covered")
            k.set_pud(pud, k.pud_modify(v, newprot))
            if PGTBL_PUD_MODIFIED & k.ARCH_PAGE_TABLE_SYNC_MASK:
                _set_pmd_pte(k, pud, addr)
            walk.action = ACTION_CONTINUE
        return 0

    def pmd_entry(pmd: PmdPtr, addr: int, next: int, walk: mm_walk) -> int:
        v = k.pmdp_get(pmd)
        if k.pmd_leaf(v):
            BUG_ON((next - addr) & m != k.PMD_SIZE, f"huge pmd at {addr:#x} partly covered")
            k.set_pmd(pmd, k.pmd_modify(v, newprot))
            if PGTBL_PMD_MODIFIED & k.ARCH_PAGE_TABLE_SYNC_MASK:
                _set_pmd_pte(k, pmd, addr)
            walk.action = ACTION_CONTINUE
        return 0

    def pte_entry(pte: PtePtr, addr: int, next: int, walk: mm_walk) -> int:
        v = k.ptep_get(pte)
        if k.pte_present(v):
            k.set_pte_at(k.init_mm, addr, pte, k.pte_modify(v, newprot))
        return 0

    ops = mm_walk_ops(pud_entry=pud_entry, pmd_entry=pmd_entry, pte_entry=pte_entry)
    return walk_kernel_page_table_range(k, start, end, ops)
