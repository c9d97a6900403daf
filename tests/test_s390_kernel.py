"""The s390x kernel class (``legacy/s390``, not registered yet) on its own: geometry, the
run-time folding of a 3-level mm, ``pgd_offset_raw``, 16 KiB tables, ``page_table_alloc``,
``crst_table_upgrade`` 3 -> 4 -> 5 under a live mm, IPTE versus lazy invalidation, swap
entries -- each checked against the DAT walker of ``arches/s390`` (written from the
Principles of Operation), which reads the bytes the kernel wrote.

Kernel files: ``arch/s390/include/asm/pgtable.h``, ``pgalloc.h``, ``mmu_context.h``,
``tlbflush.h``; ``arch/s390/mm/pgalloc.c``, ``pgtable.c`` (Linux v6.18).
"""

from __future__ import annotations

import pytest

from arches.config import Fault, Translation
from arches.errors import TlbError
from arches.s390 import S390X
from arches.s390 import bits as L
from legacy.mm_types import mm_struct, spin_unlock, vm_area_struct
from legacy.s390.pgtable import TASK_SIZE_MAX, S390Kernel
from legacy.types import P4dPtr, PmdPtr, PtePtr, PudPtr, pgprot_t, pte_t, pud_t


def boot() -> tuple[S390Kernel, mm_struct]:
    k = S390Kernel(S390X)
    mm = k.mm_alloc()
    assert mm is not None
    return k, mm


def regs(k: S390Kernel, mm: mm_struct) -> dict[str, int]:
    return S390X.make_registers(mm.context["asce"], k.init_mm.context["asce"])


def map_page(k: S390Kernel, mm: mm_struct, va: int, pfn: int, vm_flags: int = 0xB) -> PtePtr:
    """What a fault path does: ``p?d_alloc`` down to the pte, ``set_pte_at`` under the
    pte lock."""
    pgd = k.pgd_offset(mm, va)
    p4d = k.p4d_alloc(mm, pgd, va)
    assert p4d is not None
    pud = k.pud_alloc(mm, p4d, va)
    assert pud is not None
    pmd = k.pmd_alloc(mm, pud, va)
    assert pmd is not None
    assert not k.pte_alloc(mm, pmd)
    got = k.pte_offset_map_lock(mm, pmd, va)
    assert got is not None
    pte, ptl = got
    k.set_pte_at(mm, va, pte, k.pte_mkdirty(k.pfn_pte(pfn, k.vm_get_page_prot(vm_flags))))
    spin_unlock(ptl)
    return pte


def translate(k: S390Kernel, mm: mm_struct, va: int) -> Translation | Fault:
    return S390X.walker.translate(k.mem, regs(k, mm), va)


VM_RW_SHARED = 0x1 | 0x2 | 0x8
"""VM_READ | VM_WRITE | VM_SHARED: ``PAGE_RW``."""


def test_fresh_mm_is_three_levels_of_empty_region_third_entries() -> None:
    """mmu_context.h ``init_new_context``: exec -> ``asce_limit`` = ``_REGION2_SIZE``, a
    region-third ASCE with ``_ASCE_USER_BITS``; the pgd is a 16 KiB table of
    ``_REGION3_ENTRY_EMPTY`` (not zero); p4d and pud are folded for this mm only."""
    k, mm = boot()
    assert mm.context["asce_limit"] == 1 << 42
    assert mm.context["asce"] == mm.pgd.pa | 0x3 | 0x1C0 | 0x04
    assert mm.pgd.pa % 16384 == 0
    assert k.mem.read_bytes(mm.pgd.pa, 16384) == bytes.fromhex("0000000000000024") * 2048
    assert k.mm_p4d_folded(mm) and k.mm_pud_folded(mm) and not k.mm_pmd_folded(mm)
    assert k.mm_levels(mm) == 3
    assert not k.mm_p4d_folded(k.init_mm)
    # the table's four pages share one ptdesc (the first page's)
    assert {k.frame_of(mm.pgd.pa + i) for i in (0, 4096, 8192, 16383)} == {mm.pgd.pa}


