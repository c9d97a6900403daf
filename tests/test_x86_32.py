"""The 32-bit x86 kernels (``i386``: 2-level, ``i386-pae``: PAE) against the SDM walkers.

Mappings are built through the legacy API the way the kernel's own paths do (``pgd_offset`` →
``p4d_alloc`` → ``pud_alloc`` → ``pmd_alloc`` → ``pte_alloc`` → ``set_pte_at``; ``set_pmd_at``
of a PSE pmd for THP-style leaves; ``pmd_set_huge`` for kernel leaves where the kernel has
``HAVE_ARCH_HUGE_VMAP``), and checked with the hardware walker of the configuration.
"""

from __future__ import annotations

import pytest

import legacy
from arches.config import Fault, Translation
from arches.errors import BadInput, CheckFailed
from legacy.mm.mmu_gather import pte_free_tlb, tlb_finish_mmu, tlb_gather_mmu
from legacy.mm_types import mm_struct, mmap_write_locked, spin_lock, spin_unlock
from legacy.pgtable import PGTBL_PMD_MODIFIED
from legacy.types import PgdPtr, PmdPtr, PtePtr, pgprot_t, pmd_t, pte_t, pud_t
from legacy.x86.pgtable_32 import I386Kernel, I386PaeKernel, X86_32Kernel

P, RW, US, A, D, PS, G = 1 << 0, 1 << 1, 1 << 2, 1 << 5, 1 << 6, 1 << 7, 1 << 8
NX = 1 << 63
K4, M2, M4 = 1 << 12, 1 << 21, 1 << 22
ARCHES = ["i386", "i386-pae"]


def boot(name: str) -> X86_32Kernel:
    k = legacy.boot(name)
    assert isinstance(k, X86_32Kernel)
    return k


def walk(k: X86_32Kernel, mm: mm_struct, va: int) -> Translation | Fault:
    regs = k.config.make_registers(mm.pgd.pa, mm.pgd.pa)
    return k.config.walker.translate(k.mem, regs, va)


def ok(r: Translation | Fault) -> Translation:
    assert isinstance(r, Translation), r
    return r


def pmd_for(k: X86_32Kernel, mm: mm_struct, addr: int) -> PmdPtr:
    """pgd_offset → p4d_alloc → pud_alloc → pmd_alloc, as handle_mm_fault does."""
    pgd = k.pgd_offset(mm, addr)
    p4d = k.p4d_alloc(mm, pgd, addr)
    assert p4d is not None
    pud = k.pud_alloc(mm, p4d, addr)
    assert pud is not None
    pmd = k.pmd_alloc(mm, pud, addr)
    assert pmd is not None
    return pmd


def map_user_4k(k: X86_32Kernel, mm: mm_struct, addr: int, pfn: int, prot: pgprot_t) -> PtePtr:
    pmd = pmd_for(k, mm, addr)
    assert k.pte_alloc(mm, pmd) == 0
    r = k.pte_offset_map_lock(mm, pmd, addr)
    assert r is not None
    pte, ptl = r
    k.set_pte_at(mm, addr, pte, k.pte_mkspecial(k.pfn_pte(pfn, prot)))
    k.pte_unmap_unlock(pte, ptl)
    return pte


def map_kernel_4k(k: X86_32Kernel, addr: int, pfn: int) -> PtePtr:
    pmd = pmd_for(k, k.init_mm, addr)
    pte = k.pte_alloc_kernel(pmd, addr)
    assert pte is not None
    k.set_pte_at(k.init_mm, addr, pte, k.pfn_pte(pfn, k.PAGE_KERNEL))
    return pte


