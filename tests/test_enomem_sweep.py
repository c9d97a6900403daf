"""-ENOMEM at every allocation of every op, on every configuration, in both APIs (issue #9).

For each configuration and each op of :func:`cases` (every op kind of the scenario grammar:
maps of every page size and protection, user and kernel, anonymous maps, unmaps and
protects that split PUD and PMD leaves, fork, mremap), run after a small prefix of ops:

1. count the frame allocations ``N`` the op makes when nothing fails (the same on both APIs);
2. for ``i`` in ``1..N``, on fresh machines (one per API), run the prefix, make the ``i``-th
   allocation of the op fail (``PhysMem.fail_after(i)``) and require:

   - the op raises :class:`OutOfMemory` with the documented message (docs/cli.md: ``op N
     (kind): -ENOMEM from SYSCALL (an allocation failed); ...``), the same text in both
     APIs, and returns to user space clean (``syscall_exit``: no lock held, no stale TLB
     entry);
   - right after the failed op: ``Session.verify()`` (the model for an undone map; else the
     accounting: ``pgtables_bytes`` = the tables charged to the mm, every charged table
     reachable from the roots or a THP deposit, no lock held), every allocated frame
     reachable from a root or deposited (:func:`leaked_frames`), ``init_mm``'s
     ``pgtables_bytes`` grown by no more than the PMD/PUD tables added to it, and a failed
     user map leaves no frame it allocated;
   - the two machines are identical (:func:`ptshim.compare.compare`: frames byte for byte,
     ``pgtables_bytes``, flushes, deposits, pages);
   - after teardown (``mmput``): no leaked frame (only ``init_mm``'s tables are left), and
     the two machines are identical again.

An allocation the kernel can do without (``Case.fallback``: x86's ``pud_free_pmd_page``
bounce page) must instead leave the op successful and the model verified.  A teardown is
not repeated for a state (:func:`state_key`) an earlier allocation point already left and
tore down cleanly: most of a PUD split's 513 allocation points leave the same state.

The default run covers :data:`DEFAULT_ARCHES` (every allocation point of every op there);
``-m slow`` (``make test-slow``) runs every other configuration of ``legacy.arch_names()``.
Also here: the CLI reports the same injected -ENOMEM with the same exit code and line from
``run``, ``run --export`` and ``dump`` in both APIs, and addresses in messages are printed
in full.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

import legacy
from arches.errors import OutOfMemory, PtshimError
from legacy.mm.vma import vma_anon_vma, vma_is_anonymous
from ptshim.compare import compare, snapshot, snapshot_machine
from ptshim.scenario import Limits, Op, load_json_scenario
from ptshim.session import Session, syscall_name, table_frames

APIS = ("legacy", "unified")
ALL_ARCHES = legacy.arch_names()
DEFAULT_ARCHES: list[str] = [a for a in ("x86_64", "i386-pae", "arm64-4k-39", "arm64-16k-36")
                  if a in ALL_ARCHES]
"""Every kind of geometry once: user PUD leaves (x86_64), a 3-level 32-bit PAE kernel with
preallocated PMDs, a folded pud with kernel PUD blocks (arm64-4k-39), 16K pages with the pud
folded into the pmd (arm64-16k-36)."""

OOM_MESSAGE = re.compile(
    r"^op (\d+) \((map|unmap|protect|fork|mremap)\): -ENOMEM from (\S+) "
    r"\(an allocation failed\); (the map was undone|the op is partly done)$")
"""What a failed op says (docs/cli.md "-ENOMEM"): the op, the syscall, what is left."""


@dataclass
class Case:
    name: str
    prefix: list[dict[str, Any]]
    op: dict[str, Any]
    fallback: set[int] = field(default_factory=set)
    """Allocations whose failure the kernel survives by falling back (the op succeeds)."""


def _limits(arch: str) -> tuple[legacy.GenericKernel, Limits]:
    k = legacy.boot(arch)
    return k, Limits.from_kernel(k)


def cases(arch: str) -> list[Case]:
    """The ops of the sweep for one configuration, each after a small prefix."""
    k, lim = _limits(arch)
    P, M, U = k.PAGE_SIZE, k.PMD_SIZE, k.PUD_SIZE
    uleaf, kleaf = set(lim.user_leaf_sizes), set(lim.kernel_leaf_sizes)
    pmd_user = M != P and M in uleaf
    pud_user = U not in (M, P) and U in uleaf
    pmd_kern = M != P and M in kleaf
    pud_kern = U not in (M, P) and U in kleaf
    if not pud_user and 3 * U > lim.user_range[1]:
        # no pud leaves and a pud too big to lay out by (32-bit arm LPAE: the folded pud
        # is 1 GiB, user space 3 GiB less 16 MiB): the layout's block is smaller
        U = 1 << (lim.user_range[1].bit_length() - 3)
    ub = U
    D = ub + max(U, 8 * M)  # where mremap moves to: clear of every mapping below
    assert ub + 2 * U <= lim.user_range[1], arch
    big = max(kleaf)
    klo, khi = lim.kernel_range
    kb = -(-klo // big) * big
    if kb + 3 * big <= khi:
        kb += big
    out: list[Case] = []

    def add(name: str, prefix: list[dict[str, Any]], op: dict[str, Any],
            fallback: set[int] | None = None) -> None:
        out.append(Case(name, prefix, op, fallback or set()))

    def m(va: int, size: int, prot: str = "rw", pa: int = M, ps: int | None = None
          ) -> dict[str, Any]:
        d: dict[str, Any] = {"op": "map", "va": va, "size": size, "prot": prot, "pa": pa}
        if ps is not None:
            d["page_size"] = ps
        return d

    pages = m(ub + M - 2 * P, 4 * P)  # two PTE tables (a PMD boundary)
    # -- user maps -------------------------------------------------------------------------
    for prot in ("r", "rw", "rx", "rwx", "none"):
        add(f"map-pages-{prot}", [], m(ub + M - 2 * P, 4 * P, prot))
    add("map-pages-next-to", [m(ub + M - 8 * P, P, "r", pa=0)], pages)
    if pmd_user:
        for prot in ("rw", "none"):
            add(f"map-pmd-{prot}", [], m(ub + 2 * M, 2 * M, prot, pa=2 * M, ps=M))
    if pud_user:
        add("map-pud", [], m(ub, U, "rw", pa=U, ps=U))
    for prot in ("rw", "r", "none"):
        add(f"map-anon-{prot}", [], {"op": "map", "va": ub + M - 2 * P, "size": 4 * P,
                                     "prot": prot, "anon": True})
    # -- user unmap / protect, with splits ---------------------------------------------------
    add("unmap-pages", [pages], {"op": "unmap", "va": ub + M - P, "size": 2 * P})
    add("protect-pages", [pages], {"op": "protect", "va": ub + M - P, "size": 2 * P,
                                   "prot": "r"})
    if pmd_user:
        huge = m(ub + 2 * M, 2 * M, pa=2 * M, ps=M)
        add("unmap-pmd-piece", [huge], {"op": "unmap", "va": ub + 2 * M + P, "size": P})
        add("protect-pmd-piece", [huge], {"op": "protect", "va": ub + 2 * M + P, "size": P,
                                          "prot": "r"})
    if pud_user:
        huge = m(ub, U, pa=U, ps=U)
        # munmap over two vmas: pages below the leaf, then a piece of the leaf.
        add("unmap-pages-and-pud-piece", [m(ub - 4 * P, 4 * P, pa=0), huge],
            {"op": "unmap", "va": ub - 2 * P, "size": 2 * P + M})
        for kind in ("unmap", "protect"):
            extra = {"prot": "r"} if kind == "protect" else {}
            add(f"{kind}-pud-piece", [huge], {"op": kind, "va": ub + 3 * M, "size": M, **extra})
            add(f"{kind}-pud-pmd-piece", [huge],
                {"op": kind, "va": ub + 3 * M + P, "size": P, **extra})
    # -- fork, mremap --------------------------------------------------------------------------
    anon: dict[str, Any] = {"op": "map", "va": ub + 5 * M - 2 * P, "size": 4 * P,
                            "prot": "rw", "anon": True}
    prefix = [pages, anon]
    if pmd_user:
        prefix.append(m(ub + 2 * M, 2 * M, pa=2 * M, ps=M))
    if pud_user:
        prefix.append(m(ub + U, U, pa=U, ps=U))
    add("fork", prefix, {"op": "fork"})
    add("mremap-pages", [pages], {"op": "mremap", "va": ub + M - 2 * P, "size": 4 * P,
                                  "new_va": D + 2 * M - 2 * P})
    add("mremap-anon", [anon], {"op": "mremap", "va": anon["va"], "size": 4 * P,
                                "new_va": D + 2 * M - 2 * P})
    if pmd_user:
        huge = m(ub + 2 * M, 2 * M, pa=2 * M, ps=M)
        add("mremap-pmd-aligned", [huge], {"op": "mremap", "va": ub + 2 * M, "size": 2 * M,
                                           "new_va": D + 4 * M})
        add("mremap-pmd-unaligned", [huge], {"op": "mremap", "va": ub + 2 * M, "size": 2 * M,
                                             "new_va": D + 4 * M + P})
    # -- tables allocated across a PUD boundary; ops in a fork child ------------------------
    add("map-pages-across-pud", [], m(2 * U - 2 * P, 4 * P, pa=0))
    if pmd_user and U >= 4 * M:
        add("map-pmd-across-pud", [m(2 * U - 3 * M, P, "r", pa=0)],
            m(2 * U - M, 2 * M, pa=2 * M, ps=M))
    if k.PTRS_PER_PTE <= 512:
        # A PMD-aligned range of PTEs moves its whole PTE table (move_normal_pmd).
        add("mremap-pte-table", [m(ub + 8 * M, M, pa=0)],
            {"op": "mremap", "va": ub + 8 * M, "size": M, "new_va": D + 4 * M})
    add("mremap-pages-shifted", [pages], {"op": "mremap", "va": ub + M - 2 * P,
                                          "size": 4 * P, "new_va": D + 2 * M - 3 * P})
    if pmd_user:
        # A vma of PTEs split off a huge pmd (its deposit withdrawn), then moved or forked.
        cut = [m(ub + 2 * M, 2 * M, pa=2 * M, ps=M),
               {"op": "unmap", "va": ub + 3 * M - P, "size": P}]
        add("mremap-split-pmd", cut, {"op": "mremap", "va": ub + 2 * M, "size": M - P,
                                      "new_va": D + 2 * M - 3 * P})
        add("fork-split-pmd", cut, {"op": "fork"})
    child: list[dict[str, Any]] = [anon, {"op": "fork"}]
    add("fork-child", child, {"op": "fork", "mm": 1})
    add("map-in-child", child, {**pages, "mm": 1})
    add("mremap-cow", child, {"op": "mremap", "va": anon["va"], "size": 4 * P,
                              "new_va": D + 2 * M - 2 * P})
    # -- kernel ----------------------------------------------------------------------------
    kpages = m(kb + M - 2 * P, 4 * P)
    for prot in ("r", "rw", "rx", "rwx", "none"):
        add(f"kmap-pages-{prot}", [], m(kb + M - 2 * P, 4 * P, prot))
    add("kmap-pages-next-to", [m(kb + M - 8 * P, P, "r", pa=0)], kpages)
    add("kunmap-pages", [kpages], {"op": "unmap", "va": kb + M - P, "size": 2 * P})
    add("kprotect-pages", [kpages], {"op": "protect", "va": kb + M - P, "size": 2 * P,
                                     "prot": "r"})
    if pmd_kern:
        for prot in ("r", "rw", "rx", "rwx"):
            add(f"kmap-pmd-{prot}", [], m(kb + 2 * M, 2 * M, prot, pa=2 * M, ps=M))
        huge = m(kb + 2 * M, 2 * M, pa=2 * M, ps=M)
        for kind in ("unmap", "protect"):
            extra = {"prot": "r"} if kind == "protect" else {}
            add(f"k{kind}-pmd-piece", [huge],
                {"op": kind, "va": kb + 2 * M + P, "size": P, **extra})
            add(f"k{kind}-pmd-across", [huge],
                {"op": kind, "va": kb + 3 * M - P, "size": 2 * P, **extra})
    if pmd_kern:
        # vmap_try_huge_pmd over an emptied PTE table: pmd_free_pte_page frees it first.
        add("kmap-pmd-over-table", [m(kb + 2 * M, P), {"op": "unmap", "va": kb + 2 * M,
                                                         "size": P}],
            m(kb + 2 * M, 2 * M, pa=2 * M, ps=M))
    if pud_kern:
        add("kmap-pud", [], m(kb, U, "rw", pa=U, ps=U))
        # x86 pud_free_pmd_page allocates a bounce page (pmd_sv) first; without it it
        # returns 0 and vmap_try_huge_pud falls back to PMD leaves (arch/x86/mm/pgtable.c).
        add("kmap-pud-over-table", [m(kb + M, P), {"op": "unmap", "va": kb + M, "size": P}],
            m(kb, U, "rw", pa=U, ps=U), {1} if k.config.family == "x86" else set())
        huge = m(kb, U, pa=U, ps=U)
        for kind in ("unmap", "protect"):
            extra = {"prot": "r"} if kind == "protect" else {}
            add(f"k{kind}-pud-piece", [huge], {"op": kind, "va": kb + 3 * M, "size": M, **extra})
            add(f"k{kind}-pud-pmd-piece", [huge],
                {"op": kind, "va": kb + 3 * M + P, "size": P, **extra})
    return out


# -- what is checked -----------------------------------------------------------------------


def leaked_frames(s: Session, torn_down: bool = False) -> list[str]:
    """Allocated frames nothing accounts for: every frame must be a page-table frame
    reachable from an active root (``init_mm`` and every live process), or a PTE table
    deposited for a user huge pmd of a live process (their number is checked by
    ``Session.verify``).  After teardown only ``init_mm``'s tables may be left."""
    k = s.k
    live = [] if torn_down else list(s.mms)
    reach: set[int] = set()
    for asid in [k.init_mm.asid] + [mm.asid for mm in live]:
        for pa, nbytes, _ in k.hw_tlb.tables_of(asid):
            reach.update(table_frames(k, pa, nbytes))
    out = []
    for raw in k.mem.allocated_frames():
        pa = k.frame_of(raw)  # a table of several frames is named by its first (s390x)
        if pa in reach:
            continue
        d = k.ptdescs.get(pa)
        if d is None:
            out.append(f"frame {pa:#x} is allocated but is no page-table frame")
        elif not (d.level == "pte" and any(d.mm is mm for mm in live)):
            owner = ("init_mm" if d.mm is k.init_mm else
                     f"mm {next((i for i, mm in enumerate(s.mms) if d.mm is mm), '?')}"
                     if d.mm is not None else "no mm")
            out.append(f"{d.level} table {pa:#x} ({owner}) is allocated but unreachable")
    return out


