"""32-bit arm LPAE kernel facts (``arm-lpae``), each checked against the bytes and the
hardware walker: ``arch/arm/include/asm/pgtable.h``, ``pgtable-3level.h``, ``pgalloc.h``,
``arch/arm/mm/pgd.c``, ``mmu.c`` (``set_ptes``, ``build_mem_type_table``),
``proc-v7-3level.S`` (``cpu_v7_set_pte_ext``), ``dump.c``, ``tlb-v7.S``.

The kernel is built from its class (not through the registry), so these tests run whether or
not the configuration is registered.  Descriptor bits are spelled out from the Arm ARM.
"""

from __future__ import annotations

import pytest

from arches.arm.lpae import ARM_LPAE, TASK_SIZE
from arches.config import Fault, Translation
from arches.tlb import KERNEL_SPACE
from legacy import VM_READ, VM_SHARED, VM_WRITE, pgprot_t, pmd_t, pte_t
from legacy.arm.pgtable_3level import ArmLpaeKernel
from legacy.mm.memory import remap_pfn_range
from legacy.mm.mmap import dup_mm, mmap_region, mmput
from legacy.mm.ptdump import ptdump_walk_pgd
from legacy.mm.vma import find_vma
from legacy.mm.vmalloc import vmap_range
from legacy.mm_types import mm_struct, mmap_write_locked, spin_unlock
from legacy.ptdump import addr_marker, ptdump_range

VALID, TABLE, AP1, AP2, AF, NG = 1 << 0, 1 << 1, 1 << 6, 1 << 7, 1 << 10, 1 << 11
PXN, XN = 1 << 53, 1 << 54
L_PGD_SWAPPER = 1 << 55
SHARED = VM_READ | VM_WRITE | VM_SHARED
VA = 0x4000_0000
PA = 0x4000_0000


def boot() -> ArmLpaeKernel:
    return ArmLpaeKernel(ARM_LPAE)


def new_mm(k: ArmLpaeKernel) -> mm_struct:
    mm = k.mm_alloc()
    assert mm is not None
    return mm


def regs(k: ArmLpaeKernel, mm: mm_struct) -> dict[str, int]:
    return ARM_LPAE.make_registers(k.mm_root(mm), k.mm_root(k.init_mm))


def walk(k: ArmLpaeKernel, mm: mm_struct, va: int) -> Translation | Fault:
    return ARM_LPAE.walker.translate(k.mem, regs(k, mm), va)


def map_pfns(k: ArmLpaeKernel, mm: mm_struct, va: int, npages: int, pa: int,
             prot: pgprot_t | None = None) -> None:
    with mmap_write_locked(mm):
        assert mmap_region(k, mm, va, npages * k.PAGE_SIZE, SHARED) == va
        vma = find_vma(k, mm, va)
        assert vma is not None
        p = pgprot_t(vma.vm_page_prot) if prot is None else prot
        assert remap_pfn_range(k, vma, va, pa >> k.PAGE_SHIFT, npages * k.PAGE_SIZE, p) == 0
    k.syscall_exit("mmap + remap_pfn_range")


def pte_of(k: ArmLpaeKernel, mm: mm_struct, va: int) -> int:
    return int(k.ptep_get(k.pte_offset_kernel(k.pmd_off(mm, va), va)))


# -- geometry, swapper_pg_dir, pgd_alloc / pgd_free (pgtable-3level.h, head.S, pgd.c) -----


def test_geometry_and_swapper_pg_dir() -> None:
    k = boot()
    assert (k.PGDIR_SHIFT, k.PTRS_PER_PGD, k.PMD_SHIFT, k.PTRS_PER_PMD, k.PTRS_PER_PTE) == (
        30, 4, 21, 512, 512)
    assert k.PAGETABLE_PUD_FOLDED and not k.PAGETABLE_PMD_FOLDED
    assert (k.SIZEOF_PGD, k.SIZEOF_PMD, k.SIZEOF_PTE, k.ULONG_MASK) == (8, 8, 8, 2**32 - 1)
    swapper = k.init_mm.pgd.pa
    for i in range(4):  # every slot: its pmd right behind the pgd page, L_PGD_SWAPPER
        assert k.mem.read(swapper + 8 * i, 8) == (swapper + 4096 * (i + 1)) | 3 | L_PGD_SWAPPER
    assert regs(k, k.init_mm)["ttbr1"] == swapper + 4 * 4096


