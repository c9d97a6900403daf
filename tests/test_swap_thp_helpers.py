"""The swap-entry and THP helpers mm/debug_vm_pgtable.c leans on, tested for themselves.

Generic properties run on every configuration whose swap format the emulator implements
(``SWP_ENTRY_EMULATED``) or that has THP; the x86-64 layout tests check the encoding against
the format comment of arch/x86/include/asm/pgtable_64.h.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import legacy
from arches.errors import LockError
from legacy.generic import GenericKernel
from legacy.mm_types import spin_unlock
from legacy.swapops import MAX_SWAPFILES_SHIFT
from legacy.types import PtePtr, pte_t
from tests.debug_vm_pgtable_args import destroy_args, init_args

SWAP_ARCHES = [n for n in legacy.arch_names() if legacy.boot(n).SWP_ENTRY_EMULATED]


def _max_swap_offset(k: GenericKernel) -> int:
    """generic_max_swapfile_size()'s probe (mm/swapfile.c)."""
    return k.swp_offset(k.pte_to_swp_entry(k.swp_entry_to_pte(k.swp_entry(0, k.ULONG_MASK))))


@pytest.mark.parametrize("name", SWAP_ARCHES)
@given(data=st.data())
def test_swap_entry_round_trip(name: str, data: st.DataObject) -> None:
    """Every type and every offset up to the probed maximum survive the arch format, and the
    pte is a swap pte whatever its exclusive/soft-dirty/uffd-wp flags."""
    k = legacy.boot(name)
    type_ = data.draw(st.integers(0, (1 << MAX_SWAPFILES_SHIFT) - 1))
    # Offset 0 is the swap header, never in a pte (it encodes as pte_none on arm64); the
    # probed maximum itself encodes as pte_none for type 0 on x86-64 (the offset is stored
    # inverted): swap files are far smaller (and L1TF caps them lower still).
    offset = data.draw(st.integers(1, _max_swap_offset(k) - 1))
    entry = k.swp_entry(type_, offset)
    assert (k.swp_type(entry), k.swp_offset(entry)) == (type_, offset)
    pte = k.swp_entry_to_pte(entry)
    for flagged in (pte, k.pte_swp_mkexclusive(pte), k.pte_swp_mksoft_dirty(pte),
                    k.pte_swp_mkuffd_wp(pte)):
        assert k.is_swap_pte(flagged)
        assert not k.pte_present(flagged) and not k.pte_none(flagged)
        assert k.pte_to_swp_entry(flagged) == entry
    assert k.pte_swp_exclusive(k.pte_swp_mkexclusive(pte))
    assert not k.pte_swp_exclusive(k.pte_swp_clear_exclusive(k.pte_swp_mkexclusive(pte)))
    if k.ARCH_ENABLE_THP_MIGRATION:
        pmd = k.swp_entry_to_pmd(entry)
        assert k.pmd_to_swp_entry(k.pmd_swp_mksoft_dirty(pmd)) == entry
        assert k.is_swap_pmd(pmd)


@pytest.mark.parametrize("name", SWAP_ARCHES)
def test_migration_entries(name: str) -> None:
    """swap.h numbering: MAX_SWAPFILES = 32 - 3 (migration) - 1 (pte marker) here, and the
    three migration types sit right above it."""
    k = legacy.boot(name)
    assert k.MAX_SWAPFILES == (1 << MAX_SWAPFILES_SHIFT) - 3 - 1
    pfn = 0x12345
    w = k.make_writable_migration_entry(pfn)
    r = k.make_readable_migration_entry(pfn)
    x = k.make_readable_exclusive_migration_entry(pfn)
    assert [k.swp_type(e) for e in (r, x, w)] == [k.MAX_SWAPFILES + i for i in range(3)]
    assert all(k.is_migration_entry(e) and k.non_swap_entry(e) for e in (r, x, w))
    assert k.is_writable_migration_entry(w) and not k.is_writable_migration_entry(r)
    assert k.swp_offset(w) == pfn
    pte = k.swp_entry_to_pte(w)
    assert k.is_swap_pte(pte) and k.pte_to_swp_entry(pte) == w


X86_64 = [n for n in legacy.arch_names() if n.startswith("x86_64")]


@pytest.mark.parametrize("name", X86_64)
def test_x86_64_swap_layout(name: str) -> None:
    """``| TYPE (59-63) | ~OFFSET (9-58) |0|0|X|X| X| E|F|SD|0|``: type on top, the offset
    inverted below it, P, PSE and G (PROTNONE) clear; E = bit 3, SD = bit 1 (_PAGE_RW)."""
    k = legacy.boot(name)
    assert _max_swap_offset(k) == (1 << 50) - 1  # 64 - SWP_OFFSET_SHIFT bits
    assert k.swp_entry_to_pte(k.swp_entry(0, 0)) == 0x07FF_FFFF_FFFF_FE00
    assert k.swp_entry_to_pte(k.swp_entry(31, (1 << 50) - 1)) == 0xF800_0000_0000_0000
    assert k.swp_entry_to_pte(k.swp_entry(0, (1 << 50) - 1)) == 0  # pte_none: never used
    pte = k.swp_entry_to_pte(k.swp_entry(5, 0x1234))
    assert pte >> 59 == 5 and (~pte >> 9) & ((1 << 50) - 1) == 0x1234
    assert pte & 0x1FF == 0
    assert k.pte_swp_mkexclusive(pte_t(0)) == 1 << 3
    assert k.pte_swp_mksoft_dirty(pte_t(0)) == 1 << 1
    assert k.pte_swp_mkuffd_wp(pte_t(0)) == 1 << 2