def _init_accounted(s: Session) -> int:
    """What ``init_mm``'s PMD/PUD tables would account for.  ``__pmd_alloc``/``__pud_alloc``
    (vmap) charge ``init_mm``; the split of a kernel leaf (x86 cpa ``split_large_page``,
    arm64 ``split_pud``/``split_pmd``) and ``__pte_alloc_kernel`` charge nothing: a failed
    op may grow ``init_mm``'s ``pgtables_bytes`` by at most this much, never shrink it."""
    k = s.k
    size = {"pmd": 0 if k.mm_pmd_folded(k.init_mm) else k.PTRS_PER_PMD * k.SIZEOF_PMD,
            "pud": 0 if k.mm_pud_folded(k.init_mm) else k.PTRS_PER_PUD * k.SIZEOF_PUD}
    return sum(size.get(d.level, 0) for d in k.ptdescs.values() if d.mm is k.init_mm)


def _ops(arch: str, case: Case) -> tuple[list[Op], Op]:
    sc = load_json_scenario({"ops": [*case.prefix, case.op]}, f"enomem-{case.name}")
    s = Session(arch)
    s.validate(sc)  # every case is valid input for its configuration
    return list(sc.ops[:-1]), sc.ops[-1]


def _session(arch: str, api: str, prefix: list[Op]) -> Session:
    s = Session(arch, api)
    for op in prefix:
        s.apply(op)
    s.k.hw_tlb.flushes.clear()
    return s


