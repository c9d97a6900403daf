"""Page-table fragments: several PTE (or PMD) tables in one page, ``arch/powerpc/mm/
pgtable-frag.c`` (``pte_fragment_alloc``, ``pte_fragment_free``, ``pte_frag_destroy``) and
``arch/powerpc/mm/book3s64/pgtable.c`` (``pmd_fragment_alloc``, ``pmd_fragment_free``,
``pmd_frag_destroy``), Linux v6.18.

A fragment is not a frame.  The kernel allocates a page (``pagetable_alloc`` +
``pagetable_pte_ctor``/``pagetable_pmd_ctor``: one ``struct ptdesc``, one split lock), hands
out its first fragment and parks the address of the next one in ``mm->context.pte_frag``
(``pmd_frag``); later allocations for the *same mm* take fragments from there, under
``mm->page_table_lock``, until the page is used up.  ``ptdesc->pt_frag_refcount`` starts at
``*_FRAG_NR`` when the page is parked (1 when another allocation raced and parked its own,
or when ``*_FRAG_NR`` is 1); each free drops one, and the page goes back with the last
(``pte_frag_destroy`` at ``destroy_context`` drops the references of the fragments never
handed out).  So:

- every fragment of a page belongs to one mm and shares the page's split lock
  (``pte_lockptr`` = ``ptlock_ptr(page_ptdesc(pmd_page(*pmd)))``);
- a fragment freed while its page lives is poisoned in place
  (:meth:`~arches.memory.PhysMem.poison`), which the emulated TLB checks as it checks a
  freed frame.

Emulation: :class:`FragPage` is the page's ``struct ptdesc`` (refcount and lock); each handed
out fragment gets a lock-less stand-in ``ptdesc`` in ``k.ptdescs`` carrying the page's lock,
so ``k.table_desc`` and ``k.tables_of`` list fragments as tables.  ``pgtable_is_reserved``
pages (boot-time memblock tables) do not exist here.
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.errors import OutOfMemory, PhysMemError
from legacy.mm_types import mm_struct, ptdesc, spin_lock, spin_unlock, spinlock_t


@dataclass(eq=False)
class FragPage:
    """The ``struct ptdesc`` of a fragment page: level, owner, ``pt_frag_refcount``, lock."""

    frame: int
    level: str
    mm: mm_struct
    frag_size: int
    refcount: int
    ptl: spinlock_t | None


class FragAllocator:
    """One kind of fragment (``"pte"`` or ``"pmd"``) of one kernel: ``*_FRAG_NR`` fragments of
    ``1 << *_FRAG_SIZE_SHIFT`` bytes per page."""

    def __init__(self, k: object, level: str, size_shift: int) -> None:
        from legacy.generic import GenericKernel

        assert isinstance(k, GenericKernel)
        self.k = k
        self.level = level
        self.size = 1 << size_shift
        self.nr = k.mem.frame_size >> size_shift
        self.pages: dict[int, FragPage] = {}
        self.key = f"{level}_frag"
        """``mm->context.pte_frag`` / ``pmd_frag``: the next free fragment, or absent."""

    def page_of(self, pa: int) -> FragPage | None:
        return self.pages.get(pa - pa % self.k.mem.frame_size)

    def fragment_base(self, pa: int) -> int:
        return pa - pa % self.size

    # -- pgtable-frag.c / book3s64/pgtable.c ---------------------------------------------------

    def _get_from_cache(self, mm: mm_struct) -> int | None:
        """``get_pte_from_cache`` / ``get_pmd_from_cache``."""
        if self.nr == 1:
            return None
        spin_lock(mm.page_table_lock)
        ret = mm.context.get(self.key)
        if ret:
            nxt = ret + self.size
            if nxt % self.k.mem.frame_size == 0:  # taken up all the fragments
                nxt = 0
            mm.context[self.key] = nxt
        spin_unlock(mm.page_table_lock)
        return ret or None

    def _alloc_for_cache(self, mm: mm_struct, kernel: bool) -> int | None:
        """``__alloc_for_ptecache`` / ``__alloc_for_pmdcache``: a zeroed page, its ctor (the
        split lock: for a PMD page not for ``init_mm``, ``pagetable_pmd_ctor``), refcount
        1, or ``*_FRAG_NR`` when the rest of the page is parked in ``mm->context``."""
        k = self.k
        try:
            frame = k.mem.alloc_frame()
        except OutOfMemory:
            return None
        if self.level == "pte":
            lock = spinlock_t(f"ptl@{frame:#x}") if k.USE_SPLIT_PTE_PTLOCKS else None
        else:
            lock = (spinlock_t(f"ptl@{frame:#x}")
                    if k.USE_SPLIT_PMD_PTLOCKS and not mm.is_init_mm else None)
        page = self.pages[frame] = FragPage(frame, self.level, mm, self.size, 1, lock)
        if self.nr == 1:
            return frame
        spin_lock(mm.page_table_lock)
        if not mm.context.get(self.key):
            page.refcount = self.nr
            mm.context[self.key] = frame + self.size
        spin_unlock(mm.page_table_lock)
        return frame

    def alloc(self, mm: mm_struct, kernel: bool) -> int | None:
        """``pte_fragment_alloc(mm, kernel)`` / ``pmd_fragment_alloc(mm, vmaddr)``; NULL
        (None) when no page can be had.  The fragment is recorded as a table of ``mm``."""
        pa = self._get_from_cache(mm)
        if pa is None:
            pa = self._alloc_for_cache(mm, kernel)
            if pa is None:
                return None
        page = self.pages[pa - pa % self.k.mem.frame_size]
        self.k.ptdescs[pa] = ptdesc(pa=pa, level=self.level, mm=mm, ptl=page.ptl)
        return pa

    def free(self, pa: int) -> None:
        """``pte_fragment_free`` / ``pmd_fragment_free``: drop one reference; the page (with
        its ``pagetable_dtor``) goes with the last, else the fragment is poisoned."""
        k = self.k
        page = self.page_of(pa)
        if page is None or pa % self.size or pa not in k.ptdescs:
            raise PhysMemError(f"{self.level}_fragment_free of {pa:#x}, which is not a live "
                               f"{self.level} fragment")
        if page.ptl is not None and page.ptl.held:
            raise PhysMemError(f"freeing {self.level} fragment {pa:#x} while its page's lock "
                               f"{page.ptl.name} is held")
        if page.refcount <= 0:
            raise PhysMemError(f"BUG_ON(pt_frag_refcount <= 0) at {pa:#x}")
        if page.refcount == 1:  # the memory first: the TLB may refuse, nothing changed then
            k.mem.free_frame(page.frame)
            del self.pages[page.frame]
        else:
            k.mem.poison(pa, self.size)
        page.refcount -= 1
        del k.ptdescs[pa]

    def destroy(self, mm: mm_struct) -> None:
        """``pte_frag_destroy`` / ``pmd_frag_destroy`` of ``mm->context``'s parked page:
        drop the references of the fragments never handed out."""
        frag = mm.context.pop(self.key, 0)
        if not frag:
            return
        page = self.page_of(frag)
        assert page is not None
        count = frag % self.k.mem.frame_size // self.size
        page.refcount -= self.nr - count
        if page.refcount == 0:
            del self.pages[page.frame]
            self.k.mem.free_frame(page.frame)
