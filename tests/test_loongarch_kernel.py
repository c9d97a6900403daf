"""The LoongArch64 kernel (legacy/loongarch/) at Linux v6.18: what its tables hold and what
its helpers do, checked against the bytes and against the walker written from the manual.

Kernel files read: arch/loongarch/include/asm/{pgtable.h, pgtable-bits.h, pgalloc.h,
sparsemem.h, addrspace.h}, arch/loongarch/mm/{pgtable.c, init.c, tlb.c, tlbex.S, cache.c},
include/asm-generic/pgtable-nopud.h.  No emulator checks LoongArch here (see
tests/test_loongarch_walker.py): the hardware side is the manual-based walker.
"""

from __future__ import annotations

import struct

import pytest

import legacy
from arches.loongarch.bits import (
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_HGLOBAL,
    _PAGE_HUGE,
    _PAGE_MODIFIED,
    _PAGE_NO_EXEC,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_VALID,
    _PAGE_WRITE,
    CACHE_BASE,
    INVALID_PG_DIR_PA,
    INVALID_PMD_TABLE_PA,
    INVALID_PTE_TABLE_PA,
)
from arches.tlb import KERNEL_SPACE
from legacy.generic import GenericKernel
from legacy.loongarch.pgtable import LoongarchKernel
from legacy.mm_types import vm_area_struct
from legacy.types import PmdPtr, PtePtr, pmd_t, pte_t