def free_user_pte_table(k: X86_32Kernel, mm: mm_struct, addr: int) -> None:
    """What free_pte_range() does for the table covering ``addr``, as free_pgtables runs it:
    ``mmap_lock`` held for write, no page-table lock, the table freed through an
    ``mmu_gather`` after the TLB flush."""
    with mmap_write_locked(mm), k.pgtable_lockless(mm, "free_pte_range"):
        tlb = tlb_gather_mmu(k, mm)
        pmd = k.pmd_off(mm, addr)
        token = k.pmd_pgtable(k.pmdp_get(pmd))
        k.pmd_clear(pmd)
        pte_free_tlb(k, tlb, token, addr)
        k.mm_dec_nr_ptes(mm)
        tlb_finish_mmu(k, tlb)


def no_lock_held(k: X86_32Kernel) -> bool:
    locks = [k.pgd_lock, k.init_mm.page_table_lock] + [m.page_table_lock for m in k.mms]
    locks += [d.ptl for d in k.ptdescs.values() if d.ptl is not None]
    return not any(lock.held for lock in locks)


# -- geometry and folding --------------------------------------------------------------------


def test_i386_geometry_and_folding() -> None:
    k = boot("i386")
    assert isinstance(k, I386Kernel)
    assert (k.PGDIR_SHIFT, k.P4D_SHIFT, k.PUD_SHIFT, k.PMD_SHIFT) == (22, 22, 22, 22)
    assert (k.PTRS_PER_PGD, k.PTRS_PER_PTE) == (1024, 1024)
    assert k.PTRS_PER_PMD == k.PTRS_PER_PUD == k.PTRS_PER_P4D == 1
    assert k.SIZEOF_PGD == k.SIZEOF_PMD == k.SIZEOF_PTE == 4
    assert k.PAGETABLE_PMD_FOLDED and k.PAGETABLE_PUD_FOLDED and k.PAGETABLE_P4D_FOLDED
    assert k.KERNEL_PGD_BOUNDARY == 768 and k.KERNEL_PGD_PTRS == 256
    assert k.ULONG_MASK == 0xFFFF_FFFF and k.TASK_SIZE == k.PAGE_OFFSET == 0xC000_0000
    assert k.PTE_PFN_MASK == 0xFFFF_F000 and k.PTE_FLAGS_MASK == 0xFFF
    assert k.PHYSICAL_PMD_PAGE_MASK == 0xFFC0_0000
    mm = k.mm_alloc()
    assert mm is not None
    addr = 0x0804_8000
    pgd = k.pgd_offset(mm, addr)
    assert pgd.pa == mm.pgd.pa + 4 * (addr >> 22)
    p4d = k.p4d_offset(pgd, addr)
    pud = k.pud_offset(p4d, addr)
    pmd = k.pmd_offset(pud, addr)
    assert p4d.pa == pud.pa == pmd.pa == pgd.pa
    frames = len(k.mem)
    # Allocating the folded levels allocates nothing and returns the pgd entry.
    assert k.p4d_alloc(mm, pgd, addr) == p4d
    assert k.pud_alloc(mm, p4d, addr) == pud
    assert k.pmd_alloc(mm, pud, addr) == pmd
    assert len(k.mem) == frames and mm.pgtables_bytes == 0
    # The folded parents' predicates are constants, whatever the entry holds.
    for v in (0, 0xFFFF_FFFF, 0x0123_4067):
        assert not k.pgd_none(legacy.pgd_t(v)) and not k.pgd_bad(legacy.pgd_t(v))
        assert not k.p4d_none(legacy.p4d_t(v)) and not k.p4d_bad(legacy.p4d_t(v))
        assert not k.pud_none(pud_t(v)) and not k.pud_bad(pud_t(v))
        assert k.pgd_present(legacy.pgd_t(v)) and k.pud_present(pud_t(v))
        assert not k.pud_leaf(pud_t(v))
    # ... but the pmd (the pgd entry itself) is real.
    assert k.pmd_none(k.pmdp_get(pmd))


