"""VMA bookkeeping on ``mm.mmap`` (mm/vma.c, mm/mmap.c, mm/nommu-free parts of mm/util.c).

``mm.mmap`` is the kernel's maple tree reduced to a list of ``vm_area_struct`` sorted by
``vm_start`` and never overlapping.  Only what the page-table call sites need is here:
lookup (``find_vma``, ``find_vma_intersection``, ``find_vma_prev``, neighbours), insertion
(``insert_vm_struct``), splitting (``__split_vma``, with the THP split it implies) and
detaching a range (the first half of munmap).
"""

from __future__ import annotations

import bisect
import copy

from legacy.generic import GenericKernel
from legacy.mm.internal import ENOMEM
from legacy.mm_types import mm_struct, vm_area_struct
from legacy.types import PmdPtr


def vma_pages(k: GenericKernel, vma: vm_area_struct) -> int:
    return (vma.vm_end - vma.vm_start) >> k.PAGE_SHIFT


def range_in_vma(vma: vm_area_struct, start: int, end: int) -> bool:
    """include/linux/mm.h."""
    return vma.vm_start <= start and end <= vma.vm_end


def vm_area_alloc(
    k: GenericKernel, mm: mm_struct, start: int, end: int, vm_flags: int, pgoff: int = 0
) -> vm_area_struct:
    """``vm_area_alloc(mm)`` + ``vma_set_range`` + ``vm_flags_init``; the protection is
    ``vm_get_page_prot(vm_flags)`` as ``mmap_region`` sets it."""
    if start & ~k.PAGE_MASK or end & ~k.PAGE_MASK or start >= end:
        raise ValueError(f"bad vma range [{start:#x}, {end:#x})")
    return vm_area_struct(
        vm_mm=mm, vm_start=start, vm_end=end, vm_flags=vm_flags,
        vm_page_prot=k.vm_get_page_prot(vm_flags), vm_pgoff=pgoff,
    )


def vm_area_dup(k: GenericKernel, orig: vm_area_struct) -> vm_area_struct:
    """kernel/fork.c: a copy of ``orig`` (same mm until the caller changes it), its
    ``vm_ops`` and ``anon_vma`` included (see :func:`vma_is_anonymous`)."""
    return copy.copy(orig)


# -- anonymous vmas (include/linux/mm.h vma_is_anonymous, mm/rmap.c anon_vma) ------------
#
# ``struct vm_area_struct`` of legacy/mm_types.py has no ``vm_ops`` nor ``anon_vma`` field
# yet: they are kept as instance attributes of the same names, which ``vm_area_dup``
# copies.  A vma without the attribute has driver ``vm_ops`` (the scenario's pfn maps,
# the pseudo-vmas of init_mm) and no anon_vma.


def vma_set_anonymous(vma: vm_area_struct) -> None:
    """include/linux/mm.h: ``vma->vm_ops = NULL`` (``mmap_region`` of a private
    anonymous mapping)."""
    vma.vm_ops = None  # type: ignore[attr-defined]


def vma_is_anonymous(vma: vm_area_struct) -> bool:
    """include/linux/mm.h: ``!vma->vm_ops``."""
    return getattr(vma, "vm_ops", vma) is None


def vma_anon_vma(vma: vm_area_struct) -> object | None:
    """``vma->anon_vma``."""
    return getattr(vma, "anon_vma", None)


def anon_vma_prepare(k: GenericKernel, vma: vm_area_struct) -> int:
    """mm/rmap.c ``__anon_vma_prepare``: give the vma an anon_vma before its first
    anonymous page is mapped; 0."""
    if vma_anon_vma(vma) is None:
        from legacy.mm.page import anon_vma

        vma.anon_vma = anon_vma()  # type: ignore[attr-defined]
    return 0


