"""Hypothesis-generated scenarios on every configuration and every backend.

Each example boots a :class:`~ptshim.session.Session`, picks a user window and a kernel
window (at the bottom or the top of the range, or straddling a boundary of some level's
span) and applies random *valid* ops there: maps with every leaf size the kernel can map in
that half, unmaps and protects of random sub-ranges (which cut huge leaves partly), with
PROT none/r/rw/rx/rwx.  After **every** op the test checks, with its own code (not
:meth:`Session.verify`):

(a) the hardware walker (``config.walker.translate``) translates sampled pages of every
    extent of the model (every page of small mappings, first/last/random pages of huge ones,
    and leaf edges) to the model's PA, leaf size, protection and user bit; PROT none faults;
(b) random addresses the model does not map fault, in both halves, through every root;
(c) ``mm->pgtables_bytes`` is the accounted size of the tables charged to the mm, and the
    tables charged to the mm are, level by level, the ones the model's mappings need: one
    table per span of the level above that a mapping touches (none under a huge leaf, one
    deposited PTE table per user huge pmd), plus the PMDs PAE preallocates until an unmap
    frees them (``free_pgd_range``), plus, where levels were added to the live mm (s390
    ``crst_table_upgrade``: ``k.mm_upgrade_tables``), the old top at region 0;
(d) no page-table lock is held.

At the end the session is torn down (``mmput``): every frame charged to the mm is freed, the
frames left are exactly ``init_mm``'s tables, and the kernel mappings still translate.

``HYPOTHESIS_MAX_EXAMPLES`` (conftest, default 50) scales the number of examples: this file
runs twice as many per (configuration, backend); examples are cheap (a few ms to ~100 ms).
On a failure hypothesis prints the ops as JSON and the whole scenario (``ptshim run`` runs
it).  :data:`REPRODUCERS` keeps what the property found, as plain scenarios.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from arches import get_config
from arches.config import Fault, Translation
from arches.errors import BadInput
from legacy import GenericKernel, arch_names, mm_struct
from ptshim.backends import BACKENDS
from ptshim.model import PROTS, Extent, Model
from ptshim.scenario import (
    MapOp,
    Op,
    ProtectOp,
    Scenario,
    UnmapOp,
    load_json_scenario,
    op_label,
    op_to_json,
)
from ptshim.session import Session

ARCHES = arch_names()
APIS = sorted(BACKENDS)

EXAMPLES = 2 * int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "50"))
MAX_OPS = 10
FULL_CHECK_PAGES = 1024
"""Below this many base pages mapped with base-page leaves, every one of them is walked."""
MAX_BASE_PAGES_PER_MAP = 48
MAX_HUGE_PAGES_PER_MAP = 3


# -- windows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    user: bool


def align_down(x: int, a: int) -> int:
    return x - x % a


def align_up(x: int, a: int) -> int:
    return -(-x // a) * a


def level_spans(k: GenericKernel) -> list[int]:
    """The VA span of one entry of every non-leaf-most kernel level (pmd ... pgd)."""
    spans = {k.PMD_SIZE, k.PUD_SIZE, 1 << k.P4D_SHIFT, k.PGDIR_SIZE}
    return sorted(s for s in spans if s > k.PAGE_SIZE)


@st.composite
def windows(draw: st.DrawFn, k: GenericKernel, rng: tuple[int, int], leaf: int,
            user: bool) -> Window:
    """A window of four largest leaves: at the bottom or top of ``rng``, or centred on a
    boundary of one level's span (so that ops straddle tables of that level)."""
    lo, hi = rng
    width = min(4 * leaf, align_down(hi - lo, leaf))
    kinds = ["low", "high"]
    spans = [s for s in level_spans(k) if align_up(lo + width // 2, s) + width // 2 <= hi]
    if spans:
        kinds.append("boundary")
    kind = draw(st.sampled_from(kinds))
    if kind == "low":
        start = align_up(lo, leaf)
    elif kind == "high":  # up to the very end of the range
        return Window(align_down(hi - width, leaf), hi, user)
    else:
        span = draw(st.sampled_from(spans))
        first = align_up(lo + width // 2, span) // span
        last = (hi - width // 2) // span
        start = draw(st.integers(first, last)) * span - width // 2
    return Window(start, min(start + width, hi), user)


# -- op generation ---------------------------------------------------------------------------


def gaps(model: Model, w: Window) -> list[tuple[int, int]]:
    """The unmapped sub-ranges of ``w``."""
    out, cursor = [], w.start
    for e in model.overlapping(w.start, w.end):
        if e.va > cursor:
            out.append((cursor, e.va))
        cursor = max(cursor, e.end)
    if cursor < w.end:
        out.append((cursor, w.end))
    return out


def covered_span(model: Model, e: Extent) -> tuple[int, int]:
    """The maximal fully-mapped range containing extent ``e``."""
    ext = list(model)
    i = ext.index(e)
    lo, hi = e.va, e.end
    j = i
    while j > 0 and ext[j - 1].end == lo:
        j -= 1
        lo = ext[j].va
    j = i
    while j + 1 < len(ext) and ext[j + 1].va == hi:
        j += 1
        hi = ext[j].end
    return lo, hi


@st.composite
def map_op(draw: st.DrawFn, s: Session, w: Window, index: int) -> Op | None:
    lim = s.limits
    sizes = lim.user_leaf_sizes if w.user else lim.kernel_leaf_sizes
    ps = draw(st.sampled_from(sizes))
    floor = lim.first_user_address if w.user and ps != lim.page_size else 0
    slots = [(align_up(max(a, floor), ps), align_down(b, ps)) for a, b in gaps(s.model, w)]
    slots = [(a, b) for a, b in slots if b - a >= ps]
    if not slots:
        return None
    a, b = draw(st.sampled_from(slots))
    most = MAX_BASE_PAGES_PER_MAP if ps == lim.page_size else MAX_HUGE_PAGES_PER_MAP
    n = min(draw(st.integers(1, most)), (b - a) // ps)
    va = a + draw(st.integers(0, (b - a) // ps - n)) * ps
    size = n * ps
    pa = draw(st.integers(0, ((1 << lim.phys_bits) - size) // ps)) * ps
    prot = draw(st.sampled_from(PROTS))
    if not w.user and prot == "none" and ps != lim.page_size:
        prot = "r"  # kernel PROT_NONE maps take base pages only (scenario rule, docs/cli.md)
    if prot == "none" and ps == lim.prot_none_lost_leaf:
        prot = "r"  # riscv loses PROT_NONE pud leaves: refused (scenario rule, docs/cli.md)
    if not w.user and prot not in lim.kernel_prots:
        prot = "r"  # no PAGE_KERNEL* grants it (s390: rx, rwx): refused (scenario rule)
    return MapOp(index, va, pa, size, prot, w.user, None if ps == lim.page_size else ps)


@st.composite
def sub_range(draw: st.DrawFn, lo: int, hi: int, base: int, leaf: int) -> tuple[int, int]:
    """A non-empty base-page-aligned sub-range of ``[lo, hi)``; its edges are either leaf
    edges or any page (so that huge leaves are cut part way)."""
    pages = (hi - lo) // base
    per_leaf = leaf // base

    def edge(first: int, last: int) -> int:
        if per_leaf > 1 and draw(st.booleans()):
            choices = [p for p in range(align_up(first, per_leaf), last + 1, per_leaf)]
            if choices:
                return draw(st.sampled_from(choices))
        return draw(st.integers(first, last))

    a = edge(0, pages - 1)
    b = edge(a + 1, pages)
    return lo + a * base, lo + b * base


@st.composite
def unmap_op(draw: st.DrawFn, s: Session, w: Window, index: int) -> Op | None:
    base = s.limits.page_size
    mine = [e for e in s.model if e.user == w.user]
    around: bool = draw(st.integers(0, 3)) > 0
    if mine and around:
        e = draw(st.sampled_from(mine))
        # around the extent: may also cover neighbours and unmapped space
        lo = max(w.start, e.va - 2 * base)
        hi = min(w.end, e.end + 2 * base)
        va, end = draw(sub_range(lo, hi, base, e.page_size))
    else:
        sizes = s.limits.user_leaf_sizes if w.user else s.limits.kernel_leaf_sizes
        va, end = draw(sub_range(w.start, w.end, base, max(sizes)))
    return UnmapOp(index, va, end - va)


@st.composite
def protect_op(draw: st.DrawFn, s: Session, w: Window, index: int) -> Op | None:
    mine = [e for e in s.model if e.user == w.user]
    if not mine:
        return None
    e = draw(st.sampled_from(mine))
    lo, hi = covered_span(s.model, e)
    # an extent of the other half may adjoin (i386: user ends where the kernel starts)
    lo, hi = max(lo, w.start), min(hi, w.end)
    va, end = draw(sub_range(lo, hi, s.limits.page_size, e.page_size))
    prot = draw(st.sampled_from(PROTS))
    big = s.limits.prot_none_lost_leaf
    if prot == "none" and any(align_up(max(va, x.va), big) + big <= min(end, x.end)
                              for x in s.model.overlapping(va, end) if x.page_size == big):
        prot = "r"  # a whole PROT_NONE pud leaf riscv would lose: refused (docs/cli.md)
    if not w.user and prot not in s.limits.kernel_prots:
        prot = "r"  # no PAGE_KERNEL* grants it (s390: rx, rwx): refused (scenario rule)
    return ProtectOp(index, va, end - va, prot)


# -- the oracle's side -----------------------------------------------------------------------


def expected_prot(has_nx: bool, prot: str) -> str:
    """What the walker reports for a mapping made with ``prot``: no NX bit means every
    present page is executable."""
    return prot if has_nx or "x" in prot else prot + "x"


def pages_to_check(e: Extent, base: int, every: bool, rnd: random.Random) -> Iterator[int]:
    if every and e.page_size == base:
        yield from range(e.va, e.end, base)
        return
    picks = {e.va, e.end - base}
    picks.update(e.va + rnd.randrange(e.size // base) * base for _ in range(3))
    leaves = e.size // e.page_size
    for i in (range(leaves) if leaves <= 8 else rnd.sample(range(leaves), 4)):
        leaf = e.va + i * e.page_size
        picks.update((leaf, leaf + e.page_size - base))
    yield from sorted(picks)


def preallocated_pmds(k: GenericKernel) -> tuple[int, int]:
    """(user, kernel) PMDs ``pgd_alloc`` preallocates (x86 PAE: ``PREALLOCATED_PMDS`` =
    4, split at ``KERNEL_PGD_BOUNDARY``); (0, 0) elsewhere (for the pmds no unmap frees,
    32-bit arm LPAE's modules pmd, see ``k.PGD_ALLOC_PINNED_PMDS``)."""
    total = int(getattr(k, "PREALLOCATED_PMDS", 0))
    if not total:
        return 0, 0
    boundary = int(getattr(k, "KERNEL_PGD_BOUNDARY", total))
    return boundary, total - boundary


def table_frames(k: GenericKernel, mm: mm_struct) -> list[int]:
    """The frames ``mm``'s tables occupy: a table may span several (ppc64 4K's 64 KiB pgd,
    s390's crst, classic arm's 16 KiB pgd of 8-byte entries) or share one (ppc64 64K
    fragments, slab pgds)."""
    out: set[int] = set()
    for pa in k.tables_of(mm):
        name = k.ptdescs[pa].level.upper()
        size = int(getattr(k, f"PTRS_PER_{name}")) * int(getattr(k, f"SIZEOF_{name}"))
        out.update(range(k.frame_of(pa), pa + size, k.mem.frame_size))
    return sorted(out)


@dataclass
class Checker:
    s: Session
    rnd: random.Random
    user_window: Window
    kernel_window: Window
    prealloc_alive: set[int] = field(default_factory=set)
    """User pgd slots whose PAE-preallocated PMD no unmap has freed yet."""

    def __post_init__(self) -> None:
        self.prealloc_alive = set(range(preallocated_pmds(self.k)[0]))

    @property
    def k(self) -> GenericKernel:
        return self.s.k

    def regs_for(self, user: bool) -> list[dict[str, int]]:
        """Every register set through which a user (or kernel) address must translate the
        same: the process's; for kernel addresses on x86 also ``init_mm``'s own pgd."""
        k, s = self.k, self.s
        out = [s.registers()]
        if not user and not k.SEPARATE_KERNEL_ROOT:
            root = k.mm_root(k.init_mm)
            out.append(s.config.make_registers(root, root))
        return out

    def check_all(self, what: str) -> None:
        self.check_translations(what)
        self.check_faults(what)
        self.check_accounting(what)
        self.check_locks(what)

    # (a)
    def check_translations(self, what: str) -> None:
        s, k = self.s, self.k
        c = s.config
        base = c.page_size
        small = sum(e.size // base for e in s.model if e.page_size == base)
        for e in s.model:
            for regs in self.regs_for(e.user):
                for va in pages_to_check(e, base, small <= FULL_CHECK_PAGES, self.rnd):
                    t = c.walker.translate(k.mem, regs, va)
                    where = f"{what}: va {va:#x} of {e}"
                    prot: str | None = expected_prot(c.has_nx, e.prot)
                    if k.SOFTWARE_YOUNG_DIRTY and e.prot != "none":
                        # faults keep young and dirty: old faults, clean is read-only (a
                        # kernel page too: arm set_memory_rw keeps a PAGE_NONE one clean)
                        prot = s._soft_hw_prot(s.mm if e.user else k.init_mm, va,
                                               expected_prot(c.has_nx, e.prot))
                    if e.prot == "none" or prot is None:
                        assert isinstance(t, Fault), f"{where}: old or PROT_NONE page " \
                                                     f"translates: {t}"
                        continue
                    assert isinstance(t, Translation), f"{where}: faults: {t}"
                    got = (t.pa, t.size, t.prot, t.user)
                    # A kernel map's page size is vmap's max_page_shift: the kernel may
                    # fall back to smaller leaves (PAE: pmd_free_pte_page only frees an
                    # empty pmd), so for kernel extents the leaf size is an upper bound.
                    leaf = e.page_size if e.user or t.size > e.page_size else t.size
                    want = (e.pa + (va - e.va), leaf, prot, e.user)
                    assert got == want, f"{where}: (pa, leaf, prot, user) {got} != {want}"

    # (b)
    def probes(self) -> Iterator[int]:
        s, rnd = self.s, self.rnd
        c = s.config
        for lo, hi in (self.user_window.start, self.user_window.end), (
                self.kernel_window.start, self.kernel_window.end), c.user_range, c.kernel_range:
            for _ in range(3):
                yield rnd.randrange(lo, hi)
        for e in s.model:
            yield from (e.va - 1, e.end, e.va - c.page_size)

    def check_faults(self, what: str) -> None:
        s, k = self.s, self.k
        c = s.config
        for va in self.probes():
            va &= c.addr_mask
            user = c.is_user(va)
            if not (user or c.is_kernel(va)) or s.model.overlapping(va, va + 1):
                continue
            for regs in self.regs_for(user):
                t = c.walker.translate(k.mem, regs, va)
                assert isinstance(t, Fault), (
                    f"{what}: unmapped {'user' if user else 'kernel'} address {va:#x} "
                    f"translates: {t}")

    # (c)
    def accounted_size(self, level: str) -> int:
        k, mm = self.k, self.s.mm
        if level == "pte":
            return k.PTRS_PER_PTE * k.SIZEOF_PTE
        if level == "pmd" and not k.mm_pmd_folded(mm):
            return k.PTRS_PER_PMD * k.SIZEOF_PMD
        if level == "pud" and not k.mm_pud_folded(mm):
            return k.PTRS_PER_PUD * k.SIZEOF_PUD
        return 0

    def charged_levels(self) -> Counter[str]:
        k = self.k
        return Counter(k.ptdescs[pa].level for pa in k.tables_of(self.s.mm))

    def expected_levels(self) -> Counter[str]:
        """The tables the model's user mappings need, by level (see the module docstring)."""
        k, mm = self.k, self.s.mm
        user = [e for e in self.s.model if e.user]

        def spans(size: int) -> set[int]:
            return {b for e in user for b in range(align_down(e.va, size), e.end, size)}

        def under_leaf(b: int, size: int) -> bool:
            return any(e.va <= b < e.end and e.page_size >= size for e in user)

        want: Counter[str] = Counter(pgd=1)
        want["pte"] = (sum(1 for b in spans(k.PMD_SIZE) if not under_leaf(b, k.PMD_SIZE))
                       + sum(e.size // k.PMD_SIZE for e in user if e.page_size == k.PMD_SIZE))
        if not k.mm_pmd_folded(mm):
            pmds = {b for b in spans(k.PUD_SIZE) if not under_leaf(b, k.PUD_SIZE)}
            pmds |= {slot * k.PGDIR_SIZE for slot in self.prealloc_alive}
            pmds |= {align_down(a, k.PUD_SIZE) for a in k.PGD_ALLOC_PINNED_PMDS}
            want["pmd"] = len(pmds) + preallocated_pmds(k)[1]
        if k.FIRST_USER_ADDRESS:
            # free_pgtables' floor (32-bit arm: 2 pages) never frees the tables that map
            # address 0 once made: count those the mappings no longer need
            pud = k.pud_offset(k.p4d_offset(k.pgd_offset(mm, 0), 0), 0)
            if not k.mm_pmd_folded(mm) and 0 not in pmds and not k.pud_none(k.pudp_get(pud)):
                want["pmd"] += 1
            pmd = k.pmd_offset(pud, 0)
            low = [b for b in spans(k.PMD_SIZE) if b == 0 and not under_leaf(0, k.PMD_SIZE)]
            if not low and not k.pud_none(k.pudp_get(pud)) and k.pmd_present(
                    k.pmdp_get(pmd)) and not k.pmd_leaf(k.pmdp_get(pmd)):
                want["pte"] += 1
        # levels added to the live mm (s390 crst_table_upgrade) keep the tables the
        # upgrade put at entry 0 of the new top: they map region 0 of their level
        upgraded = {k.ptdescs[pa].level for pa in k.mm_upgrade_tables(mm)}
        if not k.mm_pud_folded(mm):
            want["pud"] = len(spans(1 << k.P4D_SHIFT) | ({0} if "pud" in upgraded else set()))
        if not k.mm_p4d_folded(mm):
            want["p4d"] = len(spans(k.PGDIR_SIZE) | ({0} if "p4d" in upgraded else set()))
        return +want

    def check_accounting(self, what: str) -> None:
        k, mm = self.k, self.s.mm
        charged = k.tables_of(mm)
        want = sum(self.accounted_size(k.ptdescs[pa].level) for pa in charged)
        assert mm.pgtables_bytes == want, (
            f"{what}: pgtables_bytes {mm.pgtables_bytes} but the {len(charged)} tables "
            f"charged to the mm account for {want} ({dict(self.charged_levels())})")
        got_levels, want_levels = self.charged_levels(), self.expected_levels()
        assert got_levels == want_levels, (
            f"{what}: tables charged to the mm by level {dict(got_levels)}, the model's "
            f"mappings need {dict(want_levels)}")

    def note_unmap(self, before: Model, op: UnmapOp) -> None:
        """PAE: an unmap frees the preallocated PMD of a pgd slot when it removed a mapping
        there and none is left (free_pmd_range with the neighbours' floor/ceiling)."""
        k = self.k
        for slot in list(self.prealloc_alive):
            lo, hi = slot * k.PGDIR_SIZE, (slot + 1) * k.PGDIR_SIZE
            removed = any(e.user for e in before.overlapping(max(lo, op.va), min(hi, op.end)))
            left = any(e.user for e in self.s.model.overlapping(lo, hi))
            if removed and not left:
                self.prealloc_alive.discard(slot)

    # (d)
    def check_locks(self, what: str) -> None:
        k = self.k
        held = [m.page_table_lock.name for m in k.mms if m.page_table_lock.held]
        held += [d.ptl.name for d in k.ptdescs.values() if d.ptl is not None and d.ptl.held]
        pgd_lock = getattr(k, "pgd_lock", None)
        if pgd_lock is not None and pgd_lock.held:
            held.append(pgd_lock.name)
        assert not held, f"{what}: locks left held: {held}"

    # teardown
    def teardown(self) -> None:
        s, k = self.s, self.k
        charged = k.tables_of(s.mm)
        s.teardown()
        kept = set(table_frames(k, k.init_mm))  # (a slab frame may hold init_mm's too)
        still = [f"{pa:#x}" for pa in charged
                 if k.mem.is_allocated(k.frame_of(pa)) and k.frame_of(pa) not in kept]
        assert not still, f"teardown: frames of the mm still allocated: {still}"
        assert s.mm.pgtables_bytes == 0, f"teardown: pgtables_bytes {s.mm.pgtables_bytes}"
        owners = {d.mm.name if d.mm is not None else None for d in k.ptdescs.values()}
        assert owners <= {k.init_mm.name}, f"teardown: tables owned by {owners}"
        kept |= set(k.table_cache_frames(k.init_mm))  # (ppc64 fragment pages)
        assert k.mem.allocated_frames() == sorted(kept), (
            "teardown: allocated frames are not exactly init_mm's tables")
        self.check_locks("teardown")
        # init_mm lives on: its mappings still translate through swapper_pg_dir.
        c = s.config
        root = k.mm_root(k.init_mm)
        regs = c.make_registers(root, root)
        for e in s.model:
            if e.user:
                continue
            for va in (e.va, e.end - c.page_size):
                t = c.walker.translate(k.mem, regs, va)
                if e.prot == "none":
                    assert isinstance(t, Fault)
                else:
                    assert isinstance(t, Translation) and t.pa == e.pa + (va - e.va), (
                        f"after teardown: kernel va {va:#x} of {e}: {t}")


def describe(op: Op, model: Model, base: int) -> str:
    """A hypothesis event naming the op's kind and whether it cuts a huge leaf."""
    if isinstance(op, MapOp):
        half = "user" if op.user else "kernel"
        return f"map {half} {'huge' if op.page_size else 'base'}"
    cuts = any(e.page_size > base and (e.va < edge < e.end) and (edge - e.va) % e.page_size
               for e in model.overlapping(op.va, op.end) for edge in (op.va, op.end))
    return f"{op.kind}{' cutting a huge leaf' if cuts else ''}"


# -- the property ----------------------------------------------------------------------------


def apply_and_check(s: Session, chk: Checker, op: Op, label: str) -> None:
    before = s.model.copy()
    s.apply(op)
    if isinstance(op, UnmapOp):
        chk.note_unmap(before, op)
    chk.check_all(f"{s.config.name}/{s.api} after {label} {json.dumps(op_to_json(op))}")


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("arch", ARCHES)
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_random_scenario_matches_hardware(arch: str, api: str, data: st.DataObject) -> None:
    s = Session(arch, api)
    k, lim = s.k, s.limits
    uw = data.draw(windows(k, lim.user_range, max(lim.user_leaf_sizes), True), "user window")
    kw = data.draw(windows(k, lim.kernel_range, max(lim.kernel_leaf_sizes), False),
                   "kernel window")
    rnd = random.Random(data.draw(st.integers(0, 2**32 - 1), "probe seed"))
    chk = Checker(s, rnd, uw, kw)
    chk.check_all("fresh session")
    done: list[Op] = []
    for i in range(data.draw(st.integers(1, MAX_OPS), "ops")):
        w = kw if data.draw(st.integers(0, 3), f"op {i} half") == 0 else uw
        kind = data.draw(st.sampled_from(["map", "map", "map", "unmap", "protect"]),
                         f"op {i} kind")
        strategy = {"map": map_op, "unmap": unmap_op, "protect": protect_op}[kind]
        op = data.draw(strategy(s, w, len(done)), f"op {i}")
        if op is None:
            continue
        note(json.dumps(op_to_json(op)))
        event(describe(op, s.model, lim.page_size))
        apply_and_check(s, chk, op, f"op {len(done)}")
        done.append(op)
    note("scenario: " + json.dumps(Scenario(tuple(done)).to_json()))
    s.verify()  # the session's own check agrees
    chk.teardown()


# -- reproducers of what the property found --------------------------------------------------


def top_of_kernel_range(arch: str) -> list[dict[str, object]]:
    """A kernel map of the last pages below 2**word_bits (``va + size`` wraps to 0 in
    ``unsigned long``)."""
    c = get_config(arch)
    return [{"op": "map", "va": c.kernel_range[1] - 4 * c.page_size, "pa": 0,
             "size": 4 * c.page_size, "prot": "rw"}]


def kernel_huge(arch: str, ops: list[tuple[str, int, int, str]]) -> list[dict[str, object]]:
    """Ops at offsets from the start of the kernel range, 2M/4M huge maps."""
    c = get_config(arch)
    huge = sorted(c.leaf_sizes)[1]
    out: list[dict[str, object]] = []
    for kind, off, size, prot in ops:
        op: dict[str, object] = {"op": kind, "va": c.kernel_range[0] + off, "size": size}
        if kind == "map":
            op.update(pa=0, page_size=huge if size % huge == 0 else c.page_size)
        if kind != "unmap":
            op["prot"] = prot
        out.append(op)
    return out


M2 = 0x200000
REPRODUCERS = [
    *(pytest.param(a, top_of_kernel_range(a), id=f"{a}-kernel-map-at-top")
      for a in ARCHES),
    pytest.param("i386-pae", [{"op": "map", "va": 0, "pa": 1 << 44, "size": 4096,
                               "prot": "rw"}], id="i386-pae-pa-beyond-32-bit-pfn"),
    *(pytest.param(a, kernel_huge(a, [("map", 0, 2 * M2, "none")]),
                   id=f"{a}-kernel-huge-prot-none") for a in ("arm64-4k-48",)),
    *(pytest.param(a, kernel_huge(a, [("map", 0, 2 * M2, "none"),
                                      ("protect", 0x1000, M2 - 0x1000, "r")]),
                   id=f"{a}-split-kernel-huge-prot-none") for a in ("x86_64", "i386-pae")),
    *(pytest.param(a, kernel_huge(a, [("map", 0, 2 * M2, "none"), ("protect", 0, M2, "r")]),
                   id=f"{a}-protect-kernel-huge-prot-none") for a in ("x86_64", "i386-pae")),
    pytest.param("i386-pae", kernel_huge("i386-pae", [("map", 0, 2 * M2, "rw"),
                                                      ("protect", 0, M2, "r")]),
                 id="i386-pae-kernel-huge-protect-not-synced"),
    pytest.param("i386-pae", kernel_huge("i386-pae", [("map", 0, 0x1000, "rw"),
                                                      ("unmap", 0, 0x1000, ""),
                                                      ("map", 0, M2, "r")]),
                 id="i386-pae-kernel-huge-over-empty-pte-table"),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("arch", "ops"), REPRODUCERS)
def test_reproducer(arch: str, ops: list[dict[str, object]], api: str) -> None:
    """Scenarios the property test found wrong once.  Each op must either be refused as bad
    input (the machine untouched) or leave the machine matching the model."""
    s = Session(arch, api)
    c = s.config
    chk = Checker(s, random.Random(0), Window(*c.user_range, True),
                  Window(*c.kernel_range, False))
    for op in load_json_scenario({"ops": ops}).ops:
        try:
            s.check(op)
        except BadInput:
            continue
        apply_and_check(s, chk, op, op_label(op))
    s.verify()
    chk.teardown()