def test_pae_geometry_and_folding() -> None:
    k = boot("i386-pae")
    assert isinstance(k, I386PaeKernel)
    assert (k.PGDIR_SHIFT, k.P4D_SHIFT, k.PUD_SHIFT, k.PMD_SHIFT) == (30, 30, 30, 21)
    assert (k.PTRS_PER_PGD, k.PTRS_PER_P4D, k.PTRS_PER_PUD, k.PTRS_PER_PMD) == (4, 1, 1, 512)
    assert k.PTRS_PER_PTE == 512 and k.SIZEOF_PGD == k.SIZEOF_PMD == k.SIZEOF_PTE == 8
    assert k.PAGETABLE_PUD_FOLDED and k.PAGETABLE_P4D_FOLDED and not k.PAGETABLE_PMD_FOLDED
    assert k.KERNEL_PGD_BOUNDARY == 3 and k.PREALLOCATED_PMDS == 4
    assert k.PHYSICAL_MASK == (1 << 52) - 1 and k.ULONG_MASK == 0xFFFF_FFFF
    mm = k.mm_alloc()
    assert mm is not None
    addr = 0x4000_1000
    pgd = k.pgd_offset(mm, addr)
    assert pgd.pa == mm.pgd.pa + 8
    pud = k.pud_offset(k.p4d_offset(pgd, addr), addr)
    assert pud.pa == pgd.pa
    pmd = k.pmd_offset(pud, addr)
    assert pmd.pa == (k.pudp_get(pud) & k.PTE_PFN_MASK) + 8 * ((addr >> 21) & 511)
    assert not k.pgd_none(legacy.pgd_t(0)) and not k.p4d_none(legacy.p4d_t(0))
    assert k.pud_none(pud_t(0)) and not k.pud_none(k.pudp_get(pud))


def test_addr_end_wraps_at_4g() -> None:
    k = boot("i386")
    assert k.pgd_addr_end(0xFFC0_0000, 0) == 0
    assert k.pgd_addr_end(0xFF80_0000, 0) == 0xFFC0_0000
    assert k.pgd_addr_end(0xFFC0_0000, 0xFFE0_0000) == 0xFFE0_0000
    assert k.pgd_addr_end(0xBFFF_F000, 0xC040_0000) == 0xC000_0000
    # Folded levels: the next boundary is always ``end``.
    assert k.p4d_addr_end(0x1000, 0) == 0
    assert k.pud_addr_end(0x1000, 0x5000_0000) == 0x5000_0000
    assert k.pmd_addr_end(0xFFC0_0000, 0) == 0
    kp = boot("i386-pae")
    assert kp.pgd_addr_end(0xC000_0000, 0) == 0
    assert kp.pgd_addr_end(0x8000_0000, 0) == 0xC000_0000
    assert kp.pmd_addr_end(0xFFE0_0000, 0) == 0
    assert kp.pmd_addr_end(0xFFC0_0000, 0) == 0xFFE0_0000
    assert kp.pud_addr_end(0xC000_0000, 0) == 0


# -- values: 32-bit entries, no NX / soft-dirty / inversion on 2-level ------------------------


def test_i386_entry_values() -> None:
    k = boot("i386")
    for prot in (k.PAGE_SHARED, k.PAGE_READONLY, k.PAGE_COPY, k.PAGE_KERNEL, k.PAGE_KERNEL_RO):
        assert prot < 1 << 32  # _PAGE_NX is 0 without PAE
    pte = k.pfn_pte(0xABCDE, k.PAGE_READONLY)
    assert pte == 0xABCDE000 | P | US | A and k.pte_exec(pte)
    assert k.pte_mkdirty(pte) == pte | D  # no _PAGE_SOFT_DIRTY on 32-bit
    assert not k.pte_soft_dirty(k.pte_mksoft_dirty(pte))
    assert k.pmd_mkdirty(pmd_t(0)) == D
    # PROT_NONE: no PFN inversion on 2-level.
    none = k.pfn_pte(0x12345, k.PAGE_NONE)
    assert none & k.PTE_PFN_MASK == 0x12345000 and k.pte_pfn(none) == 0x12345
    assert k.pte_protnone(none) and k.pte_present(none)
    # KNL erratum mask is 0: stray A/D bits make an entry non-none.
    assert not k.pte_none(pte_t(A | D)) and not k.pmd_none(pmd_t(A))
    # pte_modify keeps pfn and A/D, takes the rest from the new prot.
    m = k.pte_modify(k.pte_mkdirty(pte), k.PAGE_SHARED)
    assert m == 0xABCDE000 | P | RW | US | A | D
    # pfn beyond the 32-bit physical mask.
    assert k.pte_pfn(k.pfn_pte((1 << 20) - 1, k.PAGE_KERNEL)) == (1 << 20) - 1
    for bad in (1 << 20, -1):
        with pytest.raises(BadInput):
            k.pfn_pte(bad, k.PAGE_KERNEL)
    with pytest.raises(BadInput):
        k.pfn_pmd(1 << 20, k.PAGE_KERNEL)


