"""A session: one booted kernel, one process ``mm``, a backend that drives the kernel, and
the model of what should be mapped.

::

    s = Session("x86_64")                  # boot, mm_alloc(), LegacyBackend
    s.run(load_scenario("examples/huge-pages.json"))  # validate all ops, then apply each
    s.verify()                             # hardware walk == model; pgtables_bytes right
    s.teardown()                           # mmput(): check_mm, nothing charged to the mm

Ops go to the process ``mm`` for user-range addresses (``self.mms[op.mm]``: 0 is the
original process, ``fork`` appends children) and to ``init_mm`` for kernel-range ones.
Every user op runs under ``mmap_write_lock`` of its mm (fork: ``dup_mmap`` takes both
itself), and every op ends with ``k.syscall_exit`` (no lock held, no stale TLB entry).

Huge leaves cut by an unmap or protect are split by the kernel code the backend
drives (``__split_vma`` → ``vma_adjust_trans_huge``, ``zap_pmd_range``,
``change_protection``; for ``init_mm`` the x86 cpa split ``split_large_page``); the model
follows with :meth:`Backend.split_size`.  A protect leaves alone what already has the
requested protection (``mprotect_fixup`` skips a vma whose flags do not change).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, cast

from arches.config import PROT_OF, ArchConfig, Fault, Translation
from arches.errors import BadInput, CheckFailed, OutOfMemory
from arches.tlb import KERNEL_SPACE
from legacy import GenericKernel, boot, mm_struct
from legacy.mm.page import check_pages_freed, is_zero_pfn, my_zero_pfn, page_state
from legacy.mm_types import mmap_write_locked
from legacy.types import PtePtr, pmd_t
from ptshim.backends import Backend, make_backend
from ptshim.model import Model, Prot, Run
from ptshim.scenario import (
    ForkOp,
    Limits,
    MapOp,
    MremapOp,
    Op,
    Scenario,
    UnmapOp,
    apply_to_model,
    check_op,
    op_label,
    validate,
)


def hw_prot(config: ArchConfig, prot: Prot) -> str:
    """What the hardware walker reports for a mapping made with ``prot`` (without an NX
    bit, e.g. 32-bit x86 paging, every readable page is executable)."""
    if not config.has_nx and "x" not in prot:
        return prot + "x"
    return prot


@dataclass(frozen=True)
class Stats:
    ops: int
    user_extents: int
    kernel_extents: int
    mapped_bytes: int
    tables: int
    """Page-table frames charged to the process mm (its pgd included)."""
    pgtables_bytes: int
    """``mm->pgtables_bytes`` of the process mm."""
    frames: int
    """Every allocated frame of the machine (kernel tables included)."""
    leaves: int
    """Leaf entries the hardware walker reads from the process's roots."""

    def describe(self) -> str:
        return (
            f"{self.ops} ops; {self.user_extents} user + {self.kernel_extents} kernel extents, "
            f"{self.mapped_bytes:#x} bytes mapped in {self.leaves} leaves; "
            f"{self.tables} tables charged to the mm, pgtables_bytes {self.pgtables_bytes}; "
            f"{self.frames} frames allocated"
        )