def test_pgd_offset_raw_indexes_with_the_top_tables_shift() -> None:
    """pgtable.h ``pgd_offset_raw``: the shift comes from entry 0's type (R3 -> 31), not
    from ``PGDIR_SHIFT`` (53); ``p4d_offset`` and ``pud_offset`` return the pgd pointer for
    a region-third entry (folded at run time)."""
    k, mm = boot()
    va = 5 << 31 | 0x1234
    pgd = k.pgd_offset(mm, va)
    assert pgd.pa == mm.pgd.pa + 8 * 5
    assert k.pgd_index(va) == 0  # the generic index would pick entry 0
    # beyond asce_limit the index wraps, as pgd_offset_raw does: entry 0 of the R3 table
    assert k.pgd_offset(mm, 1 << 42 | 5 << 31).pa == mm.pgd.pa + 8 * 5
    p4d = k.p4d_offset(pgd, va)
    pud = k.pud_offset(p4d, va)
    assert p4d.pa == pud.pa == pgd.pa
    assert not k.pgd_none(k.pgdp_get(pgd)) and k.pgd_present(k.pgdp_get(pgd))
    assert k.pud_none(k.pudp_get(pud))


def test_mapping_translates_through_dat() -> None:
    """A page mapped with the generic allocation chain translates with the DAT walker:
    4 KiB, writable (dirty rw pte: no invalid, no protect bit), not executable
    (``PAGE_RW`` has ``_PAGE_NOEXEC``); the segment table and page table are where the
    kernel put them."""
    k, mm = boot()
    va = 0x3_4567_8000
    pte = map_page(k, mm, va, 0x12345, vm_flags=VM_RW_SHARED)
    t = translate(k, mm, va | 0xABC)
    assert isinstance(t, Translation)
    assert (t.pa, t.size, t.writable, t.executable, t.user) == (0x12345ABC, 4096, True, False,
                                                                True)
    # page_table_alloc: a whole page, 256 invalid ptes below, zero above
    base = pte.pa & ~0xFFF
    assert k.table_level(base) == "pte"
    raw = k.mem.read_bytes(base, 4096)
    assert raw[2048:] == bytes(2048)
    assert raw[:2048].count(bytes.fromhex("0000000000000400")) == 255
    k.syscall_exit("map")


def test_protection_encodings_reach_the_hardware() -> None:
    """pgtable.h's table of pte states, as DAT sees them: read-only pages have P set,
    a clean writable page is protected until ``pte_mkdirty``, an old page is invalid until
    ``pte_mkyoung``."""
    k, mm = boot()
    va = 0x10_0000
    pte = map_page(k, mm, va, 0x40, vm_flags=0x1)  # VM_READ: PAGE_RO
    t = translate(k, mm, va)
    assert isinstance(t, Translation) and not t.writable
    v = k.ptep_get(pte)
    assert v & L._PAGE_PROTECT and k.pte_present(v) and not k.pte_write(v)
    old = k.pte_mkold(v)
    assert old & L._PAGE_INVALID and k.pte_present(old) and not k.pte_none(old)
    clean = k.pte_mkclean(k.pte_mkwrite_novma(k.pte_mkdirty(v)))
    assert clean & L._PAGE_PROTECT and k.pte_write(clean)
    assert not k.pte_mkdirty(clean) & L._PAGE_PROTECT
    assert k.pte_modify(k.pte_mkdirty(k.pte_mkwrite_novma(v)), k.PAGE_RW) & L._PAGE_PROTECT == 0