def anon_vma_fork(k: GenericKernel, vma: vm_area_struct, pvma: vm_area_struct) -> int:
    """mm/rmap.c: the child's vma gets its own anon_vma, child of the parent's (the copy
    made by ``vm_area_dup`` still points to the parent's); 0."""
    parent = vma_anon_vma(pvma)
    if parent is None:
        return 0
    from legacy.mm.page import anon_vma

    vma.anon_vma = anon_vma(parent=parent)  # type: ignore[attr-defined,arg-type]
    return 0


# -- lookup ------------------------------------------------------------------------------


def _first_ending_after(mm: mm_struct, addr: int) -> int:
    """Index of the first vma with ``addr < vm_end``."""
    return bisect.bisect_right([v.vm_end for v in mm.mmap], addr)


def find_vma(k: GenericKernel, mm: mm_struct, addr: int) -> vm_area_struct | None:
    """The first vma satisfying ``addr < vm_end``, NULL if none."""
    i = _first_ending_after(mm, addr)
    return mm.mmap[i] if i < len(mm.mmap) else None


def find_vma_intersection(
    k: GenericKernel, mm: mm_struct, start_addr: int, end_addr: int
) -> vm_area_struct | None:
    """The first vma intersecting ``[start_addr, end_addr)``."""
    vma = find_vma(k, mm, start_addr)
    if vma is not None and vma.vm_start < end_addr:
        return vma
    return None


def find_vma_prev(
    k: GenericKernel, mm: mm_struct, addr: int
) -> tuple[vm_area_struct | None, vm_area_struct | None]:
    """``find_vma_prev(mm, addr, &pprev)``: returns ``(vma, prev)``."""
    i = _first_ending_after(mm, addr)
    vma = mm.mmap[i] if i < len(mm.mmap) else None
    prev = mm.mmap[i - 1] if i > 0 else None
    return vma, prev


def vma_prev(k: GenericKernel, vma: vm_area_struct) -> vm_area_struct | None:
    """The vma before ``vma`` in its mm."""
    i = vma.vm_mm.mmap.index(vma)
    return vma.vm_mm.mmap[i - 1] if i > 0 else None


def vma_next(k: GenericKernel, vma: vm_area_struct) -> vm_area_struct | None:
    """The vma after ``vma`` in its mm."""
    mmap = vma.vm_mm.mmap
    i = mmap.index(vma)
    return mmap[i + 1] if i + 1 < len(mmap) else None


# -- insertion and removal ---------------------------------------------------------------


def _vma_link(mm: mm_struct, vma: vm_area_struct) -> None:
    bisect.insort(mm.mmap, vma, key=lambda v: v.vm_start)


def insert_vm_struct(k: GenericKernel, mm: mm_struct, vma: vm_area_struct) -> int:
    """Link ``vma`` into ``mm``; ``-ENOMEM`` if it overlaps an existing vma."""
    if find_vma_intersection(k, mm, vma.vm_start, vma.vm_end) is not None:
        return ENOMEM
    vma.vm_mm = mm
    _vma_link(mm, vma)
    return 0


def remove_vma(k: GenericKernel, vma: vm_area_struct) -> None:
    """Unlink ``vma`` from its mm (``vma_iter_clear`` + ``remove_vma``)."""
    vma.vm_mm.mmap.remove(vma)


# -- splitting ---------------------------------------------------------------------------


def mm_find_pmd(k: GenericKernel, mm: mm_struct, address: int) -> PmdPtr | None:
    """mm/rmap.c: the pmd entry mapping ``address`` if the upper levels are present."""
    pgd = k.pgd_offset(mm, address)
    if not k.pgd_present(k.pgdp_get(pgd)):
        return None
    p4d = k.p4d_offset(pgd, address)
    if not k.p4d_present(k.p4dp_get(p4d)):
        return None
    pud = k.pud_offset(p4d, address)
    if not k.pud_present(k.pudp_get(pud)):
        return None
    # Not in mm/rmap.c: a huge pud maps no PMD table, and pmd_offset() would read the
    # mapped memory as one (zap/change_protection split such a pud themselves).
    if k.pud_leaf(k.pudp_get(pud)):
        return None
    return k.pmd_offset(pud, address)