class Session:
    """One kernel + process mm + backend + model.  See the module docstring."""

    def __init__(self, arch: str, api: str = "legacy") -> None:
        self.k: GenericKernel = boot(arch)
        self.config = self.k.config
        self.backend: Backend = make_backend(api, self.k)
        self.api = api
        self.limits = Limits.from_kernel(self.k)
        mm = self.k.mm_alloc()
        if mm is None:
            raise OutOfMemory(f"{arch}: mm_alloc() failed")
        self.mm: mm_struct = mm
        self.mms: list[mm_struct] = [mm]
        """Every process: 0 = the original one, then the fork children in order."""
        self.model = Model()
        self.ops_done = 0
        self.tainted: str | None = None
        """Set when an unmap/protect failed half-way (as munmap/mprotect may in the kernel):
        the model no longer says what is mapped, so :meth:`verify` skips the comparison."""
        self.closed = False

    # -- geometry ------------------------------------------------------------------------

    def split_size(self, leaf_size: int, user: bool) -> int:
        """Leaf size a ``leaf_size`` leaf is split into when partially unmapped/protected."""
        return self.backend.split_size(leaf_size, user)

    def roots(self, mm: int = 0) -> tuple[int, int]:
        """(user root, kernel root) of process ``mm`` as the MMU's root registers hold them
        (``k.mm_root``: the table's physical address, or s390's ASCE)."""
        user = self.k.mm_root(self.mms[mm])
        kernel = self.k.mm_root(self.k.init_mm) if self.k.SEPARATE_KERNEL_ROOT else user
        return user, kernel

    def registers(self, mm: int = 0) -> dict[str, int]:
        return self.config.make_registers(*self.roots(mm))

    # -- running ---------------------------------------------------------------------------

    def check(self, op: Op) -> bool:
        """Validate ``op`` against the configuration and the model (nothing is touched)."""
        self._open()
        return check_op(op, self.limits, self.model)

    def validate(self, scenario: Scenario) -> None:
        """Validate every op of ``scenario`` (from the current state) before running any."""
        self._open()
        validate(scenario, self.limits, self.split_size, self.model)

    def run(self, scenario: Scenario) -> None:
        self.validate(scenario)
        for op in scenario.ops:
            self.apply(op)

    def apply(self, op: Op) -> None:
        """Validate and execute one op; on -ENOMEM raise :class:`OutOfMemory` naming it."""
        user = self.check(op)
        label = op_label(op)
        self.k.hw_tlb.op = label
        try:
            # A user op runs as its syscall does: under mmap_lock held for write (fork's
            # dup_mmap takes the parent's and the child's itself).
            mm = self.mms[op.mm]
            locked = user and not isinstance(op, ForkOp)
            with mmap_write_locked(mm) if locked else nullcontext():
                self._dispatch(op, user)
        except OutOfMemory:
            # One op, one message, whatever the API and whichever allocation failed: the
            # syscall's -ENOMEM, as user space sees it (docs/cli.md).  The failed syscall
            # returns to user space too: no lock held, no stale TLB entry.
            self.k.hw_tlb.op = ""
            self.k.syscall_exit(label)
            what = f"{label}: -ENOMEM from {syscall_name(op, user)} (an allocation failed)"
            if isinstance(op, MapOp):
                raise OutOfMemory(f"{what}; the map was undone") from None
            # munmap/mprotect are not atomic in the kernel either: what was done stays done.
            self.tainted = f"{label} failed half-way"
            raise OutOfMemory(f"{what}; the op is partly done") from None
        finally:
            self.k.hw_tlb.op = ""
        # Back to user space: no lock held, no stale TLB entry (TlbError / LockError).
        self.k.syscall_exit(label)
        apply_to_model(op, user, self.limits, self.model, self.split_size)
        self.ops_done += 1

    def _dispatch(self, op: Op, user: bool) -> None:
        """Run ``op`` through the backend (no checks, no locks: :meth:`apply` does those)."""
        b = self.backend
        mm = self.mms[op.mm]
        if isinstance(op, ForkOp):
            self.mms.append(b.fork(mm))
        elif isinstance(op, MremapOp):
            b.mremap(mm, op.va, op.size, op.new_va)
        elif isinstance(op, MapOp):
            ps = self.limits.page_size if op.page_size is None else op.page_size
            if op.anon:
                b.map_anon(mm, op.va, op.size, op.prot)
            elif user:
                b.map_user(mm, op.va, op.size, op.pa, op.prot, ps)
            else:
                b.map_kernel(op.va, op.size, op.pa, op.prot, ps)
        elif isinstance(op, UnmapOp):
            if user:
                b.unmap_user(mm, op.va, op.size)
            else:
                b.unmap_kernel(op.va, op.size)
        elif user:
            b.protect_user(mm, op.va, op.size, op.prot)
        else:
            # Like mprotect_fixup for a vma whose flags do not change (and set_memory's
            # "no change, no split"), parts already at ``prot`` are left alone.
            for va, end in self._ranges_to_change(op.va, op.end, op.prot):
                b.protect_kernel(va, end - va, op.prot)

    def _ranges_to_change(self, va: int, end: int, prot: Prot) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for e in self.model.overlapping(va, end):
            if e.prot == prot:
                continue
            lo, hi = max(va, e.va), min(end, e.end)
            if out and out[-1][1] == lo:
                out[-1] = (out[-1][0], hi)
            else:
                out.append((lo, hi))
        return out

    # -- checking --------------------------------------------------------------------------

    def hardware_leaves(self, root: int | None = None, mm: int = 0) -> list[Translation]:
        """Every leaf the hardware walker reads from process ``mm``'s roots (or from
        ``root`` as both roots)."""
        regs = (self.registers(mm) if root is None
                else self.config.make_registers(root, root))
        return list(self.config.walker.leaves(self.k.mem, regs))

    def expected_runs(self, user: bool | None = None, mm: int = 0,
                      anon_pa: dict[int, int] | None = None) -> list[Run]:
        """Process ``mm``'s model as runs of leaves, as the hardware should show them.  A
        kernel mapping's page size is the *largest* leaf the kernel may use (vmap's
        ``max_page_shift``: it falls back to smaller leaves when a huge one cannot be
        installed), so kernel runs carry leaf size 0 here; :meth:`_hardware_runs`
        checks the bound.  Anonymous pages are where ``anon_pa`` (token -> pa, from
        :meth:`anon_pages`) says; the zero page is ``my_zero_pfn``."""
        ps = self.limits.page_size
        zero_pa = my_zero_pfn(self.k, 0) << self.k.PAGE_SHIFT
        items: list[tuple[int, int, int, int, str, bool]] = []
        for e in self.model.view(mm):
            if not e.has_leaves() or (user is not None and e.user != user):
                continue
            prot = hw_prot(self.config, e.hw_prot())
            soft = self.k.SOFTWARE_YOUNG_DIRTY  # kernel leaves too: a clean one is read-only
            if not e.anon and not soft:
                items.append((e.va, e.pa, e.size, e.page_size if e.user else 0, prot, e.user))
                continue
            step = ps if e.anon else e.page_size
            for off in range(0, e.size, step):
                pa: int | None = e.pa + off
                if e.anon:
                    pa = zero_pa if e.zero else (anon_pa or {}).get(e.pa + off)
                if pa is None:
                    continue
                leaf_prot: str | None = prot
                if soft:
                    owner = self.mms[mm] if e.user else self.k.init_mm
                    leaf_prot = self._soft_hw_prot(owner, e.va + off, prot)
                if leaf_prot is not None:
                    items.append((e.va + off, pa, step, step if e.user else 0, leaf_prot,
                                  e.user))
        return runs_of(items)

    def _soft_hw_prot(self, mm: mm_struct, va: int, prot: str) -> str | None:
        """What the hardware grants at user ``va`` on a kernel whose young and dirty bits
        are kept by faults (``k.SOFTWARE_YOUNG_DIRTY``): nothing (None) for an old leaf,
        ``prot`` without ``w`` for a clean one, else ``prot``; read from the leaf with the
        legacy API (``pte_young``/``pte_dirty`` or ``pmd_young``/``pmd_dirty``)."""
        k = self.k
        f = cast(Any, k)  # pte_young, pmd_young, pmd_dirty: the architecture's
        pgd = k.pgd_offset(mm, va)
        if k.pgd_none(k.pgdp_get(pgd)):
            return prot
        p4d = k.p4d_offset(pgd, va)
        if k.p4d_none(k.p4dp_get(p4d)):
            return prot
        pud = k.pud_offset(p4d, va)
        v3 = k.pudp_get(pud)
        if k.pud_none(v3) or k.pud_leaf(v3):
            return prot  # no user pud leaves on such a kernel (s390: no PUD THP)
        pmd = k.pmd_offset(pud, va)
        v2 = k.pmdp_get(pmd)
        if k.pmd_none(v2):
            return prot
        if k.pmd_leaf(v2):
            young, dirty = f.pmd_young(v2), f.pmd_dirty(v2)
        else:
            pte = k.ptep_get(k.pte_offset_kernel(pmd, va))
            if not k.pte_present(pte):
                return prot
            young, dirty = f.pte_young(pte), k.pte_dirty(pte)
        if not young:
            return None
        return prot if dirty else prot.replace("w", "")

    def _hardware_runs(self, regs: Mapping[str, int],
                       problems: list[str] | None) -> tuple[list[Run], int]:
        """The walker's leaves from ``regs`` merged into runs, and how many leaves there
        were, streamed (memory stays proportional to the runs, not the pages).  With
        ``problems``, a kernel leaf larger than its mapping's page size (vmap's
        ``max_page_shift`` bound) is reported there, one line per leaf."""
        kernel = sorted((e.va, e.end, e.page_size) for e in self.model if not e.user)
        starts = [va for va, _end, _ps in kernel]
        count = 0

        def pieces() -> Iterator[tuple[int, int, int, int, str, bool]]:
            nonlocal count
            for va, pa, size, leaf, writable, executable, user in (
                    self.config.walker.leaf_runs(self.k.mem, regs)):
                count += size // leaf
                if problems is not None and not user:
                    problems.extend(_oversized_kernel_leaves(kernel, starts, va, va + size, leaf))
                yield va, pa, size, leaf if user else 0, PROT_OF[writable][executable], user

        return runs_of(pieces(), presorted=True), count

    def _pte_at(self, mm: mm_struct, va: int) -> PtePtr | None:
        """The pte mapping ``va`` in ``mm`` (a software walk with the legacy API; None where
        there is no PTE table: an empty or huge upper entry)."""
        k = self.k
        pgd = k.pgd_offset(mm, va)
        if k.pgd_none(k.pgdp_get(pgd)):
            return None
        p4d = k.p4d_offset(pgd, va)
        if k.p4d_none(k.p4dp_get(p4d)):
            return None
        pud = k.pud_offset(p4d, va)
        v3 = k.pudp_get(pud)
        if k.pud_none(v3) or k.pud_leaf(v3):
            return None
        pmd = k.pmd_offset(pud, va)
        v2 = k.pmdp_get(pmd)
        if k.pmd_none(v2) or k.pmd_leaf(v2):
            return None
        return k.pte_offset_kernel(pmd, va)

    def _pte_pfns(self, mm: mm_struct, start: int, end: int) -> Iterator[tuple[int, int | None]]:
        """``(va, pfn of its present pte or None)`` for every page of ``[start, end)``,
        walking down once per PTE table."""
        k = self.k
        ps = k.PAGE_SIZE
        span = k.PTRS_PER_PTE * ps  # what one PTE table maps (pmd_addr_end may be a
        va = start                  # folded level's, which returns ``end``)
        while va < end:
            nxt = min(end, va - va % span + span)
            pte = self._pte_at(mm, va)
            for i, v in enumerate(range(va, nxt, ps)):
                val = None if pte is None else k.ptep_get(pte + i)
                yield v, (k.pte_pfn(val) if val is not None and k.pte_present(val) else None)
            va = nxt

    def anon_pages(self) -> tuple[dict[int, int], list[str]]:
        """Where every anonymous page of the model is (token -> pa, read from each mm's
        ptes), and what is wrong: a page missing, the zero page expected but not there,
        one page at two pfns or two pages at one, or a ``struct page`` whose refcount or
        mapcount is not the number of ptes mapping it (each pte holds one reference), or
        an allocated page no process maps (a leak)."""
        k = self.k
        token_pa: dict[int, int] = {}
        maps: dict[int, int] = {}
        out: list[str] = []
        for i, mm in enumerate(self.mms):
            for e in self.model.user_extents(i):
                if not e.anon or e.empty:
                    continue
                for va, pfn in self._pte_pfns(mm, e.va, e.end):
                    off = va - e.va
                    if pfn is None:
                        out.append(f"mm {i}: no present pte for the anonymous page at {va:#x}")
                        continue
                    if e.zero:
                        if not is_zero_pfn(k, pfn):
                            out.append(f"mm {i}: {va:#x} maps pfn {pfn:#x}, not the zero page")
                        continue
                    pa = pfn << k.PAGE_SHIFT
                    tok = e.pa + off
                    if token_pa.setdefault(tok, pa) != pa:
                        out.append(f"mm {i}: {va:#x} maps {pa:#x}, but the same (COW-shared) "
                                   f"page is {token_pa[tok]:#x} in another process")
                    maps[tok] = maps.get(tok, 0) + 1
        if len(set(token_pa.values())) != len(token_pa):
            out.append("two different anonymous pages are mapped at the same pfn")
        want = {token_pa[t] >> k.PAGE_SHIFT: (n, n) for t, n in maps.items()}
        got = page_state(k)
        for pfn in sorted(got.keys() | want.keys()):
            g, w = got.get(pfn), want.get(pfn)
            if g != w:
                out.append(f"anonymous page pfn {pfn:#x}: (refcount, mapcount) is "
                           f"{g or 'not allocated'}, expected {w or 'freed (no pte maps it)'}")
                break
        return token_pa, out

    def verify(self, hardware: bool = True) -> Stats:
        """Compare the machine with the model; raise :class:`CheckFailed` on any difference.

        ``hardware=False`` skips what depends only on memory, roots and the model (the
        walker's view, the anonymous pages): a side-by-side run checks it on the reference
        machine and has already found the other one equal in those
        (:func:`ptshim.compare.compare`); the returned stats then count no leaves.

        For every process (the original one and each fork child):

        - the hardware walker's leaves, merged into runs, equal the model's extents (leaf
          size (an upper bound for kernel mappings), PA, protection -- an anonymous pte is
          read-only while COW-shared or after an mprotect -- and user/kernel included);
          PROT "none" extents and a child's uncopied vmas have no leaf and a translation
          of them faults;
        - ``mm->pgtables_bytes`` equals the accounted size of the PTE/PMD/PUD tables charged
          to the mm; every table charged to the mm is reachable from its pgd and no table
          reachable from the user range belongs to someone else;

        and once: the anonymous pages (:meth:`anon_pages`: same pfn for a COW-shared page
        in every process, refcount = mapcount = the ptes mapping it, no leaked page);
        where one root serves both halves but the kernel keeps its own pgd (x86), the
        kernel half read through ``init_mm``'s pgd equals the model's kernel extents; no
        page-table lock is left held.
        """
        self._open()
        problems: list[str] = []
        leaves = 0
        if self.tainted is None and hardware:
            anon_pa, problems = self.anon_pages()
            for i in range(len(self.mms)):
                got, n = self._hardware_runs(self.registers(i), problems if i == 0 else None)
                leaves = leaves or n
                what = "hardware" if len(self.mms) == 1 else f"hardware (mm {i})"
                problems += compare_runs(what, got, self.expected_runs(mm=i, anon_pa=anon_pa))
                problems += self._check_none_faults(i)
            if not self.k.SEPARATE_KERNEL_ROOT and self.k.init_mm.pgd.pa != self.mm.pgd.pa:
                root = self.k.mm_root(self.k.init_mm)
                got_k, _n = self._hardware_runs(self.config.make_registers(root, root), None)
                problems += compare_runs("init_mm's pgd", got_k, self.expected_runs(False))
        for i, mm in enumerate(self.mms):
            tag = "" if len(self.mms) == 1 else f"mm {i}: "
            problems += [tag + p for p in self._check_accounting(mm)]
        problems += self._check_locks()
        if problems:
            more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
            raise CheckFailed(f"{self.config.name}: " + "; ".join(problems[:5]) + more)
        return self.stats(leaves)

    def _check_none_faults(self, mm: int = 0) -> list[str]:
        regs = self.registers(mm)
        out = []
        for e in self.model.view(mm):
            if e.has_leaves():
                continue
            for va in {e.va, e.end - self.limits.page_size}:
                t = self.config.walker.translate(self.k.mem, regs, va)
                if not isinstance(t, Fault):
                    what = "PROT_NONE" if e.prot == "none" else "unpopulated"
                    out.append(f"{what} address {va:#x} translates to {t.pa:#x} ({t.prot})")
        return out

    def accounted_bytes(self, mm: mm_struct | None = None) -> int:
        """What ``pgtables_bytes`` should be: the accounted size of every PTE, PMD and PUD
        table charged to the process mm (pgd and p4d tables are not accounted)."""
        k = self.k
        mm = self.mm if mm is None else mm
        size = {
            "pte": k.PTRS_PER_PTE * k.SIZEOF_PTE,
            "pmd": 0 if k.mm_pmd_folded(mm) else k.PTRS_PER_PMD * k.SIZEOF_PMD,
            "pud": 0 if k.mm_pud_folded(mm) else k.PTRS_PER_PUD * k.SIZEOF_PUD,
        }
        return sum(size.get(d.level, 0) * getattr(d, "nr_tables", 1)
                   for d in k.ptdescs.values() if d.mm is mm)

    def _check_accounting(self, mm: mm_struct) -> list[str]:
        k = self.k
        out = []
        want = self.accounted_bytes(mm)
        if mm.pgtables_bytes != want:
            out.append(f"pgtables_bytes is {mm.pgtables_bytes}, the tables charged to the mm "
                       f"account for {want}")
        # Tables by their base address, not by frame: a table may be smaller than a page
        # (arm64's pgd_cache, ppc64's PTE/PMD fragments: several share a frame) or larger
        # (s390x's 16 KiB region and segment tables).
        charged = set(k.tables_of(mm))
        # What the MMU reaches from the mm's root (the emulated TLB follows every table a
        # root reaches, decoding entries as the hardware does): user and kernel halves --
        # the mm may own tables of the kernel half too (i386 PAE: each pgd's kernel PMD).
        reach: set[int] = set()
        reach_k: set[int] = set()
        for pa, _nbytes, space in k.hw_tlb.tables_of(mm.asid):
            if space is not None:
                # named by the kernel table holding it: classic arm's hardware PTE tables
                # are the two upper KiB of a PTE page whose Linux table starts the page
                desc = k.table_desc(pa)
                (reach_k if space == KERNEL_SPACE else reach).add(
                    pa if desc is None else desc.pa)
        # Huge pmds of the user range, present or not (PROT_NONE), as the kernel sees them.
        huge_pmds = sum(n for raw, n in Counter(
            k.hw_tlb.entries_of(mm.asid, k.PMD_SIZE, mm.asid)).items()
            if k.pmd_trans_huge(pmd_t(raw)))
        unreachable = sorted(charged - reach - reach_k - {mm.pgd.pa})
        # Each user huge pmd has one PTE table deposited for its split (legacy.mm.huge_memory:
        # "one deposit per user huge pmd"): charged and accounted, but not in the tree.
        deposited = [t for t in unreachable if k.ptdescs[t].level == "pte"]
        orphans = [t for t in unreachable if t not in deposited]
        if len(deposited) != huge_pmds:
            out.append(f"{len(deposited)} unreachable PTE table(s) charged to the mm, but "
                       f"{huge_pmds} huge pmd(s) with a deposited table")
        if orphans:
            out.append(f"{len(orphans)} table(s) charged to the mm but unreachable: "
                       + ", ".join(f"{t:#x}" for t in orphans[:4]))
        foreign = sorted(t for t in reach if t not in charged)
        if foreign:
            out.append(f"{len(foreign)} table(s) reachable from the user range but not "
                       "charged to the mm: " + ", ".join(f"{t:#x}" for t in foreign[:4]))
        return out

    def _check_locks(self) -> list[str]:
        k = self.k
        held = [repr(m.page_table_lock) for m in k.mms if m.page_table_lock.held]
        held += [repr(d.ptl) for d in k.ptdescs.values() if d.ptl is not None and d.ptl.held]
        return [f"lock {n} left held" for n in held]

    def stats(self, leaves: int | None = None) -> Stats:
        k = self.k
        if leaves is None:
            leaves = 0 if self.closed else len(self.hardware_leaves())
        return Stats(
            ops=self.ops_done,
            user_extents=sum(1 for e in self.model if e.user),
            kernel_extents=sum(1 for e in self.model if not e.user),
            mapped_bytes=self.model.mapped_bytes(),
            tables=0 if self.closed else len(k.tables_of(self.mm)),
            pgtables_bytes=self.mm.pgtables_bytes,
            frames=len(k.mem),
            leaves=leaves,
        )

    # -- the end ---------------------------------------------------------------------------

    def teardown(self) -> None:
        """``mmput()`` every process, children first (``exit_mmap`` + ``__mmdrop``/
        ``check_mm``), and check that nothing is left charged to any of them and that every
        anonymous page was freed.  Kernel mappings stay: ``init_mm`` lives on."""
        self._open()
        self.closed = True
        problems = []
        for i in reversed(range(len(self.mms))):
            mm = self.mms[i]
            self.backend.teardown(mm)
            self.k.syscall_exit("teardown (mmput)" if len(self.mms) == 1
                                else f"teardown (mmput of mm {i})")
            tag = "" if len(self.mms) == 1 else f"mm {i}: "
            left = self.k.tables_of(mm)
            if left:
                problems.append(f"{tag}{len(left)} table frame(s) still charged to the mm "
                                f"after mmput")
            if mm.pgtables_bytes:
                problems.append(f"{tag}pgtables_bytes {mm.pgtables_bytes} after mmput")
            if mm in self.k.mms:
                problems.append(f"{tag}the mm is still listed after mmput")
        try:
            check_pages_freed(self.k)
        except CheckFailed as e:
            problems.append(str(e))
        problems += self._check_locks()
        if problems:
            raise CheckFailed(f"{self.config.name}: teardown: " + "; ".join(problems))

    def _open(self) -> None:
        if self.closed:
            raise BadInput("the session's mm has been torn down")


