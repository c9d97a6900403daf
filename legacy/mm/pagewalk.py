"""The generic page-table walker: ``mm/pagewalk.c`` and ``include/linux/pagewalk.h``.

Followed: linux-next ``mm/pagewalk.c`` (2025, after ``walk_page_range_novma`` became
``walk_kernel_page_table_range``): pgd and p4d holes are found with ``pXd_none_or_clear_bad``
(bad entries are cleared), pud and pmd holes with plain ``pXd_none``; ``pte_entry`` is called
for every pte of a mapped PTE table, empty ones included; ``p?d_entry`` callbacks are called
even on folded levels; ``pte_hole`` depths go through ``real_depth``.  With a vma, a huge
pud/pmd is split before descending (``split_huge_pud`` / ``split_huge_pmd``); without one,
leaves and non-present entries are skipped.

Not emulated: hugetlb vmas (``hugetlb_entry``), ``install_pte`` (mm-internal), the
``walk_lock`` assertions.  Callbacks are Python callables with the C arguments; they reach
the kernel object as ``walk.k`` (an emulator field: the kernel has no such argument).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from legacy.generic import GenericKernel
from legacy.mm.huge_memory import split_huge_pmd, split_huge_pud
from legacy.mm.internal import EINVAL
from legacy.mm.vm_flags import VM_PFNMAP
from legacy.mm.vma import find_vma
from legacy.mm_types import mm_struct, vm_area_struct
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PtePtr, PudPtr

# enum page_walk_action: "Action for pud_entry / pmd_entry callbacks".
ACTION_SUBTREE = 0
"""Descend to next level, splitting huge pages if needed and possible."""
ACTION_CONTINUE = 1
"""Continue to next entry at this level (ignoring any subtree)."""
ACTION_AGAIN = 2
"""Call again for this entry."""


@dataclass(frozen=True)
class mm_walk_ops:
    """``struct mm_walk_ops``: every callback is optional (NULL)."""

    pgd_entry: Callable[[PgdPtr, int, int, mm_walk], int] | None = None
    p4d_entry: Callable[[P4dPtr, int, int, mm_walk], int] | None = None
    pud_entry: Callable[[PudPtr, int, int, mm_walk], int] | None = None
    pmd_entry: Callable[[PmdPtr, int, int, mm_walk], int] | None = None
    pte_entry: Callable[[PtePtr, int, int, mm_walk], int] | None = None
    pte_hole: Callable[[int, int, int, mm_walk], int] | None = None
    """``(addr, next, depth, walk)``: depth -1 unknown, 0 PGD, 1 P4D, 2 PUD, 3 PMD."""
    test_walk: Callable[[int, int, mm_walk], int] | None = None
    """0: walk this vma; 1: skip it; <0: abort the walk."""
    pre_vma: Callable[[int, int, mm_walk], int] | None = None
    post_vma: Callable[[mm_walk], None] | None = None


@dataclass(eq=False)
class mm_walk:
    """``struct mm_walk``: the walk's state, passed to every callback."""

    ops: mm_walk_ops
    mm: mm_struct
    k: GenericKernel
    """The running kernel (not in the C struct: the emulation has no globals)."""
    pgd: PgdPtr | None = None
    """Only with ``no_vma``: the pgd to walk if different from ``mm->pgd``."""
    vma: vm_area_struct | None = None
    action: int = ACTION_SUBTREE
    no_vma: bool = False
    private: object = None


def real_depth(k: GenericKernel, depth: int) -> int:
    """The level an entry really is at, ignoring folding (a folded p4d hole is a pgd hole)."""
    if depth == 3 and k.PTRS_PER_PMD == 1:
        depth = 2
    if depth == 2 and k.PTRS_PER_PUD == 1:
        depth = 1
    if depth == 1 and k.PTRS_PER_P4D == 1:
        depth = 0
    return depth


def walk_pte_range_inner(k: GenericKernel, pte: PtePtr, addr: int, end: int,
                         walk: mm_walk) -> int:
    ops = walk.ops
    assert ops.pte_entry is not None
    m = k.ULONG_MASK
    err = 0
    while True:
        err = ops.pte_entry(pte, addr, (addr + k.PAGE_SIZE) & m, walk)
        if err:
            break
        if addr >= ((end - k.PAGE_SIZE) & m):
            break
        addr = (addr + k.PAGE_SIZE) & m
        pte = pte + 1
    return err


def walk_pte_range(k: GenericKernel, pmd: PmdPtr, addr: int, end: int, walk: mm_walk) -> int:
    err = 0
    pte: PtePtr | None
    if walk.no_vma:
        # "pte_offset_map() might apply user-specific validation" (init_espfix_ap pmds).
        if walk.mm is k.init_mm or addr >= k.TASK_SIZE:
            pte = k.pte_offset_kernel(pmd, addr)
        else:
            pte = k.pte_offset_map(pmd, addr)
        if pte is not None:
            err = walk_pte_range_inner(k, pte, addr, end, walk)
            if walk.mm is not k.init_mm and addr < k.TASK_SIZE:
                k.pte_unmap(pte)
    else:
        r = k.pte_offset_map_lock(walk.mm, pmd, addr)
        pte = None
        if r is not None:
            pte, ptl = r
            err = walk_pte_range_inner(k, pte, addr, end, walk)
            k.pte_unmap_unlock(pte, ptl)
    if pte is None:
        walk.action = ACTION_AGAIN
    return err