@pytest.mark.parametrize("top_va,levels,asce_type", [
    ((1 << 42) + 0x5000, 4, 0x08),
    ((1 << 53) + 0x5000, 5, 0x0C),
])
def test_crst_table_upgrade_under_a_live_mm(top_va: int, levels: int, asce_type: int) -> None:
    """pgalloc.c ``crst_table_upgrade``: a mapping above ``asce_limit`` adds new top
    tables whose entry 0 points at the old top; ``mm->pgd`` and ``mm->context.asce``
    change; existing mappings keep translating; the old top is now a pud (p4d) table and
    is accounted (``mm_inc_nr_puds`` for 3 -> 4)."""
    k, mm = boot()
    low = 0x7_0000_0000
    map_page(k, mm, low, 0x777)
    old_pgd = mm.pgd.pa
    before = mm.pgtables_bytes
    assert k.check_asce_limit(mm, top_va, 4096) == top_va
    assert mm.pgd.pa != old_pgd and k.mm_levels(mm) == levels
    assert mm.context["asce"] & 0x0C == asce_type
    assert mm.context["asce_limit"] == (1 << 53 if levels == 4 else TASK_SIZE_MAX)
    # entry 0 of the new top leads to the old top
    e0 = k.mem.read(mm.pgd.pa, 8)
    if levels == 4:
        assert e0 == old_pgd | L._REGION2_ENTRY
        assert k.table_level(old_pgd) == "pud"
        assert mm.pgtables_bytes == before + 16384
    else:
        p4d = e0 & L._REGION_ENTRY_ORIGIN
        assert e0 == p4d | L._REGION1_ENTRY
        assert k.mem.read(p4d, 8) == old_pgd | L._REGION2_ENTRY
        assert k.table_level(p4d) == "p4d"
    t = translate(k, mm, low)
    assert isinstance(t, Translation) and t.pa == 0x777000
    assert isinstance(translate(k, mm, top_va), Fault)
    map_page(k, mm, top_va, 0x888)
    t = translate(k, mm, top_va)
    assert isinstance(t, Translation) and t.pa == 0x888000
    # pgd_offset now indexes with the new top's shift
    shift = 42 if levels == 4 else 53
    assert k.pgd_offset(mm, top_va).pa == mm.pgd.pa + 8 * (top_va >> shift & 2047)
    k.syscall_exit("upgrade")


def test_upgrade_3_to_4_to_5_and_enomem() -> None:
    """Two upgrades in turn, and an upgrade whose table allocation fails changes nothing
    (-ENOMEM, the mm still 3-level, no frame leaked)."""
    k, mm = boot()
    frames = len(k.mem)
    k.mem.fail_after(1)
    assert k.crst_table_upgrade(mm, 1 << 50) == -12
    assert k.mm_levels(mm) == 3 and len(k.mem) == frames
    k.mem.fail_after(2)  # 3 -> 5: the p4d table is had, the pgd table is not
    assert k.crst_table_upgrade(mm, 1 << 60) == -12
    assert k.mm_levels(mm) == 3 and len(k.mem) == frames
    k.mem.fail_after(0)
    assert k.crst_table_upgrade(mm, 1 << 50) == 0 and k.mm_levels(mm) == 4
    k.mem.fail_after(1)
    assert k.crst_table_upgrade(mm, 1 << 60) == -12 and k.mm_levels(mm) == 4
    assert k.crst_table_upgrade(mm, 1 << 60) == 0 and k.mm_levels(mm) == 5
    assert k.crst_table_upgrade(mm, 1 << 62) == 0  # within the limit: nothing to do


def test_ipte_flushes_as_it_clears_lazy_clear_needs_the_flush() -> None:
    """pgtable.c: ``ptep_clear_flush`` (IPTE) leaves nothing stale; ``ptep_get_and_clear``
    (lazy: invalid bit stored, ``flush_mm`` set) leaves the page stale until
    ``flush_tlb_range`` (``__tlb_flush_mm_lazy``); ``flush_tlb_page`` is empty."""
    k, mm = boot()
    vma = vm_area_struct(vm_mm=mm, vm_start=0, vm_end=1 << 30, vm_flags=0, vm_page_prot=0)
    a, b = 0x40_0000, 0x40_1000
    pa_ = map_page(k, mm, a, 0x100)
    pb = map_page(k, mm, b, 0x101)
    ptl = k.pte_lockptr(mm, k.pmd_off(mm, a))
    from legacy.mm_types import spin_lock
    spin_lock(ptl)
    old = k.ptep_clear_flush(vma, a, pa_)
    assert k.pte_present(old) and k.ptep_get(pa_) == L._PAGE_INVALID
    assert not k.hw_tlb.marks
    old = k.ptep_get_and_clear(mm, b, pb)
    assert k.pte_present(old) and mm.context["flush_mm"] == 1
    spin_unlock(ptl)
    assert k.hw_tlb.marks
    k.flush_tlb_page(vma, b)
    with pytest.raises(TlbError):
        k.syscall_exit("lazy clear without a flush")
    k.flush_tlb_range(vma, b, b + 4096)
    assert mm.context["flush_mm"] == 0
    k.syscall_exit("lazy clear")
    assert isinstance(translate(k, mm, a), Fault) and isinstance(translate(k, mm, b), Fault)


