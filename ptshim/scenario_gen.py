"""Random valid scenarios for one configuration: the generator behind ``ptshim diff``.

Scenarios are built to hit what the ports must get right: base pages crossing PMD
boundaries, huge PMD/PUD leaves (user and kernel), unmaps and protects that cover leaves
partly (splits) or free whole tables (floor/ceiling), neighbouring vmas, kernel mappings
that need ``arch_sync_kernel_mappings``, and the top of the user range; private anonymous
maps (write-faulted pages and the zero page), up to :data:`MAX_FORKS` forks with later ops
in any process (``"mm"``), and mremaps of base-page ranges (pte by pte, or whole PTE tables
when the move is PMD-aligned).

The mix is tuned for the CPU time the campaign takes to find bugs (``python -m
bench.detection``), not for scenarios alone: page-table boundaries come from small maps
placed at them rather than from big maps, and the op weights favour what most often
exposes a wrong port (protects, unmaps, forks, mremaps).
"""

from __future__ import annotations

import random
from dataclasses import replace

from arches.errors import BadInput
from legacy import boot
from ptshim.backends import LegacyBackend
from ptshim.model import PROTS, Extent, Model
from ptshim.scenario import (
    ForkOp,
    Limits,
    MapOp,
    MremapOp,
    Op,
    ProtectOp,
    Scenario,
    UnmapOp,
    apply_to_model,
    check_op,
)

__all__ = ["ANON_MAPS", "AT_BOUNDARY", "BIG_MAPS", "FORKS", "MAX_FORKS", "MREMAPS",
           "MREMAP_HUGE", "PROTECTS", "SPLIT_ENTRIES", "ScenarioGen", "UNMAPS"]

MAX_FORKS = 2
"""Forks per generated scenario."""

MREMAP_HUGE = False
"""Whether generated mremaps may move huge PMD leaves: not yet, legacy/mm/huge_memory.py's
``move_huge_pmd`` does not flush the old range (``flush_pmd_tlb_range``), so the legacy
path fails the TLB check there."""

BIG_MAPS = 0.04
"""How often a base-page map is big (400-1,100 pages, several PTE tables): they cost as much
as a dozen small scenarios (every page is populated or remapped, zapped and verified on two
machines).  Whole-table frees, whole-table mremaps and maps crossing PTE tables come from
small maps placed at PMD boundaries (:data:`AT_BOUNDARY`) instead."""

AT_BOUNDARY = 0.4
"""How often a base-page map ends at or crosses a PMD boundary of its window."""

ANON_MAPS = 0.35
"""The share of anonymous maps among user maps (the others are PFN maps)."""

UNMAPS = 4
"""The weight of an munmap among the op kinds (maps weigh 5): one that empties a PMD span
frees its PTE table (``free_pgtables``)."""

PROTECTS = 5
"""The weight of an mprotect among the op kinds: most flush (or split) something."""

FORKS = 2
"""The weight of a fork among the op kinds: a fork after a writable anonymous map is what
checks the COW write-protect."""

MREMAPS = 3
"""The weight of an mremap among the op kinds (user ops only)."""

SPLIT_ENTRIES = 2048
"""What a split of a huge leaf may cost at the full rate, in entries of the table it fills
(a new huge leaf that gets a deposited PTE table counts twice): a 16K-granule arm64 PMD
leaf (2,048 ptes), twice what the x86 splits cost (i386's 4 MiB leaf is 1,024 ptes; a user
1 GiB leaf of x86-64, 512 pmds and their 512 deposited tables).  An unmap or protect that
ends inside a huge leaf splits it, and the new entries are then written, copied by forks,
moved and zapped one by one on both machines.  Where a split costs more (a 512 MiB leaf of
a 64K-granule arm64 is 8,192 ptes: the only such leaf of the registered configurations),
such a cut ends inside the leaf only that share of the time, and at a leaf boundary
otherwise.  Examples then cost about the same everywhere (``python -m bench``); the price
is that a bug only such a split shows takes more examples to find there (``python -m
bench.detection``)."""


