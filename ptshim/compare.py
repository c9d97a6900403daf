"""What two machines are compared on after every op of a side-by-side run.

:func:`snapshot` takes the observable state of one machine; :func:`compare` says, in words,
the first way two snapshots differ (None when they agree).  Compared:

- the page-table memory: the same allocated frames, byte for byte, and the same roots
  (so the MMU translates every address of both alike);
- ``pgtables_bytes`` of the process mm(s) and of ``init_mm``;
- the TLB: stale marks left (normally none: ``syscall_exit`` refuses them) and the
  invalidations made since the previous snapshot, per address space, *normalised*: the
  union of the flushed ranges (so one flush of a range and two flushes of its halves agree,
  as the kernel's batching may differ), a whole-address-space flush covering any range
  (``flush_tlb_mm`` where the other side flushed ranges: the kernel turns long ranges into
  full flushes itself), and last-level-only vs walk-cache invalidation kept apart;
- the THP deposits (``pgtable_trans_huge_deposit``), per pmd;
- the data pages' refcount and mapcount (anonymous memory), when the kernel has them.

Taking a snapshot consumes the TLB's flush record (``k.hw_tlb.flushes``), so consecutive
snapshots each see one op's flushes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from arches.tlb import KERNEL_SPACE
from legacy import GenericKernel, mm_struct
from legacy.mm.page import page_state
from ptshim.session import Session

__all__ = ["State", "compare", "flush_summary", "snapshot", "snapshot_machine"]

Ranges = tuple[tuple[int, int], ...]
FlushSummary = tuple[tuple[str, bool, object], ...]
"""(space name, walk caches too, "all" or the merged ranges) per space, sorted."""


class State(NamedTuple):
    frames: Mapping[int, bytes | bytearray]
    """Every allocated frame by address: the machine's own (``PhysMem.frames``), not a
    copy, so a state is compared at once, before the machine changes."""
    pgtables_bytes: int
    init_pgtables_bytes: int
    mm_pgtables: tuple[int, ...] = ()
    """``pgtables_bytes`` of every further process mm (fork children), in order."""
    stale: tuple[str, ...] = ()
    flushes: FlushSummary = ()
    deposits: tuple[tuple[str, tuple[int, ...]], ...] = ()
    pages: tuple[tuple[int, int, int], ...] = ()
    """(pfn, refcount, mapcount) of every data page."""
    roots: tuple[int, ...] = ()
    """The pgd of every process mm, then ``init_mm``'s: with :attr:`frames` they fix what
    the MMU sees, so two equal states translate every address alike."""


def _merge(ranges: Iterable[tuple[int, int]], top: int) -> Ranges:
    out: list[list[int]] = []
    for s, e in sorted((s, e or top) for s, e in ranges):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return tuple((s, e) for s, e in out)


def flush_summary(k: GenericKernel, names: dict[int, str],
                  flushes: Sequence[tuple[int, int, int, bool]]) -> FlushSummary:
    """The normalised invalidations: per (space, walk) the merged ranges or "all"."""
    top = k.ULONG_MASK + 1
    by: dict[tuple[str, bool], list[tuple[int, int]] | str] = {}
    for space, start, end, walk in flushes:
        key = (names.get(space, f"asid {space}"), walk)
        if start == 0 and end == 0:
            by[key] = "all"
            continue
        cur = by.setdefault(key, [])
        if isinstance(cur, list):
            cur.append((start, end))
    return tuple(sorted(
        (space, walk, v if isinstance(v, str) else _merge(v, top))
        for (space, walk), v in by.items()
    ))


def _page_state(k: GenericKernel) -> tuple[tuple[int, int, int], ...]:
    return tuple((pfn, rc, mc) for pfn, (rc, mc) in sorted(page_state(k).items()))


def snapshot_machine(k: GenericKernel, mms: Sequence[mm_struct]) -> State:
    """The state of kernel ``k`` whose process mms are ``mms`` (the first is "the"
    process); consumes the TLB's flush record."""
    names = {KERNEL_SPACE: "kernel"}
    for i, mm in enumerate(mms):
        names[mm.asid] = f"mm {i}"
    tlb = k.hw_tlb
    flushes = flush_summary(k, names, tlb.flushes)
    tlb.flushes.clear()
    stale = tuple(f"[{m.start:#x}, {m.end:#x}) {names.get(m.space, m.space)}: {m.level} "
                  f"{'walk-cache entry' if m.walk else 'translation'} {m.change}"
                  for m in tlb.marks)
    deposits = tuple(sorted(
        (f"{key:#x}" if isinstance(key, int) else getattr(key, "name", str(key)),
         tuple(t.pa for t in ring))
        for key, ring in k.pmd_huge_ptes.items()
    ))
    return State(
        k.mem.frames(), mms[0].pgtables_bytes if mms else 0,
        k.init_mm.pgtables_bytes, tuple(mm.pgtables_bytes for mm in mms[1:]), stale,
        flushes, deposits, _page_state(k),
        tuple(mm.pgd.pa for mm in mms) + (k.init_mm.pgd.pa,),
    )