def test_pae_entry_values() -> None:
    k = boot("i386-pae")
    assert k.PAGE_SHARED & NX and k.PAGE_READONLY & NX and not k.PAGE_SHARED_EXEC & NX
    pte = k.pfn_pte(0xF234_5678, k.PAGE_READONLY)  # a 44-bit physical address
    assert pte & k.PTE_PFN_MASK == 0xF234_5678_000 and not k.pte_exec(pte)
    assert k.pte_mkdirty(pte) == pte | D
    # L1TF: a PROT_NONE entry has its PFN inverted in memory, pte_pfn undoes it.
    none = k.pfn_pte(0x12345, k.PAGE_NONE)
    assert none & k.PTE_PFN_MASK == ~(0x12345 << 12) & k.PTE_PFN_MASK
    assert k.pte_pfn(none) == 0x12345
    assert k.pte_pfn(k.pte_modify(none, k.PAGE_READONLY)) == 0x12345
    # KNL erratum: stray A/D make no entry.
    assert k.pte_none(pte_t(A | D)) and k.pmd_none(pmd_t(A | D))
    # pmd_none looks at the low word only ("might be out of sync with upper half").
    assert k.pmd_none(pmd_t(0x5 << 32)) and not k.pte_none(pte_t(0x5 << 32))
    # pfn is an unsigned long: 2^32 pfns (44 bits of physical address) at most.
    assert k.pte_pfn(k.pfn_pte((1 << 32) - 1, k.PAGE_KERNEL)) == (1 << 32) - 1
    with pytest.raises(BadInput):
        k.pfn_pte(1 << 32, k.PAGE_KERNEL)


# -- i386: user mappings through the walker ----------------------------------------------------


def test_i386_user_4k_and_accounting() -> None:
    k = boot("i386")
    mm = k.mm_alloc()
    assert mm is not None and mm.pgtables_bytes == 0
    addr, pfn = 0x0804_8000, 0x345
    pte = map_user_4k(k, mm, addr, pfn, k.PAGE_SHARED)
    assert mm.pgtables_bytes == 1024 * 4
    assert k.mem.read(pte.pa, 4) == pfn << 12 | 0x200 | P | RW | US | A  # _PAGE_SPECIAL: bit 9
    pde = k.mem.read(mm.pgd.pa + 4 * (addr >> 22), 4)
    assert pde == pte.pa & ~0xFFF | P | RW | US | A | D  # _PAGE_TABLE
    t = ok(walk(k, mm, addr + 0x123))
    assert (t.pa, t.size, t.level) == (pfn << 12 | 0x123, K4, 1)
    assert t.writable and t.user and t.executable  # no NX on 2-level: always executable
    assert isinstance(walk(k, mm, addr + K4), Fault)
    assert no_lock_held(k)
    free_user_pte_table(k, mm, addr)
    k.mmdrop(mm)
    assert not k.tables_of(mm) and mm.pgd not in k.pgd_list


