"""The ``unified`` backend: scenario ops through the level-generic ports of :mod:`unified.mm`.

:class:`UnifiedBackend` is :class:`~ptshim.backends.LegacyBackend` with every page-table
call site replaced by its unified port (the vma bookkeeping of :mod:`legacy.mm.vma` is
shared, as the kernel shares it).  It performs each op with the same steps as the legacy
backend -- ``mmap_region`` then the map, ``do_munmap``, ``mprotect_fixup`` per vma,
``vmap_range``/``vunmap_range``, ``mmput`` -- so that a scenario run on two fresh kernels of
one configuration, one per backend, must leave the same bytes in every page-table frame
(``ptshim diff``).  Two differences in *how*, none in *what*:

- a huge user map is one :func:`~unified.mm.map.map_pfn_range` over the whole range (the
  legacy backend calls ``insert_pfn_pmd``/``insert_pfn_pud`` once per huge page; the walk
  allocates the same tables in the same order);
- the kernel-range unmap splits the huge leaves straddling its edges with
  :func:`~unified.mm.split.split_leaf_at` (any level) instead of per-level lookups.
"""

from __future__ import annotations

from typing import Any

from arches.errors import CheckFailed, OutOfMemory
from legacy import GenericKernel, mm_struct, vm_area_struct
from legacy.mm.vma import find_vma
from ptshim.backends import ENOMEM, CallSites, LegacyBackend, kernel_pgprot, user_vm_flags
from ptshim.model import Prot
from unified import Level, PageTables
from unified.mm import (
    change_protection,
    do_munmap,
    dup_mm,
    map_pfn_range,
    mmap_region,
    mmput,
    mremap_to,
    populate_vma_page_range,
    remap_pfn_range,
    split_huge_leaf,
    split_leaf_at,
    split_vma,
    vmap_range,
    vunmap_range,
)
from unified.mm.protect import set_memory_prot

__all__ = ["UnifiedBackend", "unified_call_sites"]


def unified_call_sites(pt: PageTables) -> CallSites:
    """The :class:`CallSites` of the unified ports, bound to ``pt`` (the kernel argument
    of the legacy signatures must be ``pt.k``)."""

    def same(k: GenericKernel) -> None:
        if k is not pt.k:
            raise CheckFailed("unified call site called with another kernel")

    def insert(level_size: int) -> Any:
        def insert_pfn(k: GenericKernel, vma: vm_area_struct, addr: int, pfn: int,
                       prot: int) -> int:
            same(k)
            return map_pfn_range(pt, vma, addr & ~(level_size - 1), pfn, level_size, prot,
                                 level_size)
        return insert_pfn

    def split_at(level: Level) -> Any:
        def split(k: GenericKernel, vma: vm_area_struct, ptr: Any, address: int) -> None:
            """``split_huge_pmd``/``split_huge_pud``: split the huge leaf of ``level``
            mapping ``address`` (the legacy pointer names the same entry)."""
            same(k)
            table = pt.root_for(vma.vm_mm, address)
            while True:
                entry = pt.entry(table, address)
                if entry.level == level:
                    split_huge_leaf(pt, vma, entry)
                    return
                if entry.level < level or not pt.is_table(pt.read(entry)):
                    return
                table = pt.descend(entry)
        return split

    k = pt.k
    return CallSites(
        mmap_region=lambda k_, mm, addr, len_, flags, pgoff: mmap_region(
            pt, mm, addr, len_, flags, pgoff),
        find_vma=find_vma,
        split_vma=lambda k_, vma, addr, below: split_vma(pt, vma, addr, below),
        remap_pfn_range=lambda k_, vma, addr, pfn, size, prot: remap_pfn_range(
            pt, vma, addr, pfn, size, prot),
        insert_pfn_pmd=insert(k.PMD_SIZE),
        insert_pfn_pud=insert(k.PUD_SIZE),
        do_munmap=lambda k_, mm, start, len_: do_munmap(pt, mm, start, len_),
        change_protection=lambda k_, vma, start, end, prot: change_protection(
            pt, vma, start, end, prot),
        vmap_range=lambda k_, addr, end, phys, prot, shift: vmap_range(
            pt, addr, end, phys, prot, shift),
        vunmap_range=lambda k_, addr, end: vunmap_range(pt, addr, end),
        split_huge_pmd=split_at(Level.PMD),
        split_huge_pud=split_at(Level.PUD),
        change_memory_common=lambda k_, start, end, prot: set_memory_prot(pt, start, end, prot),
        mmput=lambda k_, mm: mmput(pt, mm),
        populate_vma_page_range=lambda k_, vma, start, end: populate_vma_page_range(
            pt, vma, start, end),
        dup_mm=lambda k_, mm: dup_mm(pt, mm),
        mremap_to=lambda k_, mm, addr, old_len, new_addr, new_len: mremap_to(
            pt, mm, addr, old_len, new_addr, new_len),
    )


class UnifiedBackend(LegacyBackend):
    """Scenario ops through :mod:`unified.mm` (see the module docstring)."""

    def __init__(self, k: GenericKernel) -> None:
        self.pt = PageTables(k)
        super().__init__(k, unified_call_sites(self.pt), name="unified")

    def map_user(self, mm: mm_struct, va: int, size: int, pa: int, prot: Prot,
                 page_size: int) -> None:
        k, cs, pt = self.k, self.cs, self.pt
        pfn = pa >> k.PAGE_SHIFT
        addr = cs.mmap_region(k, mm, va, size, user_vm_flags(prot), pfn)
        if addr < 0:
            raise self._error("mmap_region", addr)
        vma = cs.find_vma(k, mm, va)
        if vma is None or vma.vm_start != va or vma.vm_end != va + size:
            raise CheckFailed(f"mmap_region did not create a vma [{va:#x}, {va + size:#x})")
        try:
            if page_size == k.PAGE_SIZE:
                err = remap_pfn_range(pt, vma, va, pfn, size, vma.vm_page_prot)
            else:
                err = map_pfn_range(pt, vma, va, pfn, size, vma.vm_page_prot, page_size)
        except OutOfMemory:
            err = ENOMEM
        if err:
            undo = cs.do_munmap(k, mm, va, size)
            if undo:
                raise self._error("do_munmap (undoing a failed map)", undo)
            raise self._error("map_pfn_range", err)

    def protect_kernel(self, va: int, size: int, prot: Prot) -> None:
        """``set_memory_*``: split the huge leaves straddling the edges, then one unified
        walk rewriting every leaf (:func:`~unified.mm.protect.set_memory_prot`)."""
        k = self.k
        end = (va + size) & k.ULONG_MASK
        for edge in (va, end):
            if edge:
                self._split_kernel_leaf_at(edge)
        set_memory_prot(self.pt, va, end, kernel_pgprot(k, prot))

    def _split_kernel_leaf_at(self, addr: int) -> None:
        vma = self._kernel_vma(addr, addr + self.k.PAGE_SIZE, self.k.PAGE_KERNEL)
        split_leaf_at(self.pt, vma, addr)

