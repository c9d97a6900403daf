"""Small helpers the call sites share: errno values, ``BUG_ON``, and the few
``include/linux/*.h`` / ``mm/pgtable-generic.c`` helpers the kernel object does not carry."""

from __future__ import annotations

from arches.errors import CheckFailed
from legacy.generic import GenericKernel
from legacy.mm_types import mm_struct, spinlock_t
from legacy.pgalloc import ENOMEM
from legacy.types import PmdPtr, PtePtr, pmd_t

EAGAIN = -11
EFAULT = -14
EINVAL = -22
EBUSY = -16

__all__ = [
    "BUG_ON", "EAGAIN", "EBUSY", "EFAULT", "EINVAL", "ENOMEM", "PAGE_ALIGN", "is_swap_pmd",
    "pte_offset_map_rw_nolock",
]


def BUG_ON(condition: bool, what: str) -> None:
    """The kernel would oops; the emulator raises :class:`CheckFailed` naming the bug."""
    if condition:
        raise CheckFailed(f"kernel BUG: {what}")


def PAGE_ALIGN(k: GenericKernel, addr: int) -> int:
    """Round up to a page boundary, in ``unsigned long``."""
    return (addr + k.PAGE_SIZE - 1) & k.PAGE_MASK


def is_swap_pmd(k: GenericKernel, pmd: pmd_t) -> bool:
    """include/linux/huge_mm.h: a non-present, non-none pmd (migration entry)."""
    return not k.pmd_none(pmd) and not k.pmd_present(pmd)


def pte_offset_map_rw_nolock(
    k: GenericKernel, mm: mm_struct, pmd: PmdPtr, addr: int
) -> tuple[PtePtr, pmd_t, spinlock_t] | None:
    """mm/pgtable-generic.c ``pte_offset_map_rw_nolock(mm, pmd, addr, &pmdval, &ptl)``:
    map the PTE table without taking its lock; return ``(pte, pmdval, ptl)`` or None."""
    pmdval = k.pmdp_get_lockless(pmd)
    pte = k.pte_offset_map(pmd, addr)
    if pte is None:
        return None
    return pte, pmdval, k.ptep_lockptr(mm, pte)