def test_i386_4m_leaf() -> None:
    k = boot("i386")
    mm = k.mm_alloc()
    assert mm is not None
    addr, pfn = 0x4000_0000, 0x0800_0000 >> 12  # 4M-aligned VA and PA
    pmd = pmd_for(k, mm, addr)
    # No HAVE_ARCH_HUGE_VMAP on 2-level x86: pmd_set_huge is the generic stub.
    assert not k.arch_vmap_pmd_supported(k.PAGE_KERNEL)
    assert k.pmd_set_huge(pmd, pfn << 12, k.PAGE_KERNEL) == 0
    assert k.pmd_none(k.pmdp_get(pmd))
    # A THP-style leaf: set_pmd_at(pmd_mkhuge(pfn_pmd(...))) under pmd_lock.
    ptl = k.pmd_lock(mm, pmd)
    k.set_pmd_at(mm, addr, pmd, k.pmd_mkhuge(k.pfn_pmd(pfn, k.PAGE_READONLY)))
    spin_unlock(ptl)
    v = k.pmdp_get(pmd)
    assert k.pmd_leaf(v) and k.pmd_present(v) and k.pmd_trans_huge(v)
    assert k.pmd_pfn(v) == pfn and v == 0x0800_0000 | PS | P | US | A
    t = ok(walk(k, mm, addr + 0x12_3456))
    assert (t.pa, t.size, t.level) == (0x0812_3456, M4, 0)
    assert not t.writable and t.user
    assert k.pmd_clear_huge(pmd) == 0  # also the stub
    ptl = k.pmd_lock(mm, pmd)
    k.pmd_clear(pmd)
    spin_unlock(ptl)
    assert isinstance(walk(k, mm, addr), Fault)
    k.mmdrop(mm)


# -- PAE: the PDPT root and the preallocated PMDs ----------------------------------------------


def test_pae_root_and_preallocated_pmds() -> None:
    k = boot("i386-pae")
    swapper = k.init_mm.pgd
    kernel_pmd = k.mem.read(swapper.pa + 8 * 3, 8) & ~0xFFF
    assert k.mem.read(swapper.pa + 8 * 3, 8) == kernel_pmd | P
    assert all(k.mem.read(swapper.pa + 8 * i, 8) == 0 for i in range(3))
    map_kernel_4k(k, 0xC010_0000, 0x100)  # something in swapper's kernel PMD to copy
    frames = len(k.mem)
    mm = k.mm_alloc()
    assert mm is not None
    assert len(k.mem) == frames + 5  # a whole page for the PDPT + 4 PMDs
    assert mm.pgtables_bytes == 4 * 512 * 8  # mm_inc_nr_pmds for each preallocated PMD
    pmds = []
    for i in range(4):
        pdpte = k.mem.read(mm.pgd.pa + 8 * i, 8)
        pmd_pa = pdpte & ~0xFFF
        assert pdpte == pmd_pa | P  # only the present bit: everything else is reserved
        assert k.mem.is_allocated(pmd_pa) and k.ptdescs[pmd_pa].mm is mm
        assert k.ptdescs[pmd_pa].ptl is not None  # pagetable_pmd_ctor: split PMD lock
        pmds.append(pmd_pa)
    assert len(set(pmds)) == 4 and kernel_pmd not in pmds
    for i in range(3):
        assert k.mem.read_bytes(pmds[i], 4096) == bytes(4096)
    assert k.mem.read_bytes(pmds[3], 4096) == k.mem.read_bytes(kernel_pmd, 4096)
    assert mm.pgd in k.pgd_list and k.pgd_page_get_mm(mm.pgd) is mm
    # The walker accepts the root (a PDPTE with R/W or U/S set would be a reserved-bit fault).
    t = ok(walk(k, mm, 0xC010_0000))
    assert t.pa == 0x100 << 12 and not t.user
    assert walk(k, mm, 0x1000) == Fault(0x1000, "not present (PDE)", 1)
    # Negative control: the pgd_populate-style value the 64-bit kernel would write.
    k.mem.write(mm.pgd.pa, 8, pmds[0] | P | RW | US | A | D)
    bad = walk(k, mm, 0x1000)
    assert isinstance(bad, Fault) and bad.reason.startswith("reserved bit (PDPTE")
    k.mem.write(mm.pgd.pa, 8, pmds[0] | P)
    # Teardown: pgd_free mops the four PMDs up and unaccounts them.
    k.mmdrop(mm)
    assert mm.pgtables_bytes == 0 and not k.tables_of(mm)
    assert not any(k.mem.is_allocated(pa) for pa in pmds)
    assert not k.mem.is_allocated(mm.pgd.pa) and k.pgd_list == []
    assert k.mem.is_allocated(kernel_pmd) and len(k.mem) == frames
    assert no_lock_held(k)


