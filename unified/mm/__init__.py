"""Level-generic ports of the kernel's page-table call sites, on :class:`PageTables`.

Each legacy cascade of five per-level functions (``zap_p4d_range`` ... ``zap_pte_range``,
``free_p4d_range`` ... ``free_pte_range``, ``remap_*``, ``change_*_range``, ``copy_*_range``,
``vmap_*``/``vunmap_*``, mremap's PUD/PMD/PTE moves, ``split_huge_pmd``/``split_huge_pud``/
``split_large_page``) is one routine here, written once for every level.  What a level names
differently (``pfn_pte``/``pfn_pmd``, ``pte_free_tlb``/``pmd_free_tlb``...) comes from the
per-level adapters of :mod:`unified.legacy_ops` (:class:`~unified.legacy_ops.LevelOps`).

The ports take the :class:`~unified.pagetables.PageTables` first where the legacy call sites
take the kernel: ``do_munmap(pt, mm, start, len)``.  They make the same legacy calls in the
same order as the legacy call sites, so that both paths leave byte-identical page tables,
the same ``pgtables_bytes`` and the same allocated frames (``ptshim diff`` checks it).

- :mod:`unified.mm.map`: ``map_pfn_range`` (``remap_pfn_range``, ``vmf_insert_pfn_pmd/pud``)
- :mod:`unified.mm.unmap`: ``zap_range``/``unmap_vmas``, ``free_pgd_range``/``free_pgtables``
- :mod:`unified.mm.protect`: ``change_protection``
- :mod:`unified.mm.copy`: ``copy_page_range`` (fork)
- :mod:`unified.mm.move`: ``move_page_tables``, ``move_vma``, ``mremap_to`` (mremap)
- :mod:`unified.mm.anon`: ``populate_vma_page_range`` (anonymous faults, MAP_POPULATE)
- :mod:`unified.mm.split`: ``split_leaf`` (any level), ``split_leaf_at``
- :mod:`unified.mm.vmap`: ``vmap_range``, ``vunmap_range`` (``init_mm``)
- :mod:`unified.mm.mmap`: ``mmap_region``, ``do_munmap``, ``split_vma``, ``mmput``, ``dup_mm``
"""

from unified.mm.anon import populate_vma_page_range
from unified.mm.copy import copy_page_range
from unified.mm.map import map_pfn_range, remap_pfn_range
from unified.mm.mmap import do_munmap, dup_mm, exit_mmap, mmap_region, mmput, split_vma
from unified.mm.move import move_page_tables, move_vma, mremap_to
from unified.mm.protect import change_protection
from unified.mm.split import split_huge_leaf, split_leaf, split_leaf_at
from unified.mm.unmap import free_pgd_range, free_pgtables, unmap_vmas, zap_page_range_single
from unified.mm.vmap import vmap_range, vunmap_range

__all__ = [
    "change_protection", "copy_page_range", "do_munmap", "dup_mm", "exit_mmap",
    "free_pgd_range", "free_pgtables", "map_pfn_range", "mmap_region", "mmput",
    "move_page_tables", "move_vma", "mremap_to", "populate_vma_page_range",
    "remap_pfn_range", "split_huge_leaf", "split_leaf", "split_leaf_at", "split_vma",
    "unmap_vmas", "vmap_range", "vunmap_range", "zap_page_range_single",
]
