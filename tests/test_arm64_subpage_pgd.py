"""arm64 pgds smaller than a page: ``arm64-16k-48`` (a 2-entry, 16-byte pgd) and
``arm64-64k-48`` (a 64-entry, 512-byte pgd), taken from the slab cache ``pgd_cache``.

Kernel facts (Linux v6.18): ``arch/arm64/include/asm/pgtable-hwdef.h`` --
``PGDIR_SHIFT = ARM64_HW_PGTABLE_LEVEL_SHIFT(4 - CONFIG_PGTABLE_LEVELS)``,
``PTRS_PER_PGD = 1 << (VA_BITS - PGDIR_SHIFT)``; ``arch/arm64/include/asm/pgalloc.h`` --
``PGD_SIZE = PTRS_PER_PGD * sizeof(pgd_t)``; ``arch/arm64/mm/pgd.c`` -- when
``PGD_SIZE < PAGE_SIZE`` (``!pgdir_is_page_size()``) ``pgd_alloc`` is
``kmem_cache_alloc(pgd_cache, GFP_PGTABLE_USER)`` from ``kmem_cache_create("pgd_cache",
PGD_SIZE, PGD_SIZE, SLAB_PANIC, NULL)``: naturally aligned objects packed into slab pages.
"""

from __future__ import annotations

import pytest

import legacy
from arches import get_config
from arches.arm64.walker import Arm64Walker
from arches.config import Translation
from arches.errors import BadInput, LockError, PhysMemError
from arches.memory import POISON_FREE
from legacy import GenericKernel, mm_struct, pgprot_t
from legacy.arm64.pgtable import Arm64Kernel
from legacy.mm.memory import remap_pfn_range
from legacy.mm.mmap import mmap_region, mmput
from legacy.mm.vm_flags import VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_READ, VM_SHARED, VM_WRITE
from legacy.mm.vma import find_vma
from legacy.mm_types import mmap_write_locked, spin_lock, spin_unlock
from legacy.slab import KmemCache

SUBPAGE = ["arm64-16k-48", "arm64-64k-48"]
SHARED = VM_READ | VM_WRITE | VM_SHARED | VM_MAYREAD | VM_MAYWRITE | VM_MAYSHARE
PFN_PA = 0x4000_0000


def boot(name: str) -> Arm64Kernel:
    k = legacy.boot(name)
    assert isinstance(k, Arm64Kernel)
    return k


@pytest.fixture(params=SUBPAGE)
def k(request: pytest.FixtureRequest) -> Arm64Kernel:
    return boot(request.param)


def map_page(k: GenericKernel, mm: mm_struct, va: int, pa: int) -> None:
    """mmap one shared page at ``va`` and remap_pfn_range it to ``pa``."""
    with mmap_write_locked(mm):
        assert mmap_region(k, mm, va, k.PAGE_SIZE, SHARED) == va
        vma = find_vma(k, mm, va)
        assert vma is not None
        assert remap_pfn_range(k, vma, va, pa >> k.PAGE_SHIFT, k.PAGE_SIZE,
                               pgprot_t(vma.vm_page_prot)) == 0


def translate(k: GenericKernel, mm: mm_struct, va: int) -> int | None:
    regs = k.config.make_registers(mm.pgd.pa, k.init_mm.pgd.pa)
    t = k.config.walker.translate(k.mem, regs, va)
    return t.pa if isinstance(t, Translation) else None


# -- the kernel's geometry ------------------------------------------------------------------


def test_2_entry_pgd_of_16k_48() -> None:
    """pgtable-hwdef.h with 16K pages, VA_BITS = 48, CONFIG_PGTABLE_LEVELS = 4:
    PGDIR_SHIFT = (14 - 3) * 4 + 3 = 47, PTRS_PER_PGD = 1 << (48 - 47) = 2: a 16-byte pgd,
    the hardware's L0 table (p4d folded by pgtable-nop4d.h)."""
    k = boot("arm64-16k-48")
    assert (k.CONFIG_PGTABLE_LEVELS, k.PGDIR_SHIFT, k.PTRS_PER_PGD, k.PGD_SIZE) == (4, 47, 2, 16)
    assert k.PAGETABLE_P4D_FOLDED and not k.PAGETABLE_PUD_FOLDED
    assert (k.PUD_SHIFT, k.PMD_SHIFT, k.PTRS_PER_PUD, k.PTRS_PER_PMD) == (36, 25, 2048, 2048)
    l0 = get_config("arm64-16k-48").hw_levels[0]
    assert (l0.name, l0.shift, l0.entries, l0.table_bytes) == ("L0", 47, 2, 16)
    assert not k.pgdir_is_page_size() and k.pgd_cache.object_size == 16