def test_pae_pud_values_are_pgd_allowed_bits() -> None:
    k = boot("i386-pae")
    mm = k.mm_alloc()
    assert mm is not None
    pud = k.pud_offset(k.p4d_offset(k.pgd_offset(mm, 0), 0), 0)
    pmd_pa = k.pudp_get(pud) & k.PTE_PFN_MASK
    assert not k.pud_none(k.pudp_get(pud)) and k.pud_present(k.pudp_get(pud))
    assert not k.pud_bad(k.pudp_get(pud)) and not k.pud_leaf(k.pudp_get(pud))
    assert k.pud_pgtable(k.pudp_get(pud)) == PmdPtr(pmd_pa, 8)
    # __pud()/native_pgd_val keep only address, P, PWT, PCD and the software bits.
    ptl = k.pud_lock(mm, pud)
    k.set_pud(pud, pud_t(pmd_pa | P | RW | US | A | D | NX | 0x200))
    spin_unlock(ptl)
    assert k.mem.read(pud.pa, 8) == pmd_pa | P | 0x200
    k.mem.write(pud.pa, 8, pmd_pa | P | RW)  # written behind the kernel's back
    assert k.pudp_get(pud) == pmd_pa | P and k.pgdp_get(PgdPtr(pud.pa, 8)) == pmd_pa | P
    k.mem.write(pud.pa, 8, pmd_pa | P)
    k.mmdrop(mm)


def test_pae_user_mappings_2m_and_4k() -> None:
    k = boot("i386-pae")
    mm = k.mm_alloc()
    assert mm is not None
    frames = len(k.mem)
    pte = map_user_4k(k, mm, 0x0804_8000, 0xF000_0345, k.PAGE_COPY)
    assert len(k.mem) == frames + 1  # only the PTE table: the PMD was preallocated
    assert mm.pgtables_bytes == 4 * 4096 + 512 * 8
    assert k.mem.read(pte.pa, 8) == 0xF000_0345 << 12 | NX | 0x200 | P | US | A
    t = ok(walk(k, mm, 0x0804_8FFF))
    assert (t.pa, t.size, t.level) == (0xF000_0345_FFF, K4, 2)
    assert not t.writable and t.user and not t.executable
    # A 2M THP-style leaf in the same PMD.
    addr = 0x4020_0000
    pmd = pmd_for(k, mm, addr)
    ptl = k.pmd_lock(mm, pmd)
    k.set_pmd_at(mm, addr, pmd, k.pmd_mkhuge(k.pfn_pmd(0x4000_0000 >> 12, k.PAGE_SHARED_EXEC)))
    spin_unlock(ptl)
    t = ok(walk(k, mm, addr + 0x1_2345))
    assert (t.pa, t.size, t.level) == (0x4001_2345, M2, 1)
    assert t.writable and t.user and t.executable
    assert no_lock_held(k)
    free_user_pte_table(k, mm, 0x0804_8000)
    ptl = k.pmd_lock(mm, pmd)
    k.pmd_clear(pmd)
    spin_unlock(ptl)
    k.mmdrop(mm)
    assert not k.tables_of(mm)