def allocations(arch: str, case: Case) -> int:
    """How many frames the op allocates when nothing fails (the same in both APIs)."""
    prefix, op = _ops(arch, case)
    counts = []
    for api in APIS:
        s = _session(arch, api, prefix)
        before = s.k.mem.allocations
        s.apply(op)
        counts.append(s.k.mem.allocations - before)
        s.verify()
        assert not leaked_frames(s), (arch, case.name, api, leaked_frames(s))
        s.teardown()
        assert not leaked_frames(s, True), (arch, case.name, api, leaked_frames(s, True))
    assert counts[0] == counts[1], f"{arch} {case.name}: allocations {counts} (legacy, unified)"
    return counts[0]


def state_key(s: Session) -> tuple[object, ...]:
    """Everything a teardown depends on: page-table memory, descriptors, accounting,
    deposits, data pages, and every process's vmas.  Two sessions with the same key tear
    down the same way (the emulation is deterministic)."""
    k = s.k
    frames = hashlib.sha256()
    for pa, data in k.mem.image():
        frames.update(pa.to_bytes(8, "little") + data)
    st = snapshot_machine(k, s.mms)
    vmas = tuple(tuple((v.vm_start, v.vm_end, v.vm_flags, v.vm_page_prot, v.vm_pgoff,
                        vma_is_anonymous(v), vma_anon_vma(v) is not None) for v in mm.mmap)
                 for mm in s.mms)
    descs = tuple(sorted((pa, d.level, next((i for i, mm in enumerate(s.mms) if d.mm is mm),
                                              -1 if d.mm is k.init_mm else -2))
                         for pa, d in k.ptdescs.items()))
    return (frames.digest(), st.pgtables_bytes, st.init_pgtables_bytes, st.mm_pgtables,
            st.deposits, st.pages, vmas, descs)


