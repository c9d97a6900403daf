"""ptdump: the legacy walk (``legacy.mm.ptdump``, mm/ptdump.c) and the unified one
(``unified.mm.ptdump``) print the same listing on every configuration and example; the
listing's content agrees with the hardware walker and the model on x86-64 and arm64; the
per-architecture hook belongs to the kernel class."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from arches.config import Fault, Translation
from arches.errors import BadInput
from legacy import arch_names, boot, pte_t
from legacy.arm64.ptdump import Arm64Ptdump
from legacy.mm.ptdump import ptdump_walk_pgd
from legacy.ptdump import PgState, PtdumpGeneric, addr_marker, ptdump_range, ptdump_state
from legacy.x86.ptdump import X86Ptdump
from ptshim.cli import main
from ptshim.dump import dump_text, top_table_span
from ptshim.scenario import load_json_scenario, load_scenario
from ptshim.session import Session
from unified.mm.ptdump import ptdump_walk_pgd as unified_ptdump_walk_pgd
from unified.pagetables import PageTables

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
UNITS = {u: 1 << (10 * i) for i, u in enumerate("BKMGTPE")}
MAX_PAGES_CHECKED = 4096
"""Runs up to this many base pages are checked page by page; longer ones at both ends."""


GENERATED = "every-leaf-size"
CASES = [e.stem for e in EXAMPLES] + [GENERATED]


def every_leaf_size_ops(s: Session) -> list[dict[str, object]]:
    """For each leaf size a half can use: four leaves mapped ``rw``, the second protected
    ``r`` whole, one base page of the third made ``none`` and one of the fourth unmapped
    (splitting huge leaves), plus base pages mapped ``none`` and ``rx``."""
    lim, page = s.limits, s.limits.page_size
    ops: list[dict[str, object]] = []
    pa = 1 << 28
    for user, sizes, base in ((True, lim.user_leaf_sizes, 1 << 30),
                              (False, lim.kernel_leaf_sizes, lim.kernel_range[0])):
        va = base
        for size in sorted(sizes):
            va = -(-va // size) * size
            pa = -(-pa // size) * size
            ops += [
                {"op": "map", "va": hex(va), "pa": hex(pa), "size": hex(4 * size),
                 "prot": "rw", "page_size": hex(size), "user": user},
                {"op": "protect", "va": hex(va + size), "size": hex(size), "prot": "r"},
                {"op": "protect", "va": hex(va + 2 * size + page), "size": hex(page),
                 "prot": "none"},
                {"op": "unmap", "va": hex(va + 3 * size + page), "size": hex(page)},
            ]
            va, pa = va + 8 * size, pa + 4 * size
        for prot in ("none", "rx"):
            ops.append({"op": "map", "va": hex(va), "pa": hex(pa), "size": hex(2 * page),
                        "prot": prot, "user": user})
            va, pa = va + 4 * page, pa + 2 * page
    return ops


def session(arch: str, case: str, api: str = "legacy") -> Session:
    """A session of ``arch`` after the example ``case`` (skipped where it is bad input), or
    after the valid ops of the generated scenario."""
    s = Session(arch, api)
    if case == GENERATED:
        applied = 0
        for op in load_json_scenario({"ops": every_leaf_size_ops(s)}).ops:
            try:
                s.apply(op)  # an invalid op leaves the machine as it was
                applied += 1
            except BadInput:
                pass
        assert applied >= 10
        return s
    try:
        s.run(load_scenario(ROOT / "examples" / f"{case}.json"))
    except BadInput as e:
        pytest.skip(f"{case} is bad input on {arch}: {e}")
    return s


# -- legacy == unified -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("arch", arch_names())
def test_legacy_and_unified_dumps_are_identical(arch: str, case: str) -> None:
    s = session(arch, case)
    legacy = dump_text(s, "legacy")
    assert legacy == dump_text(s, "unified")
    assert legacy.startswith("---[ User Space ]---\n") and "---[ Kernel Space ]---\n" in legacy
    # and the same tables built by the unified backend dump the same again
    u = session(arch, case, "unified")
    assert dump_text(u, "unified") == legacy
    for x in (s, u):
        x.verify()
        x.teardown()


class Recorder(ptdump_state):
    """Forwards to the kernel's listing state and records every ``note_page`` with the
    effective protection in force (x86's ``prot_levels[level]``), which the text only
    shows indirectly (as run breaks)."""

    def __init__(self, s: Session) -> None:
        # The user walk stops where the mm's top table does (``ptshim dump`` too): past it
        # the walker reads beyond the table (s390's dump_pagetables.c limits its range to
        # what the ASCE reaches "to keep the page table walker functions from accessing
        # non-existent entries"; a new s390 process has 3 levels, 4 TiB).
        start, end = s.config.user_range
        ranges = [ptdump_range(start, min(end, top_table_span(s.k, s.mm))),
                  ptdump_range(*s.config.kernel_range)]
        markers = [addr_marker(r.start, n) for r, n in zip(ranges, ("User Space", "Kernel Space"),
                                                          strict=True)]
        super().__init__(s.k, ranges)
        self.inner = s.k.ptdump_pg_state(ranges, markers)
        self.notes: list[tuple[int, int, int, int | None]] = []

    def effective_prot(self, level: int, val: int) -> None:
        self.inner.effective_prot(level, val)

    def note_page(self, addr: int, level: int, val: int) -> None:
        levels = getattr(self.inner, "prot_levels", None)
        eff = levels[level] if levels is not None and val else None
        self.notes.append((addr, level, val, eff))
        self.inner.mm = self.mm
        self.inner.note_page(addr, level, val)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("arch", arch_names())
def test_legacy_and_unified_walks_note_the_same_pages(arch: str, case: str) -> None:
    """The same ``note_page`` calls, in order, with the same effective protection."""
    s = session(arch, case)
    k = s.k
    legacy = Recorder(s)
    user, kernel = legacy.range
    if k.SEPARATE_KERNEL_ROOT:
        legacy.range, legacy.mm = [user], s.mm
        ptdump_walk_pgd(k, legacy, s.mm, flush=False)
        legacy.range, legacy.mm = [kernel], k.init_mm
        ptdump_walk_pgd(k, legacy, k.init_mm)
    else:
        legacy.mm = s.mm
        ptdump_walk_pgd(k, legacy, s.mm)
    unified = Recorder(s)
    unified_ptdump_walk_pgd(PageTables(k), unified, s.mm)
    assert unified.notes == legacy.notes
    assert len(legacy.notes) > 100 and legacy.notes[-1] == (0, -1, 0, None)
    assert unified.inner.text() == legacy.inner.text() == dump_text(s)


@pytest.mark.parametrize("api", ["legacy", "unified"])
def test_cli_dump_api(api: str, capsys: pytest.CaptureFixture[str]) -> None:
    example = str(ROOT / "examples" / "protnone.json")
    assert main(["dump", example, "--arch", "arm64-4k-48", "--api", api]) == 0
    out = capsys.readouterr()[0]
    s = session("arm64-4k-48", "protnone")
    assert out.split("\n", 1)[1] == dump_text(s, api)
    assert " F " in out


# -- content against the hardware walker -------------------------------------------------------


@dataclass(frozen=True)
class Line:
    start: int
    end: int
    level: str
    present: bool
    user: bool = False
    rw: bool = False
    exec_: bool = False
    """x86: not ``NX``; arm64: the privileged column is ``x`` (PXN clear)."""
    uxn: bool = False
    invalid: bool = False
    """arm64 ``F``: a non-zero entry the MMU does not see (PROT_NONE)."""


X86_LINE = re.compile(r"^0x([0-9a-f]{16})-0x([0-9a-f]{16})   ( *\d+)([BKMGTPE]) "
                      r"(.{30})(pgd|p4d|pud|pmd|pte)$")
ARM64_LINE = re.compile(r"^0x([0-9a-f]{16})-0x([0-9a-f]{16})   ( *\d+)([KMGTPE]) "
                        r"(PGD|P4D|PUD|PMD|PTE)(.*)$")
ARM64_WIDTHS = (1, 3, 2, 2, 3, 2, 2, 3, 3, 3, 2)
"""``pte_bits`` columns: valid, USR, ro/RW, NX/x, SHD, AF, NG, CON, BLK, UXN, GP."""


def _size_ok(start: int, end: int, size: str, unit: str) -> None:
    assert len(size) >= 9  # %9lu
    assert (end - start) % (1 << 64) == int(size) * UNITS[unit]


def parse_x86(text: str) -> list[Line]:
    out = []
    for raw in text.splitlines():
        if raw.startswith("---["):
            continue
        m = X86_LINE.match(raw)
        assert m, raw
        start, end = int(m[1], 16), int(m[2], 16)
        _size_ok(start, end, m[3], m[4])
        flags = m[5]
        if not flags.strip():
            out.append(Line(start, end, m[6], False))
            continue
        usr, rw, nx = flags[0:4].strip(), flags[4:7].strip(), flags[27:30].strip()
        assert rw in ("RW", "ro") and nx in ("NX", "x") and usr in ("USR", ""), raw
        out.append(Line(start, end, m[6], True, usr == "USR", rw == "RW", nx == "x"))
    return out


def parse_arm64(text: str) -> list[Line]:
    out = []
    for raw in text.splitlines():
        if raw.startswith("---["):
            continue
        m = ARM64_LINE.match(raw)
        assert m, raw
        start, end = int(m[1], 16), int(m[2], 16)
        _size_ok(start, end, m[3], m[4])
        flags = m[6]
        if not flags:
            out.append(Line(start, end, m[5], False))
            continue
        cols, pos = [], 0
        for w in ARM64_WIDTHS:
            assert flags[pos] == " ", raw
            cols.append(flags[pos + 1:pos + 1 + w])
            pos += 1 + w
        valid, usr, ro, pxn, shd, af, _ng, cont, blk, uxn, _gp = cols
        assert flags[pos:] == " MEM/NORMAL", raw
        assert valid in (" ", "F") and ro in ("ro", "RW") and pxn in ("NX", "x ")
        assert (shd, af, cont) == ("SHD", "AF", "   ")
        assert (blk == "BLK") == (m[5] != "PTE"), raw
        out.append(Line(start, end, m[5], valid == " ", usr == "USR", ro == "RW", pxn == "x ",
                        uxn == "UXN", valid == "F"))
    return out


def pages(line: Line, step: int) -> list[int]:
    n = ((line.end - line.start) % (1 << 64)) // step
    if n <= MAX_PAGES_CHECKED:
        return [line.start + i * step for i in range(n)]
    return [line.start, (line.end - step) % (1 << 64)]


def leaf_size(s: Session, level: str) -> int:
    k = s.k
    return {"pte": k.PAGE_SIZE, "pmd": k.PMD_SIZE, "pud": k.PUD_SIZE}[level.lower()]


def model_prot(s: Session, va: int) -> str | None:
    """What the ptes of ``va`` grant by the model (COW-shared anonymous pages are
    write-protected), or None where it expects no translation (an empty fork copy)."""
    hit = s.model.overlapping(va, va + 1)
    return hit[0].hw_prot() if hit and not hit[0].empty else None


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("arch", ["x86_64", "arm64-4k-48"])
def test_dump_agrees_with_hardware_walker(arch: str, case: str) -> None:
    s = session(arch, case)
    text = dump_text(s)
    lines = parse_x86(text) if arch == "x86_64" else parse_arm64(text)
    assert lines[0].start == s.config.user_range[0]
    assert all(a.end == b.start for a, b in zip(lines, lines[1:], strict=False))
    walker, mem, regs = s.config.walker, s.k.mem, s.registers()
    page = s.k.PAGE_SIZE
    present_pages = 0
    for line in lines:
        if line.present:
            size = leaf_size(s, line.level)
            for va in pages(line, size):
                t = walker.translate(mem, regs, va)
                assert isinstance(t, Translation), (line, hex(va), t)
                assert t.size == size and t.user == line.user, (line, t)
                prot = model_prot(s, va)
                assert prot is not None and prot != "none", (line, hex(va))
                if line.rw:
                    assert t.writable, (line, t)
                if not line.user:  # kernel: RW/ro and x/NX are what the MMU does
                    assert t.writable == line.rw and t.executable == line.exec_, (line, t)
                    assert line.rw == ("w" in prot) and line.exec_ == ("x" in prot), line
                elif arch == "x86_64":
                    assert t.writable == line.rw and t.executable == line.exec_, (line, t)
                else:  # arm64 user: clean writable pages are "ro" + DBM; UXN says exec
                    assert not line.exec_ and t.executable == (not line.uxn), (line, t)
                    assert t.writable == ("w" in prot), (line, t)
                present_pages += size // page
        else:
            for va in pages(line, page):
                t = walker.translate(mem, regs, va)
                assert isinstance(t, Fault), (line, hex(va), t)
                prot = model_prot(s, va)
                assert prot in (None, "none"), (line, hex(va), prot)
                # arm64 prints PROT_NONE entries as F; x86 shows them with no flags at all
                if arch == "arm64-4k-48":
                    assert line.invalid == (prot == "none"), (line, hex(va))
    # every mapped page of the model is in a present line, every PROT_NONE page in another
    assert present_pages * page == sum(e.size for e in s.model if e.has_leaves())
    for e in s.model:
        if e.prot == "none":
            covering = [ln for ln in lines if ln.start <= e.va and e.end <= ln.end]
            assert covering and not covering[0].present and covering[0].level.lower() == "pte"
            assert covering[0].invalid == (arch == "arm64-4k-48")
    s.verify()
    s.teardown()


# -- the hook belongs to the kernel class ------------------------------------------------------


def test_the_kernel_class_provides_the_hook() -> None:
    x86, arm = boot("x86_64"), boot("arm64-4k-48")
    assert isinstance(x86, X86Ptdump) and isinstance(arm, Arm64Ptdump)
    assert isinstance(x86, PtdumpGeneric) and isinstance(arm, PtdumpGeneric)
    assert [x86.ptdump_level_name(i) for i in range(5)] == ["pgd", "p4d", "pud", "pmd", "pte"]
    assert [arm.ptdump_level_name(i) for i in range(5)] == ["PGD", "P4D", "PUD", "PMD", "PTE"]

    pfn = 0x1234
    none_x86 = x86.pfn_pte(pfn, x86.PAGE_NONE)
    assert x86.ptdump_flags(4, none_x86) == " " * 30
    assert x86.ptdump_flags(4, x86.pfn_pte(pfn, x86.PAGE_KERNEL_EXEC)) == (
        "    RW                 GLB x  ")
    # arm64: F for PROT_NONE, ro/RW from PTE_RDONLY, NX/x from PTE_PXN, BLK for blocks
    assert arm.ptdump_flags(4, arm.pfn_pte(pfn, arm.PAGE_NONE)) == (
        " F     ro NX SHD AF NG         UXN    MEM/NORMAL")
    assert arm.ptdump_flags(4, arm.pfn_pte(pfn, arm.PAGE_KERNEL_EXEC)) == (
        "       RW x  SHD AF            UXN    MEM/NORMAL")
    blk = arm.pmd_mkhuge(arm.pfn_pmd(pfn & ~511, arm.PAGE_KERNEL_RO))
    assert arm.ptdump_flags(3, blk) == "       ro NX SHD AF        BLK UXN    MEM/NORMAL"


def test_generic_default_does_not_call_prot_none_accessible() -> None:
    """The default hook (for an architecture without one), tried on arm64's values."""
    arm = boot("arm64-4k-48")
    prot_none = arm.pfn_pte(0x1234, arm.PAGE_NONE)
    assert arm.pte_present(prot_none)
    assert PtdumpGeneric.ptdump_flags(arm, 4, prot_none) == " " * 12
    rw = arm.pfn_pte(0x1234, arm.PAGE_KERNEL)
    flags = PtdumpGeneric.ptdump_flags(arm, 4, rw)
    assert flags.startswith("RW ") and "NX" not in flags  # arm64 has no pte_exec: blank
    assert PtdumpGeneric.ptdump_flags(arm, 4, pte_t(0)) == " " * 12


def hole_depth(s: Session, va: int) -> int:
    """The depth mm/pagewalk.c reports the empty entry ``va`` faults on at: the entry is read
    by the *lowest* Linux level whose entry spans the hardware entry the walk stops at (its
    shift, or a wider one where a Linux entry is several hardware entries: classic arm's
    pmd_none reads the first of two 1M descriptors; the folded levels above it have a
    constant ``pXd_none``, at compile time or at run time), and ``real_depth`` moves it up
    across the levels with ``PTRS_PER_X == 1`` only."""
    k = s.k
    fault = s.config.walker.translate(k.mem, s.registers(), va)
    assert isinstance(fault, Fault) and fault.level is not None, hex(va)
    shift = s.config.hw_levels[fault.level].shift
    shifts = (k.PGDIR_SHIFT, k.P4D_SHIFT, k.PUD_SHIFT, k.PMD_SHIFT, k.PAGE_SHIFT)
    depth = max(d for d in range(5) if shifts[d] >= shift)
    ptrs = (k.PTRS_PER_PGD, k.PTRS_PER_P4D, k.PTRS_PER_PUD, k.PTRS_PER_PMD, k.PTRS_PER_PTE)
    while 0 < depth < 4 and ptrs[depth] == 1:
        depth -= 1
    return depth


def prints_empty_ranges(s: Session) -> bool:
    """Whether the architecture's ``note_page`` lists a range with no prot (x86 and arm64
    do; riscv's prints a range only ``if (st->current_prot)``)."""
    lo, hi = s.config.user_range
    st = s.k.ptdump_pg_state([ptdump_range(lo, hi)], [addr_marker(lo, "probe")])
    st.note_page(lo, 0, 0)
    st.note_page(0, -1, 0)
    return len(st.lines) > 1


@pytest.mark.parametrize("arch", arch_names())
def test_top_level_holes_are_named_after_the_level_folded_into(arch: str) -> None:
    """Both walks note every empty entry of a fresh process's user range at the depth the
    kernel's walker reports it (:func:`hole_depth`): a pgd hole where the levels below the
    root are folded with ``PTRS_PER_X == 1`` (x86-64's run-time p4d, i386's pud+pmd, arm64's
    p4d/pud/pmd), a pud hole on riscv Sv39 (p4d and pud folded at run time, ``PTRS_PER`` 512),
    a pmd hole on i386-pae (pgd_alloc preallocates the PMD tables of its 4-entry PDPT).  Where
    the listing prints empty ranges, every line is named after that depth."""
    s = Session(arch)
    k = s.k
    lo, hi = s.config.user_range
    holes: list[tuple[int, int]] = []
    make_state = k.ptdump_pg_state

    def spy(ranges: list[ptdump_range], markers: list[addr_marker]) -> PgState:
        st = make_state(ranges, markers)
        note = st.note_page

        def record(addr: int, level: int, val: int) -> None:
            if level >= 0 and val == 0:
                holes.append((addr, level))
            note(addr, level, val)

        st.note_page = record  # type: ignore[method-assign]
        return st

    k.ptdump_pg_state = spy  # type: ignore[method-assign]
    texts = []
    for api in ("legacy", "unified"):
        holes.clear()
        texts.append(dump_text(s, api))
        user = [(a, d) for a, d in holes if lo <= a < hi]
        assert user, api
        assert all(d == hole_depth(s, a) for a, d in user), (api, user)
        depths = {d for _, d in user}
        kernel_depths = {d for a, d in holes if not lo <= a < hi}
        # one depth, and the pinned pmds' own (32-bit arm LPAE: the modules pmd's holes)
        assert len(depths) == 1 + bool(k.PGD_ALLOC_PINNED_PMDS), (api, depths)
    assert texts[0] == texts[1]
    user_text, kernel_text = texts[0].split("---[ Kernel Space ]---\n")
    # The level name is a word of the line, where the architecture prints it: last on x86
    # and arm64, before the flags on s390 (print_prot: ``PUD I``).  The kernel half is read
    # from the kernel's own root where it has one, whose depth may differ (s390: init_mm
    # has 5 levels, a new process 3).
    level_names = {n for n in k.PTDUMP_LEVEL_NAMES if n}
    for text, ds in ((user_text, depths), (kernel_text, kernel_depths)):
        named = [[w for w in ln.split() if w in level_names] for ln in text.splitlines()
                 if not ln.startswith("---[")]
        assert all(len(n) == 1 for n in named), texts[0]
        names = {n[0] for n in named}
        want = {k.ptdump_level_name(d) for d in ds} if prints_empty_ranges(s) else set()
        assert names == want, texts[0]