def test_fresh_mm_has_a_kmalloc_pgd_the_kernel_slot_and_the_modules_pmd() -> None:
    k = boot()
    mm, mm2 = new_mm(k), new_mm(k)
    assert mm.pgd.pa % 4096 == 0 and mm2.pgd.pa == mm.pgd.pa + 64  # kmalloc-64 objects
    swapper = k.init_mm.pgd.pa
    assert k.mem.read(mm.pgd.pa + 24, 8) == k.mem.read(swapper + 24, 8)  # slot 3 copied
    assert k.mem.read(mm.pgd.pa, 8) == 0 and k.mem.read(mm.pgd.pa + 8, 8) == 0
    modules = k.mem.read(mm.pgd.pa + 16, 8)  # pmd_alloc(mm, pud, MODULES_VADDR slot)
    assert modules & 3 == 3 and not modules & L_PGD_SWAPPER
    assert k.ptdescs[modules & ~0xFFF].level == "pmd"
    assert mm.pgtables_bytes == 4096  # mm_inc_nr_pmds
    assert k.USER_PGTABLES_CEILING == TASK_SIZE == 0xBF00_0000
    assert k.FIRST_USER_ADDRESS == 2 * 4096


def test_pgd_free_frees_the_table_chain_under_address_zero() -> None:
    """free_pgtables never frees the pte table under 0..2M (floor = FIRST_USER_ADDRESS):
    pgd_free does, then the modules pmd, then the kmalloc'd pgd; check_mm is clean."""
    k = boot()
    baseline = k.mem.allocated_frames()
    mm = new_mm(k)
    map_pfns(k, mm, k.FIRST_USER_ADDRESS, 2, PA)
    map_pfns(k, mm, TASK_SIZE - 4 * k.PAGE_SIZE, 4, PA)  # under the modules pmd
    from legacy.mm.mmap import exit_mmap
    exit_mmap(k, mm)
    left = {k.ptdescs[pa].level for pa in k.tables_of(mm)}
    assert left == {"pgd", "pmd", "pte"} and mm.pgtables_bytes == 3 * 4096
    k.mmdrop(mm)  # pgd_free + check_mm
    assert k.tables_of(mm) == [] and k.mem.allocated_frames() == baseline


def test_pgd_alloc_enomem_leaks_nothing() -> None:
    k = boot()
    baseline = k.mem.allocated_frames()
    k.mem.fail_after(1)  # the kmalloc slab page
    assert k.mm_alloc() is None
    new_mm(k)
    mid = k.mem.allocated_frames()
    k.mem.fail_after(1)  # the modules pmd (the slab page has room)
    assert k.mm_alloc() is None
    k.mem.fail_after(0)
    assert k.mem.allocated_frames() == mid > baseline


# -- ptes: set_ptes, cpu_v7_set_pte_ext --------------------------------------------------