def fail_at(arch: str, case: Case, i: int,
            torn_down: set[tuple[object, ...]] | None = None) -> list[str]:
    """Run ``case`` with its ``i``-th allocation failing on both APIs; the problems found.
    ``torn_down``: the states (:func:`state_key` of both sessions) already torn down and
    found clean by an earlier call -- the teardown of such a state is not repeated (many
    allocations of a loop, e.g. the 512 deposits of a PUD split, leave the same state)."""
    prefix, op = _ops(arch, case)
    where = f"{arch} {case.name} allocation {i}"
    problems: list[str] = []
    sessions = [_session(arch, api, prefix) for api in APIS]
    messages = []
    for s in sessions:
        frames = set(s.k.mem.allocated_frames())
        user = s.check(op)
        init_bytes, init_tables = s.k.init_mm.pgtables_bytes, _init_accounted(s)
        s.k.mem.fail_after(i)
        try:
            s.apply(op)
            messages.append("no error")
        except OutOfMemory as e:
            messages.append(str(e))
        except PtshimError as e:  # e.g. syscall_exit: a lock left held, a stale TLB entry
            messages.append(f"{type(e).__name__}: {e}")
        s.k.mem.fail_after(0)
        tag = f"{where} ({s.api})"
        msg = messages[-1]
        found = OOM_MESSAGE.match(msg)
        if i in case.fallback:
            if msg != "no error":
                problems.append(f"{tag}: the kernel falls back here, but: {msg}")
        elif (found is None or int(found[1]) != op.index or found[2] != op.kind
              or found[3] != syscall_name(op, user)
              or (found[4] == "the map was undone") != (op.kind == "map")):
            problems.append(f"{tag}: not the documented -ENOMEM error: {msg}")
        try:
            s.verify()
        except PtshimError as e:
            problems.append(f"{tag}: after the failed op: {e}")
        problems += [f"{tag}: after the failed op: {p}" for p in leaked_frames(s)]
        grown = s.k.init_mm.pgtables_bytes - init_bytes
        if not 0 <= grown <= _init_accounted(s) - init_tables:
            problems.append(f"{tag}: init_mm pgtables_bytes grew by {grown}, its PMD/PUD "
                            f"tables by {_init_accounted(s) - init_tables}")
        # Undone by munmap: nothing it allocated is left (free_pgtables may free more, e.g.
        # a PAE pgd's preallocated PMD: free_pmd_range's pud_clear + pmd_free_tlb).
        left = set(s.k.mem.allocated_frames()) - frames
        if op.kind == "map" and user and left:
            problems.append(f"{tag}: the failed user map left frame(s) "
                            + ", ".join(f"{pa:#x}" for pa in sorted(left)))
    if messages[0] != messages[1]:
        problems.append(f"{where}: legacy says {messages[0]!r}, unified {messages[1]!r}")
    d = compare(snapshot(sessions[0]), snapshot(sessions[1]),
                max(sessions[0].k.SIZEOF_PTE, sessions[0].k.SIZEOF_PGD))
    if d is not None:
        problems.append(f"{where}: legacy and unified differ after the failed op: {d}")
    key = (state_key(sessions[0]), state_key(sessions[1]))
    if torn_down is not None and key in torn_down and not problems:
        return problems
    for s in sessions:
        try:
            s.teardown()
        except PtshimError as e:
            problems.append(f"{where} ({s.api}): teardown: {e}")
            continue
        problems += [f"{where} ({s.api}): after teardown: {p}"
                     for p in leaked_frames(s, torn_down=True)]
    d = compare(snapshot(sessions[0]), snapshot(sessions[1]),
                max(sessions[0].k.SIZEOF_PTE, sessions[0].k.SIZEOF_PGD))
    if d is not None:
        problems.append(f"{where}: legacy and unified differ after teardown: {d}")
    if torn_down is not None and not problems:
        torn_down.add(key)
    return problems


