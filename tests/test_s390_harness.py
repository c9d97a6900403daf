"""s390x through the generic harness (``ptshim.Session``) and the unified API, before it is
registered: the s390x configuration is put in the registries for each test only.

What the generic code had to learn for it, each checked here:

- the root register holds ``mm->context.asce``, not ``__pa(mm->pgd)`` (``k.mm_root``), and
  its designation type changes when ``crst_table_upgrade`` adds levels;
- levels are added where the kernel adds them: ``do_mmap`` -> ``arch_get_unmapped_area``
  -> ``check_asce_limit`` (arch/s390/mm/mmap.c), in both APIs' ``mmap_region``;
- the unified API recomputes an mm's levels when its folding changes, and takes a folded
  group's geometry from the member whose index selects the entry (``pgd_offset_raw``
  indexes a 3-level mm's top table with the region-third shift, 2^31);
- young and dirty are software bits: an old pte is invalid to DAT, a clean one protected
  (``pte_mkold``/``pte_mkclean``, arch/s390/include/asm/pgtable.h), and ``verify`` expects
  exactly that (``k.SOFTWARE_YOUNG_DIRTY``).

- a kernel map or protect asking for execute is refused as bad input: s390 has no
  ``PAGE_KERNEL_ROX`` and its ``PAGE_KERNEL_EXEC`` is ``PAGE_KERNEL`` (``Limits.kernel_prots``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import arches
import legacy.registry
from arches.config import Translation
from arches.errors import CheckFailed
from arches.s390 import S390X
from arches.s390 import bits as L
from legacy import boot
from legacy.mm.mmap import mmap_region
from legacy.mm_types import mm_struct, mmap_write_locked
from legacy.s390.pgtable import S390Kernel
from ptshim.backends import user_vm_flags
from ptshim.scenario import load_scenario, parse_scenario
from ptshim.session import Session
from unified.levels import Level
from unified.mm.mmap import mmap_region as unified_mmap_region
from unified.pagetables import PageTables

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "s390-levels.json"
"""To become examples/s390-levels.json when s390x is registered (``ptshim run examples
--arch all`` needs every example valid on some registered configuration)."""
TIB = 1 << 40


@pytest.fixture
def s390(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setitem(arches.CONFIGS, S390X.name, S390X)
    monkeypatch.setitem(legacy.registry.KERNELS, S390X.name, S390Kernel)
    yield S390X.name


def asce_type(asce: int) -> int:
    return asce & L._ASCE_TYPE_MASK


def test_generic_root_is_the_pgd() -> None:
    k = boot("x86_64")
    mm = k.mm_alloc()
    assert mm is not None
    assert k.mm_root(mm) == mm.pgd.pa and k.mm_root(k.init_mm) == k.init_mm.pgd.pa


@pytest.mark.parametrize("api", ["legacy", "unified"])
def test_mmap_adds_levels_and_the_root_register_follows(s390: str, api: str) -> None:
    """A map at 8 TiB makes the mm 4-level, one at 16 PiB 5-level, through the arch's
    unmapped-area hook; the session's root register is the new ASCE each time (type R2,
    then R1), the DAT walker finds every page through it, and ``verify`` passes."""
    s = Session(s390, api)
    mm = s.mm
    assert asce_type(s.roots()[0]) == L._ASCE_TYPE_REGION3
    steps = ((0x100000, L._ASCE_TYPE_REGION3), (8 * TIB, L._ASCE_TYPE_REGION2),
             (1 << 54, L._ASCE_TYPE_REGION1))
    for va, want in steps:
        s.run(parse_scenario({"ops": [
            {"op": "map", "va": hex(va), "pa": "0x10000000", "size": "0x4000", "prot": "rw"}]}))
        user, kernel = s.roots()
        assert user == mm.context["asce"] == s.k.mm_root(mm) and asce_type(user) == want
        assert kernel == s.k.init_mm.context["asce"]
        assert s.registers()["cr1"] == s.registers()["cr7"] == user
        t = S390X.walker.translate(s.k.mem, s.registers(), va + 0x3000)
        assert isinstance(t, Translation) and t.pa == 0x10003000
        s.verify()
    s.teardown()


@pytest.mark.parametrize("api", ["legacy", "unified"])
def test_mmap_region_calls_check_asce_limit_and_fails_cleanly(api: str) -> None:
    """``mmap_region`` above ``asce_limit`` upgrades first (``arch_get_unmapped_area``);
    when the new top table cannot be allocated it returns -ENOMEM with the mm unchanged
    (3 levels, same ASCE, no vma)."""
    k = S390Kernel(S390X)
    pt = PageTables(k)
    mm = k.mm_alloc()
    assert mm is not None

    def mmap(mm: mm_struct, va: int) -> int:
        flags = user_vm_flags("rw")
        with mmap_write_locked(mm):
            if api == "legacy":
                return mmap_region(k, mm, va, 0x1000, flags, 0)
            return unified_mmap_region(pt, mm, va, 0x1000, flags, 0)

    asce = mm.context["asce"]
    k.mem.fail_after(1)
    assert mmap(mm, 8 * TIB) == -12
    k.mem.fail_after(0)
    assert mm.context["asce"] == asce and k.mm_levels(mm) == 3 and not mm.mmap
    assert mmap(mm, 8 * TIB) == 8 * TIB and k.mm_levels(mm) == 4
    assert mmap(mm, 1 << 54) == 1 << 54 and k.mm_levels(mm) == 5


def test_unified_levels_follow_the_upgrade_with_the_indexing_geometry() -> None:
    """3 levels: the root table is the region-third table reached through pgd, p4d and
    pud: 2048 entries of 2 GiB (the pud's geometry, not the pgd's 2^53); 4 levels: 2048
    entries of 4 TiB; 5: 8 PiB.  Each root entry is the one the legacy chain
    ``pgd_offset`` -> ``p4d_offset`` -> ``pud_offset`` reaches."""
    k = S390Kernel(S390X)
    pt = PageTables(k)
    mm = k.mm_alloc()
    assert mm is not None
    want = {3: (Level.PUD, 31), 4: (Level.P4D, 42), 5: (Level.PGD, 53)}
    for va in (0x100000, 8 * TIB, 1 << 54):
        assert k.check_asce_limit(mm, va, 0x1000) == va
        levels = k.mm_levels(mm)
        groups = pt.levels(mm)
        assert len(groups) == levels
        root = pt.root_for(mm, va)
        level, shift = want[levels]
        assert root.group.geometry is level and root.group.bottom is level
        assert pt.level_size(root.group) == 1 << shift
        assert pt.entries_per_table(root.group) == 2048
        e = pt.entry(root, va)
        # the chain of *_offset calls through the root group's (empty or folded) members
        pgd = k.pgd_offset(mm, va)
        pa = pgd.pa
        if levels <= 4:
            p4d = k.p4d_offset(pgd, va)
            pa = p4d.pa if levels == 4 else k.pud_offset(p4d, va).pa
        assert e.ptr.pa == pa and e.index == (va >> shift) & 2047


def test_compile_time_folding_keeps_the_top_geometry() -> None:
    """pgtable-nop?d.h folding: the folded members have one entry, the top indexes."""
    k = boot("i386")
    mm = k.mm_alloc()
    assert mm is not None
    root = PageTables(k).levels(mm)[0]
    assert root.top is Level.PGD and root.bottom is Level.PMD and root.geometry is Level.PGD


def test_verify_expects_software_young_and_dirty(s390: str) -> None:
    """A writable pfn map (``remap_pfn_range``: ``pfn_pte`` makes it young, nothing makes
    it dirty) is read-only to DAT; a written anonymous page (``do_anonymous_page``:
    ``pte_mkdirty``) is writable; after fork the child's ptes are old
    (``__copy_present_ptes``: ``pte_mkold``) and DAT finds nothing there.  The expected
    runs say exactly that, and the walker agrees."""
    s = Session(s390)
    s.run(parse_scenario({"ops": [
        {"op": "map", "va": "0x100000", "pa": "0x10000000", "size": "0x2000", "prot": "rw"},
        {"op": "map", "va": "0x200000", "size": "0x2000", "prot": "rw", "anon": True},
    ]}))
    s.verify()
    anon = s.anon_pages()[0]
    parent = {(r.va, r.prot) for r in s.expected_runs(mm=0, anon_pa=anon)}
    assert parent == {(0x100000, "r"), (0x200000, "rw")}
    assert {(t.va, t.writable) for t in s.hardware_leaves()} == {
        (0x100000, False), (0x101000, False), (0x200000, True), (0x201000, True)}
    s.run(parse_scenario({"ops": [{"op": "fork"}]}))
    s.verify()
    child = {r.va for r in s.expected_runs(mm=1, anon_pa=s.anon_pages()[0])}
    assert 0x100000 not in child
    assert not any(t.va < 0x102000 for t in s.hardware_leaves(mm=1))
    s.teardown()


def test_verify_catches_a_pte_made_young_that_dat_still_sees_invalid(
        s390: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison is exact, not lenient: a kernel whose ``pte_mkyoung`` forgot to
    clear ``_PAGE_INVALID`` fails ``verify`` (the pte says young, DAT finds nothing)."""
    monkeypatch.setattr(S390Kernel, "pte_mkyoung", lambda self, pte: pte | L._PAGE_YOUNG)
    s = Session(s390)
    s.run(parse_scenario({"ops": [
        {"op": "map", "va": "0x100000", "pa": "0x10000000", "size": "0x2000", "prot": "r"}]}))
    with pytest.raises(CheckFailed, match="missing"):
        s.verify()