def test_user_ptes_get_ng_pxn_and_ap2_until_dirty() -> None:
    k = boot()
    mm = new_mm(k)
    map_pfns(k, mm, VA, 1, PA)
    raw = pte_of(k, mm, VA)
    assert raw & (VALID | TABLE | AF | AP1 | NG | PXN) == VALID | TABLE | AF | AP1 | NG | PXN
    assert raw & AP2  # PAGE_SHARED is clean: hardware read-only until the write fault
    t = walk(k, mm, VA)
    assert isinstance(t, Translation) and (t.writable, t.user, t.executable) == (
        False, True, False)
    ptep = k.pte_offset_kernel(k.pmd_off(mm, VA), VA)
    ptl = k.pte_lockptr(mm, k.pmd_off(mm, VA))
    from legacy.mm_types import spin_lock
    spin_lock(ptl)
    k.set_pte_at(mm, VA, ptep, k.pte_mkdirty(k.ptep_get(ptep)))
    spin_unlock(ptl)
    t = walk(k, mm, VA)
    assert isinstance(t, Translation) and t.writable and not k.ptep_get(ptep) & AP2
    assert k.pte_same(pte_t(raw), pte_t(raw & ~NG))  # pte_same ignores nG when present


def test_prot_none_clears_the_valid_bit_but_stays_present() -> None:
    k = boot()
    mm = new_mm(k)
    map_pfns(k, mm, VA, 1, PA, k.PAGE_NONE)
    raw = pte_t(pte_of(k, mm, VA))
    assert not raw & VALID and raw & TABLE
    assert k.pte_present(raw) and not k.pte_valid(raw) and not k.pte_none(raw)
    assert isinstance(walk(k, mm, VA), Fault)


def test_kernel_ptes_are_global_and_young() -> None:
    k = boot()
    kva = 0xC040_0000
    assert vmap_range(k, kva, kva + k.PAGE_SIZE, PA, k.PAGE_KERNEL, k.PAGE_SHIFT) == 0
    k.syscall_exit("vmap")
    raw = int(k.ptep_get(k.pte_offset_kernel(k.pmd_off_k(kva), kva)))
    assert not raw & NG and raw & AF and raw & XN and not raw & AP1 and not raw & AP2
    mm = new_mm(k)  # translated through TTBR1 for every mm
    t = walk(k, mm, kva)
    assert isinstance(t, Translation) and (t.pa, t.writable, t.user) == (PA, True, False)


def test_protection_map_and_swap_format() -> None:
    k = boot()
    assert k.vm_get_page_prot(0) & (1 << 57)  # L_PTE_NONE
    for flags in range(1, 16):
        prot = k.protection_map[flags]
        assert prot & PXN and prot & AF and prot & 3 == 3  # user_pgprot, _L_PTE_DEFAULT
    e = k._swp_entry(0x1F, 0xABCDE)
    pte = k._swp_entry_to_pte(e)
    assert pte & 3 == 0 and pte == 0x1F << 2 | 0xABCDE << 8
    assert (k._swp_type(e), k._swp_offset(e)) == (0x1F, 0xABCDE)
    assert k.pte_swp_exclusive(k.pte_swp_mkexclusive(pte)) and not k.pte_swp_exclusive(pte)


# -- pmds: sections (pgtable-3level.h) -----------------------------------------------------


def test_pmd_pfn_masks_with_a_sign_extended_pmd_mask() -> None:
    """``PMD_MASK`` is an ``int`` promoted to u64: the pfn keeps bits 39:32."""
    k = boot()
    pmd = k.pmd_mkhuge(k.pfn_pmd(0xAB_CDE0_0000 >> 12, k.PAGE_SHARED))
    assert k.pmd_pfn(pmd) == 0xAB_CDE0_0000 >> 12
    assert k.pmd_leaf(pmd) and k.pmd_trans_huge(pmd) and k.pmd_bad(pmd)
    assert k.pte_pfn(pte_t(0xFF_FFFF_F000 | 1 << 55)) == 0xFF_FFFF_F


