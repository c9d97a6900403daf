"""The scenario's model of what is mapped: sorted lists of extents, one per process.

The model is bookkeeping kept next to the machine, never read from it.  A check
(:meth:`ptshim.session.Session.verify`) compares it with what the hardware walker reads.

Vocabulary:

- an *extent* is one contiguous mapping ``[va, va + size)`` → ``[pa, pa + size)`` with one
  protection, one owner (user / kernel) and one leaf size (``page_size``); ``va``, ``pa`` and
  ``size`` are multiples of ``page_size``;
- a *leaf* is one page-table entry that maps memory (a 4K PTE, a 2M PMD block...);
- a *run* is a maximal sequence of leaves of the same size, protection and owner whose VAs and
  PAs are both contiguous: the unit in which the model and the hardware are compared.

Ranges are half-open everywhere: ``end`` is the first address past the range.

**Processes.**  The user half has one list of extents per mm: 0 is the original process,
1, 2... the children in fork order (:meth:`Model.fork`); the kernel half is shared.  An
extent also names its vma (``vma``: an id that unmap/protect/mremap renumber as
``split_vma`` splits, so that "inside one vma" can be checked).

**Anonymous extents** (``anon``) are private anonymous vmas.  Their ``pa`` is *logical*: a
token per page (:meth:`Model.new_anon`) that fork copies and mremap moves, so the pages
two mms share have the same token; the session maps tokens to the pfns the kernel chose.
``zero``: the pages are the shared zero page (a read-only vma populated with read faults,
no anon_vma); ``empty``: the vma has no translation (a fork child's copy of a vma without
anon_vma: "a page fault will fill them correctly"); ``exclusive``: ``PageAnonExclusive``;
``wrprotected``: the ptes are read-only although the vma may be writable -- COW-shared
after a fork, or rewritten by an mprotect (:data:`MPROTECT_UPGRADES_EXCLUSIVE_ANON`).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Literal

Prot = Literal["none", "r", "rw", "rx", "rwx"]
PROTS: tuple[Prot, ...] = ("none", "r", "rw", "rx", "rwx")

SplitSize = Callable[[int, bool], int]
"""``split_size(leaf_size, user)``: the leaf size a huge leaf of ``leaf_size`` is split into
when an unmap or protect covers only part of it (given by the backend, which knows what its
kernel does)."""

MPROTECT_UPGRADES_EXCLUSIVE_ANON = False
"""Whether an mprotect to a writable protection makes the ptes of anon-exclusive pages
writable (the kernel's ``MM_CP_TRY_CHANGE_WRITABLE`` + ``can_change_pte_writable``).
legacy/mm/mprotect.py does not emulate ``cp_flags``: every pte ``change_protection``
rewrites gets ``pte_modify(pte, vm_page_prot)``, read-only for a private vma
(``PAGE_COPY``).  A COW-shared page stays read-only either way (not exclusive)."""

@dataclass(frozen=True, order=True)
class Extent:
    """One contiguous mapping with a single protection, owner and leaf size."""

    va: int
    size: int
    pa: int
    prot: Prot
    user: bool
    page_size: int
    anon: bool = False
    zero: bool = False
    empty: bool = False
    exclusive: bool = False
    wrprotected: bool = False
    vma: int = 0
    special_lost: bool = False
    """A user pfn map whose huge pmds lost ``pmd_special`` to an mprotect (``pmd_modify``
    where ``Limits.special_lost_leaf`` is set): ``copy_huge_pmd`` would write-protect them."""

    @property
    def end(self) -> int:
        return self.va + self.size

    def hw_writable(self) -> bool:
        """Whether the ptes are writable: a pfn mapping when its prot says so; an anonymous
        one only while nothing write-protected it (the zero page never is)."""
        if "w" not in self.prot or self.empty:
            return False
        return not self.anon or (not self.zero and not self.wrprotected)

    def hw_prot(self) -> Prot:
        """The protection the ptes grant: ``prot`` without ``w`` when not writable."""
        if self.prot == "rw" and not self.hw_writable():
            return "r"
        if self.prot == "rwx" and not self.hw_writable():
            return "rx"
        return self.prot

    def has_leaves(self) -> bool:
        """Whether the hardware should find translations here."""
        return self.prot != "none" and not self.empty

    def slice(self, start: int, end: int, page_size: int | None = None) -> Extent:
        """The part ``[start, end)`` of this extent (optionally with another leaf size)."""
        assert self.va <= start < end <= self.end, (self, start, end)
        return replace(
            self,
            va=start,
            size=end - start,
            pa=self.pa + (start - self.va),
            page_size=self.page_size if page_size is None else page_size,
        )


@dataclass(frozen=True)
class Run:
    """Contiguous leaves of one size, protection and owner (VA and PA both contiguous)."""

    va: int
    pa: int
    size: int
    leaf_size: int
    prot: str
    user: bool

    @property
    def end(self) -> int:
        return self.va + self.size

    def describe(self) -> str:
        return (
            f"[{self.va:#x}, {self.end:#x}) -> {self.pa:#x} {self.prot} "
            f"{'user' if self.user else 'kernel'} in {self.leaf_size:#x} leaves"
        )


ANON_TOKEN_BASE = 1 << 62
"""Logical ``pa`` of the first anonymous page token (far from any real address)."""


class Model:
    """Per-process sorted, non-overlapping user extents plus the shared kernel extents, with
    the splitting rules of unmap, protect and mremap and the copying rule of fork.

    Iterating, :attr:`extents` and the queries without ``mm`` see process 0 and the kernel
    (what a scenario without forks has)."""

    MAX_MMS = 8
    """Processes a scenario may have (the original one included)."""

    def __init__(self, extents: Iterable[Extent] = ()) -> None:
        self._mms: list[list[Extent]] = [sorted(e for e in extents if e.user)]
        self._kernel: list[Extent] = sorted(e for e in extents if not e.user)
        self._ids = itertools.count(1)
        self.next_anon = ANON_TOKEN_BASE

    def __iter__(self) -> Iterator[Extent]:
        return iter(self._mms[0] + self._kernel)

    def __len__(self) -> int:
        return len(self._mms[0]) + len(self._kernel)

    def copy(self) -> Model:
        m = Model()
        m._mms = [list(x) for x in self._mms]
        m._kernel = list(self._kernel)
        m._ids = itertools.count(next(self._ids))
        m.next_anon = self.next_anon
        return m

    @property
    def extents(self) -> tuple[Extent, ...]:
        return tuple(self)

    @property
    def mm_count(self) -> int:
        """Processes so far (1 + forks)."""
        return len(self._mms)

    def view(self, mm: int) -> list[Extent]:
        """Process ``mm``'s user extents, then the kernel's."""
        return self._mms[mm] + self._kernel

    def user_extents(self, mm: int) -> list[Extent]:
        return list(self._mms[mm])

    def mapped_bytes(self, user: bool | None = None) -> int:
        return sum(e.size for e in self if user is None or e.user == user)

    def new_vma(self) -> int:
        """A fresh vma id."""
        return next(self._ids)

    def new_anon(self, size: int) -> int:
        """Logical pa of ``size`` bytes of new anonymous pages."""
        pa = self.next_anon
        self.next_anon += size
        return pa

    # -- queries -------------------------------------------------------------------------

    def overlapping(self, va: int, end: int, mm: int = 0) -> list[Extent]:
        """Extents of process ``mm`` (or the kernel) sharing a byte with ``[va, end)``."""
        out = []
        for lst in (self._mms[mm], self._kernel):
            i = bisect.bisect_left(lst, va, key=lambda e: e.end)
            while i < len(lst) and lst[i].va < end:
                if lst[i].end > va:
                    out.append(lst[i])
                i += 1
        return sorted(out)

    def first_hole(self, va: int, end: int, mm: int = 0) -> tuple[int, int] | None:
        """The first sub-range of ``[va, end)`` no extent covers, or None if fully mapped."""
        cursor = va
        for e in self.overlapping(va, end, mm):
            if e.va > cursor:
                return cursor, e.va
            cursor = max(cursor, e.end)
        return (cursor, end) if cursor < end else None

    # -- updates -------------------------------------------------------------------------

    def _target(self, extent: Extent, mm: int) -> list[Extent]:
        return self._mms[mm] if extent.user else self._kernel

    def add(self, extent: Extent, mm: int = 0) -> None:
        if self.overlapping(extent.va, extent.end, mm):
            raise ValueError(f"model: {extent} overlaps an existing extent")
        bisect.insort(self._target(extent, mm), extent)

    def remove(self, va: int, end: int, split_size: SplitSize, mm: int = 0) -> None:
        """Unmap ``[va, end)``: what lies outside it survives, huge leaves cut by an edge
        split into smaller leaves as :func:`cut` says."""
        self._update(va, end, split_size, lambda inside: [], mm=mm)

    def protect(self, va: int, end: int, prot: Prot, split_size: SplitSize,
                mm: int = 0, drops_special: int = 0) -> None:
        """Change the protection of ``[va, end)`` (which must be fully mapped).  Extents
        already at ``prot`` are left whole, as ``mprotect_fixup`` leaves a vma whose flags
        do not change (and set_memory does not split a large page it does not change).
        ``change_protection`` rewrites every anonymous pte with the private vma's
        read-only protection (see :data:`MPROTECT_UPGRADES_EXCLUSIVE_ANON`).  A user pfn
        extent of leaf size ``drops_special`` (``Limits.special_lost_leaf``) is marked
        :attr:`Extent.special_lost`."""
        def change(inside: list[Extent]) -> list[Extent]:
            out = []
            for e in inside:
                wrp = e.wrprotected
                if e.anon and not e.zero and not e.empty:
                    wrp = not (MPROTECT_UPGRADES_EXCLUSIVE_ANON and e.exclusive)
                lost = e.special_lost or (not e.anon and e.user and e.page_size == drops_special)
                out.append(replace(e, prot=prot, wrprotected=wrp, special_lost=lost))
            return out
        self._update(va, end, split_size, change, skip=lambda e: e.prot == prot, mm=mm)

    def _split_vmas(self, lst: list[Extent], hit: list[Extent], va: int, end: int) -> None:
        """``split_vma`` at ``va`` and ``end`` of every vma among ``hit``: the parts of a
        vma inside ``[va, end)`` and after ``end`` get fresh ids (the left part keeps it)."""
        for vid in {e.vma for e in hit}:
            inside, after = self.new_vma(), self.new_vma()
            for i, e in enumerate(lst):
                if e.vma != vid:
                    continue
                if e.va >= end:
                    lst[i] = replace(e, vma=after)
                elif e.va >= va:
                    lst[i] = replace(e, vma=inside)

    def _update(
        self,
        va: int,
        end: int,
        split_size: SplitSize,
        change: Callable[[list[Extent]], list[Extent]],
        skip: Callable[[Extent], bool] = lambda e: False,
        mm: int = 0,
    ) -> list[Extent]:
        """Cut at ``va``/``end``, replace the inside by ``change(inside)``; returns the
        inside pieces (before the change)."""
        hit = [e for e in self.overlapping(va, end, mm) if not skip(e)]
        if not hit:
            return []
        lst = self._target(hit[0], mm)
        keep: list[Extent] = []
        inside: list[Extent] = []
        for e in hit:
            lst.remove(e)
            pieces = [e]
            for edge in (va, end):
                pieces = [p for piece in pieces for p in cut(piece, edge, split_size)]
            for p in pieces:
                (inside if va <= p.va and p.end <= end else keep).append(p)
        for p in keep + change(inside):
            bisect.insort(lst, p)
        self._split_vmas(lst, [e for e in hit if e.user], va, end)
        return inside

    def fork(self, mm: int) -> int:
        """``dup_mmap`` of process ``mm``: a new process with a copy of its vmas; returns
        its number.  Pfn mappings are copied as they are; anonymous pages become COW-shared
        (not exclusive, write-protected, in both); a vma without anon_vma (zero-page or
        empty) is not copied: the child's copy has no translation."""
        parent = self._mms[mm]
        child: list[Extent] = []
        for i, e in enumerate(parent):
            if e.anon and not e.zero and not e.empty:
                shared = replace(e, exclusive=False, wrprotected=True)
                parent[i] = shared
                child.append(shared)
            elif e.anon:
                child.append(replace(e, empty=True))
            else:
                child.append(e)
        self._mms.append(child)
        return len(self._mms) - 1

    def mremap(self, va: int, end: int, new_va: int, split_size: SplitSize,
               mm: int = 0) -> None:
        """``move_vma`` of ``[va, end)`` (inside one vma) to ``new_va``: the pieces move, a
        huge leaf whose new address is not aligned to its size is split (the move splits
        it: ``split_huge_pmd`` in ``move_page_tables``), the moved part is a new vma."""
        inside = self._update(va, end, split_size, lambda inside: [], mm=mm)
        delta = new_va - va
        vid = self.new_vma()
        lst = self._mms[mm]
        for e in inside:
            for p in _realign(e, delta, split_size):
                bisect.insort(lst, replace(p, va=p.va + delta, vma=vid))


def _realign(e: Extent, delta: int, split_size: SplitSize) -> list[Extent]:
    """``e`` in leaves that stay leaves when moved by ``delta``."""
    ps = e.page_size
    if delta % ps == 0:
        return [e]
    smaller = split_size(ps, e.user)
    out: list[Extent] = []
    for off in range(0, e.size, ps):
        out.extend(_realign(e.slice(e.va + off, e.va + off + ps, smaller), delta, split_size))
    return out


def cut(e: Extent, edge: int, split_size: SplitSize) -> list[Extent]:
    """Cut extent ``e`` at ``edge`` into extents whose leaves do not cross ``edge``.

    Leaves wholly on one side keep their size; the one leaf that straddles ``edge`` is split
    into ``split_size(page_size)`` leaves, recursively, until no leaf straddles the edge (a
    1G leaf cut at 2M + 4K becomes 2M leaves, the straddling one 4K leaves).
    """
    if not e.va < edge < e.end:
        return [e]
    ps = e.page_size
    leaf = edge - (edge - e.va) % ps
    if leaf == edge:
        return [e.slice(e.va, edge), e.slice(edge, e.end)]
    smaller = split_size(ps, e.user)
    if not 0 < smaller < ps or ps % smaller:
        raise ValueError(f"model: cannot split a {ps:#x} leaf into {smaller:#x} leaves")
    out: list[Extent] = []
    if e.va < leaf:
        out.append(e.slice(e.va, leaf))
    out.extend(cut(e.slice(leaf, leaf + ps, smaller), edge, split_size))
    if leaf + ps < e.end:
        out.append(e.slice(leaf + ps, e.end))
    return out
