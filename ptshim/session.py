"""A session: one booted kernel, one process ``mm``, a backend that drives the kernel, and
the model of what should be mapped.

::

    s = Session("x86_64")                  # boot, mm_alloc(), LegacyBackend
    s.run(load_scenario("examples/huge-pages.json"))  # validate all ops, then apply each
    s.verify()                             # hardware walk == model; pgtables_bytes right
    s.teardown()                           # mmput(): check_mm, nothing charged to the mm

Ops go to the process ``mm`` for user-range addresses and to ``init_mm`` for kernel-range
ones.  Huge leaves cut by an unmap or protect are split by the kernel code the backend
drives (``__split_vma`` → ``vma_adjust_trans_huge``, ``zap_pmd_range``,
``change_protection``; for ``init_mm`` the x86 cpa split ``split_large_page``); the model
follows with :meth:`Backend.split_size`.  A protect leaves alone what already has the
requested protection (``mprotect_fixup`` skips a vma whose flags do not change).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

from arches.config import ArchConfig, Fault, Translation
from arches.errors import BadInput, CheckFailed, OutOfMemory
from legacy import GenericKernel, boot, mm_struct
from legacy.mm_types import mmap_write_locked
from legacy.types import EntryPtr
from ptshim.backends import Backend, make_backend
from ptshim.model import Model, Prot, Run
from ptshim.scenario import (
    Limits,
    MapOp,
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

    def roots(self) -> tuple[int, int]:
        """(user root, kernel root) physical addresses of the process as the MMU uses them."""
        user = self.mm.pgd.pa
        kernel = self.k.init_mm.pgd.pa if self.k.SEPARATE_KERNEL_ROOT else user
        return user, kernel

    def registers(self) -> dict[str, int]:
        return self.config.make_registers(*self.roots())

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
            # A user op runs as its syscall does: under mmap_lock held for write.
            with mmap_write_locked(self.mm) if user else nullcontext():
                self._dispatch(op, user)
        except OutOfMemory as e:
            if isinstance(op, MapOp):
                raise OutOfMemory(f"{label}: -ENOMEM ({e}); the map was undone") from None
            # munmap/mprotect are not atomic in the kernel either: what was done stays done.
            self.tainted = f"{label} failed half-way"
            raise OutOfMemory(f"{label}: -ENOMEM ({e}); the op is partly done") from None
        finally:
            self.k.hw_tlb.op = ""
        # Back to user space: no lock held, no stale TLB entry (TlbError / LockError).
        self.k.syscall_exit(label)
        apply_to_model(op, user, self.limits, self.model, self.split_size)
        self.ops_done += 1

    def _dispatch(self, op: Op, user: bool) -> None:
        """Run ``op`` through the backend (no checks, no locks: :meth:`apply` does those)."""
        b = self.backend
        if isinstance(op, MapOp):
            ps = self.limits.page_size if op.page_size is None else op.page_size
            if user:
                b.map_user(self.mm, op.va, op.size, op.pa, op.prot, ps)
            else:
                b.map_kernel(op.va, op.size, op.pa, op.prot, ps)
        elif isinstance(op, UnmapOp):
            if user:
                b.unmap_user(self.mm, op.va, op.size)
            else:
                b.unmap_kernel(op.va, op.size)
        elif user:
            b.protect_user(self.mm, op.va, op.size, op.prot)
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

    def hardware_leaves(self, root: int | None = None) -> list[Translation]:
        """Every leaf the hardware walker reads from the process's roots (or from ``root``
        as both roots)."""
        regs = (self.registers() if root is None
                else self.config.make_registers(root, root))
        return list(self.config.walker.leaves(self.k.mem, regs))

    def expected_runs(self, user: bool | None = None) -> list[Run]:
        """The model as runs of leaves, as the hardware should show them.  A kernel
        mapping's page size is the *largest* leaf the kernel may use (vmap's
        ``max_page_shift``: it falls back to smaller leaves when a huge one cannot be
        installed), so kernel runs carry leaf size 0 here; :meth:`_check_kernel_leaf_sizes`
        checks the bound."""
        return runs_of(
            (e.va, e.pa, e.size, e.page_size if e.user else 0,
             hw_prot(self.config, e.prot), e.user)
            for e in self.model
            if e.prot != "none" and (user is None or e.user == user)
        )

    def _check_kernel_leaf_sizes(self, leaves: list[Translation]) -> list[str]:
        out = []
        for t in leaves:
            if t.user:
                continue
            e = next((e for e in self.model if e.va <= t.va < e.end and not e.user), None)
            if e is not None and t.size > e.page_size:
                out.append(f"kernel leaf at {t.va:#x} of size {t.size:#x} is larger than the "
                           f"mapping's page size {e.page_size:#x}")
        return out

    def verify(self) -> Stats:
        """Compare the machine with the model; raise :class:`CheckFailed` on any difference.

        - the hardware walker's leaves, merged into runs, equal the model's extents (leaf
          size (an upper bound for kernel mappings), PA, protection and user/kernel
          included); PROT "none" extents have no leaf and
          a translation of them faults;
        - where one root serves both halves but the kernel keeps its own pgd (x86), the
          kernel half read through ``init_mm``'s pgd equals the model's kernel extents;
        - ``mm->pgtables_bytes`` equals the accounted size of the PTE/PMD/PUD tables charged
          to the mm; every table charged to the mm is reachable from its pgd and no table
          reachable from the user range belongs to someone else;
        - no page-table lock is left held.
        """
        self._open()
        problems: list[str] = []
        leaves = self.hardware_leaves()
        if self.tainted is None:
            got = runs_of((t.va, t.pa, t.size, t.size if t.user else 0, t.prot, t.user)
                          for t in leaves)
            problems += compare_runs("hardware", got, self.expected_runs())
            problems += self._check_kernel_leaf_sizes(leaves)
            problems += self._check_none_faults()
            if not self.k.SEPARATE_KERNEL_ROOT and self.k.init_mm.pgd.pa != self.mm.pgd.pa:
                k_leaves = self.hardware_leaves(self.k.init_mm.pgd.pa)
                got_k = runs_of(
                    (t.va, t.pa, t.size, t.size if t.user else 0, t.prot, t.user)
                    for t in k_leaves
                )
                problems += compare_runs("init_mm's pgd", got_k, self.expected_runs(False))
        problems += self._check_accounting()
        problems += self._check_locks()
        if problems:
            more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
            raise CheckFailed(f"{self.config.name}: " + "; ".join(problems[:5]) + more)
        return self.stats(len(leaves))

    def _check_none_faults(self) -> list[str]:
        regs = self.registers()
        out = []
        for e in self.model:
            if e.prot != "none":
                continue
            for va in {e.va, e.end - self.limits.page_size}:
                t = self.config.walker.translate(self.k.mem, regs, va)
                if not isinstance(t, Fault):
                    out.append(f"PROT_NONE address {va:#x} translates to {t.pa:#x} ({t.prot})")
        return out

    def accounted_bytes(self) -> int:
        """What ``pgtables_bytes`` should be: the accounted size of every PTE, PMD and PUD
        table charged to the process mm (pgd and p4d tables are not accounted)."""
        k, mm = self.k, self.mm
        size = {
            "pte": k.PTRS_PER_PTE * k.SIZEOF_PTE,
            "pmd": 0 if k.mm_pmd_folded(mm) else k.PTRS_PER_PMD * k.SIZEOF_PMD,
            "pud": 0 if k.mm_pud_folded(mm) else k.PTRS_PER_PUD * k.SIZEOF_PUD,
        }
        return sum(size.get(d.level, 0) * getattr(d, "nr_tables", 1)
                   for d in k.ptdescs.values() if d.mm is mm)

    def _check_accounting(self) -> list[str]:
        k, mm = self.k, self.mm
        out = []
        want = self.accounted_bytes()
        if mm.pgtables_bytes != want:
            out.append(f"pgtables_bytes is {mm.pgtables_bytes}, the tables charged to the mm "
                       f"account for {want}")
        charged = {k.frame_of(pa) for pa in k.tables_of(mm)}
        reach, huge_pmds = reachable_frames(k, mm, *self.limits.user_range)
        # The mm may own tables of the kernel half too (i386 PAE: the kernel PMD of each pgd).
        reach_k, _ = reachable_frames(k, mm, *self.limits.kernel_range)
        root = set(table_frames(k, mm.pgd.pa, k.PTRS_PER_PGD * k.SIZEOF_PGD))
        unreachable = sorted(charged - reach - reach_k - root)
        # Each user huge pmd has one PTE table deposited for its split (legacy.mm.huge_memory:
        # "one deposit per user huge pmd"): charged and accounted, but not in the tree.
        deposited = [f for f in unreachable if k.ptdescs[f].level == "pte"]
        orphans = [f for f in unreachable if f not in deposited]
        if len(deposited) != huge_pmds:
            out.append(f"{len(deposited)} unreachable PTE table(s) charged to the mm, but "
                       f"{huge_pmds} huge pmd(s) with a deposited table")
        if orphans:
            out.append(f"{len(orphans)} table frame(s) charged to the mm but unreachable: "
                       + ", ".join(f"{f:#x}" for f in orphans[:4]))
        foreign = sorted(f for f in reach if f not in charged)
        if foreign:
            out.append(f"{len(foreign)} table frame(s) reachable from the user range but not "
                       "charged to the mm: " + ", ".join(f"{f:#x}" for f in foreign[:4]))
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
        """``mmput()`` the process mm (``exit_mmap`` + ``__mmdrop``/``check_mm``) and check
        that nothing is left charged to it.  Kernel mappings stay: ``init_mm`` lives on."""
        self._open()
        self.backend.teardown(self.mm)
        self.closed = True
        self.k.syscall_exit("teardown (mmput)")
        left = self.k.tables_of(self.mm)
        problems = []
        if left:
            problems.append(f"{len(left)} table frame(s) still charged to the mm after mmput")
        if self.mm.pgtables_bytes:
            problems.append(f"pgtables_bytes {self.mm.pgtables_bytes} after mmput")
        if self.mm in self.k.mms:
            problems.append("the mm is still listed after mmput")
        problems += self._check_locks()
        if problems:
            raise CheckFailed(f"{self.config.name}: teardown: " + "; ".join(problems))

    def _open(self) -> None:
        if self.closed:
            raise BadInput("the session's mm has been torn down")


# -- helpers -------------------------------------------------------------------------------


def runs_of(items: Iterable[tuple[int, int, int, int, str, bool]]) -> list[Run]:
    """Merge ``(va, pa, size, leaf_size, prot, user)`` pieces (VA order) into maximal runs."""
    runs: list[Run] = []
    for va, pa, size, leaf, prot, user in sorted(items):
        if runs:
            r = runs[-1]
            if (r.end == va and r.pa + r.size == pa and r.leaf_size == leaf
                    and r.prot == prot and r.user == user):
                runs[-1] = Run(r.va, r.pa, r.size + size, leaf, prot, user)
                continue
        runs.append(Run(va, pa, size, leaf, prot, user))
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
    """Frames spanned by a table of ``nbytes`` at ``base``."""
    f = k.frame_of(base)
    while f < base + nbytes:
        yield f
        f += k.config.page_size


def reachable_frames(k: GenericKernel, mm: mm_struct, start: int, end: int
                     ) -> tuple[set[int], int]:
    """Frames of every non-root table reachable from ``mm``'s pgd for ``[start, end)``, and
    the number of huge pmd leaves met, walked with the legacy API without modifying
    anything.  A folded level's "table" is its parent entry (same address): it adds
    nothing."""
    frames: set[int] = set()
    huge_pmds = 0

    def note(child: EntryPtr, parent: EntryPtr, index: int, entries: int) -> None:
        if child.pa != parent.pa:
            base = child.pa - index * child.size
            frames.update(table_frames(k, base, entries * child.size))

    m = k.ULONG_MASK
    addr = start
    pgd = k.pgd_offset(mm, addr)
    while addr < end:
        nxt = k.pgd_addr_end(addr, end)
        v = k.pgdp_get(pgd)
        if not (k.pgd_none(v) or k.pgd_bad(v) or k.pgd_leaf(v)):
            a4 = addr
            p4d = k.p4d_offset(pgd, a4)
            note(p4d, pgd, k.p4d_index(a4), k.PTRS_PER_P4D)
            while True:
                n4 = k.p4d_addr_end(a4, nxt)
                v4 = k.p4dp_get(p4d)
                if not (k.p4d_none(v4) or k.p4d_bad(v4) or k.p4d_leaf(v4)):
                    a3 = a4
                    pud = k.pud_offset(p4d, a3)
                    note(pud, p4d, k.pud_index(a3), k.PTRS_PER_PUD)
                    while True:
                        n3 = k.pud_addr_end(a3, n4)
                        v3 = k.pudp_get(pud)
                        if not (k.pud_none(v3) or k.pud_leaf(v3) or k.pud_bad(v3)):
                            a2 = a3
                            pmd = k.pmd_offset(pud, a2)
                            note(pmd, pud, k.pmd_index(a2), k.PTRS_PER_PMD)
                            while True:
                                n2 = k.pmd_addr_end(a2, n3)
                                v2 = k.pmdp_get(pmd)
                                if k.pmd_leaf(v2):
                                    huge_pmds += 1
                                elif not (k.pmd_none(v2) or k.pmd_bad(v2)):
                                    pte = k.pte_offset_kernel(pmd, a2)
                                    note(pte, pmd, k.pte_index(a2), k.PTRS_PER_PTE)
                                pmd = pmd + 1
                                a2 = n2
                                if a2 == n3:
                                    break
                        pud = pud + 1
                        a3 = n3
                        if a3 == n4:
                            break
                p4d = p4d + 1
                a4 = n4
                if a4 == nxt:
                    break
        pgd = pgd + 1
        addr = nxt
        if addr == 0 or addr & m != addr:
            break
    return frames, huge_pmds