def test_swap_entry_format() -> None:
    """pgtable.h: offset in bits 0-51 (<< 12), type in bits 57-61 (<< 2), invalid and
    protect set: ``pte_swap`` is ``(pte & 0x201) == 0x200``; not present, not none."""
    k, _ = boot()
    e = k._swp_entry(0x1F, (1 << 52) - 1)
    pte = k._swp_entry_to_pte(e)
    assert pte == 0xFFFF_FFFF_FFFF_F000 | 0x7C | 0x600
    assert k.pte_swap(pte) and not k.pte_present(pte) and not k.pte_none(pte)
    assert (k._swp_type(e), k._swp_offset(e)) == (0x1F, (1 << 52) - 1)
    assert k.pte_swp_exclusive(k.pte_swp_mkexclusive(pte))
    assert isinstance(pte_t(pte), int)


def test_ptdump_listing() -> None:
    """arch/s390/mm/dump_pagetables.c ``note_page``/``print_prot``: runs break on
    PROTECT/NOEXEC/INVALID, level or marker; holes and invalid ptes print ``I``; level
    names are ASCE/PGD/PUD/PMD/PTE for ptdump levels 0..4 (so a pmd-level hole says
    ``PMD``, a p4d-level one ``PGD``, a pgd-level one ``ASCE``)."""
    from legacy.mm.ptdump import ptdump_walk_pgd
    from legacy.ptdump import addr_marker, ptdump_range

    k = S390Kernel(S390X)
    mm = k.init_mm
    base = 1 << 63

    def kmap(va: int, pfn: int, prot: pgprot_t) -> None:
        pgd = k.pgd_offset(mm, va)
        p4d = k.p4d_alloc(mm, pgd, va)
        assert p4d is not None
        pud = k.pud_alloc(mm, p4d, va)
        assert pud is not None
        pmd = k.pmd_alloc(mm, pud, va)
        assert pmd is not None
        if k.pmd_none(k.pmdp_get(pmd)):
            assert not k._pte_alloc_kernel(pmd)
        k.set_pte_at(mm, va, k.pte_offset_kernel(pmd, va), k.pfn_pte(pfn, prot))

    for i in range(4):
        kmap(base + 0x400000 + i * 4096, 0x100 + i, k.PAGE_KERNEL)
    kmap(base + 0x404000, 0x200, k.PAGE_KERNEL_RO)
    st = k.ptdump_pg_state([ptdump_range(base, base + (1 << 54))],
                           [addr_marker(base, "vmalloc Area")])
    ptdump_walk_pgd(k, st, mm)
    assert st.text().splitlines() == [
        "---[ vmalloc Area ]---",
        "0x8000000000000000-0x8000000000400000         4M PMD I",
        "0x8000000000400000-0x8000000000404000        16K PTE RW NX",
        "0x8000000000404000-0x8000000000405000         4K PTE RO NX",
        "0x8000000000405000-0x8000000000500000      1004K PTE I",
        "0x8000000000500000-0x8000000080000000      2043M PMD I",
        "0x8000000080000000-0x8000040000000000      4094G PUD I",
        "0x8000040000000000-0x8020000000000000      8188T PGD I",
        "0x8020000000000000-0x8040000000000000         8P ASCE I",
    ]


def huge_pmd(k: S390Kernel, mm: mm_struct, va: int) -> PmdPtr:
    """The pmd (segment-table entry) for ``va``, tables allocated down to it."""
    pgd = k.pgd_offset(mm, va)
    p4d = k.p4d_alloc(mm, pgd, va)
    assert p4d is not None
    pud = k.pud_alloc(mm, p4d, va)
    assert pud is not None
    pmd = k.pmd_alloc(mm, pud, va)
    assert pmd is not None
    return pmd