def test_pae_kernel_pmd_set_huge() -> None:
    k = boot("i386-pae")
    assert k.arch_vmap_pmd_supported(k.PAGE_KERNEL) and not k.arch_vmap_pud_supported(
        k.PAGE_KERNEL
    )
    addr, phys = 0xD000_0000, 0x3000_0000
    pmd = pmd_for(k, k.init_mm, addr)
    assert k.pmd_set_huge(pmd, phys, k.PAGE_KERNEL) == 1
    v = k.pmdp_get(pmd)
    assert k.pmd_leaf(v) and k.pmd_pfn(v) == phys >> 12 and v & NX and v & G
    t = ok(walk(k, k.init_mm, addr + 0x1234))
    assert (t.pa, t.size) == (phys + 0x1234, M2) and t.writable and not t.executable
    # pmd_set_huge refuses a populated table entry.
    other = pmd_for(k, k.init_mm, 0xD040_0000)
    assert k.pte_alloc_kernel(other, 0xD040_0000) is not None
    assert k.pmd_set_huge(other, phys, k.PAGE_KERNEL) == 0
    assert k.pmd_clear_huge(pmd) == 1 and k.pmd_none(k.pmdp_get(pmd))
    assert k.pmd_clear_huge(pmd) == 0


# -- the kernel half: cloned at pgd_alloc, synced through pgd_list ------------------------------


@pytest.mark.parametrize("name", ARCHES)
def test_kernel_half_clone_and_sync(name: str) -> None:
    k = boot(name)
    assert k.ARCH_PAGE_TABLE_SYNC_MASK == PGTBL_PMD_MODIFIED
    before = 0xC010_0000
    map_kernel_4k(k, before, 0x111)
    mm1 = k.mm_alloc()
    assert mm1 is not None
    if name == "i386":  # pgd_ctor clone_pgd_range(768..1023)
        size = 256 * 4
        assert k.mem.read_bytes(mm1.pgd.pa + 768 * 4, size) == k.mem.read_bytes(
            k.init_mm.pgd.pa + 768 * 4, size
        )
    t = ok(walk(k, mm1, before))
    assert t.pa == 0x111 << 12 and not t.user and t.writable
    assert isinstance(walk(k, mm1, 0x0804_8000), Fault)
    # A second page in the same (shared) PTE table is visible at once.
    map_kernel_4k(k, before + K4, 0x112)
    assert ok(walk(k, mm1, before + K4)).pa == 0x112 << 12
    # A new PTE table in init_mm is not, until arch_sync_kernel_mappings().
    after = 0xE000_0000
    map_kernel_4k(k, after, 0x222)
    assert ok(walk(k, k.init_mm, after)).pa == 0x222 << 12
    assert isinstance(walk(k, mm1, after), Fault)
    mm2 = k.mm_alloc()  # created later: gets it by clone / PMD copy
    assert mm2 is not None and ok(walk(k, mm2, after)).pa == 0x222 << 12
    k.arch_sync_kernel_mappings(after, after + K4)
    assert ok(walk(k, mm1, after)).pa == 0x222 << 12
    # The sync runs from start up to VMALLOC_END: a table below start is left alone.
    lower = 0xD000_0000
    map_kernel_4k(k, lower, 0x333)
    k.arch_sync_kernel_mappings(after, after + K4)
    assert isinstance(walk(k, mm1, lower), Fault)
    k.arch_sync_kernel_mappings(lower, lower + K4)
    assert ok(walk(k, mm1, lower)).pa == 0x333 << 12
    # The top of the address space (pmd_addr_end wraps there) syncs too.
    top = 0xFFFF_F000
    map_kernel_4k(k, top, 0x444)
    k.arch_sync_kernel_mappings(top, 0)
    assert ok(walk(k, mm1, top)).pa == 0x444 << 12 and ok(walk(k, mm2, top)).pa == 0x444 << 12
    assert no_lock_held(k)
    # Teardown leaves init_mm's tables alone and nothing charged to the mms.
    kernel_tables = k.tables_of(k.init_mm)
    for mm in (mm2, mm1):
        k.mmdrop(mm)
        assert not k.tables_of(mm)
    assert k.tables_of(k.init_mm) == kernel_tables and k.pgd_list == []
    assert ok(walk(k, k.init_mm, top)).pa == 0x444 << 12