def snapshot(s: Session) -> State:
    """:func:`snapshot_machine` of a session (its process mms: ``s.mms`` if it has
    several, else ``s.mm``)."""
    mms: Sequence[mm_struct] = getattr(s, "mms", None) or [s.mm]
    return snapshot_machine(s.k, mms)


def _flush_text(f: FlushSummary) -> str:
    if not f:
        return "none"
    parts = []
    for space, walk, v in f:
        ranges: Ranges = () if isinstance(v, str) else v  # type: ignore[assignment]
        what = "everything" if v == "all" else ", ".join(f"[{s:#x}, {e:#x})" for s, e in ranges)
        parts.append(f"{space}{'' if walk else ' (last level only)'}: {what}")
    return "; ".join(parts)


def _flushes_agree(a: FlushSummary, b: FlushSummary) -> bool:
    if a == b:
        return True
    da = {(s, w): v for s, w, v in a}
    db = {(s, w): v for s, w, v in b}
    # A whole-space flush covers any range flushed on the other side -- not the absence of
    # any flush there (s390: legacy's owed flush_mm purges the space, a port that forgot
    # the flush makes none).
    spaces = {s for s, _ in da} | {s for s, _ in db}
    for space in spaces:
        if not all(any(s == space for s, _ in d) for d in (da, db)):
            return False
        for walk in (True, False):
            x, y = da.get((space, walk)), db.get((space, walk))
            if x == y:
                continue
            if "all" in (x, y) or "all" in (da.get((space, True)), db.get((space, True))):
                continue
            return False
    return True


def compare(a: State, b: State, entry_size: int) -> str | None:
    """None if the states are equal, else the first difference, in words."""
    fa, fb = a.frames, b.frames
    if fa.keys() != fb.keys():
        only_a = sorted(fa.keys() - fb.keys())
        only_b = sorted(fb.keys() - fa.keys())
        return ("allocated frames differ: only legacy has "
                + (", ".join(f"{pa:#x}" for pa in only_a[:4]) or "none")
                + f"{' ...' if len(only_a) > 4 else ''}; only unified has "
                + (", ".join(f"{pa:#x}" for pa in only_b[:4]) or "none")
                + f"{' ...' if len(only_b) > 4 else ''}")
    for pa in sorted(fa):
        x, y = fa[pa], fb[pa]
        if x != y:
            off = next(i for i in range(len(x)) if x[i] != y[i])
            off -= off % entry_size
            return (f"frame {pa:#x} differs at offset {off:#x}: legacy "
                    f"{x[off:off + entry_size].hex()}, unified {y[off:off + entry_size].hex()}")
    if a.roots != b.roots:
        return (f"page-table roots (pgd of each mm, then init_mm): legacy "
                f"{', '.join(f'{r:#x}' for r in a.roots)}; unified "
                f"{', '.join(f'{r:#x}' for r in b.roots)}")
    if a.pgtables_bytes != b.pgtables_bytes:
        return f"pgtables_bytes: legacy {a.pgtables_bytes}, unified {b.pgtables_bytes}"
    if a.init_pgtables_bytes != b.init_pgtables_bytes:
        return (f"init_mm pgtables_bytes: legacy {a.init_pgtables_bytes}, unified "
                f"{b.init_pgtables_bytes}")
    if a.mm_pgtables != b.mm_pgtables:
        return f"child mms' pgtables_bytes: legacy {a.mm_pgtables}, unified {b.mm_pgtables}"
    if a.stale != b.stale:
        return (f"stale TLB entries: legacy {list(a.stale) or 'none'}; unified "
                f"{list(b.stale) or 'none'}")
    if not _flushes_agree(a.flushes, b.flushes):
        return (f"TLB flushes differ: legacy {_flush_text(a.flushes)}; unified "
                f"{_flush_text(b.flushes)}")
    if a.deposits != b.deposits:
        return f"deposited PTE tables: legacy {a.deposits}, unified {b.deposits}"
    if a.pages != b.pages:
        da = {p: (r, m) for p, r, m in a.pages}
        db = {p: (r, m) for p, r, m in b.pages}
        pfn = next(p for p in sorted(da.keys() | db.keys()) if da.get(p) != db.get(p))
        return (f"page {pfn:#x} (refcount, mapcount): legacy {da.get(pfn, 'freed')}, "
                f"unified {db.get(pfn, 'freed')}")
    return None