def sweep(arch: str, case: Case) -> tuple[int, list[str]]:
    """Fail every allocation of ``case`` in turn: (allocations, problems)."""
    n = allocations(arch, case)
    problems: list[str] = []
    torn_down: set[tuple[object, ...]] = set()
    for i in range(1, n + 1):
        problems += fail_at(arch, case, i, torn_down)
        if len(problems) > 20:
            break
    return n, problems


# -- the tests -----------------------------------------------------------------------------


def _params(arches: list[str]) -> list[Any]:
    out = []
    for a in arches:
        try:
            names = [c.name for c in cases(a)]
        except Exception as e:  # a new configuration's geometry: fail its test, not the file
            out.append(pytest.param(a, f"cases: {type(e).__name__}: {e}", id=f"{a}-cases"))
            continue
        out += [pytest.param(a, n, id=f"{a}-{n}") for n in names]
    return out


def _run(arch: str, name: str) -> None:
    if name.startswith("cases: "):
        pytest.fail(f"{arch}: the sweep's cases cannot be built: {name[7:]}")
    case = next(c for c in cases(arch) if c.name == name)
    n, problems = sweep(arch, case)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:20])


@pytest.mark.parametrize(("arch", "name"), _params(DEFAULT_ARCHES))
def test_enomem_at_every_allocation(arch: str, name: str) -> None:
    _run(arch, name)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "name"), _params([a for a in ALL_ARCHES if a not in DEFAULT_ARCHES]))