@pytest.mark.parametrize("name", X86_64)
def test_x86_mkinvalid(name: str) -> None:
    """pmd_mkinvalid/pud_mkinvalid drop P and PROTNONE, invert the pfn (L1TF), keep PSE:
    the pmd stays pmd_present and pmd_trans_huge; the pud is not present (why the kernel's
    pud_mkinvalid checks are commented out)."""
    k = legacy.boot(name)
    pfn = 0x40000
    prot = k.vm_get_page_prot(0x7)
    pmd = k.pmd_mkinvalid(k.pmd_mkhuge(k.pfn_pmd(pfn, prot)))
    assert not pmd & 1 and k.pmd_present(pmd) and k.pmd_trans_huge(pmd)
    assert k.pmd_pfn(pmd) == pfn and pmd & k.PTE_PFN_MASK != pfn << k.PAGE_SHIFT
    pud = k.pud_mkinvalid(k.pud_mkhuge(k.pfn_pud(pfn, prot)))
    assert not k.pud_present(pud) and k.pud_trans_huge(pud) and k.pud_pfn(pud) == pfn


@pytest.mark.parametrize("name", legacy.arch_names())
def test_deposit_withdraw_order(name: str) -> None:
    """mm/pgtable-generic.c: the last table deposited comes back first, then the others in
    the order list_add left them (deposit A, B, C -> withdraw C, A, B), under the pmd lock.
    The tables are real (``pte_alloc_one``): s390 keeps the deposit list in the first two
    entries of the deposited tables themselves (arch/s390/mm/pgtable.c), and its withdraw
    puts ``_PAGE_INVALID`` back, so every table comes back empty on every configuration."""
    k = legacy.boot(name)
    if not k.TRANSPARENT_HUGEPAGE:
        pytest.skip("!CONFIG_TRANSPARENT_HUGEPAGE")
    args = init_args(k, "A", 0)
    tables: list[PtePtr] = []
    mm = args.the_mm
    ptl = None
    try:
        pmdp = args.pmdp
        assert pmdp is not None
        for _ in range(3):
            t = k.pte_alloc_one(mm)
            assert t is not None
            tables.append(t)
        with pytest.raises(LockError, match="assert_spin_locked"):
            k.pgtable_trans_huge_deposit(mm, pmdp, tables[0])
        ptl = k.pmd_lock(mm, pmdp)
        for t in tables:
            k.pgtable_trans_huge_deposit(mm, pmdp, t)
        assert k.pmd_huge_pte(mm, pmdp) == tables[2]
        got = [k.pgtable_trans_huge_withdraw(mm, pmdp) for _ in tables]
        spin_unlock(ptl)
        assert got == [tables[2], tables[0], tables[1]]
        assert k.pmd_huge_pte(mm, pmdp) is None and not k.pmd_huge_ptes
        for t in got:
            assert all(k.pte_none(k.ptep_get(t + i)) for i in range(k.PTRS_PER_PTE)), t
    finally:
        if ptl is not None and ptl.held:
            spin_unlock(ptl)
        for t in tables:
            k.pte_free(mm, t)
        destroy_args(args)


@pytest.mark.parametrize("name", legacy.arch_names())
def test_huge_get_and_clear_full_takes_the_vma(name: str) -> None:
    """include/linux/pgtable.h defaults: ``p?dp_huge_get_and_clear_full(vma, ...)`` clear
    through ``vma->vm_mm`` and return the old value."""
    k = legacy.boot(name)
    if not k.TRANSPARENT_HUGEPAGE:
        pytest.skip("!CONFIG_TRANSPARENT_HUGEPAGE")
    args = init_args(k, "B", 0)
    try:
        pmdp, vma = args.pmdp, args.the_vma
        assert pmdp is not None
        addr = args.vaddr & k.PMD_MASK
        val = k.pmd_mkhuge(k.pfn_pmd(args.fixed_pmd_pfn, args.page_prot))
        ptl = k.pmd_lock(args.the_mm, pmdp)
        k.set_pmd_at(args.the_mm, addr, pmdp, val)
        old = k.pmdp_get(pmdp)  # (32-bit arm's set_pmd_at adds AP[2] and nG to what it stores)
        assert k.pmd_pfn(old) == args.fixed_pmd_pfn
        assert k.pmdp_huge_get_and_clear_full(vma, addr, pmdp, 1) == old
        assert k.pmd_none(k.pmdp_get(pmdp))
        spin_unlock(ptl)
    finally:
        destroy_args(args)