# -- helpers -------------------------------------------------------------------------------


def syscall_name(op: Op, user: bool) -> str:
    """What performs ``op`` as user space or a driver sees it (named in an -ENOMEM message):
    ``mmap``/``munmap``/``mprotect``/``fork``/``mremap`` for the user range, ``vmap_range``
    / ``vunmap_range`` / ``set_memory`` for the kernel range."""
    if isinstance(op, ForkOp | MremapOp):
        return op.kind
    if isinstance(op, MapOp):
        return "mmap" if user else "vmap_range"
    if isinstance(op, UnmapOp):
        return "munmap" if user else "vunmap_range"
    return "mprotect" if user else "set_memory"


def _oversized_kernel_leaves(kernel: list[tuple[int, int, int]], starts: list[int], va: int,
                             end: int, leaf: int) -> list[str]:
    """For each leaf of ``leaf`` bytes from ``va`` to ``end`` whose start lies in a kernel
    extent (``kernel``: sorted ``(va, end, page_size)``, ``starts`` their vas) mapped with
    smaller pages, one line naming it."""
    out = []
    j = max(bisect.bisect_right(starts, va) - 1, 0)
    while j < len(kernel) and kernel[j][0] < end:
        e_va, e_end, page_size = kernel[j]
        j += 1
        if leaf <= page_size or e_end <= va:
            continue
        first = va + -(-(max(va, e_va) - va) // leaf) * leaf  # the first leaf starting in it
        for lva in range(first, min(e_end, end), leaf):
            out.append(f"kernel leaf at {lva:#x} of size {leaf:#x} is larger than the "
                       f"mapping's page size {page_size:#x}")
    return out


def runs_of(items: Iterable[tuple[int, int, int, int, str, bool]],
            presorted: bool = False) -> list[Run]:
    """Merge ``(va, pa, size, leaf_size, prot, user)`` pieces into maximal runs.  With
    ``presorted`` (a walker's leaves, which come in VA order) the pieces are merged as they
    come, without holding them all; one out of order falls back to sorting."""
    runs: list[Run] = []
    it = iter(items) if presorted else iter(sorted(items))
    cur: list[Any] | None = None  # the run being extended: [va, pa, size, leaf, prot, user]
    for piece in it:
        va, pa, size, leaf, prot, user = piece
        if cur is not None:
            end = cur[0] + cur[2]
            if presorted and va < end:
                done = [(r.va, r.pa, r.size, r.leaf_size, r.prot, r.user) for r in runs]
                return runs_of([*done, tuple(cur), piece, *it])
            if (end == va and cur[1] + cur[2] == pa and cur[3] == leaf and cur[4] == prot
                    and cur[5] == user):
                cur[2] += size
                continue
            runs.append(Run(*cur))
        cur = [va, pa, size, leaf, prot, user]
    if cur is not None:
        runs.append(Run(*cur))
    return runs


def compare_runs(what: str, got: list[Run], want: list[Run]) -> list[str]:
    """Differences between two run lists, first ones first."""
    if got == want:
        return []
    out = []
    gs, ws = set(got), set(want)
    for r in want:
        if r not in gs:
            out.append(f"{what}: missing {r.describe()}")
    for r in got:
        if r not in ws:
            out.append(f"{what}: unexpected {r.describe()}")
    return out or [f"{what}: runs differ in order"]


def table_frames(k: GenericKernel, base: int, nbytes: int) -> Iterator[int]:
    """Frames spanned by a table of ``nbytes`` at ``base``, each named by ``k.frame_of``:
    the page holding its ``struct ptdesc`` (the first page of an s390x 16 KiB table)."""
    f = base - base % k.config.page_size
    while f < base + nbytes:
        yield k.frame_of(f)
        f += k.config.page_size


