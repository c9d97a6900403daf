"""``struct page`` / ``struct folio`` of anonymous memory and the shared zero page: the
allocator, reference and map counts, the anon-exclusive bit and the anon rmap calls
(include/linux/mm_types.h, include/linux/mm.h, include/linux/page_ref.h,
include/linux/page-flags.h, include/linux/rmap.h, mm/rmap.c, mm/swap.c ``folios_put``,
mm/swap_state.c ``free_pages_and_swap_cache``).

Emulation notes:

- Every folio is order 0 (one page): no large folios, no THP for anonymous memory.
- Page contents are not stored (only page tables live in :class:`~arches.memory.PhysMem`);
  a page is its pfn plus the counters.  ``struct page *`` travels as the pfn, as
  :func:`legacy.mm.memory.vm_normal_page` returns it; :func:`pfn_to_page` finds the struct.
- The pages come from a dedicated physical range, :data:`ANON_PAGE_BASE` (2 GiB) and up,
  far above the page-table frame allocator (which starts at 16 MiB and grows by one frame
  per table: it would need 2032 MiB of tables to get there; :func:`alloc_page` checks it
  never does).  2 GiB fits every configuration's physical address space (i386: 32 bits).
  The first pfn of the range is the shared zero page (``empty_zero_page``,
  ``ZERO_PAGE(0)``): never allocated, never freed, its counters never touched (it is mapped
  by special ptes).
- ``_mapcount`` keeps the kernel's -1 bias; :func:`folio_mapcount` is the number of ptes.
- No pages are pinned (``MMF_HAS_PINNED`` is never set): ``folio_try_dup_anon_rmap_pte``
  always succeeds, fork never copies a page.
- No LRU, memcg, swap cache or RSS counters.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from arches.errors import CheckFailed
from legacy.generic import GenericKernel
from legacy.mm_types import vm_area_struct

ANON_PAGE_BASE = 0x8000_0000
"""Physical address of the first page of the anonymous-page range (the zero page)."""


@dataclass(eq=False)
class anon_vma:
    """``struct anon_vma`` (mm/rmap.c): only its existence matters here (fork copies the
    page tables of a vma that has one, ``vma_needs_copy``)."""

    parent: anon_vma | None = None


@dataclass(eq=False)
class page:
    """An order-0 anonymous folio (``struct folio`` == its only ``struct page``)."""

    pfn: int
    _refcount: int = 1
    _mapcount: int = -1
    anon: bool = False
    """``folio_test_anon``: ``folio->mapping`` points to an anon_vma."""
    anon_exclusive: bool = False
    """``PageAnonExclusive``: the page is mapped by exactly one process, which may write to
    it without a COW."""


@dataclass(eq=False)
class mem_map_t:
    """The anonymous pages of one machine (``mem_map`` + the buddy allocator, reduced)."""

    base_pfn: int
    zero_pfn: int
    pages: dict[int, page] = field(default_factory=dict)
    free_pfns: list[int] = field(default_factory=list)
    """Freed pfns, a heap: the lowest is handed out first."""
    next_pfn: int = 0
    allocated: int = 0
    freed: int = 0


def mem_map(k: GenericKernel) -> mem_map_t:
    """The anonymous-page state of kernel ``k`` (made on first use, kept on ``k``)."""
    mm: mem_map_t | None = getattr(k, "_mem_map", None)
    if mm is None:
        base = ANON_PAGE_BASE >> k.PAGE_SHIFT
        mm = mem_map_t(base_pfn=base, zero_pfn=base, next_pfn=base + 1)
        setattr(k, "_mem_map", mm)  # noqa: B010 (not an attribute of every GenericKernel)
    return mm


# -- the zero page (include/linux/pgtable.h) -----------------------------------------------


def my_zero_pfn(k: GenericKernel, addr: int) -> int:
    """``my_zero_pfn(addr)``: the pfn of ``ZERO_PAGE(addr)`` (one zero page here)."""
    return mem_map(k).zero_pfn


def is_zero_pfn(k: GenericKernel, pfn: int) -> bool:
    return pfn == mem_map(k).zero_pfn


# -- allocation and references -------------------------------------------------------------


def alloc_page(k: GenericKernel) -> int:
    """``folio_alloc(GFP_HIGHUSER_MOVABLE, 0)``: a new page, refcount 1, unmapped."""
    mp = mem_map(k)
    if mp.free_pfns:
        pfn = heapq.heappop(mp.free_pfns)
    else:
        pfn = mp.next_pfn
        mp.next_pfn += 1
    if pfn << k.PAGE_SHIFT >> k.config.phys_bits:
        raise CheckFailed(f"anonymous page pfn {pfn:#x} beyond the physical address space")
    mp.pages[pfn] = page(pfn)
    mp.allocated += 1
    return pfn


def vma_alloc_zeroed_movable_folio(k: GenericKernel, vma: vm_area_struct, addr: int) -> int:
    """include/linux/highmem.h: a zeroed page for an anonymous fault (``alloc_anon_folio``
    of an order-0 folio).  Contents are not emulated; the page never fails to come."""
    return alloc_page(k)


def pfn_to_page(k: GenericKernel, pfn: int) -> page | None:
    """The ``struct page`` of an allocated anonymous page (None for any other pfn)."""
    return mem_map(k).pages.get(pfn)


def _page(k: GenericKernel, pfn: int, what: str) -> page:
    p = mem_map(k).pages.get(pfn)
    if p is None:
        raise CheckFailed(f"{what}: pfn {pfn:#x} is not an allocated anonymous page")
    return p


def folio_test_anon(k: GenericKernel, pfn: int) -> bool:
    p = mem_map(k).pages.get(pfn)
    return p is not None and p.anon


def folio_get(k: GenericKernel, pfn: int) -> None:
    p = _page(k, pfn, "folio_get")
    if p._refcount <= 0:
        raise CheckFailed(f"folio_get: pfn {pfn:#x} has refcount {p._refcount}")
    p._refcount += 1


def folio_put(k: GenericKernel, pfn: int) -> None:
    """Drop a reference; the last one frees the page (``__folio_put``)."""
    p = _page(k, pfn, "folio_put")
    p._refcount -= 1
    if p._refcount < 0:
        raise CheckFailed(f"folio_put: pfn {pfn:#x} refcount underflow")
    if p._refcount == 0:
        if p._mapcount >= 0:
            raise CheckFailed(f"freeing pfn {pfn:#x} while it is still mapped "
                              f"(mapcount {p._mapcount + 1})")
        mp = mem_map(k)
        del mp.pages[pfn]
        heapq.heappush(mp.free_pfns, pfn)
        mp.freed += 1


def folio_ref_count(k: GenericKernel, pfn: int) -> int:
    return _page(k, pfn, "folio_ref_count")._refcount


def folio_mapcount(k: GenericKernel, pfn: int) -> int:
    """How many page-table entries map the page (``_mapcount + 1``)."""
    return _page(k, pfn, "folio_mapcount")._mapcount + 1


def PageAnonExclusive(k: GenericKernel, pfn: int) -> bool:
    return _page(k, pfn, "PageAnonExclusive").anon_exclusive


def ClearPageAnonExclusive(k: GenericKernel, pfn: int) -> None:
    _page(k, pfn, "ClearPageAnonExclusive").anon_exclusive = False


# -- rmap (mm/rmap.c, include/linux/rmap.h) ---------------------------------------------------


def folio_add_new_anon_rmap(k: GenericKernel, pfn: int, vma: vm_area_struct, address: int,
                            exclusive: bool) -> None:
    """A new anonymous page gets its first mapping (``RMAP_EXCLUSIVE``: anon-exclusive)."""
    p = _page(k, pfn, "folio_add_new_anon_rmap")
    if p._mapcount != -1:
        raise CheckFailed(f"folio_add_new_anon_rmap: pfn {pfn:#x} is already mapped")
    p.anon = True
    p._mapcount = 0
    p.anon_exclusive = exclusive


def folio_try_dup_anon_rmap_pte(k: GenericKernel, pfn: int, dst_vma: vm_area_struct,
                                src_vma: vm_area_struct) -> int:
    """fork duplicates a pte mapping of an anonymous page: the page stops being
    anon-exclusive and gains a mapping; 0, or -EBUSY for a maybe-pinned exclusive page
    (never: no page is pinned here)."""
    p = _page(k, pfn, "folio_try_dup_anon_rmap_pte")
    if p.anon_exclusive:
        p.anon_exclusive = False  # ClearPageAnonExclusive
    p._mapcount += 1
    return 0


def folio_dup_file_rmap_pte(k: GenericKernel, pfn: int, dst_vma: vm_area_struct) -> None:
    p = _page(k, pfn, "folio_dup_file_rmap_pte")
    p._mapcount += 1


def folio_remove_rmap_ptes(k: GenericKernel, pfn: int, nr: int, vma: vm_area_struct) -> None:
    """Drop ``nr`` pte mappings; an anonymous page no longer mapped is no longer
    anon-exclusive either (``__folio_remove_rmap``)."""
    p = _page(k, pfn, "folio_remove_rmap_ptes")
    p._mapcount -= nr
    if p._mapcount < -1:
        raise CheckFailed(f"folio_remove_rmap_ptes: pfn {pfn:#x} mapcount underflow")


def free_pages_and_swap_cache(k: GenericKernel, pfns: list[int]) -> None:
    """mm/swap_state.c: drop the reference each queued page-table entry held (the
    mmu_gather's page batch, after the TLB flush)."""
    for pfn in pfns:
        if pfn in mem_map(k).pages:
            folio_put(k, pfn)


# -- checks ----------------------------------------------------------------------------------


def page_state(k: GenericKernel) -> dict[int, tuple[int, int]]:
    """pfn -> (refcount, mapcount) of every allocated anonymous page (``ptshim diff``
    compares it between machines)."""
    return {pfn: (p._refcount, p._mapcount + 1)
            for pfn, p in sorted(mem_map(k).pages.items())}


def check_pages_freed(k: GenericKernel) -> None:
    """After every process is gone no anonymous page may be left (a leak)."""
    left = mem_map(k).pages
    if left:
        some = ", ".join(f"{pfn:#x} (ref {p._refcount}, map {p._mapcount + 1})"
                         for pfn, p in sorted(left.items())[:4])
        raise CheckFailed(f"{len(left)} anonymous page(s) not freed after teardown: {some}")


__all__ = [
    "ANON_PAGE_BASE", "ClearPageAnonExclusive", "PageAnonExclusive", "alloc_page", "anon_vma",
    "check_pages_freed", "folio_add_new_anon_rmap", "folio_dup_file_rmap_pte", "folio_get",
    "folio_mapcount", "folio_put", "folio_ref_count", "folio_remove_rmap_ptes",
    "folio_test_anon", "folio_try_dup_anon_rmap_pte", "free_pages_and_swap_cache",
    "is_zero_pfn", "mem_map", "mem_map_t", "my_zero_pfn", "page", "page_state",
    "pfn_to_page", "vma_alloc_zeroed_movable_folio",
]