def test_thp_pmd_is_an_edat1_segment_frame() -> None:
    """pgtable.h: ``pmd_mkhuge(pfn_pmd(pfn, PAGE_RW))`` is a 1 MiB segment frame (FC bit
    ``_SEGMENT_ENTRY_LARGE``), young, protected until ``pmd_mkdirty``; ``pmd_mkold`` sets
    the invalid bit; ``pmd_modify`` to ``PAGE_RO`` keeps the frame read-only."""
    k, mm = boot()
    va = 0x4_0010_0000
    pmd = huge_pmd(k, mm, va)
    ptl = k.pmd_lock(mm, pmd)
    entry = k.pmd_mkwrite(k.pmd_mkhuge(k.pfn_pmd(0x80000, k.PAGE_RW)))
    assert k.pmd_trans_huge(entry) and k.pmd_write(entry) and not k.pmd_dirty(entry)
    k.set_pmd_at(mm, va, pmd, entry)
    t = translate(k, mm, va + 0x12345)
    assert isinstance(t, Translation)
    assert (t.pa, t.size, t.writable, t.executable) == (0x8001_2345, 1 << 20, False, False)
    k.set_pmd_at(mm, va, pmd, k.pmd_mkdirty(entry))
    t = translate(k, mm, va)
    assert isinstance(t, Translation) and t.writable
    assert k.pmd_pfn(k.pmdp_get(pmd)) == 0x80000
    k.pmdp_set_wrprotect(mm, va, pmd)  # lazy: stale until the range flush
    spin_unlock(ptl)
    assert k.hw_tlb.marks
    vma = vm_area_struct(vm_mm=mm, vm_start=va, vm_end=va + (1 << 20), vm_flags=0,
                         vm_page_prot=0)
    k.flush_tlb_range(vma, va, va + (1 << 20))
    k.syscall_exit("wrprotect")
    t = translate(k, mm, va)
    assert isinstance(t, Translation) and not t.writable
    old = k.pmd_mkold(k.pmdp_get(pmd))
    assert old & L._SEGMENT_ENTRY_INVALID and k.pmd_present(old)
    assert not k.pmd_mkyoung(old) & L._SEGMENT_ENTRY_INVALID  # readable: valid again
    ro = k.pmd_modify(k.pmd_mkdirty(k.pmdp_get(pmd)), k.PAGE_RO)
    assert ro & L._SEGMENT_ENTRY_PROTECT and k.pmd_leaf(ro)
    ptl = k.pmd_lock(mm, pmd)
    cleared = k.pmdp_huge_clear_flush(vma, va, pmd)  # IDTE: nothing left stale
    spin_unlock(ptl)
    assert k.pmd_trans_huge(cleared) and k.pmd_none(k.pmdp_get(pmd))
    assert not k.hw_tlb.marks
    assert isinstance(translate(k, mm, va), Fault)


def test_deposit_list_lives_in_the_deposited_tables() -> None:
    """pgtable.c ``pgtable_trans_huge_deposit``/``withdraw``: the FIFO list_head is
    written over ptes 0 and 1 of the deposited tables (next, prev); withdraw returns the
    newest, unlinks it and puts ``_PAGE_INVALID`` back in those two entries."""
    k, mm = boot()
    va = 0x4_0000_0000
    pmd = huge_pmd(k, mm, va)
    a, b = k.pte_alloc_one(mm), k.pte_alloc_one(mm)
    assert a is not None and b is not None
    ptl = k.pmd_lock(mm, pmd)
    k.pgtable_trans_huge_deposit(mm, pmd, a)
    assert (k.mem.read(a.pa, 8), k.mem.read(a.pa + 8, 8)) == (a.pa, a.pa)  # INIT_LIST_HEAD
    k.pgtable_trans_huge_deposit(mm, pmd, b)
    assert (k.mem.read(b.pa, 8), k.mem.read(b.pa + 8, 8)) == (a.pa, a.pa)
    assert (k.mem.read(a.pa, 8), k.mem.read(a.pa + 8, 8)) == (b.pa, b.pa)
    got = k.pgtable_trans_huge_withdraw(mm, pmd)
    assert got == b and k.mem.read(b.pa, 8) == k.mem.read(b.pa + 8, 8) == L._PAGE_INVALID
    assert (k.mem.read(a.pa, 8), k.mem.read(a.pa + 8, 8)) == (a.pa, a.pa)
    # three on the list: A <-> B <-> C, C the head (list_add after the old head B)
    k.pgtable_trans_huge_deposit(mm, pmd, b)
    c = k.pte_alloc_one(mm)
    assert c is not None
    k.pgtable_trans_huge_deposit(mm, pmd, c)
    links = {n.pa: (k.mem.read(n.pa, 8), k.mem.read(n.pa + 8, 8)) for n in (a, b, c)}
    assert links == {a.pa: (b.pa, c.pa), b.pa: (c.pa, a.pa), c.pa: (a.pa, b.pa)}
    assert k.pgtable_trans_huge_withdraw(mm, pmd) == c
    assert k.pmd_huge_pte(mm, pmd) == a  # lh->next
    assert (k.mem.read(a.pa, 8), k.mem.read(b.pa, 8)) == (b.pa, a.pa)
    assert k.pgtable_trans_huge_withdraw(mm, pmd) == a
    assert k.pgtable_trans_huge_withdraw(mm, pmd) == b
    assert k.mem.read(a.pa, 8) == L._PAGE_INVALID
    for t in (a, b, c):
        k.pte_free(mm, t)
    spin_unlock(ptl)


