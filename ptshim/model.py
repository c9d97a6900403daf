"""The scenario's model of what is mapped: a sorted list of extents.

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
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Literal

Prot = Literal["none", "r", "rw", "rx", "rwx"]
PROTS: tuple[Prot, ...] = ("none", "r", "rw", "rx", "rwx")

SplitSize = Callable[[int, bool], int]
"""``split_size(leaf_size, user)``: the leaf size a huge leaf of ``leaf_size`` is split into
when an unmap or protect covers only part of it (given by the backend, which knows what its
kernel does)."""


@dataclass(frozen=True, order=True)
class Extent:
    """One contiguous mapping with a single protection, owner and leaf size."""

    va: int
    size: int
    pa: int
    prot: Prot
    user: bool
    page_size: int

    @property
    def end(self) -> int:
        return self.va + self.size

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


class Model:
    """Sorted, non-overlapping extents, with the splitting rules of unmap and protect."""

    def __init__(self, extents: Iterable[Extent] = ()) -> None:
        self._extents: list[Extent] = sorted(extents)

    def __iter__(self) -> Iterator[Extent]:
        return iter(self._extents)

    def __len__(self) -> int:
        return len(self._extents)

    def copy(self) -> Model:
        return Model(self._extents)

    @property
    def extents(self) -> tuple[Extent, ...]:
        return tuple(self._extents)

    def mapped_bytes(self, user: bool | None = None) -> int:
        return sum(e.size for e in self._extents if user is None or e.user == user)

    # -- queries -------------------------------------------------------------------------

    def overlapping(self, va: int, end: int) -> list[Extent]:
        """Extents that share at least one byte with ``[va, end)``, in VA order."""
        i = bisect.bisect_left(self._extents, va, key=lambda e: e.end)
        # bisect on ``end`` finds the first extent ending after ``va`` (ends are sorted too:
        # extents do not overlap).
        out = []
        while i < len(self._extents) and self._extents[i].va < end:
            if self._extents[i].end > va:
                out.append(self._extents[i])
            i += 1
        return out

    def first_hole(self, va: int, end: int) -> tuple[int, int] | None:
        """The first sub-range of ``[va, end)`` no extent covers, or None if fully mapped."""
        cursor = va
        for e in self.overlapping(va, end):
            if e.va > cursor:
                return cursor, e.va
            cursor = max(cursor, e.end)
        return (cursor, end) if cursor < end else None

    # -- updates -------------------------------------------------------------------------

    def add(self, extent: Extent) -> None:
        if self.overlapping(extent.va, extent.end):
            raise ValueError(f"model: {extent} overlaps an existing extent")
        bisect.insort(self._extents, extent)

    def remove(self, va: int, end: int, split_size: SplitSize) -> None:
        """Unmap ``[va, end)``: what lies outside it survives, huge leaves cut by an edge
        split into smaller leaves as :func:`cut` says."""
        self._update(va, end, split_size, lambda inside: [])

    def protect(self, va: int, end: int, prot: Prot, split_size: SplitSize) -> None:
        """Change the protection of ``[va, end)`` (which must be fully mapped).  Extents
        already at ``prot`` are left whole, as ``mprotect_fixup`` leaves a vma whose flags
        do not change (and set_memory does not split a large page it does not change)."""
        self._update(va, end, split_size, lambda inside: [replace(e, prot=prot) for e in inside],
                     skip=lambda e: e.prot == prot)

    def _update(
        self,
        va: int,
        end: int,
        split_size: SplitSize,
        change: Callable[[list[Extent]], list[Extent]],
        skip: Callable[[Extent], bool] = lambda e: False,
    ) -> None:
        hit = [e for e in self.overlapping(va, end) if not skip(e)]
        if not hit:
            return
        keep: list[Extent] = []
        inside: list[Extent] = []
        for e in hit:
            self._extents.remove(e)
            pieces = [e]
            for edge in (va, end):
                pieces = [p for piece in pieces for p in cut(piece, edge, split_size)]
            for p in pieces:
                (inside if va <= p.va and p.end <= end else keep).append(p)
        for p in keep + change(inside):
            bisect.insort(self._extents, p)


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