@pytest.mark.parametrize("name", ARCHES)
def test_sync_bug_on_mismatch(name: str) -> None:
    k = boot(name)
    addr = 0xC040_0000
    map_kernel_4k(k, addr, 0x10)
    mm = k.mm_alloc()
    assert mm is not None
    # Point mm's pmd for addr at another table: vmalloc_sync_one's BUG_ON.
    pmd = k.pmd_off(mm, addr)
    k.set_pmd(pmd, pmd_t(k.pmdp_get(pmd) + K4))
    with pytest.raises(AssertionError, match="BUG_ON"):
        k.arch_sync_kernel_mappings(addr, addr + K4)


# -- teardown and failure paths -----------------------------------------------------------------


def test_pae_teardown_after_freeing_a_pmd() -> None:
    """free_pmd_range() already freed one PMD (pud_clear + pmd_free + mm_dec_nr_pmds):
    pgd_mop_up_pmds skips the cleared PDPTE and frees the other three."""
    k = boot("i386-pae")
    mm = k.mm_alloc()
    assert mm is not None
    pud = k.pud_offset(k.p4d_offset(k.pgd_offset(mm, 0x4000_0000), 0), 0x4000_0000)
    pmd = k.pud_pgtable(k.pudp_get(pud))
    spin_lock(mm.page_table_lock)
    k.pud_clear(pud)
    spin_unlock(mm.page_table_lock)
    # pgtable-3level.h pud_clear: "all places where pud_clear() is called either have
    # flush_tlb_mm() followed or don't need TLB flush".
    k.flush_tlb_mm(mm)
    k.pmd_free(mm, pmd)
    k.mm_dec_nr_pmds(mm)
    assert mm.pgtables_bytes == 3 * 4096
    # __pmd_alloc repopulates it: only _PAGE_PRESENT again.
    new = pmd_for(k, mm, 0x4000_0000)
    assert k.mem.read(pud.pa, 8) == new.pa & ~0xFFF | P and mm.pgtables_bytes == 4 * 4096
    k.mmdrop(mm)
    assert not k.tables_of(mm)


@pytest.mark.parametrize("name", ARCHES)
def test_mmdrop_with_a_leftover_table_fails_check_mm(name: str) -> None:
    k = boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    map_user_4k(k, mm, 0x1000_0000, 0x10, k.PAGE_SHARED)
    with pytest.raises(CheckFailed, match="pgtables_bytes"):
        k.mmdrop(mm)


@pytest.mark.parametrize("fail_at", [1, 2, 3, 5])
def test_pae_pgd_alloc_failure_leaks_nothing(fail_at: int) -> None:
    k = boot("i386-pae")
    frames = k.mem.allocated_frames()
    k.mem.fail_after(fail_at)  # 1: the PDPT page, 2..5: one of the PMDs
    assert k.mm_alloc() is None
    assert k.mem.allocated_frames() == frames and k.pgd_list == [] and no_lock_held(k)
    k.mem.fail_after(0)
    mm = k.mm_alloc()
    assert mm is not None and mm.pgtables_bytes == 4 * 4096
    k.mmdrop(mm)


def test_i386_pgd_alloc_failure() -> None:
    k = boot("i386")
    frames = k.mem.allocated_frames()
    k.mem.fail_after(1)
    assert k.mm_alloc() is None
    assert k.mem.allocated_frames() == frames and k.pgd_list == []
