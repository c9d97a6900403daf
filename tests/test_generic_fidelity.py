"""Generic and arm64 helpers checked against Linux v6.18 facts (docs/fidelity.md).

Each test names the kernel file and the fact it relies on.
"""

from __future__ import annotations

import pytest

import legacy
from legacy.generic import GenericKernel
from legacy.mm_types import mm_struct, spin_lock, spin_unlock
from legacy.types import PmdPtr

MIGRATION_ARCHES = [
    n for n in legacy.arch_names()
    if legacy.boot(n).ARCH_ENABLE_THP_MIGRATION and legacy.boot(n).SWP_ENTRY_EMULATED
]


def _user_pmd(k: GenericKernel, addr: int) -> tuple[mm_struct, PmdPtr]:
    mm = k.mm_alloc()
    assert mm is not None
    p4d = k.p4d_alloc(mm, k.pgd_offset(mm, addr), addr)
    assert p4d is not None
    pud = k.pud_alloc(mm, p4d, addr)
    assert pud is not None
    pmd = k.pmd_alloc(mm, pud, addr)
    assert pmd is not None
    return mm, pmd


# -- 2. pte_offset_map on a PMD migration entry ------------------------------------------


@pytest.mark.parametrize("name", MIGRATION_ARCHES)
@pytest.mark.parametrize("writable", [True, False])
def test_pte_offset_map_keeps_pmd_migration_entry(name: str, writable: bool) -> None:
    """mm/pgtable-generic.c ``___pte_offset_map``: ``if (unlikely(pmd_none(pmdval) ||
    is_pmd_migration_entry(pmdval))) goto nomap;`` comes before the ``pmd_trans_huge`` and
    ``pmd_bad`` checks, so a PMD migration entry (include/linux/swapops.h, with
    CONFIG_ARCH_ENABLE_THP_MIGRATION) yields NULL and is left in place, never
    ``pmd_clear_bad``-ed."""
    k = legacy.boot(name)
    addr = 0x40000000
    mm, pmd = _user_pmd(k, addr)
    swp = (k.make_writable_migration_entry(0x200) if writable
           else k.make_readable_migration_entry(0x200))
    entry = k.swp_entry_to_pmd(swp)
    assert k.is_pmd_migration_entry(entry)
    ptl = k.pmd_lockptr(mm, pmd)
    spin_lock(ptl)
    try:
        k.set_pmd(pmd, entry)
        assert k.pte_offset_map(pmd, addr) is None
        assert int(k.pmdp_get(pmd)) == int(entry)
    finally:
        spin_unlock(ptl)
    # __pte_offset_map_lock goes through ___pte_offset_map too.
    assert k.pte_offset_map_lock(mm, pmd, addr) is None
    assert int(k.pmdp_get(pmd)) == int(entry)


# -- 3. init_mm PMD tables have no split lock --------------------------------------------


def test_init_mm_pmd_table_has_no_split_lock(kernel: GenericKernel) -> None:
    """include/linux/mm.h (v6.18) ``pagetable_pmd_ctor(mm, ptdesc)``: ``if (mm != &init_mm
    && !pmd_ptlock_init(ptdesc)) return false;`` ("mm: skip ptlock_init() for kernel PMDs");
    include/asm-generic/pgalloc.h ``__pmd_alloc_one`` passes ``mm`` to the ctor.  A user
    PMD table still gets its split lock (USE_SPLIT_PMD_PTLOCKS), and ``pmd_free`` of either
    works (``pagetable_dtor`` frees only a lock that exists)."""
    k = kernel
    if k.PAGETABLE_PMD_FOLDED:
        assert k.pmd_alloc_one(k.init_mm, 0) is None
        return
    kpmd = k.pmd_alloc_one(k.init_mm, 0)
    assert kpmd is not None
    assert k.ptdescs[k.frame_of(kpmd.pa)].ptl is None
    mm = k.mm_alloc()
    assert mm is not None
    upmd = k.pmd_alloc_one(mm, 0)
    assert upmd is not None
    assert (k.ptdescs[k.frame_of(upmd.pa)].ptl is not None) == k.USE_SPLIT_PMD_PTLOCKS
    k.pmd_free(k.init_mm, kpmd)
    k.pmd_free(mm, upmd)


def test_kernel_pmd_alloc_gives_lockless_table(kernel: GenericKernel) -> None:
    """The kernel-range path (``pmd_alloc(&init_mm, ...)`` from mm/vmalloc.c
    ``vmap_pmd_range``) goes through ``__pmd_alloc`` -> ``pmd_alloc_one(&init_mm, ...)``,
    so a PMD table it installs has no split lock either (include/linux/mm.h)."""
    k = kernel
    if k.PAGETABLE_PMD_FOLDED:
        pytest.skip("no PMD tables of their own")
    addr = k.config.kernel_range[0] + k.PUD_SIZE
    p4d = k.p4d_alloc(k.init_mm, k.pgd_offset_k(addr), addr)
    assert p4d is not None
    pud = k.pud_alloc(k.init_mm, p4d, addr)
    assert pud is not None
    was_none = k.pud_none(k.pudp_get(pud))
    pmd = k.pmd_alloc(k.init_mm, pud, addr)
    assert pmd is not None
    if was_none:
        assert k.ptdescs[k.frame_of(pmd.pa)].ptl is None