def test_generic_call_sites_across_3_4_5_levels_and_teardown() -> None:
    """The generic call sites (mm/mmap.c ``mmap_region``, mm/gup.c populate ->
    ``handle_mm_fault``, ``exit_mmap`` -> ``free_pgtables`` -> ``free_pgd_range``) on an mm
    that ``check_asce_limit`` upgrades from 3 to 4 to 5 levels between mappings (what
    s390's ``arch_get_unmapped_area`` does for each mmap): every page translates with the
    DAT walker after each step, no TLB entry is left stale, and ``mmput`` frees every table
    -- the old 3-level pgd is freed as a pud table, the 4-level one as a p4d table --
    leaving exactly the frames the machine had before ``mm_alloc``."""
    from legacy.mm.anon import populate_vma_page_range
    from legacy.mm.mmap import mmap_region, mmput
    from legacy.mm.vma import vma_set_anonymous
    from legacy.mm_types import mmap_write_locked
    from ptshim.backends import anon_vm_flags

    k = S390Kernel(S390X)
    frames = len(k.mem)
    mm = k.mm_alloc()
    assert mm is not None
    vas = (0x40_0000, 0x500_0000_0000, 0x40_0000_0000_0000)
    for n, va in enumerate(vas):
        with mmap_write_locked(mm):
            assert k.check_asce_limit(mm, va, 0x10000) == va
            assert mmap_region(k, mm, va, 0x10000, anon_vm_flags("rw"), 0) == va
            vma = next(v for v in mm.mmap if v.vm_start == va)
            vma_set_anonymous(vma)
            assert populate_vma_page_range(k, vma, va, va + 0x10000) == 16
        k.syscall_exit(f"map {va:#x}")
        assert k.mm_levels(mm) == 3 + n
        for done in vas[:n + 1]:
            t = translate(k, mm, done + 0xF000)
            assert isinstance(t, Translation) and t.writable and t.size == 4096
        # the TLB model followed the new roots: it reaches the same leaves as the walker
        walked = [(t.va, t.pa, t.size) for t in S390X.walker.leaves(k.mem, regs(k, mm))]
        assert k.hw_tlb.leaves(mm.asid) == walked and len(walked) == 16 * (n + 1)
    mmput(k, mm)  # check_mm: pgtables_bytes 0, no table left charged to the mm
    k.syscall_exit("exit")
    assert len(k.mem) == frames


