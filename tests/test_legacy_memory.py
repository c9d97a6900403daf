"""mm/memory.c family (legacy/mm): remap, zap, free_pgd_range, munmap, exit, fork, mremap.

Every check reads the machine, not the code under test: translations come from the
configuration's hardware walker, table counts from the frames charged to the mm, and the
expected tables from geometry alone (a table of level X exists iff some vma intersects the
region one X table maps).  Runs on every configuration ``legacy.arch_names()`` lists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import legacy
from arches.config import Fault, Translation
from legacy import GenericKernel, mm_struct, pgprot_t, vm_area_struct
from legacy.generic import MAP_FIXED
from legacy.mm.memory import (
    free_pgd_range,
    remap_pfn_range,
    unmap_vmas,
    zap_page_range_single,
)
from legacy.mm.mmap import do_munmap, dup_mm, exit_mmap, mmap_region, mmput
from legacy.mm.mmu_gather import (
    MAX_TABLE_BATCH,
    tlb_finish_mmu,
    tlb_gather_mmu,
)
from legacy.mm.mremap import move_page_tables, move_vma
from legacy.mm.vm_flags import (
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_PFNMAP,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
)
from legacy.mm.vma import find_vma
from legacy.mm_types import mmap_write_locked

ARCHES = legacy.arch_names()
SHARED = VM_READ | VM_WRITE | VM_SHARED | VM_MAYREAD | VM_MAYWRITE | VM_MAYSHARE
PRIVATE = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE  # a COW mapping
ENOMEM = -12
PFN0 = 0x40000  # physical pages mapped start here (1 GiB): far from the page tables

HYP = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


# -- reading the machine -----------------------------------------------------------------


def regs(k: GenericKernel, mm: mm_struct) -> dict[str, int]:
    kernel_root = k.mm_root(k.init_mm if k.SEPARATE_KERNEL_ROOT else mm)
    return k.config.make_registers(k.mm_root(mm), kernel_root)


def translate(k: GenericKernel, mm: mm_struct, va: int) -> Translation | Fault:
    return k.config.walker.translate(k.mem, regs(k, mm), va)


def user_leaves(k: GenericKernel, mm: mm_struct) -> dict[int, Translation]:
    """Every user leaf the hardware reaches, split into base pages: va -> translation."""
    out: dict[int, Translation] = {}
    for t in k.config.walker.leaves(k.mem, regs(k, mm)):
        if not k.config.is_user(t.va):
            continue
        for off in range(0, t.size, k.PAGE_SIZE):
            out[t.va + off] = t
    return out


def pa_map(k: GenericKernel, mm: mm_struct) -> dict[int, int]:
    """va -> pa of every mapped user base page."""
    return {va: t.pa + (va - t.va) for va, t in user_leaves(k, mm).items()}


def frames_of(k: GenericKernel, mm: mm_struct) -> Counter[str]:
    """Page-table frames charged to ``mm``, by level (the pgd left out)."""
    return Counter(d.level for d in k.ptdescs.values() if d.mm is mm and d.level != "pgd")


def accounted_bytes(k: GenericKernel, mm: mm_struct) -> int:
    """What ``pgtables_bytes`` must be for the tables present (reference §6)."""
    per = {
        "pte": k.PTRS_PER_PTE * k.SIZEOF_PTE,
        "pmd": 0 if k.mm_pmd_folded(mm) else k.PTRS_PER_PMD * k.SIZEOF_PMD,
        "pud": 0 if k.mm_pud_folded(mm) else k.PTRS_PER_PUD * k.SIZEOF_PUD,
    }
    return sum(per.get(d.level, 0) for d in k.ptdescs.values() if d.mm is mm)


def expected_tables(k: GenericKernel, mm: mm_struct,
                    ranges: list[tuple[int, int]]) -> Counter[str]:
    """Tables a fully populated set of ranges needs: one X table per X-table-sized region
    any range intersects, for every level ``mm`` does not fold (``mm_X_folded``: folded at
    compile time or, like riscv's p4d/pud, at run time)."""
    levels = (
        ("pte", False, k.PMD_SIZE), ("pmd", k.mm_pmd_folded(mm), k.PUD_SIZE),
        ("pud", k.mm_pud_folded(mm), k.P4D_SIZE), ("p4d", k.mm_p4d_folded(mm), k.PGDIR_SIZE),
    )
    # Levels added to a live mm (s390's crst_table_upgrade) keep the tables the upgrade
    # put at entry 0 of the new top until a free_pgtables over region 0 frees them.
    upgraded = {k.ptdescs[pa].level for pa in k.mm_upgrade_tables(mm)}
    out: Counter[str] = Counter()
    for level, folded, span in levels:
        if folded:
            continue
        regions = {r for s, e in ranges for r in range(s // span, (e - 1) // span + 1)}
        if level in upgraded:
            regions.add(0)
        if regions:
            out[level] = len(regions)
    return out


def preallocates(k: GenericKernel, mm: mm_struct) -> bool:
    """Whether pgd_alloc charged tables besides the pgd (i386-pae's PMDs)."""
    return bool(frames_of(k, mm))


def is_table(k: GenericKernel, pa: int) -> bool:
    """A table still lives at ``pa``, or its frame was not given back: a freed table's
    frame is free unless another table lives in it or the kernel keeps it for the mm's
    next tables (ppc64 fragment pages, ``k.table_cache_frames``)."""
    if pa in k.ptdescs:
        return True
    frame = k.frame_of(pa)
    kept = {f for m in (*k.mms, k.init_mm) for f in k.table_cache_frames(m)}
    return k.mem.is_allocated(frame) and frame not in kept and not any(
        k.frame_of(q) == frame for q in k.ptdescs)


def no_lock_held(k: GenericKernel, mm: mm_struct) -> bool:
    return not mm.page_table_lock.held and not any(
        d.ptl is not None and d.ptl.held for d in k.ptdescs.values()
    )


def check(k: GenericKernel, mm: mm_struct, model: dict[int, int], exact_tables: bool) -> None:
    """The machine agrees with ``model`` (va -> pa of every mapped page)."""
    assert pa_map(k, mm) == model
    assert mm.pgtables_bytes == accounted_bytes(k, mm)
    assert no_lock_held(k, mm)
    vma_pages = {
        va for v in mm.mmap for va in range(v.vm_start, v.vm_end, k.PAGE_SIZE)
    }
    assert vma_pages == set(model)
    if exact_tables:
        ranges = [(v.vm_start, v.vm_end) for v in mm.mmap]
        assert frames_of(k, mm) == expected_tables(k, mm, ranges)


# -- building mappings -------------------------------------------------------------------


def fault_in(k: GenericKernel, mm: mm_struct) -> None:
    """Where faults keep the young and dirty bits (``k.SOFTWARE_YOUNG_DIRTY``: an old pte
    faults, a clean one is read-only), touch every present user pte as ``handle_pte_fault``
    does: ``pte_mkyoung``, and ``pte_mkdirty`` for a store where the pte is writable (a
    COW pte only gets young: a store would break the COW)."""
    if not k.SOFTWARE_YOUNG_DIRTY:
        return
    with mmap_write_locked(mm):
        for vma in mm.mmap:
            for va in range(vma.vm_start, vma.vm_end, k.PAGE_SIZE):
                r = k.pte_offset_map_lock(mm, k.pmd_off(mm, va), va)
                if r is None:
                    continue
                pte, ptl = r
                v = k.ptep_get(pte)
                if k.pte_present(v):
                    entry = k.pte_mkyoung(v)
                    if k.pte_write(v):
                        entry = k.pte_mkdirty(entry)
                    k.ptep_set_access_flags(vma, va, pte, entry, int(k.pte_write(v)))
                k.pte_unmap_unlock(pte, ptl)


def map_range(
    k: GenericKernel, mm: mm_struct, start: int, npages: int, pfn: int, flags: int = SHARED,
    prot: pgprot_t | None = None,
) -> vm_area_struct:
    """mmap + a driver's remap_pfn_range (with ``vm_page_prot`` unless ``prot`` given)."""
    size = npages * k.PAGE_SIZE
    with mmap_write_locked(mm):
        assert mmap_region(k, mm, start, size, flags) == start
        vma = find_vma(k, mm, start)
        assert vma is not None and vma.vm_start == start
        prot = vma.vm_page_prot if prot is None else prot
        assert remap_pfn_range(k, vma, start, pfn, size, prot) == 0
    return vma


def overlaps(mm: mm_struct, start: int, end: int) -> bool:
    return any(v.vm_start < end and start < v.vm_end for v in mm.mmap)


def pages(k: GenericKernel, start: int, npages: int, pfn: int) -> dict[int, int]:
    return {start + i * k.PAGE_SIZE: (pfn + i) << k.PAGE_SHIFT for i in range(npages)}


def addr_of(k: GenericKernel, slot: int, pud: int, pmd: int, page: int) -> int:
    """An address built from table coordinates, so layouts hit every table boundary."""
    return slot * k.PGDIR_SIZE + pud * k.PUD_SIZE + pmd * k.PMD_SIZE + page * k.PAGE_SIZE


def addresses(k: GenericKernel) -> st.SearchStrategy[int]:
    pte_last = k.PTRS_PER_PTE - 1
    top = (k.TASK_SIZE - 8 * k.PAGE_SIZE) & k.PAGE_MASK
    coords = st.builds(
        lambda s, u, m, p: addr_of(k, s, u, m, p),
        st.integers(0, 2), st.integers(0, 2), st.integers(0, 2),
        st.sampled_from([0, 1, 2, pte_last - 1, pte_last]),
    )
    return st.one_of(coords, st.just(top)).filter(lambda a: 0 < a < top + k.PAGE_SIZE)


@pytest.fixture(params=ARCHES)
def k(request: pytest.FixtureRequest) -> GenericKernel:
    return legacy.boot(request.param)


@pytest.fixture
def mm(k: GenericKernel) -> Iterator[mm_struct]:
    mm = k.mm_alloc()
    assert mm is not None
    yield mm


# -- remap_pfn_range -------------------------------------------------------------------


def test_remap_pfn_range_maps_every_page(k: GenericKernel, mm: mm_struct) -> None:
    start = addr_of(k, 1, 1, 1, k.PTRS_PER_PTE - 3)  # crosses a PTE-table boundary
    vma = map_range(k, mm, start, 7, PFN0)
    assert vma.vm_flags & VM_PFNMAP
    for va, pa in pages(k, start, 7, PFN0).items():
        t = translate(k, mm, va)
        assert isinstance(t, Translation)
        # a clean pte is write-protected where faults keep the dirty bit (s390)
        w = not k.SOFTWARE_YOUNG_DIRTY or k.pte_dirty(k.ptep_get(
            k.pte_offset_kernel(k.pmd_off(mm, va), va)))
        assert (t.pa, t.size, t.writable, t.user) == (pa, k.PAGE_SIZE, w, True)
    assert isinstance(translate(k, mm, start - k.PAGE_SIZE), Fault)
    assert isinstance(translate(k, mm, start + 7 * k.PAGE_SIZE), Fault)
    check(k, mm, pages(k, start, 7, PFN0), not preallocates(k, mm))


def test_remap_pfn_range_cow_needs_whole_vma(k: GenericKernel, mm: mm_struct) -> None:
    start = addr_of(k, 0, 1, 0, 0)
    assert mmap_region(k, mm, start, 4 * k.PAGE_SIZE, PRIVATE) == start
    vma = find_vma(k, mm, start)
    assert vma is not None
    assert remap_pfn_range(k, vma, start, PFN0, k.PAGE_SIZE, vma.vm_page_prot) == -22
    assert remap_pfn_range(k, vma, start, PFN0, 4 * k.PAGE_SIZE, vma.vm_page_prot) == 0
    assert vma.vm_pgoff == PFN0  # vm_normal_page()'s COW marker


def test_remap_pfn_range_enomem_leaks_nothing(k: GenericKernel) -> None:
    """Fail the n-th table allocation: the ptes already set are zapped, and munmap of the
    vma then frees every table: no frame stays allocated."""
    for n in range(1, 16):
        before_mm = k.mem.allocated_frames()
        mm = k.mm_alloc()
        assert mm is not None
        baseline = k.tables_of(mm)
        start = addr_of(k, 1, 1, 1, k.PTRS_PER_PTE - 2)
        size = 2 * k.PMD_SIZE  # spans three PTE tables
        assert mmap_region(k, mm, start, size, SHARED) == start
        vma = find_vma(k, mm, start)
        assert vma is not None
        k.mem.fail_after(n)
        err = remap_pfn_range(k, vma, start, PFN0, size, vma.vm_page_prot)
        k.mem.fail_after(0)
        if err == 0:
            assert n > 1
            mmput(k, mm)
            break
        assert err == ENOMEM
        assert pa_map(k, mm) == {}
        assert mm.pgtables_bytes == accounted_bytes(k, mm)
        assert no_lock_held(k, mm)
        with mmap_write_locked(mm):
            assert do_munmap(k, mm, start, size) == 0
        if not preallocates(k, mm):  # (a table's frame may stay cached for the mm's next
            assert k.tables_of(mm) == baseline  # tables: ppc64 pte_frag; mmput frees it)
        mmput(k, mm)
        assert k.tables_of(mm) == []
        assert k.mem.allocated_frames() == before_mm
    else:
        pytest.fail("remap_pfn_range never succeeded")


# -- zap and free_pgd_range ------------------------------------------------------------


def test_zap_keeps_tables(k: GenericKernel, mm: mm_struct) -> None:
    start = addr_of(k, 0, 0, 3, 10)
    vma = map_range(k, mm, start, 5, PFN0)
    before = k.tables_of(mm)
    bytes_before = mm.pgtables_bytes
    zap_page_range_single(k, vma, start + k.PAGE_SIZE, 2 * k.PAGE_SIZE)
    model = pages(k, start, 5, PFN0)
    del model[start + k.PAGE_SIZE], model[start + 2 * k.PAGE_SIZE]
    assert pa_map(k, mm) == model
    assert k.tables_of(mm) == before and mm.pgtables_bytes == bytes_before


@pytest.mark.parametrize(
    "where",
    ["same-pte-table", "same-pmd-table", "same-pud-table", "other-pgd-slot", "alone"],
)
def test_munmap_frees_only_unshared_tables(k: GenericKernel, mm: mm_struct, where: str) -> None:
    """Unmap vma B next to vma A: tables that also map A survive, the others are freed."""
    if preallocates(k, mm):
        pytest.skip("pgd_alloc preallocates tables: the geometric oracle does not apply")
    a = addr_of(k, 1, 1, 1, 0)
    b = {
        "same-pte-table": a + 16 * k.PAGE_SIZE,
        "same-pmd-table": a + 2 * k.PMD_SIZE,
        "same-pud-table": a + 2 * k.PUD_SIZE,
        # the next pgd slot, or the previous one when the pgd has only two (16K/48-bit)
        "other-pgd-slot": a + k.PGDIR_SIZE if a + k.PGDIR_SIZE < k.TASK_SIZE
        else a - k.PGDIR_SIZE,
        "alone": a,
    }[where]
    model: dict[int, int] = {}
    if where != "alone":
        map_range(k, mm, a, 4, PFN0)
        model = pages(k, a, 4, PFN0)
    tables_a = set(k.tables_of(mm))
    map_range(k, mm, b, 4, PFN0 + 64)
    # the mm's own tables (a new top, the upgrade's chain below it) are not B's
    tables_b = set(k.tables_of(mm)) - tables_a - {mm.pgd.pa} - set(k.mm_upgrade_tables(mm))
    check(k, mm, {**model, **pages(k, b, 4, PFN0 + 64)}, True)

    with mmap_write_locked(mm):
        assert do_munmap(k, mm, b, 4 * k.PAGE_SIZE) == 0
    check(k, mm, model, True)
    # shared tables kept, B's own tables freed; mapping B may have given the mm a new top
    # table and put the old one below it (s390's crst_table_upgrade): those are the mm's
    kept = tables_a | {mm.pgd.pa} | set(k.mm_upgrade_tables(mm))
    assert set(k.tables_of(mm)) == kept
    assert not any(is_table(k, pa) for pa in tables_b)
    if where == "alone":
        assert set(k.tables_of(mm)) == {mm.pgd.pa, *k.mm_upgrade_tables(mm)}
        assert mm.pgtables_bytes == accounted_bytes(k, mm)


@settings(HYP)
@given(data=st.data())
def test_munmap_random_layouts(data: st.DataObject) -> None:
    """Random vmas around table boundaries, random munmaps: translations, accounting and
    the exact set of tables stay right after every step."""
    k = legacy.boot(data.draw(st.sampled_from(ARCHES), label="arch"))
    mm = k.mm_alloc()
    assert mm is not None
    exact = not preallocates(k, mm)
    model: dict[int, int] = {}
    pfn = PFN0
    for _ in range(data.draw(st.integers(1, 5), label="nvmas")):
        start = data.draw(addresses(k), label="start")
        npages = data.draw(st.integers(1, 4), label="npages")
        end = start + npages * k.PAGE_SIZE
        if end > k.TASK_SIZE or overlaps(mm, start, end):
            continue
        map_range(k, mm, start, npages, pfn)
        model.update(pages(k, start, npages, pfn))
        pfn += npages
    check(k, mm, model, exact)
    for _ in range(data.draw(st.integers(1, 3), label="nunmaps")):
        start = data.draw(addresses(k), label="unmap")
        npages = data.draw(st.integers(1, 6), label="unmap_pages")
        end = min(start + npages * k.PAGE_SIZE, k.TASK_SIZE)
        with mmap_write_locked(mm):
            assert do_munmap(k, mm, start, end - start) == 0
        model = {va: pa for va, pa in model.items() if not start <= va < end}
        check(k, mm, model, exact)
    mmput(k, mm)
    assert k.tables_of(mm) == []


def test_free_pgd_range_defers_to_tlb_finish(k: GenericKernel, mm: mm_struct) -> None:
    """Tables unhooked by free_pgd_range stay allocated until tlb_finish_mmu()."""
    start = addr_of(k, 1, 0, 0, 0)
    vma = map_range(k, mm, start, 3, PFN0)
    mine = [pa for pa in k.tables_of(mm) if pa != mm.pgd.pa]
    tlb = tlb_gather_mmu(k, mm)
    unmap_vmas(k, tlb, [vma], start, vma.vm_end)
    with mmap_write_locked(mm), k.pgtable_lockless(mm, "test"):
        free_pgd_range(k, tlb, start, vma.vm_end, k.FIRST_USER_ADDRESS, k.USER_PGTABLES_CEILING)
    assert pa_map(k, mm) == {}  # unhooked: the walker no longer reaches them ...
    assert all(k.mem.is_allocated(pa) for pa in mine)  # ... but not freed yet
    tlb_finish_mmu(k, tlb)
    gone = set(mine) - set(k.tables_of(mm))
    assert gone and not any(is_table(k, pa) for pa in gone)
    assert any(f.freed_tables for f in tlb.flushes)
    if not preallocates(k, mm):
        assert k.tables_of(mm) == [mm.pgd.pa] and mm.pgtables_bytes == 0


def test_table_batch_flushes_when_full(k: GenericKernel, mm: mm_struct) -> None:
    """MAX_TABLE_BATCH queued tables force a flush-and-free before tlb_finish_mmu()."""
    n = MAX_TABLE_BATCH(k) + 2
    span = k.PMD_SIZE
    if n * span > k.TASK_SIZE // 2:
        pytest.skip("address space too small for a full batch of PTE tables")
    if n > 4096:  # 64K pages: 8190 tables of 64 KiB (512 MiB of frames), a minute of CPU
        pytest.skip(f"a full batch is {n - 2} PTE tables of {k.PAGE_SIZE // 1024} KiB: the "
                    "same generic mmu_gather code is covered by the 4K and 16K configurations")
    base = addr_of(k, 1, 0, 0, 0) if k.PGDIR_SIZE * 2 < k.TASK_SIZE else span
    start, end = base, base + n * span
    assert mmap_region(k, mm, start, end - start, SHARED) == start
    vma = find_vma(k, mm, start)
    assert vma is not None
    for i in range(n):  # one page per PTE table
        assert remap_pfn_range(k, vma, start + i * span, PFN0 + i, k.PAGE_SIZE,
                               vma.vm_page_prot) == 0
    ptes = [pa for pa, d in k.ptdescs.items() if d.mm is mm and d.level == "pte"]
    assert len(ptes) >= n
    tlb = tlb_gather_mmu(k, mm)
    unmap_vmas(k, tlb, [vma], start, end)
    with mmap_write_locked(mm), k.pgtable_lockless(mm, "test"):
        free_pgd_range(k, tlb, start, end, 0, 0)
    freed_early = [pa for pa in ptes if not k.mem.is_allocated(pa)]
    assert len(freed_early) == MAX_TABLE_BATCH(k)
    tlb_finish_mmu(k, tlb)
    assert not any(k.mem.is_allocated(pa) for pa in ptes)


def test_free_pgd_range_zero_means_top(k: GenericKernel, mm: mm_struct) -> None:
    """end 0 and ceiling 0 are the top of the address space; a floor that pushes addr past
    the top, or a ceiling that rounds down to 0, frees nothing."""
    if preallocates(k, mm):
        pytest.skip("pgd_alloc preallocates tables: the geometric oracle does not apply")
    low = map_range(k, mm, addr_of(k, 0, 0, 1, 0), 2, PFN0)
    top = (k.TASK_SIZE - 2 * k.PAGE_SIZE) & k.PAGE_MASK
    high = map_range(k, mm, top, 2, PFN0 + 8)
    model = {**pages(k, low.vm_start, 2, PFN0), **pages(k, top, 2, PFN0 + 8)}
    check(k, mm, model, True)
    frames = k.tables_of(mm)
    m = k.ULONG_MASK

    # addr rounds up past the top: "if (!addr) return"
    tlb = tlb_gather_mmu(k, mm)
    with mmap_write_locked(mm), k.pgtable_lockless(mm, "test"):
        free_pgd_range(k, tlb, m & k.PMD_MASK, 0, m, 0)
    # ceiling rounds down to 0: "if (!ceiling) return"
    with mmap_write_locked(mm), k.pgtable_lockless(mm, "test"):
        free_pgd_range(k, tlb, 0, k.PMD_SIZE, 0, k.PMD_SIZE - 1)
    tlb_finish_mmu(k, tlb)
    assert k.tables_of(mm) == frames
    check(k, mm, model, True)

    # Zap the high vma, then free from it with ceiling 0 (USER_PGTABLES_CEILING): its
    # tables go, up to the highest level not shared with the low vma.  end 0 is only
    # meaningful where the pgd spans all of unsigned long (32-bit); on 64-bit the kernel
    # never passes it ("that end 0 case should be mythical"): pgd++ would run off the pgd.
    spans_word = k.PGDIR_SIZE * k.PTRS_PER_PGD == 1 << k.config.word_bits
    user_top = k.pgd_index(k.TASK_SIZE - 1)
    kernel_half = [k.pgdp_get(mm.pgd + i) for i in range(user_top + 1, k.PTRS_PER_PGD)]
    end = 0 if spans_word and not any(kernel_half) else high.vm_end
    tlb = tlb_gather_mmu(k, mm)
    unmap_vmas(k, tlb, [high], high.vm_start, high.vm_end)
    with mmap_write_locked(mm), k.pgtable_lockless(mm, "test"):
        free_pgd_range(k, tlb, high.vm_start, end, low.vm_end, 0)
    tlb_finish_mmu(k, tlb)
    mm.mmap.remove(high)
    check(k, mm, pages(k, low.vm_start, 2, PFN0), True)


# -- exit_mmap / mmput --------------------------------------------------------------------


def test_mmput_frees_everything(k: GenericKernel) -> None:
    baseline = k.mem.allocated_frames()
    mm = k.mm_alloc()
    assert mm is not None
    for i, start in enumerate((addr_of(k, 0, 0, 1, 5), addr_of(k, 1, 1, 0, 0),
                               (k.TASK_SIZE - 4 * k.PAGE_SIZE) & k.PAGE_MASK)):
        map_range(k, mm, start, 3, PFN0 + 16 * i)
    assert mm.pgtables_bytes > 0
    mmput(k, mm)  # runs check_mm
    assert k.tables_of(mm) == [] and mm.pgtables_bytes == 0
    assert k.mem.allocated_frames() == baseline
    assert mm not in k.mms


def test_exit_mmap_without_vmas(k: GenericKernel, mm: mm_struct) -> None:
    exit_mmap(k, mm)
    k.mmdrop(mm)
    assert k.tables_of(mm) == []


# -- fork: copy_page_range ---------------------------------------------------------------


def test_fork_copies_translations(k: GenericKernel, mm: mm_struct) -> None:
    shared = map_range(k, mm, addr_of(k, 0, 1, 1, k.PTRS_PER_PTE - 2), 5, PFN0)
    # A driver mapping a private vma writable (like /dev/mem with MAP_PRIVATE).
    writable = k.vm_get_page_prot(VM_READ | VM_WRITE | VM_SHARED)
    cow = map_range(k, mm, addr_of(k, 0, 2, 2, 7), 3, PFN0 + 32, PRIVATE, writable)
    fault_in(k, mm)
    before = user_leaves(k, mm)
    assert all(before[va].writable for va in range(cow.vm_start, cow.vm_end, k.PAGE_SIZE))
    child = dup_mm(k, mm)
    assert child is not None
    fault_in(k, child)  # the child's ptes are old (copy_present_ptes: pte_mkold)
    parent_after, child_leaves = user_leaves(k, mm), user_leaves(k, child)
    assert child_leaves == parent_after  # identical translations, page by page
    assert set(child_leaves) == set(before)
    for va, t in child_leaves.items():
        assert t.pa == before[va].pa
        in_cow = cow.vm_start <= va < cow.vm_end
        assert t.writable == (not in_cow)  # COW: write-protected in both processes
    assert [(v.vm_start, v.vm_end) for v in child.mmap] == sorted(
        [(shared.vm_start, shared.vm_end), (cow.vm_start, cow.vm_end)])
    assert child.pgtables_bytes == accounted_bytes(k, child)
    assert no_lock_held(k, mm) and no_lock_held(k, child)
    mmput(k, child)
    assert user_leaves(k, mm) == parent_after
    assert k.tables_of(child) == []


def test_fork_enomem_leaks_nothing(k: GenericKernel, mm: mm_struct) -> None:
    map_range(k, mm, addr_of(k, 0, 1, 1, 0), 4, PFN0)
    map_range(k, mm, addr_of(k, 1, 1, 0, 0), 4, PFN0 + 8)
    fault_in(k, mm)
    parent = user_leaves(k, mm)
    baseline = k.mem.allocated_frames()
    for n in range(1, 20):
        k.mem.fail_after(n)
        child = dup_mm(k, mm)
        k.mem.fail_after(0)
        if child is not None:
            fault_in(k, child)
            assert user_leaves(k, child) == user_leaves(k, mm)
            mmput(k, child)
            break
        assert k.mem.allocated_frames() == baseline
        assert user_leaves(k, mm) == parent
    else:
        pytest.fail("dup_mm never succeeded")


# -- mremap: move_page_tables --------------------------------------------------------------


@settings(HYP)
@given(data=st.data())
def test_move_vma_random(data: st.DataObject) -> None:
    """Move a vma to a random free address: the translations move with it (same pa), the
    old range faults, and the tables are exactly what the new layout needs."""
    k = legacy.boot(data.draw(st.sampled_from(ARCHES), label="arch"))
    mm = k.mm_alloc()
    assert mm is not None
    exact = not preallocates(k, mm)
    start = data.draw(addresses(k), label="start")
    npages = data.draw(st.integers(1, 5), label="npages")
    if start + npages * k.PAGE_SIZE > k.TASK_SIZE:
        return
    vma = map_range(k, mm, start, npages, PFN0)
    model = pages(k, start, npages, PFN0)
    other = data.draw(addresses(k), label="neighbour")
    if not (other + k.PAGE_SIZE <= start or other >= vma.vm_end):
        other = 0
    if other:
        map_range(k, mm, other, 1, PFN0 + 100)
        model.update(pages(k, other, 1, PFN0 + 100))
    new = data.draw(addresses(k), label="new")
    size = npages * k.PAGE_SIZE
    if new + size > k.TASK_SIZE or overlaps(mm, new, new + size):
        return
    with mmap_write_locked(vma.vm_mm):
        # mm/mremap.c vrm_set_new_addr: get_unmapped_area(..., MAP_FIXED) before move_vma
        # (s390 adds page-table levels there: arch/s390/mm/mmap.c check_asce_limit)
        assert k.arch_get_unmapped_area(mm, new, size, vma.vm_pgoff, MAP_FIXED) == new
        assert move_vma(k, vma, start, size, size, new) == new
    moved = {new + (va - start): pa for va, pa in model.items() if start <= va < start + size}
    rest = {va: pa for va, pa in model.items() if not start <= va < start + size}
    check(k, mm, {**rest, **moved}, exact)
    mmput(k, mm)
    assert k.tables_of(mm) == []


def test_move_whole_pte_table(k: GenericKernel, mm: mm_struct) -> None:
    """A PMD-aligned, PMD-sized move relinks the PTE table itself when the architecture
    has HAVE_MOVE_PMD: no table is allocated for the ptes, the same frame moves."""
    old, new = addr_of(k, 0, 1, 2, 0), addr_of(k, 0, 1, 5, 0)
    n = k.PMD_SIZE // k.PAGE_SIZE
    map_range(k, mm, old, n, PFN0)
    pte_table = k.pmd_pgtable(k.pmdp_get(k.pmd_off(mm, old))).pa
    vma = find_vma(k, mm, old)
    assert vma is not None
    with mmap_write_locked(vma.vm_mm):
        assert move_vma(k, vma, old, k.PMD_SIZE, k.PMD_SIZE, new) == new
    assert pa_map(k, mm) == pages(k, new, n, PFN0)
    if k.HAVE_MOVE_PMD:
        assert k.pmd_pgtable(k.pmdp_get(k.pmd_off(mm, new))).pa == pte_table
    check(k, mm, pages(k, new, n, PFN0), not preallocates(k, mm))


def test_move_realigns_to_pmd(k: GenericKernel, mm: mm_struct) -> None:
    """Source and destination equally misaligned, range crossing a PMD boundary, nothing
    mapped below either start within the PMD: try_realign_addr moves the first PTE table
    whole (same frame) instead of its ptes one by one."""
    last = k.PTRS_PER_PTE - 1
    old, new = addr_of(k, 0, 1, 1, last - 2), addr_of(k, 0, 1, 4, last - 2)
    map_range(k, mm, old, 6, PFN0)
    first_table = k.pmd_pgtable(k.pmdp_get(k.pmd_off(mm, old))).pa
    vma = find_vma(k, mm, old)
    assert vma is not None
    with mmap_write_locked(vma.vm_mm):
        assert move_vma(k, vma, old, 6 * k.PAGE_SIZE, 6 * k.PAGE_SIZE, new) == new
    check(k, mm, pages(k, new, 6, PFN0), not preallocates(k, mm))
    if k.HAVE_MOVE_PMD:
        assert k.pmd_pgtable(k.pmdp_get(k.pmd_off(mm, new))).pa == first_table


def test_move_whole_pmd_table(k: GenericKernel, mm: mm_struct) -> None:
    """A PUD-sized move of a sparsely populated vma relinks the whole PMD table
    (HAVE_MOVE_PUD): no frame is allocated or freed."""
    if k.PAGETABLE_PMD_FOLDED or k.PUD_SIZE * 4 > k.TASK_SIZE:
        pytest.skip("no separate PMD level")
    old, new = addr_of(k, 1, 1, 0, 0), addr_of(k, 1, 3, 0, 0)
    assert mmap_region(k, mm, old, k.PUD_SIZE, SHARED) == old
    vma = find_vma(k, mm, old)
    assert vma is not None
    model: dict[int, int] = {}
    for i, off in enumerate((0, 7 * k.PMD_SIZE + 3 * k.PAGE_SIZE, k.PUD_SIZE - k.PAGE_SIZE)):
        assert remap_pfn_range(k, vma, old + off, PFN0 + i, k.PAGE_SIZE, vma.vm_page_prot) == 0
        model[old + off] = (PFN0 + i) << k.PAGE_SHIFT
    frames = k.tables_of(mm)
    moved = move_page_tables(k, vma, old, vma, new, k.PUD_SIZE)
    assert moved == k.PUD_SIZE
    assert pa_map(k, mm) == {new + va - old: pa for va, pa in model.items()}
    if k.HAVE_MOVE_PUD:
        assert k.tables_of(mm) == frames
    assert mm.pgtables_bytes == accounted_bytes(k, mm) and no_lock_held(k, mm)


def test_move_vma_enomem_moves_back(k: GenericKernel) -> None:
    """A failed table allocation during the move puts every pte back and unmaps the new
    range: same translations, no frame leaked."""
    for n in range(1, 12):
        before_mm = k.mem.allocated_frames()
        mm = k.mm_alloc()
        assert mm is not None
        old = addr_of(k, 0, 1, 1, k.PTRS_PER_PTE - 2)
        vma = map_range(k, mm, old, 4, PFN0)
        before, frames = pa_map(k, mm), k.mem.allocated_frames()
        new = addr_of(k, 2 if 3 * k.PGDIR_SIZE <= k.TASK_SIZE else 1, 0, 1, 3)  # a user slot
        k.mem.fail_after(n)
        with mmap_write_locked(mm):
            ret = move_vma(k, vma, old, 4 * k.PAGE_SIZE, 4 * k.PAGE_SIZE, new)
        k.mem.fail_after(0)
        if ret == new:
            mmput(k, mm)
            break
        assert ret == ENOMEM
        assert pa_map(k, mm) == before
        if not preallocates(k, mm):
            assert k.mem.allocated_frames() == frames
        assert mm.pgtables_bytes == accounted_bytes(k, mm) and no_lock_held(k, mm)
        mmput(k, mm)
        assert k.mem.allocated_frames() == before_mm
    else:
        pytest.fail("move_vma never succeeded")


# -- huge entries (legacy.mm.huge_memory) -------------------------------------------------


def test_munmap_huge_pmd(k: GenericKernel, mm: mm_struct) -> None:
    """A whole huge pmd is zapped by zap_huge_pmd; part of one is split first and the
    rest of the block stays mapped."""
    huge = pytest.importorskip("legacy.mm.huge_memory")
    if k.PMD_SIZE not in k.config.leaf_sizes or not k.has_transparent_hugepage():
        pytest.skip("no transparent huge pmds on this configuration")
    start = addr_of(k, 0, 1, 2, 0)
    assert mmap_region(k, mm, start, 2 * k.PMD_SIZE, SHARED | VM_PFNMAP) == start
    vma = find_vma(k, mm, start)
    assert vma is not None
    hpfn = PFN0 - (PFN0 % (k.PMD_SIZE >> k.PAGE_SHIFT))
    n = k.PMD_SIZE // k.PAGE_SIZE
    for i in range(2):
        assert huge.insert_pfn_pmd(k, vma, start + i * k.PMD_SIZE, hpfn + i * n,
                                   vma.vm_page_prot) == 0
    model = pages(k, start, 2 * n, hpfn)
    assert pa_map(k, mm) == model
    # Whole second block: zap_huge_pmd.
    with mmap_write_locked(mm):
        assert do_munmap(k, mm, start + k.PMD_SIZE, k.PMD_SIZE) == 0
    model = {va: pa for va, pa in model.items() if va < start + k.PMD_SIZE}
    assert pa_map(k, mm) == model
    # Part of the first block: split, then zap the ptes.
    cut = start + 5 * k.PAGE_SIZE
    try:
        with mmap_write_locked(mm):
            assert do_munmap(k, mm, cut, 3 * k.PAGE_SIZE) == 0
    except NotImplementedError as e:
        pytest.xfail(f"{k.config.name}: huge pmd split not implemented ({e!r})")
    model = {va: pa for va, pa in model.items() if not cut <= va < cut + 3 * k.PAGE_SIZE}
    assert pa_map(k, mm) == model
    assert mm.pgtables_bytes == accounted_bytes(k, mm) and no_lock_held(k, mm)
    mmput(k, mm)
    assert k.tables_of(mm) == []


def test_locks_record_their_holder() -> None:
    """A lock names the function holding it, and a second spin_lock names both."""
    import legacy
    from arches.errors import LockError
    from legacy import spin_lock, spin_unlock

    k = legacy.boot("x86_64")
    mm = k.mm_alloc()
    assert mm is not None

    def take_it() -> None:
        spin_lock(mm.page_table_lock)

    take_it()
    assert mm.page_table_lock.holder == "take_it"
    with pytest.raises(LockError, match="already held by take_it"):
        spin_lock(mm.page_table_lock)
    spin_unlock(mm.page_table_lock)
    assert not mm.page_table_lock.held and mm.page_table_lock.holder is None