class ScenarioGen:
    """Random valid scenarios for one configuration (validated against the model as they
    are built)."""

    def __init__(self, arch: str, rng: random.Random) -> None:
        k = boot(arch)
        self.arch = arch
        self.rng = rng
        self.lim = Limits.from_kernel(k)
        self.split = LegacyBackend(k).split_size
        self.page = k.PAGE_SIZE
        self.pmd = k.PMD_SIZE
        self.move_pmd = k.HAVE_MOVE_PMD
        self.pud = k.PUD_SIZE
        self.pgdir = k.PGDIR_SIZE
        self.max_pa = min(1 << self.lim.phys_bits, 1 << 40)

    def _base(self, user: bool) -> int:
        """Start of the window the ops of one space use: a few big-leaf slots, sometimes
        right below the top of the user range (the free_pgd_range ceiling)."""
        rng = self.rng
        lo, hi = self.lim.user_range if user else self.lim.kernel_range
        big = max(self.lim.user_leaf_sizes if user else self.lim.kernel_leaf_sizes)
        span = max(big, self.pmd) * 4
        first = -(-lo // span) * span + (span if user and lo == 0 else 0)
        # The kernel window stays clear of the last page of the address space, which
        # scenarios may not touch (vmap_range BUG_ONs when ``end`` wraps to 0).
        last = (hi - (span if user else 2 * span)) // span * span
        if last < first:
            return first
        choice = rng.random()
        if choice < 0.2:
            return last
        if choice < 0.5:
            # just below a top-level boundary: tables of two pgd entries
            edge = -(-(first + span) // self.pgdir) * self.pgdir
            if first <= edge - span // 2 <= last:
                return edge - span // 2
        return first + rng.randrange(0, min(64, (last - first) // span + 1)) * span

    def _size(self, ps: int) -> int:
        rng = self.rng
        if ps == self.page:
            if rng.random() < BIG_MAPS:
                return ps * rng.randint(400, 1100)
            return ps * rng.choice([1, 2, 3, rng.randint(1, 40)])
        return ps * rng.choice([1, 1, 2, 3])

    def _at_boundary(self, base: int, span: int, size: int) -> int:
        """A start for ``size`` bytes of base pages that ends at a PMD boundary of the
        window or crosses it: a PTE table's last entries, the next table's first."""
        rng = self.rng
        edge = base + rng.randrange(1, max(2, span // self.pmd)) * self.pmd
        pages = size // self.page
        return max(base, edge - (pages if rng.random() < 0.5 else rng.randint(1, pages))
                   * self.page)

    def _map(self, user: bool, base: int, span: int, mm: int = 0) -> MapOp:
        rng = self.rng
        if user and rng.random() < ANON_MAPS:
            ps = self.page
            size = self._size(ps)
            if rng.random() < AT_BOUNDARY:
                va = self._at_boundary(base, span, size)
            else:
                va = base + rng.randrange(0, max(1, span // ps)) * ps
            return MapOp(0, va, 0, size, rng.choice(PROTS), True if rng.random() < 0.5
                         else None, None, anon=True, mm=mm)
        sizes = self.lim.user_leaf_sizes if user else self.lim.kernel_leaf_sizes
        weights = [6 if s == self.page else (3 if s <= self.pmd else 1) for s in sizes]
        ps = rng.choices(sizes, weights)[0]
        size = self._size(ps)
        slot = max(ps, self.pmd if rng.random() < 0.5 else ps)
        va = base + rng.randrange(0, max(1, span // slot)) * slot
        if ps == self.page and rng.random() < AT_BOUNDARY:
            va = self._at_boundary(base, span, size)
        elif ps == self.page and rng.random() < 0.5:
            va += rng.randrange(-3, 4) * ps
            va = max(va, base)
        pa = rng.randrange(0, max(1, (self.max_pa - size) // ps)) * ps
        prots = PROTS if user else self.lim.kernel_prots
        return MapOp(0, va, pa, size, rng.choice(prots), user if rng.random() < 0.8 else None,
                     ps if ps != self.page or rng.random() < 0.3 else None,
                     mm=mm if user else 0)

    def _mremap(self, model: Model, mm: int, base: int, span: int) -> MremapOp | None:
        """Part (or all) of one base-page vma of process ``mm``, to a free place of the
        window, often at the same offset from a PMD boundary (whole PTE tables move)."""
        rng = self.rng
        ext = [e for e in model.user_extents(mm)
               if MREMAP_HUGE or e.page_size == self.page]
        if not ext:
            return None
        # Half the time a vma that reaches the next PMD boundary from inside a span, when
        # there is one: moved whole, it moves a PTE table whatever its size (see below).
        reach = [e for e in ext if e.va % self.pmd and e.end >= e.va - e.va % self.pmd
                 + self.pmd]
        e = rng.choice(reach if reach and rng.random() < 0.5 else ext)
        pages = e.size // self.page
        # The whole extent half the time, then to the same offset in a PMD slot: a range
        # starting a vma and reaching a PMD boundary is realigned down to it
        # (try_realign_addr) and moves a whole PTE table (move_normal_pmd), whatever its size.
        whole = rng.random() < 0.5
        if whole:
            lo, hi = 0, pages
        else:
            lo = rng.randrange(0, pages)
            hi = rng.randrange(lo + 1, pages + 1)
        va, size = e.va + lo * self.page, (hi - lo) * self.page
        if rng.random() < (0.8 if whole else 0.5):
            slot = base + rng.randrange(0, max(1, span // self.pmd)) * self.pmd
            new_va = slot + va % self.pmd
        else:
            new_va = base + rng.randrange(0, max(1, span // self.page)) * self.page
        return MremapOp(0, va, size, new_va, mm=mm)

    def _split_share(self, leaf_size: int, user: bool) -> float:
        """How often a cut may end inside a huge leaf of ``leaf_size``
        (:data:`SPLIT_ENTRIES`)."""
        lower = self.split(leaf_size, user)
        cost = leaf_size // lower * (2 if user and lower > self.page else 1)
        return min(1.0, SPLIT_ENTRIES / cost)

    def _cut(self, model: Model, user: bool, mm: int = 0) -> tuple[int, int] | None:
        """A range over existing extents of one space, its ends anywhere (page aligned)."""
        rng = self.rng
        ext = [e for e in model.view(mm) if e.user == user]
        if not ext:
            return None
        i = rng.randrange(len(ext))
        j = min(len(ext) - 1, i + rng.choice([0, 0, 0, 1, 2]))
        a, b = ext[i], ext[j]

        def no_split(e: Extent) -> bool:
            """Whether a cut in ``e`` should stay at its leaf boundaries this time."""
            if e.page_size == self.page:
                return False
            share = self._split_share(e.page_size, user)
            return share < 1 and rng.random() >= share

        def point(e: Extent) -> int:
            mode = rng.random()
            pages = e.size // self.page
            if mode < 0.3:
                return e.va
            if mode < 0.5:
                return e.va + e.size
            if no_split(e):
                return e.va + rng.randrange(0, e.size // e.page_size + 1) * e.page_size
            if mode < 0.7 and e.size > self.pmd:
                return e.va + rng.randrange(0, e.size // self.pmd + 1) * self.pmd
            return e.va + rng.randrange(0, pages + 1) * self.page

        lo = point(a)
        hi = point(b)
        if hi <= lo:
            lo, hi = min(lo, hi), max(lo, hi) + (b.page_size if no_split(b) else self.page)
        if rng.random() < 0.2:  # reach beyond the mappings (munmap of holes, free_pgtables)
            lo = max(self.lim.user_range[0] if user else self.lim.kernel_range[0],
                     lo - rng.randint(1, 600) * self.page)
        return lo, hi

    def op(self, model: Model, bases: dict[bool, int]) -> Op | None:
        rng = self.rng
        user = rng.random() < 0.65
        mm = rng.randrange(model.mm_count) if user else 0
        base = bases[user]
        span = max(self.lim.user_leaf_sizes if user else self.lim.kernel_leaf_sizes) * 4
        span = max(span, self.pmd * 4)
        forks = model.mm_count - 1
        kind = rng.choices(["map", "unmap", "protect", "fork", "mremap"],
                           [5, UNMAPS, PROTECTS, FORKS if forks < MAX_FORKS else 0,
                            MREMAPS if user else 0])[0]
        if kind == "fork":
            return ForkOp(0, mm=rng.randrange(model.mm_count))
        if kind == "mremap":
            return self._mremap(model, mm, base, span)
        if kind == "map" or not len(model):
            return self._map(user, base, span, mm)
        cut = self._cut(model, user, mm)
        if cut is None:
            return self._map(user, base, span, mm)
        lo, hi = cut
        if kind == "unmap":
            return UnmapOp(0, lo, hi - lo, mm=mm)
        return ProtectOp(0, lo, hi - lo, rng.choice(PROTS if user else self.lim.kernel_prots),
                         mm=mm)

    def scenario(self, n_ops: int, name: str) -> Scenario:
        """A valid scenario of up to ``n_ops`` ops."""
        model = Model()
        bases = {True: self._base(True), False: self._base(False)}
        ops: list[Op] = []
        tries = 0
        while len(ops) < n_ops and tries < n_ops * 20:
            tries += 1
            op = self.op(model, bases)
            if op is None:
                continue
            op = replace(op, index=len(ops))
            try:
                user = check_op(op, self.lim, model)
                apply_to_model(op, user, self.lim, model, self.split)
            except (BadInput, ValueError):
                continue
            ops.append(op)
        return Scenario(tuple(ops), name)