def test_512_byte_pgd_of_64k_48() -> None:
    """64K pages, VA_BITS = 48, 3 levels: PGDIR_SHIFT = 13 * 3 + 3 = 42, PTRS_PER_PGD = 64,
    a 512-byte pgd, the hardware's L1 table (pud folded by pgtable-nopud.h)."""
    k = boot("arm64-64k-48")
    assert (k.CONFIG_PGTABLE_LEVELS, k.PGDIR_SHIFT, k.PTRS_PER_PGD, k.PGD_SIZE) == (3, 42, 64, 512)
    assert k.PAGETABLE_PUD_FOLDED and not k.PAGETABLE_PMD_FOLDED
    l1 = get_config("arm64-64k-48").hw_levels[0]
    assert (l1.name, l1.entries, l1.table_bytes) == ("L1", 64, 512)
    assert not k.pgdir_is_page_size() and k.pgd_cache.object_size == 512


@pytest.mark.parametrize("arch", ["arm64-4k-48", "arm64-16k-47", "arm64-64k-42"])
def test_page_sized_pgds_stay_pages(arch: str) -> None:
    """``pgdir_is_page_size()``: no pgd_cache, the pgd is a whole page-table frame."""
    k = boot(arch)
    mm = k.mm_alloc()
    assert mm is not None and k.pgdir_is_page_size() and not k.kmem_caches
    assert k.mem.is_allocated(mm.pgd.pa) and k.ptdescs[mm.pgd.pa].level == "pgd"


# -- the slab cache -------------------------------------------------------------------------


def test_two_pgds_share_one_frame(k: Arm64Kernel) -> None:
    """Two mms' pgds are neighbouring PGD_SIZE objects of one slab page, each naturally
    aligned, each charged to its own mm; one frame was allocated for both."""
    frames = k.mem.allocations
    a, b = k.mm_alloc(), k.mm_alloc()
    assert a is not None and b is not None
    assert k.mem.allocations == frames + 1
    assert b.pgd.pa == a.pgd.pa + k.PGD_SIZE and a.pgd.pa % k.PGD_SIZE == 0
    assert k.frame_of(a.pgd.pa) == k.frame_of(b.pgd.pa) and k.mem.is_allocated(k.frame_of(a.pgd.pa))
    assert k.tables_of(a) == [a.pgd.pa] and k.tables_of(b) == [b.pgd.pa]
    desc = k.table_desc(b.pgd.pa + k.SIZEOF_PGD)  # entry 1 of b's pgd: b's, not a's
    assert desc is not None and desc.mm is b and desc.level == "pgd" and desc.ptl is None
    assert k.mem.read_bytes(b.pgd.pa, k.PGD_SIZE) == bytes(k.PGD_SIZE)


def test_freeing_one_pgd_leaves_the_other_then_the_frame_goes(k: Arm64Kernel) -> None:
    """mmput of one mm poisons its pgd object only: the other mm's tables still translate.
    The slab page goes back to the page allocator with its last object."""
    baseline = k.mem.allocated_frames()
    a, b = k.mm_alloc(), k.mm_alloc()
    assert a is not None and b is not None
    va = k.TASK_SIZE - 4 * k.PAGE_SIZE  # the top pgd entry: entry 1 of a 16K/48 pgd
    map_page(k, a, va, PFN_PA)
    map_page(k, b, va, PFN_PA + k.PAGE_SIZE)
    assert translate(k, a, va) == PFN_PA and translate(k, b, va) == PFN_PA + k.PAGE_SIZE
    slab_frame, b_pgd = k.frame_of(a.pgd.pa), k.mem.read_bytes(b.pgd.pa, k.PGD_SIZE)
    a_pgd = a.pgd.pa
    mmput(k, a)
    assert k.mem.is_allocated(slab_frame)
    assert k.mem.read_bytes(a_pgd, k.PGD_SIZE) == bytes([POISON_FREE]) * k.PGD_SIZE
    assert k.mem.read_bytes(b.pgd.pa, k.PGD_SIZE) == b_pgd
    assert translate(k, b, va) == PFN_PA + k.PAGE_SIZE
    assert k.tables_of(a) == [] and a_pgd not in k.ptdescs
    mmput(k, b)
    assert not k.mem.is_allocated(slab_frame) and not k.pgd_cache.slabs
    assert k.mem.allocated_frames() == baseline