def test_set_pmd_at_prot_none_section_is_not_present_but_still_huge() -> None:
    k = boot()
    mm = new_mm(k)
    with mmap_write_locked(mm):
        pmdp = k.pmd_alloc(mm, k.pud_offset(k.p4d_offset(k.pgd_offset(mm, VA), VA), VA), VA)
        assert pmdp is not None
        ptl = k.pmd_lock(mm, pmdp)
        sect = k.pmd_mkhuge(k.pfn_pmd(PA >> 12, k.PAGE_NONE))
        k.set_pmd_at(mm, VA, pmdp, sect)
        got = k.pmdp_get(pmdp)
        assert not k.pmd_present(got) and k.pmd_trans_huge(got) and got & NG and got & AP2
        k.set_pmd_at(mm, VA, pmdp, k.pmd_mkdirty(k.pmd_mkhuge(k.pfn_pmd(PA >> 12,
                                                                       k.PAGE_SHARED))))
        got = k.pmdp_get(pmdp)
        assert k.pmd_present(got) and not got & AP2  # writable and dirty
        with pytest.raises(AssertionError, match="TASK_SIZE"):
            k.set_pmd_at(mm, TASK_SIZE, pmdp, got)
        k.pmd_clear(pmdp)
        spin_unlock(ptl)
    t = walk(k, mm, VA)
    assert isinstance(t, Fault)
    mmput(k, mm)


def test_fork_makes_the_child_old_and_the_hardware_says_so() -> None:
    """copy_present_pte: ``pte_mkold`` in the child -- AF = 0, an Access flag fault until
    the first access sets young."""
    k = boot()
    mm = new_mm(k)
    map_pfns(k, mm, VA, 2, PA)
    child = dup_mm(k, mm)
    assert child is not None
    assert isinstance(walk(k, mm, VA), Translation)
    f = walk(k, child, VA)
    assert isinstance(f, Fault) and "access flag" in f.reason
    assert not k.pte_young(pte_t(pte_of(k, child, VA)))
    mmput(k, child)
    mmput(k, mm)


# -- TLB (tlb-v7.S) and ptdump (dump.c) ------------------------------------------------------


def test_tlbimva_drops_the_walk_cache_of_its_address() -> None:
    """ARMv7 has no last-level-only TLBI: ``flush_tlb_page`` (TLBIMVAIS) drops the
    walk-cache entry of an unhooked table; ``flush_tlb_kernel_range`` likewise."""
    k = boot()
    mm = new_mm(k)
    map_pfns(k, mm, VA, 2, PA)
    vma = find_vma(k, mm, VA)
    assert vma is not None
    pmd = k.pmd_off(mm, VA)
    ptl = k.pmd_lock(mm, pmd)
    k.pmd_clear(pmd)
    spin_unlock(ptl)
    space = k._space(mm)
    assert any(m.walk for m in k.hw_tlb.stale(space))
    k.flush_tlb_page(vma, VA)
    assert not k.hw_tlb.stale(space)
    kva = 0xC040_0000
    assert vmap_range(k, kva, kva + k.PAGE_SIZE, PA, k.PAGE_KERNEL, k.PAGE_SHIFT) == 0
    k.pmd_clear(k.pmd_off_k(kva))
    assert any(m.walk for m in k.hw_tlb.stale(KERNEL_SPACE))
    k.flush_tlb_kernel_range(kva, kva + k.PAGE_SIZE)
    assert not k.hw_tlb.stale(KERNEL_SPACE)


def test_ptdump_lines_are_arms() -> None:
    k = boot()
    mm = new_mm(k)
    map_pfns(k, mm, VA, 2, PA)
    ranges = [ptdump_range(0, TASK_SIZE)]
    st = k.ptdump_pg_state(ranges, [addr_marker(0, "User Space")])
    ptdump_walk_pgd(k, st, mm, None)
    lines = st.text().splitlines()
    assert lines[0] == "---[ User Space ]---"
    assert lines[1] == ("0x40000000-0x40002000           8K PTE USR RW NX SHD "
                        "MEM/CACHED/WBWA")
    assert len(lines) == 2
    sect = pmd_t(k.pmd_mkhuge(k.pfn_pmd(PA >> 12, k.PAGE_KERNEL)) | AP2)
    assert k.ptdump_flags(3, sect) == " RW NX SHD"  # ro needs L_PMD_SECT_RDONLY and AP2