@pytest.fixture(autouse=True)
def _staged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The configuration is staged: boot it through the staged registries."""
    monkeypatch.setenv("PTSHIM_STAGED", "loongarch64")


def boot() -> LoongarchKernel:
    from arches.loongarch import LOONGARCH64
    return LoongarchKernel(LOONGARCH64)


def entries(k: GenericKernel, pa: int) -> tuple[int, ...]:
    return struct.unpack("<2048Q", k.mem.read_bytes(pa, 1 << 14))


def test_geometry() -> None:
    k = boot()
    assert (k.PAGE_SHIFT, k.PMD_SHIFT, k.PGDIR_SHIFT) == (14, 25, 36)
    assert (k.PTRS_PER_PGD, k.PTRS_PER_PMD, k.PTRS_PER_PTE, k.PTRS_PER_PUD) == (2048,) * 3 + (1,)
    assert k.PAGETABLE_PUD_FOLDED and not k.PAGETABLE_PMD_FOLDED
    assert k.VA_BITS == 47 and k.TASK_SIZE == 1 << 47
    assert k.USER_PTRS_PER_PGD == k.PTRS_PER_PGD  # pgd_alloc copies no kernel entry


def test_empty_entries_point_at_the_invalid_tables() -> None:
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    inv_pmd, inv_pte = CACHE_BASE | INVALID_PMD_TABLE_PA, CACHE_BASE | INVALID_PTE_TABLE_PA
    assert set(entries(k, mm.pgd.pa)) == {inv_pmd}
    assert set(entries(k, k.init_mm.pgd.pa)) == {inv_pmd}
    assert set(entries(k, INVALID_PG_DIR_PA)) == {inv_pmd}
    assert set(entries(k, INVALID_PMD_TABLE_PA)) == {inv_pte}
    assert set(entries(k, INVALID_PTE_TABLE_PA)) == {0}
    pgd = k.pgd_offset(mm, 0x40_0000)
    pud = k.pud_offset(k.p4d_offset(pgd, 0x40_0000), 0x40_0000)
    assert k.pud_none(k.pudp_get(pud)) and not k.pud_present(k.pudp_get(pud))
    # a pmd table from pmd_alloc: every entry is invalid_pte_table, and pmd_none says so
    k.lockdep_enabled = False
    pmd = k.pmd_alloc(mm, pud, 0x40_0000)
    assert pmd is not None
    assert set(entries(k, pmd.pa - 8 * k.pmd_index(0x40_0000))) == {inv_pte}
    assert k.pmd_none(k.pmdp_get(pmd)) and not k.pmd_present(k.pmdp_get(pmd))
    # the pgd entry holds the PMD table's kernel virtual address
    assert k.pudp_get(pud) == CACHE_BASE | (pmd.pa & ~0x3FFF)
    assert k.pmd_none(pmd_t(0)) is False  # 0 is not "none" here: it is a table at PA 0


def test_pmd_clear_and_free_pgtables_restore_the_invalid_pointer() -> None:
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    k.lockdep_enabled = False
    k.hw_tlb.enabled = False
    assert k.pmd_alloc(mm, k.pud_offset(k.p4d_offset(k.pgd_offset(mm, 0x40_0000), 0),
                                        0x40_0000), 0x40_0000) is not None
    assert k.pte_alloc(mm, k.pmd_off(mm, 0x40_0000)) == 0
    pmd = k.pmd_off(mm, 0x40_0000)
    table = k.pmd_page_vaddr(k.pmdp_get(pmd))
    assert k.pmdp_get(pmd) == CACHE_BASE | table.pa
    k.pmd_clear(pmd)
    assert k.pmdp_get(pmd) == CACHE_BASE | INVALID_PTE_TABLE_PA and k.pmd_none(k.pmdp_get(pmd))


def test_kernel_pte_tables_start_global_and_pte_clear_keeps_g() -> None:
    """kernel_pte_init fills a kernel PTE table with _PAGE_GLOBAL; pte_none ignores it;
    pte_clear keeps the old G bit (a TLB entry's two PTEs must agree on G)."""
    k = boot()
    pte = k.pte_alloc_one_kernel(k.init_mm)
    assert pte is not None
    assert set(entries(k, pte.pa)) == {_PAGE_GLOBAL}
    assert k.pte_none(pte_t(_PAGE_GLOBAL)) and not k.pte_none(pte_t(_PAGE_PRESENT))
    k.set_pte(pte + 3, pte_t(0x1000_0000 | int(k.PAGE_KERNEL)))
    k.pte_clear(k.init_mm, 0, pte + 3)
    assert k.ptep_get(pte + 3) == _PAGE_GLOBAL
    user = k.pte_alloc_one(k.init_mm)
    assert user is not None and set(entries(k, user.pa)) == {0}
    k.set_pte(user, pte_t(0x1000_0000 | int(k.protection_map[1])))
    k.pte_clear(k.init_mm, 0, user)
    assert k.ptep_get(user) == 0


def test_protections_and_software_dirty() -> None:
    """cache.c protection_map: user pages are young (V) but never hardware-writable (D)
    when mapped; pte_mkdirty sets D only with _PAGE_WRITE; pte_mkwrite sets D only when
    _PAGE_MODIFIED; pte_mkold clears V -- the hardware's valid bit."""
    k = boot()
    shared_rw = k.protection_map[0x8 | 0x2 | 0x1]
    assert shared_rw & (_PAGE_VALID | _PAGE_WRITE | _PAGE_NO_EXEC | _PAGE_PRESENT) == (
        _PAGE_VALID | _PAGE_WRITE | _PAGE_NO_EXEC | _PAGE_PRESENT)
    assert not shared_rw & _PAGE_DIRTY
    assert k.protection_map[0] & _PAGE_PROTNONE and not k.protection_map[0] & _PAGE_VALID
    p = pte_t(0x1000_0000 | int(shared_rw))
    assert not k.pte_dirty(p) and k.pte_mkdirty(p) & _PAGE_DIRTY
    ro = k.pte_wrprotect(p)
    assert k.pte_mkdirty(ro) & (_PAGE_DIRTY | _PAGE_MODIFIED) == _PAGE_MODIFIED
    assert k.pte_mkwrite_novma(ro) & _PAGE_DIRTY == 0
    assert k.pte_mkwrite_novma(k.pte_mkdirty(ro)) & _PAGE_DIRTY
    assert not k.pte_mkold(p) & _PAGE_VALID
    assert k.PAGE_KERNEL_LINUX & _PAGE_NO_EXEC == 0  # the kernel's PAGE_KERNEL is RWX


def test_huge_pmd_helpers() -> None:
    k = boot()
    pmd = k.pfn_pmd(0x4_0000_0000 >> 14, k.PAGE_KERNEL_LINUX)
    huge = k.pmd_mkhuge(pmd)
    assert huge & _PAGE_HUGE and huge & _PAGE_HGLOBAL and k.pmd_leaf(huge)
    assert k.pmd_trans_huge(huge) and k.pmd_bad(huge)  # pmd_bad: any low bit
    inv = k.pmd_mkinvalid(huge)
    assert k.pmd_present(inv) and not inv & (_PAGE_PRESENT | _PAGE_VALID)
    assert k.pmd_pfn(huge) == 0x4_0000_0000 >> 14
    # a split's PTE protection: H (bit 6, G in a PTE) dropped, HG back to G
    user = k.pmd_mkhuge(k.pfn_pmd(0x4_0000_0000 >> 14, k.protection_map[0xB]))
    assert not k.pgprot_large_2_4k(k.pmd_pgprot(user)) & (_PAGE_GLOBAL | _PAGE_HGLOBAL)
    assert k.pgprot_large_2_4k(k.pmd_pgprot(huge)) & (_PAGE_GLOBAL | _PAGE_HGLOBAL) == (
        _PAGE_GLOBAL)


def test_set_pmd_at_flushes_everything() -> None:
    """arch/loongarch/mm/pgtable.c ``set_pmd_at``: the store, then ``flush_tlb_all``."""
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    k.lockdep_enabled = False
    calls: list[str] = []
    k.flush_tlb_all = lambda: calls.append("all")  # type: ignore[method-assign]
    pmd = k.pmd_off(mm, 0)
    k.set_pmd_at(mm, 0, pmd, k.pmdp_get(pmd))
    assert calls == ["all"]


def test_flush_tlb_range_works_on_page_pairs() -> None:
    """local_flush_tlb_range: counted in page pairs (PAGE_SIZE << 1); beyond tlbsize / 8 = 264
    pairs, the whole ASID (kernel: every global entry)."""
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    vma = vm_area_struct(vm_mm=mm, vm_start=0, vm_end=1 << 30, vm_flags=0, vm_page_prot=0)
    k.hw_tlb.flushes.clear()
    k.flush_tlb_range(vma, 0x40_4000, 0x40_6000)  # the model keeps to the pages asked for
    assert k.hw_tlb.flushes == [(mm.asid, 0x40_4000, 0x40_8000, True)]
    k.hw_tlb.flushes.clear()
    k.flush_tlb_range(vma, 0x4000, 264 * (2 << 14) - 0x4000)  # 264 pairs once rounded
    assert k.hw_tlb.flushes == [(mm.asid, 0x4000, 264 * (2 << 14) - 0x4000, True)]
    k.hw_tlb.flushes.clear()
    k.flush_tlb_range(vma, 0, 265 * (2 << 14))
    assert k.hw_tlb.flushes == [(mm.asid, 0, 0, True)]
    k.hw_tlb.flushes.clear()
    k.flush_tlb_kernel_range(0xffff_0000_1400_4000, 0xffff_0000_1400_8000)
    assert k.hw_tlb.flushes == [(KERNEL_SPACE, 0xffff_0000_1400_4000, 0xffff_0000_1400_8000,
                                 True)]
    k.hw_tlb.flushes.clear()
    k.flush_tlb_kernel_range(0xffff_0000_1400_4000, 0xffff_0000_1400_4000 + 265 * (2 << 14))
    assert k.hw_tlb.flushes == [(KERNEL_SPACE, 0, 0, True)]


def test_swap_entries() -> None:
    """"Format of 64bit swap PTEs": type in bits 22:16, E at 23, offset from 24; present and
    protnone bits stay 0."""
    k = boot()
    e = k._swp_entry(0x55, 0x1234)
    assert e == 0x55 << 16 | 0x1234 << 24
    pte = k._swp_entry_to_pte(e)
    assert not k.pte_present(pte) and not k.pte_none(pte)
    assert k.pte_swp_mkexclusive(pte) == pte | 1 << 23
    assert k._swp_entry_to_pmd(e) & _PAGE_HUGE


def test_the_walker_reads_what_the_kernel_wrote() -> None:
    """A user page, a 32M THP-style leaf and a kernel page made through the kernel's API;
    the manual-based walker translates them through PGDL/PGDH."""
    k = legacy.boot("loongarch64") if "loongarch64" in legacy.arch_names() else boot()
    mm = k.mm_alloc()
    assert mm is not None
    k.lockdep_enabled = False
    k.hw_tlb.enabled = False
    va = 0x40_0000
    assert k.pte_alloc(mm, k.pmd_alloc(mm, k.pud_offset(
        k.p4d_offset(k.pgd_offset(mm, va), va), va), va) or PmdPtr(0, 8)) == 0
    ptep = PtePtr(k.pte_offset_kernel(k.pmd_off(mm, va), va).pa, 8)
    k.set_pte_at(mm, va, ptep, k.pte_mkdirty(k.pfn_pte(0x1000_0000 >> 14,
                                                       k.protection_map[0xB])))
    huge_va = 0x2_0000_0000
    hp = k.pmd_alloc(mm, k.pud_offset(k.p4d_offset(k.pgd_offset(mm, huge_va), huge_va),
                                      huge_va), huge_va)
    assert hp is not None
    k.set_pmd_at(mm, huge_va, hp, k.pmd_mkhuge(k.pfn_pmd(0x4_0000_0000 >> 14,
                                                         k.protection_map[0x1])))
    kva = 0xffff_0000_1400_0000
    kpmd = k.pmd_alloc(k.init_mm, k.pud_offset(k.p4d_offset(k.pgd_offset_k(kva), kva), kva),
                       kva)
    assert kpmd is not None and k.pte_alloc_kernel(kpmd, kva) is not None
    k.set_pte(k.pte_offset_kernel(kpmd, kva), k.pfn_pte(0x2000_0000 >> 14, k.PAGE_KERNEL))
    regs = k.config.make_registers(k.mm_root(mm), k.mm_root(k.init_mm))
    w = k.config.walker
    u = w.translate(k.mem, regs, va + 5)
    h = w.translate(k.mem, regs, huge_va + 0x10_0000)
    kk = w.translate(k.mem, regs, kva + 8)
    assert (u.pa, u.writable, u.user, u.executable) == (0x1000_0005, True, True, False)  # type: ignore[union-attr]
    assert (h.pa, h.size, h.writable) == (0x4_0010_0000, 1 << 25, False)  # type: ignore[union-attr]
    assert (kk.pa, kk.user, kk.executable) == (0x2000_0008, False, False)  # type: ignore[union-attr]


def test_switch_mm_loads_pgdl_for_the_mm_and_pgdh_for_init_mm() -> None:
    """The TLB follows PGDL = the mm's pgd under its ASID and PGDH = swapper_pg_dir under
    init_mm's; PGDL and PGDH hold kernel virtual addresses (CACHE_BASE | pa)."""
    k = boot()
    mm = k.mm_alloc()
    assert mm is not None
    assert k.mm_root(mm) == CACHE_BASE | mm.pgd.pa
    user = {pa for pa, _, _ in k.hw_tlb.tables_of(mm.asid)}
    kern = {pa for pa, _, _ in k.hw_tlb.tables_of(k.init_mm.asid)}
    assert mm.pgd.pa in user and k.init_mm.pgd.pa not in user
    assert kern == {k.init_mm.pgd.pa}
    # swapper_pg_dir is walked as PGDH: its entry 1 maps the kernel's second 64G
    assert k.hw_tlb.lookup(k.init_mm.pgd.pa + 8) == (KERNEL_SPACE, 0xffff_0010_0000_0000,
                                                     1 << 36, "Dir3")
    assert k.hw_tlb.lookup(mm.pgd.pa + 8) == (mm.asid, 1 << 36, 1 << 36, "Dir3")
    regs = k.config.make_registers(k.mm_root(mm), k.mm_root(k.init_mm))
    assert (regs["pgdl"], regs["pgdh"]) == (CACHE_BASE | mm.pgd.pa,
                                            CACHE_BASE | k.init_mm.pgd.pa)


def test_a_kernel_prot_none_map_is_refused_where_set_memory_cannot_undo_it() -> None:
    """``PAGE_NONE`` is a user protection on LoongArch (``_PAGE_USER`` = PLV 3) and
    ``pte_modify`` keeps the PLV field (``_PAGE_CHG_MASK``): a kernel PROT_NONE page made
    readable by ``set_memory_ro`` would be open to user mode.  ``Limits`` derives the
    refusal from the hardware's decoding, so x86_64 still accepts such a map."""
    from arches.errors import BadInput
    from legacy import boot
    from ptshim.scenario import Limits, parse_scenario
    from ptshim.session import Session

    assert "none" not in Limits.from_kernel(boot("loongarch64")).kernel_prots
    assert "none" in Limits.from_kernel(boot("x86_64")).kernel_prots
    for arch, refused in (("loongarch64", True), ("x86_64", False)):
        s = Session(arch)
        va = s.limits.kernel_range[0]
        sc = parse_scenario({"ops": [{"op": "map", "va": hex(va), "pa": "0x0",
                                      "size": hex(s.limits.page_size), "prot": "none"}]})
        frames = len(s.k.mem)
        try:
            s.validate(sc)
        except BadInput as e:
            assert refused, e
            assert "prot none is refused in the kernel range" in str(e)
            assert len(s.k.mem) == frames
        else:
            assert not refused