def test_three_level_teardown_frees_no_folded_table() -> None:
    """``free_pgd_range`` on a 3-level mm: the pgd-level and p4d-level loops walk the same
    region-third entries (``p4d_offset``/``pud_offset`` return the pgd pointer), and
    ``pud_free``/``p4d_free`` free nothing while ``mm_pud_folded``/``mm_p4d_folded``
    (pgalloc.h) -- else the pgd would be freed twice."""
    from legacy.mm.anon import populate_vma_page_range
    from legacy.mm.mmap import mmap_region, mmput
    from legacy.mm.vma import vma_set_anonymous
    from legacy.mm_types import mmap_write_locked
    from ptshim.backends import anon_vm_flags

    k = S390Kernel(S390X)
    frames = len(k.mem)
    mm = k.mm_alloc()
    assert mm is not None
    for va in (0x40_0000, 0x3_0000_0000, 0x3FF_FFF0_0000):
        with mmap_write_locked(mm):
            assert mmap_region(k, mm, va, 0x10000, anon_vm_flags("rw"), 0) == va
            vma = next(v for v in mm.mmap if v.vm_start == va)
            vma_set_anonymous(vma)
            assert populate_vma_page_range(k, vma, va, va + 0x10000) == 16
    assert k.mm_levels(mm) == 3
    # the folded levels' free routines are no-ops (pgalloc.h), whoever calls them
    k.p4d_free(mm, P4dPtr(mm.pgd.pa, 8))
    k.pud_free(mm, PudPtr(mm.pgd.pa, 8))
    assert k.mem.is_allocated(mm.pgd.pa)
    mmput(k, mm)
    k.syscall_exit("exit")
    assert len(k.mem) == frames


def test_kernel_region_third_leaf_is_an_edat2_frame() -> None:
    """A kernel 2 GiB mapping as ``vmem.c`` makes it (``__pa | REGION3_KERNEL``, pgtable.h)
    is a region-third frame to DAT (EDAT-2): translated through CR13, read-write, no
    execute (IEP); ``pud_wrprotect`` sets the region protect bit (read-only with EDAT-1);
    ``pudp_xchg_direct`` (IDTE) leaves no stale entry; ptdump calls it a PUD."""
    from legacy.mm.ptdump import ptdump_walk_pgd
    from legacy.ptdump import ptdump_range
    from legacy.s390.pgtable import REGION3_KERNEL

    k = S390Kernel(S390X)
    mm = k.init_mm
    va = (1 << 63) | 1 << 31
    pgd = k.pgd_offset(mm, va)
    p4d = k.p4d_alloc(mm, pgd, va)
    assert p4d is not None
    pud = k.pud_alloc(mm, p4d, va)
    assert pud is not None
    entry = pud_t(0x1_8000_0000 | REGION3_KERNEL)
    assert k.pud_leaf(entry) and k.pud_write(entry) and k.pud_pfn(entry) == 0x180000
    k.set_pud(pud, entry)
    r = S390X.make_registers(k.init_mm.context["asce"], k.init_mm.context["asce"])
    t = S390X.walker.translate(k.mem, r, va + 0x1234_5678)
    assert isinstance(t, Translation)
    assert (t.pa, t.size, t.writable, t.executable, t.user) == (
        0x1_8000_0000 + 0x1234_5678, 1 << 31, True, False, False)
    st = k.ptdump_pg_state([ptdump_range(va, va + (1 << 32))], [])
    ptdump_walk_pgd(k, st, mm)
    assert "0x8000000080000000-0x8000000100000000         2G PUD RW NX" in st.text()
    k.pudp_xchg_direct(mm, va, pud, k.pud_wrprotect(entry))
    assert not k.hw_tlb.marks
    t = S390X.walker.translate(k.mem, r, va)
    assert isinstance(t, Translation) and not t.writable


def _map_anon(k: S390Kernel, mm: mm_struct, va: int, size: int = 0x10000) -> None:
    """``mmap`` (s390's ``arch_get_unmapped_area`` -> ``check_asce_limit`` first) and
    populate an anonymous rw mapping."""
    from legacy.mm.anon import populate_vma_page_range
    from legacy.mm.mmap import mmap_region
    from legacy.mm.vma import vma_set_anonymous
    from legacy.mm_types import mmap_write_locked
    from ptshim.backends import anon_vm_flags

    with mmap_write_locked(mm):
        assert mmap_region(k, mm, va, size, anon_vm_flags("rw"), 0) == va
        vma = next(v for v in mm.mmap if v.vm_start == va)
        vma_set_anonymous(vma)
        assert populate_vma_page_range(k, vma, va, va + size) == size // 4096
    k.syscall_exit(f"map {va:#x}")