def test_freed_pgd_object_is_reused_first(k: Arm64Kernel) -> None:
    """A freed object is handed out again (zeroed) before the slab grows."""
    mms = [k.mm_alloc() for _ in range(3)]
    assert all(m is not None for m in mms)
    hole = mms[1].pgd.pa  # type: ignore[union-attr]
    mmput(k, mms[1])  # type: ignore[arg-type]
    again = k.mm_alloc()
    assert again is not None and again.pgd.pa == hole
    assert k.mem.read_bytes(hole, k.PGD_SIZE) == bytes(k.PGD_SIZE)


def test_kmem_cache_free_refuses_what_it_did_not_hand_out(k: Arm64Kernel) -> None:
    mm = k.mm_alloc()
    assert mm is not None
    cache: KmemCache = k.pgd_cache
    with pytest.raises(PhysMemError, match="not an allocated object"):
        cache.free(mm.pgd.pa + k.PGD_SIZE)  # a free object of the same slab
    with pytest.raises(PhysMemError, match="not an allocated object"):
        cache.free(mm.pgd.pa + 8)  # inside the object
    pa = mm.pgd.pa
    mmput(k, mm)
    with pytest.raises(PhysMemError, match="double free"):
        k.kmem_cache_free(cache, pa)


def test_enomem_at_the_pgd_allocation_leaks_nothing(k: Arm64Kernel) -> None:
    """The slab page's allocation fails: ``kmem_cache_alloc`` returns NULL, ``pgd_alloc``
    NULL, ``mm_alloc`` NULL; no frame, no slab, no descriptor, no mm is left behind."""
    frames, descs, mms = k.mem.allocated_frames(), dict(k.ptdescs), list(k.mms)
    k.mem.fail_after(1)
    assert k.mm_alloc() is None
    k.mem.fail_after(0)
    assert k.mem.allocated_frames() == frames and k.ptdescs == descs and k.mms == mms
    assert not k.pgd_cache.slabs
    mm = k.mm_alloc()  # and the next one works
    assert mm is not None and k.tables_of(mm) == [mm.pgd.pa]
    # with room in a slab page no page is needed: the injected failure stays pending
    k.mem.fail_after(1)
    other = k.mm_alloc()
    k.mem.fail_after(0)
    assert other is not None and k.frame_of(other.pgd.pa) == k.frame_of(mm.pgd.pa)


# -- the hardware ---------------------------------------------------------------------------


def test_walker_translates_through_a_16_byte_l0_table() -> None:
    """TTBR0_EL1 holds a pgd 16 bytes into a frame (aligned to its 16-byte size, as the Arm
    ARM requires of a 2-entry table): the walk indexes it with VA[47] alone."""
    k = boot("arm64-16k-48")
    a, b = k.mm_alloc(), k.mm_alloc()
    assert a is not None and b is not None and b.pgd.pa % k.PAGE_SIZE == 16
    lo, hi = 0x40_0000, (1 << 47) + 0x40_0000  # L0 index 0 and 1
    map_page(k, b, lo, PFN_PA)
    map_page(k, b, hi, PFN_PA + k.PAGE_SIZE)
    regs = k.config.make_registers(b.pgd.pa, k.init_mm.pgd.pa)
    assert regs["ttbr0_el1"] == b.pgd.pa
    walker = k.config.walker
    for va, pa in ((lo, PFN_PA), (hi + 0x123, PFN_PA + k.PAGE_SIZE + 0x123)):
        t = walker.translate(k.mem, regs, va)
        assert isinstance(t, Translation) and t.pa == pa and t.user
    assert translate(k, a, lo) is None  # a's pgd, its neighbour, maps nothing
    assert [(t.va, t.pa) for t in walker.leaves(k.mem, regs)] == [
        (lo, PFN_PA), (hi, PFN_PA + k.PAGE_SIZE)]
    walk = walker.structure(regs)[0]
    assert (walk.table, walk.levels[0].entries, walk.levels[0].table_bytes) == (b.pgd.pa, 2, 16)
    bad = dict(regs, ttbr0_el1=b.pgd.pa + 8)
    with pytest.raises(BadInput, match="16-byte aligned"):
        walker.translate(k.mem, bad, lo)
    with pytest.raises(BadInput, match="16-byte aligned"):
        k.config.make_registers(b.pgd.pa + 8, k.init_mm.pgd.pa)


