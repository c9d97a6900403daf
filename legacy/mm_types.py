"""``struct mm_struct``, ``spinlock_t``, ``struct rw_semaphore`` (``mmap_lock``) and
``struct ptdesc`` (include/linux/mm_types.h, include/linux/mmap_lock.h).

Locks record who holds them so the kernel's locking rules can be asserted: which lock a
call site takes (split PTE/PMD locks vs ``mm->page_table_lock``), that none is left held,
and -- lockdep-style -- that every write of a user page-table entry holds the lock the
kernel requires for it (:meth:`legacy.pgtable.PgtableGeneric.lockdep_assert_pgtable_write`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


def lockdep_assert_held(lock: spinlock_t) -> None:
    """include/linux/lockdep.h: the caller must hold ``lock``."""
    if not lock.held:
        caller = sys._getframe(1).f_code.co_name
        raise LockError(f"lockdep: {caller} requires {lock.name}, which is not held")


class rw_semaphore:
    """``struct rw_semaphore`` (``mm->mmap_lock``): many readers or one writer; records the
    function that took it, as :class:`spinlock_t` does."""

    __slots__ = ("name", "readers", "writer")

    def __init__(self, name: str) -> None:
        self.name = name
        self.readers = 0
        self.writer: str | None = None

    @property
    def held(self) -> bool:
        return self.readers > 0 or self.writer is not None

    def __repr__(self) -> str:
        state = (f"write-held by {self.writer}" if self.writer is not None
                 else f"read-held x{self.readers}" if self.readers else "free")
        return f"<rwsem {self.name} {state}>"


def _caller(depth: int = 2) -> str:
    return sys._getframe(depth).f_code.co_name


def mmap_write_lock(mm: mm_struct) -> None:
    """include/linux/mmap_lock.h ``mmap_write_lock``; taking it while held would deadlock."""
    sem = mm.mmap_lock
    if sem.held:
        raise LockError(f"mmap_write_lock of {sem.name} by {_caller()}: already {sem!r} "
                        f"(would deadlock)")
    sem.writer = _caller()


def mmap_write_unlock(mm: mm_struct) -> None:
    if mm.mmap_lock.writer is None:
        raise LockError(f"mmap_write_unlock of {mm.mmap_lock.name}, which is not write-held")
    mm.mmap_lock.writer = None


def mmap_write_downgrade(mm: mm_struct) -> None:
    """``mmap_write_downgrade``: write lock -> read lock, without a window."""
    mmap_write_unlock(mm)
    mm.mmap_lock.readers += 1


def mmap_read_lock(mm: mm_struct) -> None:
    sem = mm.mmap_lock
    if sem.writer is not None:
        raise LockError(f"mmap_read_lock of {sem.name} by {_caller()}: write-held by "
                        f"{sem.writer} (would deadlock)")
    sem.readers += 1


def mmap_read_unlock(mm: mm_struct) -> None:
    if not mm.mmap_lock.readers:
        raise LockError(f"mmap_read_unlock of {mm.mmap_lock.name}, which is not read-held")
    mm.mmap_lock.readers -= 1


def mmap_assert_locked(mm: mm_struct) -> None:
    """``mmap_assert_locked``: held for read or write."""
    if not mm.mmap_lock.held:
        raise LockError(f"lockdep: {_caller()} requires {mm.mmap_lock.name} (read or write), "
                        f"which is not held")


def mmap_assert_write_locked(mm: mm_struct) -> None:
    if mm.mmap_lock.writer is None:
        raise LockError(f"lockdep: {_caller()} requires {mm.mmap_lock.name} held for write; "
                        f"it is {mm.mmap_lock!r}")


def mm_assert_write_locked_for(mm: mm_struct, why: str) -> None:
    """``mmap_assert_write_locked`` naming what needs it."""
    if mm.mmap_lock.writer is None:
        raise LockError(f"lockdep: {why} requires {mm.mmap_lock.name} held for write; it is "
                        f"{mm.mmap_lock!r}")


@contextmanager
def mmap_write_locked(mm: mm_struct) -> Iterator[None]:
    """``mmap_write_lock`` ... ``mmap_write_unlock`` around a block (what a syscall does
    around the call sites it runs)."""
    mmap_write_lock(mm)
    try:
        yield
    finally:
        if mm.mmap_lock.writer is not None:
            mmap_write_unlock(mm)


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
    mmap_lock: rw_semaphore = field(default_factory=lambda: rw_semaphore("mmap_lock"))
    asid: int = 0
    """The hardware address-space tag the emulated TLB keys this mm's user translations by
    (x86 PCID / arm64 ASID); given by ``mm_alloc``, 0 for ``init_mm``."""

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
