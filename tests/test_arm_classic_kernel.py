"""The ``arm`` kernel (classic MMU, Linux v6.18): facts from ``arch/arm`` (each test names
the file), checked on the bytes the kernel writes and through the Short-descriptor walker.

The kernel is built from its class (not through the registry), so these tests run whether
or not the configuration is staged; the session tests put it in the registries for the test
only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import arches
import legacy.registry
from arches.arm import ARM
from arches.config import Fault, Translation
from arches.errors import LockError, TlbError
from legacy import VM_EXEC, VM_READ, VM_SHARED, VM_WRITE
from legacy.arm.pgtable_2level import (
    L_PTE_DIRTY,
    L_PTE_NONE,
    L_PTE_PRESENT,
    L_PTE_RDONLY,
    L_PTE_USER,
    L_PTE_XN,
    L_PTE_YOUNG,
    PTE_HWTABLE_OFF,
    ArmKernel,
)
from legacy.mm.memory import free_pgd_range
from legacy.mm.mmu_gather import tlb_finish_mmu, tlb_gather_mmu
from legacy.mm.ptdump import ptdump_walk_pgd
from legacy.mm.vmalloc import vmap_range
from legacy.mm_types import mm_struct, mmap_write_locked, spin_lock, spin_unlock
from legacy.ptdump import addr_marker, ptdump_range
from legacy.types import PmdPtr, PtePtr, pte_t
from ptshim.dump import dump_text
from ptshim.scenario import parse_scenario
from ptshim.session import Session

VA = 0x0040_0000
PFN = 0x40000


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setitem(arches.CONFIGS, ARM.name, ARM)
    monkeypatch.setitem(legacy.registry.KERNELS, ARM.name, ArmKernel)
    yield ARM.name


def boot() -> ArmKernel:
    return ArmKernel(ARM)


def walk(k: ArmKernel, mm: mm_struct, va: int) -> Translation | Fault:
    return ARM.walker.translate(k.mem, ARM.make_registers(mm.pgd.pa, mm.pgd.pa), va)


def user_pte(k: ArmKernel, mm: mm_struct, va: int) -> tuple[PmdPtr, PtePtr]:
    pmd = k.pmd_off(mm, va)
    if k.pmd_none(k.pmdp_get(pmd)):
        assert k._pte_alloc(mm, pmd) == 0
    return pmd, k.pte_offset_kernel(pmd, va)


def test_geometry_pgtable_2level_h() -> None:
    """pgtable-2level.h: 2048 pgd entries of two words (``pgd_t`` = ``pmdval_t[2]``),
    ``PGDIR_SHIFT`` = ``PMD_SHIFT`` = 21, 512 ptes per page; ``USER_PTRS_PER_PGD`` =
    ``TASK_SIZE / PGDIR_SIZE`` = 1528 with ``TASK_SIZE`` = ``PAGE_OFFSET`` - 16M; pgd.c:
    16 KiB, 16 KiB aligned (TTBR0[31:14])."""
    k = boot()
    assert (k.PTRS_PER_PGD, k.SIZEOF_PGD, k.PGDIR_SHIFT) == (2048, 8, 21)
    assert (k.PTRS_PER_PMD, k.SIZEOF_PMD, k.PMD_SHIFT) == (1, 4, 21)
    assert (k.PTRS_PER_PTE, k.SIZEOF_PTE) == (512, 4)
    assert k.PAGETABLE_PMD_FOLDED and k.PAGETABLE_PUD_FOLDED and k.PAGETABLE_P4D_FOLDED
    assert (k.TASK_SIZE, k.USER_PTRS_PER_PGD, k.FIRST_USER_ADDRESS) == (0xBF00_0000, 1528,
                                                                         0x2000)
    mm = k.mm_alloc()
    assert mm is not None
    assert mm.pgd.pa % 0x4000 == 0
    assert all(k.mem.is_allocated(mm.pgd.pa + i * 4096) for i in range(4))
    assert k.table_desc(mm.pgd.pa + 3 * 4096 + 8) is k.ptdescs[mm.pgd.pa]


@pytest.mark.parametrize(("linux", "ext", "hw"), [
    # young, dirty, user, writable: small page, AP[1:0] = 11, AP[2] = 0, nG from ext;
    # C, B (bits 3:2) and S (bit 10) kept, TEX[0] (bit 6) from WRITEALLOC's bit 4
    (PFN << 12 | 0x41F | L_PTE_DIRTY | L_PTE_USER, 1 << 11, PFN << 12 | 0xC7E),
    # clean: AP[2] = 1 (read-only until the write fault sets dirty)
    (PFN << 12 | 0x41F | L_PTE_USER, 1 << 11, PFN << 12 | 0xE7E),
    # read-only and XN
    (PFN << 12 | 0x41F | L_PTE_DIRTY | L_PTE_USER | L_PTE_RDONLY | L_PTE_XN, 0,
     PFN << 12 | 0x67F),
    # kernel (no USER): AP[1:0] = 01
    (PFN << 12 | 0x41F | L_PTE_DIRTY, 0, PFN << 12 | 0x45E),
    # old, PROT_NONE, not present: no translation at all
    (PFN << 12 | 0x41D | L_PTE_DIRTY | L_PTE_USER, 0, 0),
    (PFN << 12 | 0x41F | L_PTE_USER | L_PTE_NONE | L_PTE_RDONLY | L_PTE_XN, 0, 0),
    (PFN << 12 | 0x41E | L_PTE_DIRTY, 0, 0),
])
def test_set_pte_ext_derives_the_hardware_pte(linux: int, ext: int, hw: int) -> None:
    """proc-v7-2level.S ``cpu_v7_set_pte_ext``: bits 9:4 and 1:0 of the Linux pte cleared,
    ``ext | PTE_EXT_AP0 | 2`` set, TEX[0] from Linux bit 4 (WRITEALLOC's), AP[2] unless
    dirty and writable, AP[1] for user, XN; zero when old, invalid or PROT_NONE.  The Linux
    pte at ``ptep``, the hardware one 2048 bytes further."""
    k = boot()
    assert k.hw_pte(linux, ext) == hw
    mm = k.mm_alloc()
    assert mm is not None
    pmd, pte = user_pte(k, mm, VA)
    k.lockdep_enabled = False
    k.hw_tlb.enabled = False
    k.set_pte_ext(pte, pte_t(linux), ext)
    assert k.mem.read(pte.pa, 4) == linux
    assert k.mem.read(pte.pa + PTE_HWTABLE_OFF, 4) == hw


def test_pmd_populate_writes_both_words_and_pmd_clear_clears_both() -> None:
    """pgalloc.h ``__pmd_populate``: ``pmdp[0] = (pte + PTE_HWTABLE_OFF) | prot``,
    ``pmdp[1] = pmdp[0] + 256 * sizeof(pte_t)``; user tables: ``user_pmd_table`` =
    ``_PAGE_USER_TABLE | PMD_PXNTABLE`` (mmu.c), domain 1; kernel ones domain 0.
    pgtable-2level.h: ``pmd_none`` reads the first word only; ``pmd_clear`` clears both."""
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    pmd, pte = user_pte(k, mm, VA + 0x10_0000)  # the second megabyte of the entry
    page = pte.pa & ~0xFFF
    pgd_entry = k.pgd_offset(mm, VA).pa
    assert pmd.pa == pgd_entry and pmd.size == 4
    assert k.mem.read(pgd_entry, 4) == page + 2048 | 0x01 | 0x10 | 1 << 5 | 1 << 2
    assert k.mem.read(pgd_entry + 4, 4) == page + 3072 | 0x01 | 0x10 | 1 << 5 | 1 << 2
    assert pte.pa == page + 4 * 256  # index 256: Linux pt 1
    k.lockdep_enabled = False
    k.hw_tlb.enabled = False
    k.mem.write(pgd_entry, 4, 0)
    assert k.pmd_none(k.pmdp_get(pmd))  # the second word alone does not count
    k.pmd_clear(pmd)
    assert k.mem.read(pgd_entry + 4, 4) == 0
    kva = k.VMALLOC_START
    kpmd = k.pmd_off_k(kva)
    assert k._pte_alloc_kernel(kpmd) == 0
    assert k.mem.read(kpmd.pa, 4) & 0x1FF == 0x11  # table, bit 4, domain 0, no PXNTable


def test_user_pages_through_the_walker_young_and_dirty_by_faults() -> None:
    """pgtable-2level.h: "The "dirty" bit is emulated by only granting hardware write
    permission iff the page is marked "writable" and "dirty""; "when the "young" bit is
    cleared, we deny access to the page by clearing the hardware PTE"."""
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    pmd, pte = user_pte(k, mm, VA)
    ptl = k.pte_lockptr(mm, pmd)
    rw = k.vm_get_page_prot(VM_READ | VM_WRITE | VM_SHARED)
    spin_lock(ptl)
    k.set_pte_at(mm, VA, pte, k.pfn_pte(PFN, rw))
    spin_unlock(ptl)
    clean = walk(k, mm, VA + 5)
    assert isinstance(clean, Translation)
    assert (clean.pa, clean.writable, clean.user, clean.executable) == (PFN << 12 | 5, False,
                                                                        True, False)
    spin_lock(ptl)
    k.set_pte_at(mm, VA, pte, k.pte_mkdirty(k.ptep_get(pte)))
    spin_unlock(ptl)
    dirty = walk(k, mm, VA)
    assert isinstance(dirty, Translation) and dirty.writable  # an upgrade: no flush owed
    k.syscall_exit("dirty")
    spin_lock(ptl)
    assert k.ptep_test_and_clear_young(None, VA, pte) == 1
    spin_unlock(ptl)
    assert isinstance(walk(k, mm, VA), Fault)  # old: the hardware pte is gone
    assert k.pte_present(k.ptep_get(pte))  # ... but Linux still maps it
    with pytest.raises(TlbError, match="cleared"):  # and the old translation may be cached
        k.syscall_exit("mkold")
    k.flush_tlb_mm(mm)
    k.syscall_exit("flushed")


def test_linux_half_store_needs_the_pte_lock() -> None:
    """The Linux half is not walked by the MMU, yet it is guarded by the pte lock: a store
    without it is refused before either half changes."""
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    pmd, pte = user_pte(k, mm, VA)
    with pytest.raises(LockError, match="without ptl@"):
        k.set_pte_at(mm, VA, pte, k.pfn_pte(PFN, k.vm_get_page_prot(VM_READ)))
    assert k.mem.read(pte.pa, 4) == 0 and k.mem.read(pte.pa + PTE_HWTABLE_OFF, 4) == 0


def test_pgd_alloc_copies_kernel_entries_and_vmalloc_reaches_old_mms() -> None:
    """pgd.c: ``memcpy(new_pgd + USER_PTRS_PER_PGD, init_pgd + USER_PTRS_PER_PGD, ...)``;
    a vmalloc table made later reaches an existing mm (``__check_vmalloc_seq``, done
    eagerly here)."""
    k = boot()
    kva = k.VMALLOC_START + 0x20_0000
    assert vmap_range(k, kva, kva + 4096, 0x5000_0000, k.PAGE_KERNEL, 12) == 0
    mm = k.mm_alloc()
    assert mm is not None
    src, dst = k.pgd_offset_k(kva).pa, k.pgd_offset(mm, kva).pa
    assert k.mem.read(dst, 8) == k.mem.read(src, 8) != 0
    later = kva + 0x40_0000
    assert vmap_range(k, later, later + 4096, 0x5010_0000, k.PAGE_KERNEL, 12) == 0
    assert k.mem.read(k.pgd_offset(mm, later).pa, 8) == k.mem.read(k.pgd_offset_k(later).pa, 8)
    t = walk(k, mm, later + 3)
    assert isinstance(t, Translation) and (t.pa, t.user, t.writable) == (0x5010_0003, False,
                                                                         True)
    user = k.pgd_offset(mm, 0).pa
    assert all(k.mem.read(user + 8 * i, 8) == 0 for i in range(k.USER_PTRS_PER_PGD))


def test_pgd_free_frees_the_first_pte_page(arm: str) -> None:
    """FIRST_USER_ADDRESS = 2 pages (asm/pgtable.h): ``free_pgtables`` keeps the PTE page of
    pgd entry 0; ``pgd_free`` (pgd.c) clears the entry, frees the page and uncharges it."""
    s = Session(arm)
    s.run(parse_scenario({"ops": [
        {"op": "map", "va": "0x2000", "pa": "0x10000000", "size": "0x2000", "prot": "rw"},
        {"op": "unmap", "va": "0x2000", "size": "0x2000"}]}))
    k, mm = s.k, s.mm
    pmd = k.pmd_off(mm, 0)
    assert not k.pmd_none(k.pmdp_get(pmd))  # the table outlived the munmap
    table = k.pmd_page_vaddr(k.pmdp_get(pmd)).pa
    # mm_inc_nr_ptes charges PTRS_PER_PTE * sizeof(pte_t) = 2048 bytes (include/linux/mm.h)
    # for the 4 KiB page: the hardware halves are not accounted
    assert mm.pgtables_bytes == 2048
    s.teardown()  # exit_mmap, then mmdrop -> pgd_free -> check_mm
    assert not k.mem.is_allocated(table)
    assert mm.pgtables_bytes == 0


def _map_and_free(k: ArmKernel, mm: mm_struct, va: int) -> None:
    pmd, pte = user_pte(k, mm, va)
    ptl = k.pte_lockptr(mm, pmd)
    spin_lock(ptl)
    k.set_pte_at(mm, va, pte, k.pte_mkdirty(k.pfn_pte(PFN, k.vm_get_page_prot(VM_READ))))
    k.ptep_get_and_clear(mm, va, pte)
    spin_unlock(ptl)
    k.flush_tlb_mm(mm)
    with mmap_write_locked(mm):
        tlb = tlb_gather_mmu(k, mm)
        with k.pgtable_lockless(mm, "free_pgd_range"):
            free_pgd_range(k, tlb, va & k.PMD_MASK, (va & k.PMD_MASK) + k.PMD_SIZE, 0, 0)
        tlb_finish_mmu(k, tlb)


def test_pte_free_tlb_widens_the_flush_to_both_megabytes(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """asm/tlb.h ``__pte_free_tlb``: "With the classic ARM MMU, a pte page has two
    corresponding pmd entries, each covering 1MB" -- the gather's range becomes the two
    pages around the 1M boundary.  Without it, the walk-cache entry of the second megabyte
    survives the flush and the freed page may still be walked."""
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    assert k.pte_free_tlb_range(VA + 0x1234) == (VA + 0x10_0000 - 4096, 8192)
    _map_and_free(k, mm, VA)
    k.syscall_exit("freed")
    k2 = boot()
    mm2 = k2.mm_alloc()
    assert mm2 is not None
    monkeypatch.setattr(k2, "pte_free_tlb_range", lambda addr: (addr, 0))
    with pytest.raises(TlbError, match=r"freed while a walk cache .*\[0x500000, 0x600000\)"):
        _map_and_free(k2, mm2, VA)


def test_protection_map_and_kernel_protections() -> None:
    """asm/pgtable.h ``__PAGE_*`` with ``user_pgprot`` (WRITEALLOC | SHARED on SMP, mmu.c
    ``build_mem_type_table``); ``PAGE_KERNEL`` = ``pgprot_kernel | L_PTE_XN``."""
    k = boot()
    base = L_PTE_PRESENT | L_PTE_YOUNG | 0x1C | 0x400
    assert k.vm_get_page_prot(VM_READ | VM_WRITE | VM_SHARED) == base | L_PTE_USER | L_PTE_XN
    assert k.vm_get_page_prot(VM_READ | VM_WRITE) == (base | L_PTE_USER | L_PTE_RDONLY
                                                      | L_PTE_XN)
    assert k.vm_get_page_prot(VM_EXEC) == base | L_PTE_USER | L_PTE_RDONLY
    assert k.vm_get_page_prot(0) == base | L_PTE_RDONLY | L_PTE_XN | L_PTE_NONE
    assert k.PAGE_KERNEL == base | L_PTE_DIRTY | L_PTE_XN
    assert k.pte_modify(pte_t(PFN << 12 | base | L_PTE_DIRTY | L_PTE_USER),
                        k.PAGE_NONE) == PFN << 12 | base | L_PTE_DIRTY | L_PTE_RDONLY | \
        L_PTE_XN | L_PTE_NONE


def test_swap_entries() -> None:
    """asm/pgtable.h: type in bits 6:2, offset from bit 8, bit 7 the exclusive marker; a
    swap pte is not present (bit 0) and not none."""
    k = boot()
    e = k._swp_entry(0x1F, 0xABCDE)
    assert e == 0x1F << 2 | 0xABCDE << 8
    assert (k._swp_type(e), k._swp_offset(e)) == (0x1F, 0xABCDE)
    pte = k._swp_entry_to_pte(e)
    assert not k.pte_present(pte) and not k.pte_none(pte)
    assert k.pte_swp_exclusive(k.pte_swp_mkexclusive(pte))
    assert k.pte_swp_mkexclusive(pte) == pte | 0x80


def test_ptdump_lines(arm: str) -> None:
    """arch/arm/mm/dump.c: Linux pte bits (USR, ro/RW, NX/x, SHD, the memory type), the
    domain of the first-level descriptor, ``PTE`` level name; the same from both APIs."""
    s = Session(arm)
    s.run(parse_scenario({"ops": [
        {"op": "map", "va": "0x400000", "pa": "0x10000000", "size": "0x3000", "prot": "rw"},
        {"op": "protect", "va": "0x401000", "size": "0x1000", "prot": "rx"},
        {"op": "map", "va": "0xf0800000", "pa": "0x10100000", "size": "0x1000",
         "prot": "rw"}]}))
    want = (
        "---[ User Space ]---\n"
        "0x00400000-0x00401000           4K PTE USER    USR RW NX SHD MEM/CACHED/WBWA\n"
        "0x00401000-0x00402000           4K PTE USER    USR ro x  SHD MEM/CACHED/WBWA\n"
        "0x00402000-0x00403000           4K PTE USER    USR RW NX SHD MEM/CACHED/WBWA\n"
        "---[ Kernel Space ]---\n"
        "0xf0800000-0xf0801000           4K PTE KERNEL      RW NX SHD MEM/CACHED/WBWA\n"
    )
    assert dump_text(s, "legacy") == want
    assert dump_text(s, "unified") == want
    s.verify()
    s.teardown()


def test_session_verify_catches_a_wrong_hardware_half(arm: str) -> None:
    """The harness's hardware check reads the hardware half: a Linux pte without its
    hardware twin is a mismatch ``verify`` reports."""
    s = Session(arm)
    s.run(parse_scenario({"ops": [
        {"op": "map", "va": "0x400000", "pa": "0x10000000", "size": "0x1000", "prot": "r"}]}))
    s.verify()
    k = s.k
    pte = k.pte_offset_kernel(k.pmd_off(s.mm, 0x400000), 0x400000)
    k.hw_tlb.enabled = False
    k.lockdep_enabled = False
    k.mem.write(pte.pa + PTE_HWTABLE_OFF, 4, 0)
    with pytest.raises(Exception, match="0x400000"):
        s.verify()


def test_kernel_sections() -> None:
    """mmu.c ``__map_init_section``: a 1M-aligned kernel mapping is made of first-level
    section descriptors (an odd megabyte uses ``pmd[1]``); pgtable-2level.h: ``pmd_leaf`` is
    ``pmd_val & PMD_TYPE_SECT`` and ``pmd_bad`` is ``pmd_leaf``, so a section where a table
    is expected is cleared as bad (both words); dump.c prints it at level ``PGD``, the lone
second section (``pmd[1]``) included."""
    k = boot()
    po = k.PAGE_OFFSET
    k.create_mapping_sections(po + 0x10_0000, 0x0010_0000, 0x30_0000, k.MT_MEMORY_RW_SECT)
    first = k.pmd_off_k(po)
    assert k.pmd_none(k.pmdp_get(first))  # pmd[0] of the first entry is left alone
    assert k.mem.read(first.pa + 4, 4) == 0x0010_0000 | k.MT_MEMORY_RW_SECT
    second = k.pmd_off_k(po + 0x20_0000)
    assert k.pmd_leaf(k.pmdp_get(second)) and k.pmd_bad(k.pmdp_get(second))
    regs = ARM.make_registers(k.init_mm.pgd.pa, k.init_mm.pgd.pa)
    for va, pa in ((po + 0x10_0000, 0x0010_0000), (po + 0x3F_FFFF, 0x003F_FFFF)):
        t = ARM.walker.translate(k.mem, regs, va)
        assert isinstance(t, Translation)
        assert (t.pa, t.size, t.level, t.writable, t.executable, t.user) == (
            pa, 1 << 20, 0, True, False, False)
    assert isinstance(ARM.walker.translate(k.mem, regs, po), Fault)
    st = k.ptdump_pg_state([ptdump_range(po, po + 0x40_0000)], [addr_marker(po, "Kernel")])
    ptdump_walk_pgd(k, st, k.init_mm)
    assert st.text() == (
        "---[ Kernel ]---\n"
        "0xc0100000-0xc0400000           3M PGD KERNEL      RW NX SHD\n")
    assert k.pmd_none_or_clear_bad(second)
    assert k.mem.read(second.pa, 8) == 0