def walk_pmd_range(k: GenericKernel, pud: PudPtr, addr: int, end: int, walk: mm_walk) -> int:
    ops = walk.ops
    has_handler = ops.pte_entry is not None
    err = 0
    depth = real_depth(k, 3)

    pmd = k.pmd_offset(pud, addr)
    while True:  # again:
        next = k.pmd_addr_end(addr, end)
        if k.pmd_none(k.pmdp_get(pmd)):
            if ops.pte_hole:
                err = ops.pte_hole(addr, next, depth, walk)
            if err:
                break
        else:
            walk.action = ACTION_SUBTREE
            # "This implies that each ->pmd_entry() handler needs to know about
            # pmd_trans_huge() pmds"
            if ops.pmd_entry:
                err = ops.pmd_entry(pmd, addr, next, walk)
            if err:
                break
            if walk.action == ACTION_AGAIN:
                continue  # goto again
            descend = walk.action != ACTION_CONTINUE and has_handler
            if descend:
                if walk.vma is not None:
                    split_huge_pmd(k, walk.vma, pmd, addr)
                else:
                    v = k.pmdp_get(pmd)
                    descend = not (k.pmd_leaf(v) or not k.pmd_present(v))
            if descend:
                err = walk_pte_range(k, pmd, addr, next, walk)
                if err:
                    break
                if walk.action == ACTION_AGAIN:
                    continue  # goto again
        pmd = pmd + 1
        addr = next
        if addr == end:
            break
    return err


def walk_pud_range(k: GenericKernel, p4d: P4dPtr, addr: int, end: int, walk: mm_walk) -> int:
    ops = walk.ops
    has_handler = ops.pmd_entry is not None or ops.pte_entry is not None
    err = 0
    depth = real_depth(k, 2)

    pud = k.pud_offset(p4d, addr)
    while True:  # again:
        next = k.pud_addr_end(addr, end)
        if k.pud_none(k.pudp_get(pud)):
            if ops.pte_hole:
                err = ops.pte_hole(addr, next, depth, walk)
            if err:
                break
        else:
            walk.action = ACTION_SUBTREE
            if ops.pud_entry:
                err = ops.pud_entry(pud, addr, next, walk)
            if err:
                break
            if walk.action == ACTION_AGAIN:
                continue  # goto again
            descend = walk.action != ACTION_CONTINUE and has_handler
            if descend:
                if walk.vma is not None:
                    split_huge_pud(k, walk.vma, pud, addr)
                else:
                    v = k.pudp_get(pud)
                    descend = not (k.pud_leaf(v) or not k.pud_present(v))
            if descend:
                if k.pud_none(k.pudp_get(pud)):
                    continue  # goto again
                err = walk_pmd_range(k, pud, addr, next, walk)
                if err:
                    break
        pud = pud + 1
        addr = next
        if addr == end:
            break
    return err


def walk_p4d_range(k: GenericKernel, pgd: PgdPtr, addr: int, end: int, walk: mm_walk) -> int:
    ops = walk.ops
    has_handler = any(cb is not None for cb in (ops.pud_entry, ops.pmd_entry, ops.pte_entry))
    err = 0
    depth = real_depth(k, 1)

    p4d = k.p4d_offset(pgd, addr)
    while True:
        next = k.p4d_addr_end(addr, end)
        if k.p4d_none_or_clear_bad(p4d):
            if ops.pte_hole:
                err = ops.pte_hole(addr, next, depth, walk)
            if err:
                break
        else:
            if ops.p4d_entry:
                err = ops.p4d_entry(p4d, addr, next, walk)
                if err:
                    break
            if has_handler:
                err = walk_pud_range(k, p4d, addr, next, walk)
            if err:
                break
        p4d = p4d + 1
        addr = next
        if addr == end:
            break
    return err


def walk_pgd_range(k: GenericKernel, addr: int, end: int, walk: mm_walk) -> int:
    ops = walk.ops
    has_handler = any(
        cb is not None for cb in (ops.p4d_entry, ops.pud_entry, ops.pmd_entry, ops.pte_entry)
    )
    err = 0

    if walk.pgd is not None:
        pgd = walk.pgd + k.pgd_index(addr)
    else:
        pgd = k.pgd_offset(walk.mm, addr)
    while True:
        next = k.pgd_addr_end(addr, end)
        if k.pgd_none_or_clear_bad(pgd):
            if ops.pte_hole:
                err = ops.pte_hole(addr, next, 0, walk)
            if err:
                break
        else:
            if ops.pgd_entry:
                err = ops.pgd_entry(pgd, addr, next, walk)
                if err:
                    break
            if has_handler:
                err = walk_p4d_range(k, pgd, addr, next, walk)
            if err:
                break
        pgd = pgd + 1
        addr = next
        if addr == end:
            break
    return err