def test_walker_alone_reads_a_2_entry_table() -> None:
    """The walker, with hand-made bytes: L0 entry 1 of a table at frame + 0x30."""
    k = boot("arm64-16k-48")
    mem = k.mem
    frame, l1, l2, l3 = (mem.alloc_frame() for _ in range(4))
    root = frame + 0x30
    table = 0b11
    mem.write(root + 8, 8, l1 | table)
    mem.write(l1 + 8 * 5, 8, l2 | table)
    mem.write(l2 + 8 * 7, 8, l3 | table)
    leaf = PFN_PA | 0b11 | 1 << 10 | 1 << 6  # page, AF, AP[1] (EL0)
    mem.write(l3 + 8 * 9, 8, leaf)
    va = 1 << 47 | 5 << 36 | 7 << 25 | 9 << 14 | 0x42
    regs = k.config.make_registers(root, k.init_mm.pgd.pa)
    t = Arm64Walker(granule=14, va_bits=48).translate(mem, regs, va)
    assert isinstance(t, Translation) and t.pa == PFN_PA + 0x42 and t.size == 1 << 14


def test_tlb_tracks_a_sub_page_root(k: Arm64Kernel) -> None:
    """The emulated TLB keys tables by base and size: a store into b's pgd belongs to b's
    ASID, not to a's (same frame); clearing b's pgd entry leaves a walk-cache mark in b's
    address space only, which b's flush clears."""
    a, b = k.mm_alloc(), k.mm_alloc()
    assert a is not None and b is not None
    tlb = k.hw_tlb
    assert (b.pgd.pa, k.PGD_SIZE, None) in tlb.tables_of(b.asid)
    assert (a.pgd.pa, k.PGD_SIZE, None) in tlb.tables_of(a.asid)
    va = k.TASK_SIZE - 4 * k.PAGE_SIZE
    map_page(k, a, va, PFN_PA)
    map_page(k, b, va, PFN_PA)
    entry = b.pgd.pa + k.SIZEOF_PGD * k.pgd_index(va)
    assert tlb.is_live(entry) and tlb.space_at(entry) == b.asid
    where = tlb.lookup(entry)
    assert where is not None and where[0] == b.asid and where[3] == k.config.hw_levels[0].name
    assert tlb.leaves(b.asid) == [(va, PFN_PA, k.PAGE_SIZE)]
    tlb.enabled, raw = True, k.mem.read(entry, 8)
    k.mem.write(entry, 8, 0)  # a bare store: what a missing flush would leave
    marks = tlb.stale()
    assert [m.space for m in marks] == [b.asid] and marks[0].walk
    assert tlb.leaves(a.asid) == [(va, PFN_PA, k.PAGE_SIZE)] and tlb.leaves(b.asid) == []
    tlb.flush_space(b.asid)
    assert not tlb.stale()
    k.mem.write(entry, 8, raw)
    assert tlb.leaves(b.asid) == [(va, PFN_PA, k.PAGE_SIZE)]


def test_lockdep_asks_for_the_lock_of_the_pgds_own_mm(k: Arm64Kernel) -> None:
    """Populating an entry of b's pgd needs b's ``page_table_lock`` (``__p4d_alloc`` /
    ``__pud_alloc``), although the slab page starts with a's pgd: the table's owner is the
    object's, not the frame's."""
    a, b = k.mm_alloc(), k.mm_alloc()
    assert a is not None and b is not None and k.frame_of(a.pgd.pa) == k.frame_of(b.pgd.pa)
    va = k.TASK_SIZE - k.PGDIR_SIZE  # the top pgd entry
    p4d = k.p4d_offset(k.pgd_offset(b, va), va)
    if k.PAGETABLE_PUD_FOLDED:  # 64K/48: the pgd entry is the folded pud
        pmd = k.pmd_alloc_one(b, va)
        assert pmd is not None
        pud = k.pud_offset(p4d, va)

        def populate() -> None:
            k.pud_populate(b, pud, pmd)
    else:  # 16K/48: the pgd entry is the folded p4d
        new = k.pud_alloc_one(b, va)
        assert new is not None

        def populate() -> None:
            k.p4d_populate(b, p4d, new)
    spin_lock(a.page_table_lock)
    with pytest.raises(LockError, match=f"pgd table entry .* of {b.name} without "
                                        f"{b.page_table_lock.name}"):
        populate()
    spin_unlock(a.page_table_lock)
    spin_lock(b.page_table_lock)
    populate()
    spin_unlock(b.page_table_lock)
    assert k.hw_tlb.space_at(b.pgd.pa + k.SIZEOF_PGD * k.pgd_index(va)) == b.asid