def split_huge_pmd_address(k: GenericKernel, vma: vm_area_struct, address: int) -> None:
    """mm/huge_memory.c."""
    pmd = mm_find_pmd(k, vma.vm_mm, address)
    if pmd is None:
        return
    pmdval = k.pmdp_get(pmd)
    if k.pmd_trans_huge(pmdval) or (not k.pmd_none(pmdval) and not k.pmd_present(pmdval)):
        from legacy.mm.huge_memory import split_huge_pmd

        split_huge_pmd(k, vma, pmd, address)


def split_huge_pmd_if_needed(k: GenericKernel, vma: vm_area_struct, address: int) -> None:
    """If the new boundary is not huge-page aligned and a huge pmd could cover it, split."""
    hpage = k.PMD_SIZE  # HPAGE_PMD_SIZE
    down = address & ~(hpage - 1)
    up = (address + hpage - 1) & ~(hpage - 1)
    if address & (hpage - 1) and range_in_vma(vma, down, up):
        split_huge_pmd_address(k, vma, address)


def vma_adjust_trans_huge(
    k: GenericKernel, vma: vm_area_struct, start: int, end: int, next: vm_area_struct | None
) -> None:
    """mm/huge_memory.c: split huge pmds straddling the new vma boundaries."""
    split_huge_pmd_if_needed(k, vma, start)  # Check if we need to split start first.
    split_huge_pmd_if_needed(k, vma, end)  # Check if we need to split end next.
    if next is not None:  # If we're incrementing next->vm_start, we might need to split it.
        split_huge_pmd_if_needed(k, next, end)


def _split_vma(k: GenericKernel, vma: vm_area_struct, addr: int, new_below: bool) -> int:
    """mm/vma.c ``__split_vma``: cut ``vma`` at ``addr``; the new vma is the part below
    ``addr`` if ``new_below``, else the part above.  Returns 0."""
    if not vma.vm_start < addr < vma.vm_end:
        raise ValueError(f"split of [{vma.vm_start:#x}, {vma.vm_end:#x}) at {addr:#x}")
    new = vm_area_dup(k, vma)
    if new_below:
        new.vm_end = addr
    else:
        new.vm_start = addr
        new.vm_pgoff += (addr - vma.vm_start) >> k.PAGE_SHIFT
    vma_adjust_trans_huge(k, vma, vma.vm_start, addr, None)
    if new_below:
        vma.vm_start = addr
        vma.vm_pgoff += (addr - new.vm_start) >> k.PAGE_SHIFT
    else:
        vma.vm_end = addr
    _vma_link(vma.vm_mm, new)
    return 0


def split_vma(k: GenericKernel, vma: vm_area_struct, addr: int, new_below: bool) -> int:
    """mm/vma.c ``split_vma``."""
    return _split_vma(k, vma, addr, new_below)


def detach_range(
    k: GenericKernel, mm: mm_struct, start: int, end: int
) -> tuple[list[vm_area_struct], vm_area_struct | None, vm_area_struct | None]:
    """The gathering half of munmap (mm/vma.c ``vms_gather_munmap_vmas``): split the vmas
    at ``start`` and ``end``, unlink every vma inside ``[start, end)`` and return them with
    the vmas left on either side: ``(detached, prev, next)``."""
    vma = find_vma_intersection(k, mm, start, end)
    if vma is None:
        return [], None, None
    if start > vma.vm_start:  # Does it split the first one?
        _split_vma(k, vma, start, True)
    detached: list[vm_area_struct] = []
    nxt = find_vma_intersection(k, mm, start, end)
    while nxt is not None:
        if nxt.vm_end > end:  # Does it split the end?
            _split_vma(k, nxt, end, False)
        detached.append(nxt)
        nxt = vma_next(k, nxt)
        if nxt is not None and nxt.vm_start >= end:
            break
    prev = vma_prev(k, detached[0])
    following = vma_next(k, detached[-1])
    for v in detached:
        remove_vma(k, v)
    return detached, prev, following