def test_enomem_at_every_allocation_all_configurations(arch: str, name: str) -> None:
    _run(arch, name)


def _failed(arch: str, case: Case, i: int) -> list[Session]:
    """Both APIs' sessions after the op of ``case`` failed at its ``i``-th allocation."""
    prefix, op = _ops(arch, case)
    out = []
    for api in APIS:
        s = _session(arch, api, prefix)
        s.k.mem.fail_after(i)
        try:
            s.apply(op)
        except OutOfMemory:
            pass
        s.k.mem.fail_after(0)
        out.append(s)
    return out


def teardown_sweep(arch: str) -> tuple[int, list[str]]:
    """``mmput`` cannot fail, but it may allocate: the zap of a user PUD leaf that a failed
    mprotect left across three vmas splits it (zap_pud_range -> split_huge_pud).  Fail each
    of its allocations in turn: the teardown must still be clean (the leaf is then zapped
    whole, as the kernel's split of a pfn pud does) and the same in both APIs.  Returns
    (teardowns run, problems)."""
    problems: list[str] = []
    runs = 0
    for case in cases(arch):
        counts = []
        for s in _failed(arch, case, 1):
            before = s.k.mem.allocations
            s.teardown()
            counts.append(s.k.mem.allocations - before)
        if counts[0] != counts[1]:
            problems.append(f"{arch} {case.name}: teardown allocations {counts}")
            continue
        for j in range(1, counts[0] + 1):
            runs += 1
            where = f"{arch} {case.name} (op failed at allocation 1), teardown allocation {j}"
            sessions = _failed(arch, case, 1)
            for s in sessions:
                s.k.mem.fail_after(j)
                try:
                    s.teardown()
                except PtshimError as e:
                    problems.append(f"{where} ({s.api}): {type(e).__name__}: {e}")
                s.k.mem.fail_after(0)
                problems += [f"{where} ({s.api}): {p}" for p in leaked_frames(s, True)]
            d = compare(snapshot(sessions[0]), snapshot(sessions[1]),
                        max(sessions[0].k.SIZEOF_PTE, sessions[0].k.SIZEOF_PGD))
            if d is not None:
                problems.append(f"{where}: legacy and unified differ: {d}")
            if len(problems) > 20:
                return runs, problems
    return runs, problems


