"""``struct mm_struct``, ``spinlock_t`` and ``struct ptdesc`` (include/linux/mm_types.h).

Locks record who holds them so tests can assert the kernel's locking rules: which lock a
call site takes (split PTE/PMD locks vs ``mm->page_table_lock``) and that none is left held.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from arches.errors import LockError
from legacy.types import PgdPtr


class spinlock_t:
    """A spinlock that records who holds it (the function that took it) and how many
    times it was taken (for tests)."""

    __slots__ = ("name", "held", "holder", "acquisitions")

    def __init__(self, name: str) -> None:
        self.name = name
        self.held = False
        self.holder: str | None = None
        self.acquisitions = 0

    def __repr__(self) -> str:
        return f"<spinlock {self.name}{f' held by {self.holder}' if self.held else ''}>"


def spin_lock(lock: spinlock_t) -> None:
    """Take ``lock``; taking it twice is the deadlock the kernel would hit: an error here."""
    caller = sys._getframe(1).f_code.co_name
    if lock.held:
        raise LockError(
            f"recursive spin_lock of {lock.name} by {caller}: already held by "
            f"{lock.holder} (would deadlock)"
        )
    lock.held = True
    lock.holder = caller
    lock.acquisitions += 1


def spin_unlock(lock: spinlock_t) -> None:
    if not lock.held:
        raise LockError(f"spin_unlock of {lock.name}, which is not held")
    lock.held = False
    lock.holder = None


@dataclass(eq=False)
class ptdesc:
    """``struct ptdesc`` of one page-table frame: which mm and level own it, and its split
    lock (``ptl``) when the constructor gave it one (PTE and PMD tables)."""

    pa: int
    level: str
    mm: mm_struct | None
    ptl: spinlock_t | None = None


@dataclass(eq=False)
class mm_struct:
    """The parts of ``struct mm_struct`` the page-table code uses."""

    name: str
    pgd: PgdPtr
    page_table_lock: spinlock_t
    pgtables_bytes: int = 0
    is_init_mm: bool = False
    context: dict[str, int] = field(default_factory=dict)
    """Architecture-private state (``mm->context``), e.g. preallocated PAE PMDs."""
    mmap: list[vm_area_struct] = field(default_factory=list)
    """The VMAs, sorted by ``vm_start`` (the kernel's maple tree)."""

    def __repr__(self) -> str:
        return f"<mm {self.name} pgd={self.pgd.pa:#x} pgtables_bytes={self.pgtables_bytes}>"


@dataclass(eq=False)
class vm_area_struct:
    """The parts of ``struct vm_area_struct`` the call sites need."""

    vm_mm: mm_struct
    vm_start: int
    vm_end: int
    vm_flags: int
    vm_page_prot: int
    vm_pgoff: int = 0
    """Offset in PAGE_SIZE units; for a COW ``VM_PFNMAP`` vma, the first pfn mapped."""