# -- 4. mprotect makes a writable migration entry readable -------------------------------

SWAP_ARCHES = [n for n in legacy.arch_names() if legacy.boot(n).SWP_ENTRY_EMULATED]


@pytest.mark.parametrize("name", SWAP_ARCHES)
@pytest.mark.parametrize("api", ["legacy", "unified"])
def test_mprotect_makes_writable_migration_entries_readable(name: str, api: str) -> None:
    """mm/mprotect.c (v6.18) ``change_pte_range`` on a swap pte: "A protection check is
    difficult so just be safe and disable write": a writable migration entry becomes a
    readable one (readable-exclusive when the folio is anonymous), soft-dirty kept, and
    counts as a changed page; a readable one stays.  The unified port does the same."""
    from legacy import VM_READ
    from legacy.mm.anon import populate_vma_page_range
    from legacy.mm.memory import remap_pfn_range
    from legacy.mm.mmap import mmap_region
    from legacy.mm.mprotect import change_protection
    from legacy.mm.vma import find_vma, vma_set_anonymous
    from legacy.mm_types import mmap_write_locked
    from ptshim.backends import anon_vm_flags, user_vm_flags
    from unified.mm.protect import change_protection as unified_change_protection
    from unified.pagetables import PageTables

    k = legacy.boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    ps, va, anon_va = k.PAGE_SIZE, 0x4000_0000, 0x4040_0000
    with mmap_write_locked(mm):
        assert mmap_region(k, mm, va, 3 * ps, user_vm_flags("rw"), 0x1234) == va
        vma = find_vma(k, mm, va)
        assert vma is not None
        assert remap_pfn_range(k, vma, va, 0x1234, 3 * ps, legacy.pgprot_t(vma.vm_page_prot)) == 0
        assert mmap_region(k, mm, anon_va, ps, anon_vm_flags("rw"), 0) == anon_va
        avma = find_vma(k, mm, anon_va)
        assert avma is not None
        vma_set_anonymous(avma)
        assert populate_vma_page_range(k, avma, anon_va, anon_va + ps) == 1
    k.syscall_exit("map")
    pmd = k.pmd_off(mm, va)
    pte = k.pte_offset_map(pmd, va)
    apte = k.pte_offset_map(k.pmd_off(mm, anon_va), anon_va)
    assert pte is not None and apte is not None
    anon_pfn = k.pte_pfn(k.ptep_get(apte))
    writable = k.pte_swp_mksoft_dirty(k.swp_entry_to_pte(k.make_writable_migration_entry(0x1234)))
    readable = k.swp_entry_to_pte(k.make_readable_migration_entry(0x1235))
    anon = k.swp_entry_to_pte(k.make_writable_migration_entry(anon_pfn))
    with mmap_write_locked(mm):
        for p, a, v in ((pte, va, writable), (pte + 1, va + ps, readable), (apte, anon_va, anon)):
            ptl = k.ptep_lockptr(mm, p)
            spin_lock(ptl)
            k.ptep_get_and_clear(mm, a, p)
            k.set_pte_at(mm, a, p, v)
            spin_unlock(ptl)
        k.flush_tlb_mm(mm)
        prot = k.vm_get_page_prot(VM_READ)
        if api == "legacy":
            pages = change_protection(k, vma, va, va + 3 * ps, prot)
            apages = change_protection(k, avma, anon_va, anon_va + ps, prot)
        else:
            pt = PageTables(k)
            pages = unified_change_protection(pt, vma, va, va + 3 * ps, prot)
            apages = unified_change_protection(pt, avma, anon_va, anon_va + ps, prot)
    assert (pages, apages) == (2, 1)  # the readable entry is left alone
    now = k.ptep_get(pte)
    entry = k.pte_to_swp_entry(now)
    assert k.is_readable_migration_entry(entry) and k.swp_offset(entry) == 0x1234
    assert k.pte_swp_soft_dirty(now) == k.pte_swp_soft_dirty(writable)
    assert k.ptep_get(pte + 1) == readable
    aentry = k.pte_to_swp_entry(k.ptep_get(apte))
    assert k.is_readable_exclusive_migration_entry(aentry) and k.swp_offset(aentry) == anon_pfn
    assert not k.is_writable_migration_entry(aentry)