@pytest.mark.parametrize("arch", ["x86_64"])
def test_enomem_in_teardown_after_a_failed_op(arch: str) -> None:
    runs, problems = teardown_sweep(arch)
    assert not problems, "\n".join(problems[:20])
    assert runs >= 2 * 513, runs  # the two protect-pud cases, every allocation


@pytest.mark.slow
@pytest.mark.parametrize("arch", [a for a in ALL_ARCHES if a != "x86_64"])
def test_enomem_in_teardown_after_a_failed_op_all_configurations(arch: str) -> None:
    runs, problems = teardown_sweep(arch)
    assert not problems, "\n".join(problems[:20])


def test_the_sweep_covers_every_op_kind() -> None:
    """Every op kind of the grammar, every split, both halves, and allocating ops."""
    names = {c.name for a in ALL_ARCHES for c in cases(a)}
    for want in ("map-pages-none", "map-pmd-rw", "map-pud", "map-anon-rw", "unmap-pud-piece",
                 "protect-pud-pmd-piece", "unmap-pmd-piece", "fork", "mremap-pages",
                 "mremap-pmd-unaligned", "kmap-pages-rwx", "kmap-pmd-rx", "kmap-pud",
                 "kunmap-pud-pmd-piece", "kprotect-pmd-piece"):
        assert want in names, want
    k = legacy.boot("x86_64")
    assert allocations("x86_64", next(c for c in cases("x86_64")
                                       if c.name == "unmap-pud-piece")) > k.PTRS_PER_PMD


# -- the CLI: one exit code, one line, whichever command and API ----------------------------