def test_example_upgrades_and_both_apis_build_the_same_machine(s390: str) -> None:
    """The s390 level-upgrade scenario: 3 -> 4 -> 5 levels, 1M leaves, fork; legacy and unified
    leave the same bytes in memory, and the child inherited its parent's 5 levels."""
    images = []
    for api in ("legacy", "unified"):
        s = Session(s390, api)
        s.run(load_scenario(EXAMPLE))
        s.verify()
        assert isinstance(s.k, S390Kernel)
        assert [s.k.mm_levels(mm) for mm in s.mms] == [5, 5]
        assert all(asce_type(s.roots(i)[0]) == L._ASCE_TYPE_REGION1 for i in range(2))
        images.append(dict(s.k.mem.image()))
        s.teardown()
    assert images[0] == images[1]


@pytest.mark.parametrize("prot", ["rx", "rwx"])
def test_kernel_exec_maps_are_refused_from_the_kernels_pgprots(
        s390: str, prot: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """s390 has no ``PAGE_KERNEL_ROX`` and its ``PAGE_KERNEL_EXEC`` is the generic fallback
    ``PAGE_KERNEL`` (include/linux/pgtable.h), not executable on an NX machine: a kernel
    map or protect asking for execute is bad input (``Limits.kernel_prots``, derived from
    those pgprots) -- exit 2, one line, machine unchanged; x86_64 takes the same ops."""
    from arches.errors import BadInput
    from ptshim.cli import main
    from ptshim.scenario import Limits

    s = Session(s390)
    assert Limits.from_kernel(s.k).kernel_prots == ("none", "r", "rw")
    kva = 1 << 63 | 0x4000_0000
    ok = {"op": "map", "va": hex(kva), "pa": "0x100000", "size": "0x2000", "prot": "rw"}
    s.run(parse_scenario({"ops": [ok]}))
    before = list(s.k.mem.image())
    for op in ({**ok, "va": hex(kva + 0x10000), "prot": prot},
               {"op": "protect", "va": hex(kva), "size": "0x1000", "prot": prot}):
        with pytest.raises(BadInput, match=f"prot {prot} is refused in the kernel range"):
            s.apply(parse_scenario({"ops": [op]}).ops[0])
        assert list(s.k.mem.image()) == before
    path = tmp_path / "kx.json"
    path.write_text(f'{{"ops": [{{"op": "map", "va": "{hex(kva)}", "pa": "0x100000", '
                    f'"size": "0x1000", "prot": "{prot}"}}]}}')
    assert main(["run", str(path), "--arch", s390]) == 2
    err = capsys.readouterr()[1]
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    x86 = Limits.from_kernel(Session("x86_64").k)
    assert x86.kernel_prots == ("none", "r", "rw", "rx", "rwx")