def walk_page_test(k: GenericKernel, start: int, end: int, walk: mm_walk) -> int:
    """0: walk the vma; 1: skip it; <0: abort.  ``VM_PFNMAP`` vmas are skipped by
    default (reported as a hole to callers with ``pte_hole``)."""
    vma = walk.vma
    ops = walk.ops
    assert vma is not None
    if ops.test_walk:
        return ops.test_walk(start, end, walk)
    if vma.vm_flags & VM_PFNMAP:
        err = 1
        if ops.pte_hole:
            err = ops.pte_hole(start, end, -1, walk)
        return err if err else 1
    return 0


def _walk_page_range(k: GenericKernel, start: int, end: int, walk: mm_walk) -> int:
    """``__walk_page_range``: pre_vma, the pgd walk, post_vma (no hugetlb vmas here)."""
    ops = walk.ops
    err = 0
    if ops.pre_vma:
        err = ops.pre_vma(start, end, walk)
        if err:
            return err
    err = walk_pgd_range(k, start, end, walk)
    if ops.post_vma:
        ops.post_vma(walk)
    return err


def walk_page_range(k: GenericKernel, mm: mm_struct, start: int, end: int,
                    ops: mm_walk_ops, private: object = None) -> int:
    """Walk ``[start, end)`` of ``mm`` vma by vma; gaps between vmas are ``pte_hole(-1)``.

    Returns 0, the first non-zero callback result, or -EINVAL for an empty range."""
    walk = mm_walk(ops=ops, mm=mm, k=k, private=private)
    if start >= end:
        return EINVAL

    err = 0
    vma = find_vma(k, walk.mm, start)
    while True:
        if vma is None:  # after the last vma
            walk.vma = None
            next = end
            if ops.pte_hole:
                err = ops.pte_hole(start, next, -1, walk)
        elif start < vma.vm_start:  # outside vma
            walk.vma = None
            next = min(end, vma.vm_start)
            if ops.pte_hole:
                err = ops.pte_hole(start, next, -1, walk)
        else:  # inside vma
            walk.vma = vma
            next = min(end, vma.vm_end)
            vma = find_vma(k, mm, vma.vm_end)

            err = walk_page_test(k, start, next, walk)
            if err > 0:
                # "positive return values are purely for controlling the pagewalk, so
                # should never be passed to the callers."
                err = 0
            elif err < 0:
                break
            else:
                err = _walk_page_range(k, start, next, walk)
        if err:
            break
        start = next
        if not start < end:
            break
    return err


def walk_page_vma(k: GenericKernel, vma: vm_area_struct, ops: mm_walk_ops,
                  private: object = None) -> int:
    """Walk the whole of one vma."""
    walk = mm_walk(ops=ops, mm=vma.vm_mm, k=k, vma=vma, private=private)
    err = walk_page_test(k, vma.vm_start, vma.vm_end, walk)
    if err > 0:
        return 0
    if err < 0:
        return err
    return _walk_page_range(k, vma.vm_start, vma.vm_end, walk)


def walk_kernel_page_table_range(k: GenericKernel, start: int, end: int, ops: mm_walk_ops,
                                 pgd: PgdPtr | None = None, private: object = None) -> int:
    """Walk ``init_mm`` (or ``pgd``) without vmas and without taking PTE locks
    (``walk_kernel_page_table_range_lockless``; the mmap-lock assertion is not emulated)."""
    walk = mm_walk(ops=ops, mm=k.init_mm, k=k, pgd=pgd, private=private, no_vma=True)
    if start >= end:
        return EINVAL
    return walk_pgd_range(k, start, end, walk)


def walk_page_range_debug(k: GenericKernel, mm: mm_struct, start: int, end: int,
                          ops: mm_walk_ops, pgd: PgdPtr | None = None,
                          private: object = None) -> int:
    """Walk any mm's tables without vmas ("for debugging purposes ONLY", e.g. ptdump)."""
    if mm is k.init_mm:
        return walk_kernel_page_table_range(k, start, end, ops, pgd, private)
    walk = mm_walk(ops=ops, mm=mm, k=k, pgd=pgd, private=private, no_vma=True)
    if start >= end:
        return EINVAL
    return walk_pgd_range(k, start, end, walk)


__all__ = [
    "ACTION_AGAIN", "ACTION_CONTINUE", "ACTION_SUBTREE", "mm_walk",
    "mm_walk_ops", "real_depth", "walk_kernel_page_table_range", "walk_page_range",
    "walk_page_range_debug", "walk_page_vma",
]