@pytest.mark.parametrize("top_va", [0x500_0000_0000, 0x40_0000_0000_0000, (1 << 63) - 0x10000])
def test_exit_frees_the_empty_upgrade_chain(top_va: int) -> None:
    """Only a mapping above 4 TiB: ``crst_table_upgrade`` leaves the old top (charged by
    ``mm_inc_nr_puds``) at entry 0 of the new one, and ``free_pgd_range`` (from the first
    vma) never visits it.  The documented departure in ``pgd_free``: the empty chain goes
    with the top table and its charge is taken back, so ``check_mm`` passes and every frame
    is freed (the kernel leaks 16 KiB there; a real process has a stack below 4 TiB)."""
    from legacy.mm.mmap import mmput

    k = S390Kernel(S390X)
    frames = len(k.mem)
    mm = k.mm_alloc()
    assert mm is not None
    old_top = mm.pgd.pa
    _map_anon(k, mm, top_va)
    chain = k.mm_upgrade_tables(mm)
    assert old_top in chain and len(chain) == k.mm_levels(mm) - 3
    assert {k.table_level(pa) for pa in chain} == {"pud", "p4d"} - (
        {"p4d"} if k.mm_levels(mm) == 4 else set())
    assert mm.pgtables_bytes >= 16384  # the old top, charged as a pud table
    mmput(k, mm)  # check_mm raises on a leak or a non-zero pgtables_bytes
    k.syscall_exit("exit")
    assert len(k.mem) == frames


def test_a_non_empty_upgrade_chain_is_still_a_leak() -> None:
    """The departure is narrow: a chain table holding an entry (here a pmd table made at
    address 0 with no vma, so ``free_pgtables`` never frees it) is left alone, and
    ``check_mm`` reports the leak as the kernel would."""
    from arches.errors import CheckFailed
    from legacy.mm.mmap import mmput

    k = S390Kernel(S390X)
    mm = k.mm_alloc()
    assert mm is not None
    _map_anon(k, mm, 0x40_0000_0000_0000)
    pud = k.pud_offset(k.p4d_offset(k.pgd_offset(mm, 0), 0), 0)
    assert pud.pa in k.mm_upgrade_tables(mm) and k.table_level(pud.pa) == "pud"
    assert k.pmd_alloc(mm, pud, 0) is not None
    chain = k.mm_upgrade_tables(mm)
    with pytest.raises(CheckFailed, match="non-zero pgtables_bytes 32768"):  # pud + pmd
        mmput(k, mm)
    assert len(chain) == 2 and all(k.mem.is_allocated(pa) for pa in chain)


def test_unmapping_below_4tib_frees_the_chain_with_its_table() -> None:
    """3 -> 5 levels, a vma in [4 TiB, 2^53) and one above: unmapping the low one runs
    ``free_p4d_range``, which frees the region-second table of pgd entry 0 but never visits
    its entry 0 (the old top).  The departure frees the empty old top with the table
    holding it (no orphan); the accounting stays right and exit leaks nothing."""
    from legacy.mm.mmap import do_munmap, mmput
    from legacy.mm_types import mmap_write_locked

    k = S390Kernel(S390X)
    frames = len(k.mem)
    mm = k.mm_alloc()
    assert mm is not None
    old_top = mm.pgd.pa
    _map_anon(k, mm, 0x40_0000_0000_0000)
    _map_anon(k, mm, 0x500_0000_0000)
    assert k.mm_levels(mm) == 5 and old_top in k.mm_upgrade_tables(mm)
    with mmap_write_locked(mm):
        assert do_munmap(k, mm, 0x500_0000_0000, 0x10000) == 0
    k.syscall_exit("munmap")
    assert k.mm_upgrade_tables(mm) == [] and not k.mem.is_allocated(old_top)
    charged = [k.table_level(pa) for pa in k.tables_of(mm)]
    # PTRS_PER_PTE * sizeof(pte_t) = 2 KiB per page table, 16 KiB per pmd or pud table
    assert mm.pgtables_bytes == 2048 * charged.count("pte") + 16384 * (
        charged.count("pmd") + charged.count("pud"))
    mmput(k, mm)
    k.syscall_exit("exit")
    assert len(k.mem) == frames