def _inject(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Make the n-th frame allocation after each session's boot fail."""
    init = Session.__init__

    def failing_init(self: Session, arch: str, api: str = "legacy") -> None:
        init(self, arch, api)
        self.k.mem.fail_after(n)

    monkeypatch.setattr(Session, "__init__", failing_init)


CLI_CASES = [
    # A user PUD split (munmap of a 2M piece of a 1G leaf): the map takes 1 allocation
    # (the PUD table), the 5th of the split fails.
    ("unmap-pud-piece", 6, "op 1 (unmap): -ENOMEM from munmap (an allocation failed); "
                           "the op is partly done"),
    # The second PTE table of a user map across a PMD boundary.
    ("map-pages-r", 4, "op 0 (map): -ENOMEM from mmap (an allocation failed); "
                       "the map was undone"),
    ("kunmap-pud-pmd-piece", 3, "op 1 (unmap): -ENOMEM from vunmap_range (an allocation "
                                "failed); the op is partly done"),
]


@pytest.mark.parametrize(("name", "n", "message"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_enomem_same_exit_and_line(name: str, n: int, message: str, tmp_path: Any,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """``run``, ``run --export`` and ``dump``, legacy and unified: exit 1 and the same one
    line (docs/cli.md: an op that fails with -ENOMEM is a failed run, not bad input)."""
    from ptshim.cli import main

    case = next(c for c in cases("x86_64") if c.name == name)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"ops": [*case.prefix, case.op]}), encoding="utf-8")
    _inject(monkeypatch, n)
    seen = set()
    for api in APIS:
        for argv in (["run", str(path), "--arch", "x86_64"],
                     ["run", str(path), "--arch", "x86_64", "--export", str(tmp_path / api)],
                     ["dump", str(path), "--arch", "x86_64"]):
            rc = main([*argv, "--api", api])
            out, err = capsys.readouterr()
            assert rc == 1, (argv, api, err)
            assert err.count("\n") == 1 and "Traceback" not in err, err
            assert out == "", out  # nothing is printed before the failure
            seen.add(err)
    assert seen == {f"ptshim: check failed: {message}\n"}, seen


def test_cli_failed_check_inside_an_op_same_exit(tmp_path: Any,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A check that fails while an op runs (a stale TLB entry at syscall exit) is a failed
    run for ``dump`` as for ``run``: exit 1, the same line."""
    from arches.errors import TlbError
    from ptshim.cli import main

    def stale(self: Session, op: Op, user: bool) -> None:
        raise TlbError(f"TLB not flushed at the end of op {op.index} (planted)")

    monkeypatch.setattr(Session, "_dispatch", stale)
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"ops": [{"op": "map", "va": "0x400000", "pa": "0x1000000",
                                         "size": "0x1000", "prot": "r"}]}), encoding="utf-8")
    seen = set()
    for argv in (["run", str(path), "--arch", "x86_64"], ["dump", str(path), "--arch", "x86_64"]):
        assert main(argv) == 1, argv
        seen.add(capsys.readouterr().err)
    assert seen == {"ptshim: check failed: TLB not flushed at the end of op 0 (planted)\n"}


# -- addresses in messages are printed in full ----------------------------------------------


@pytest.mark.parametrize(("arch", "op", "shown"), [
    ("i386", {"op": "map", "va": "0xffffffffffff0000", "pa": 0, "size": 4096, "prot": "r"},
     "[0xffffffffffff0000, 0xffffffffffff1000)"),
    ("x86_64", {"op": "unmap", "va": -0xfedcba9876543210_0123456789abcdef_fedcba9876543210,
                "size": 4096},
     "va -0xfedcba98765432100123456789abcdeffedcba9876543210 is negative"),
    ("x86_64", {"op": "map", "va": "0x" + "f" * 40, "pa": 0, "size": 4096, "prot": "r"},
     "va 0x" + "f" * 40 + " is not a multiple"),
    ("arm64-4k-39", {"op": "mremap", "va": "0x400000", "size": 4096,
                     "new_va": "0xfedcba9876543000"},
     "0xfedcba9876543000"),
    ("x86_64", {"op": "map", "va": "0xffff888000000000", "pa": "0xfedcba9876543000",
                "size": 4096, "prot": "r"}, "pa 0xfedcba9876543000"),
])
def test_addresses_in_messages_are_not_clipped(arch: str, op: dict[str, Any], shown: str,
                                               tmp_path: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from ptshim.cli import main

    path = tmp_path / "addr.json"
    path.write_text(json.dumps({"ops": [op]}), encoding="utf-8")
    assert main(["run", str(path), "--arch", arch]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "..." not in err and "\u2026" not in err, err
    assert shown in err, err
