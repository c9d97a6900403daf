"""mm/debug_vm_pgtable.c, ported to the emulated kernels: the architecture page-table helpers
must "conform to a common semantics across platforms" (Documentation/mm/arch_pgtable_helpers.rst).

Each ``*_tests`` function is the kernel function of the same name, written against a booted
kernel ``k`` and the legacy API only.  ``WARN_ON(expr)`` is ``assert not (expr), "<test>:
<expr>"``.  Where the kernel compiles a test out (``#ifdef CONFIG_...``, ``__HAVE_ARCH_...``)
or returns early (``!has_transparent_hugepage()``, no page), the test raises :class:`Skip`
with the kernel's condition, and pytest reports it as skipped.  Nothing here names an
architecture: the guards are the kernel's own, read from the kernel object (``k.
TRANSPARENT_HUGEPAGE``, ``k.PAGETABLE_PMD_FOLDED``, ``k.mm_pud_folded(mm)``...).

Two versions of the file are followed (``args.version``): A = torvalds/linux 6.6-6.14 and
B = linux-next (see tests/debug_vm_pgtable_args.py).  Where they differ, a test takes the
version as a parameter; B's extra ``pmd_leaf`` check after ``pmd_mkinvalid`` is run in
both.  B's ``leafops`` checks are written with the
``swapops`` API they replace.

The page-table modifying tests run under the locks the kernel driver takes:
``pte_offset_map_lock`` for the pte tests, ``pmd_lock`` for the pmd tests, ``pud_lock`` for
the pud tests and ``mm->page_table_lock`` for the p4d and pgd tests; ``test_debug_vm_pgtable``
runs the whole driver in the kernel's order.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

import legacy
from legacy.generic import VM_ACCESS_FLAGS, GenericKernel
from legacy.mm_types import spin_lock, spin_unlock, spinlock_t
from legacy.types import p4d_t, pgd_t, pmd_t, pte_t, pud_t
from tests.debug_vm_pgtable_args import (
    RANDOM_NZVALUE,
    PgtableDebugArgs,
    Skip,
    destroy_args,
    held_locks,
    init_args,
    random_orvalue,
    skip,
)

VM_FLAGS_START = 0  # VM_NONE
VM_FLAGS_END = 0xF  # VM_SHARED | VM_EXEC | VM_WRITE | VM_READ

Check = Callable[[PgtableDebugArgs], None]


def _require_thp(k: GenericKernel) -> None:
    if not k.TRANSPARENT_HUGEPAGE:
        raise skip("!CONFIG_TRANSPARENT_HUGEPAGE")
    if not k.has_transparent_hugepage():
        raise skip("!has_transparent_hugepage()")


def _require_pud_thp(k: GenericKernel) -> None:
    if not k.TRANSPARENT_HUGEPAGE:
        raise skip("!CONFIG_TRANSPARENT_HUGEPAGE")
    if not k.HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD:
        raise skip("!CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD")
    if not k.has_transparent_pud_hugepage():
        raise skip("!has_transparent_pud_hugepage()")


def _require_swp_entry(k: GenericKernel) -> None:
    if not k.SWP_ENTRY_EMULATED:
        raise skip("the emulator does not implement this architecture's __swp_entry() format")


def _memset(size: int, byte: int) -> int:
    """``memset(&x, byte, size)`` read back as the value."""
    return int.from_bytes(bytes([byte]) * size, "little")


def _write_once(k: GenericKernel, ptr: object, val: int) -> None:
    """``WRITE_ONCE(*ptr, val)``: a plain store of the entry."""
    pa, size = ptr.pa, ptr.size
    k.mem.write(pa, size, val)


# -- basic value tests (all 16 protection_map indices) ------------------------------------


def pte_basic_tests(args: PgtableDebugArgs, idx: int) -> None:
    k = args.k
    prot = k.vm_get_page_prot(idx)
    pte = k.pfn_pte(args.fixed_pte_pfn, prot)
    vma = args.the_vma
    t = f"pte_basic_tests({idx:#x})"

    # This test needs to be executed after the given page table entry is created with
    # pfn_pte() to make sure that vm_get_page_prot(idx) does not have the dirty bit enabled
    # from the beginning. This is important for platforms like arm64 where (!PTE_RDONLY)
    # indicate dirty bit being set.
    assert not k.pte_dirty(k.pte_wrprotect(pte)), f"{t}: pte_dirty(pte_wrprotect(pte))"

    assert not (not k.pte_same(pte, pte)), f"{t}: !pte_same(pte, pte)"
    assert not (not k.pte_young(k.pte_mkyoung(k.pte_mkold(pte)))), (
        f"{t}: !pte_young(pte_mkyoung(pte_mkold(pte)))")
    assert not (not k.pte_dirty(k.pte_mkdirty(k.pte_mkclean(pte)))), (
        f"{t}: !pte_dirty(pte_mkdirty(pte_mkclean(pte)))")
    assert not (not k.pte_write(k.pte_mkwrite(k.pte_wrprotect(pte), vma))), (
        f"{t}: !pte_write(pte_mkwrite(pte_wrprotect(pte), vma))")
    assert not k.pte_young(k.pte_mkold(k.pte_mkyoung(pte))), (
        f"{t}: pte_young(pte_mkold(pte_mkyoung(pte)))")
    assert not k.pte_dirty(k.pte_mkclean(k.pte_mkdirty(pte))), (
        f"{t}: pte_dirty(pte_mkclean(pte_mkdirty(pte)))")
    assert not k.pte_write(k.pte_wrprotect(k.pte_mkwrite(pte, vma))), (
        f"{t}: pte_write(pte_wrprotect(pte_mkwrite(pte, vma)))")
    assert not k.pte_dirty(k.pte_wrprotect(k.pte_mkclean(pte))), (
        f"{t}: pte_dirty(pte_wrprotect(pte_mkclean(pte)))")
    assert not (not k.pte_dirty(k.pte_wrprotect(k.pte_mkdirty(pte)))), (
        f"{t}: !pte_dirty(pte_wrprotect(pte_mkdirty(pte)))")

    if args.version == "A":
        return
    # B (added with arm64's "avoid always making PTE dirty in pte_mkwrite()", 2025)
    assert not (not k.pte_dirty(k.pte_mkwrite_novma(k.pte_mkdirty(pte)))), (
        f"{t}: !pte_dirty(pte_mkwrite_novma(pte_mkdirty(pte)))")
    assert not k.pte_dirty(k.pte_mkwrite_novma(k.pte_mkclean(pte))), (
        f"{t}: pte_dirty(pte_mkwrite_novma(pte_mkclean(pte)))")
    assert not (not k.pte_write(k.pte_mkdirty(k.pte_mkwrite_novma(pte)))), (
        f"{t}: !pte_write(pte_mkdirty(pte_mkwrite_novma(pte)))")
    assert not (not k.pte_write(k.pte_mkwrite_novma(k.pte_wrprotect(pte)))), (
        f"{t}: !pte_write(pte_mkwrite_novma(pte_wrprotect(pte)))")
    assert not k.pte_write(k.pte_wrprotect(k.pte_mkwrite_novma(pte))), (
        f"{t}: pte_write(pte_wrprotect(pte_mkwrite_novma(pte)))")


def pmd_basic_tests(args: PgtableDebugArgs, idx: int) -> None:
    k = args.k
    _require_thp(k)
    prot = k.vm_get_page_prot(idx)
    pmd = k.pfn_pmd(args.fixed_pmd_pfn, prot)
    vma = args.the_vma
    t = f"pmd_basic_tests({idx:#x})"

    assert not k.pmd_dirty(k.pmd_wrprotect(pmd)), f"{t}: pmd_dirty(pmd_wrprotect(pmd))"

    assert not (not k.pmd_same(pmd, pmd)), f"{t}: !pmd_same(pmd, pmd)"
    assert not (not k.pmd_young(k.pmd_mkyoung(k.pmd_mkold(pmd)))), (
        f"{t}: !pmd_young(pmd_mkyoung(pmd_mkold(pmd)))")
    assert not (not k.pmd_dirty(k.pmd_mkdirty(k.pmd_mkclean(pmd)))), (
        f"{t}: !pmd_dirty(pmd_mkdirty(pmd_mkclean(pmd)))")
    assert not (not k.pmd_write(k.pmd_mkwrite(k.pmd_wrprotect(pmd), vma))), (
        f"{t}: !pmd_write(pmd_mkwrite(pmd_wrprotect(pmd), vma))")
    assert not k.pmd_young(k.pmd_mkold(k.pmd_mkyoung(pmd))), (
        f"{t}: pmd_young(pmd_mkold(pmd_mkyoung(pmd)))")
    assert not k.pmd_dirty(k.pmd_mkclean(k.pmd_mkdirty(pmd))), (
        f"{t}: pmd_dirty(pmd_mkclean(pmd_mkdirty(pmd)))")
    assert not k.pmd_write(k.pmd_wrprotect(k.pmd_mkwrite(pmd, vma))), (
        f"{t}: pmd_write(pmd_wrprotect(pmd_mkwrite(pmd, vma)))")
    assert not k.pmd_dirty(k.pmd_wrprotect(k.pmd_mkclean(pmd))), (
        f"{t}: pmd_dirty(pmd_wrprotect(pmd_mkclean(pmd)))")
    assert not (not k.pmd_dirty(k.pmd_wrprotect(k.pmd_mkdirty(pmd)))), (
        f"{t}: !pmd_dirty(pmd_wrprotect(pmd_mkdirty(pmd)))")

    if args.version == "B":
        assert not (not k.pmd_dirty(k.pmd_mkwrite_novma(k.pmd_mkdirty(pmd)))), (
            f"{t}: !pmd_dirty(pmd_mkwrite_novma(pmd_mkdirty(pmd)))")
        assert not k.pmd_dirty(k.pmd_mkwrite_novma(k.pmd_mkclean(pmd))), (
            f"{t}: pmd_dirty(pmd_mkwrite_novma(pmd_mkclean(pmd)))")
        assert not (not k.pmd_write(k.pmd_mkdirty(k.pmd_mkwrite_novma(pmd)))), (
            f"{t}: !pmd_write(pmd_mkdirty(pmd_mkwrite_novma(pmd)))")
        assert not (not k.pmd_write(k.pmd_mkwrite_novma(k.pmd_wrprotect(pmd)))), (
            f"{t}: !pmd_write(pmd_mkwrite_novma(pmd_wrprotect(pmd)))")
        assert not k.pmd_write(k.pmd_wrprotect(k.pmd_mkwrite_novma(pmd))), (
            f"{t}: pmd_write(pmd_wrprotect(pmd_mkwrite_novma(pmd)))")

    # A huge page does not point to next level page table entry. Hence this must qualify as
    # pmd_bad().
    assert not (not k.pmd_bad(k.pmd_mkhuge(pmd))), f"{t}: !pmd_bad(pmd_mkhuge(pmd))"


def pud_basic_tests(args: PgtableDebugArgs, idx: int) -> None:
    k = args.k
    _require_pud_thp(k)
    prot = k.vm_get_page_prot(idx)
    pud = k.pfn_pud(args.fixed_pud_pfn, prot)
    t = f"pud_basic_tests({idx:#x})"

    assert not k.pud_dirty(k.pud_wrprotect(pud)), f"{t}: pud_dirty(pud_wrprotect(pud))"

    assert not (not k.pud_same(pud, pud)), f"{t}: !pud_same(pud, pud)"
    assert not (not k.pud_young(k.pud_mkyoung(k.pud_mkold(pud)))), (
        f"{t}: !pud_young(pud_mkyoung(pud_mkold(pud)))")
    assert not (not k.pud_dirty(k.pud_mkdirty(k.pud_mkclean(pud)))), (
        f"{t}: !pud_dirty(pud_mkdirty(pud_mkclean(pud)))")
    assert not k.pud_dirty(k.pud_mkclean(k.pud_mkdirty(pud))), (
        f"{t}: pud_dirty(pud_mkclean(pud_mkdirty(pud)))")
    assert not (not k.pud_write(k.pud_mkwrite(k.pud_wrprotect(pud)))), (
        f"{t}: !pud_write(pud_mkwrite(pud_wrprotect(pud)))")
    assert not k.pud_write(k.pud_wrprotect(k.pud_mkwrite(pud))), (
        f"{t}: pud_write(pud_wrprotect(pud_mkwrite(pud)))")
    assert not k.pud_young(k.pud_mkold(k.pud_mkyoung(pud))), (
        f"{t}: pud_young(pud_mkold(pud_mkyoung(pud)))")
    assert not k.pud_dirty(k.pud_wrprotect(k.pud_mkclean(pud))), (
        f"{t}: pud_dirty(pud_wrprotect(pud_mkclean(pud)))")
    assert not (not k.pud_dirty(k.pud_wrprotect(k.pud_mkdirty(pud)))), (
        f"{t}: !pud_dirty(pud_wrprotect(pud_mkdirty(pud)))")

    if k.mm_pmd_folded(args.the_mm):
        return

    # A huge page does not point to next level page table entry. Hence this must qualify as
    # pud_bad().
    assert not (not k.pud_bad(k.pud_mkhuge(pud))), f"{t}: !pud_bad(pud_mkhuge(pud))"


def p4d_basic_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    p4d = p4d_t(_memset(k.SIZEOF_P4D, RANDOM_NZVALUE))
    assert not (not k.p4d_same(p4d, p4d)), "p4d_basic_tests: !p4d_same(p4d, p4d)"


def pgd_basic_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    pgd = pgd_t(_memset(k.SIZEOF_PGD, RANDOM_NZVALUE))
    assert not (not k.pgd_same(pgd, pgd)), "pgd_basic_tests: !pgd_same(pgd, pgd)"


# -- advanced (in-table) tests -----------------------------------------------------------


def _page(args: PgtableDebugArgs, pfn: int, which: str) -> int:
    """``page = (pfn != ULONG_MAX) ? pfn_to_page(pfn) : NULL; if (!page) return;``"""
    if pfn == args.ULONG_MAX:
        raise skip(f"no page: args->{which} == ULONG_MAX")
    return pfn


def pte_advanced_tests(args: PgtableDebugArgs) -> None:
    # Architectures optimize set_pte_at by avoiding TLB flush.  This requires set_pte_at to be
    # not used to update an existing pte entry. Clear pte before we do set_pte_at.
    k = args.k
    _page(args, args.pte_pfn, "pte_pfn")
    assert args.ptep is not None, "pte_advanced_tests: WARN_ON(!args->ptep)"
    mm, vma, vaddr, ptep = args.the_mm, args.the_vma, args.vaddr, args.ptep
    t = "pte_advanced_tests"

    pte = k.pfn_pte(args.pte_pfn, args.page_prot)
    k.set_pte_at(mm, vaddr, ptep, pte)
    k.ptep_set_wrprotect(mm, vaddr, ptep)
    pte = k.ptep_get(ptep)
    assert not k.pte_write(pte), f"{t}: pte_write(pte) after ptep_set_wrprotect"
    k.ptep_get_and_clear(mm, vaddr, ptep)
    pte = k.ptep_get(ptep)
    assert not (not k.pte_none(pte)), f"{t}: !pte_none(pte) after ptep_get_and_clear"

    pte = k.pfn_pte(args.pte_pfn, args.page_prot)
    pte = k.pte_wrprotect(pte)
    pte = k.pte_mkclean(pte)
    k.set_pte_at(mm, vaddr, ptep, pte)
    pte = k.pte_mkwrite(pte, vma)
    pte = k.pte_mkdirty(pte)
    k.ptep_set_access_flags(vma, vaddr, ptep, pte, 1)
    pte = k.ptep_get(ptep)
    assert not (not (k.pte_write(pte) and k.pte_dirty(pte))), (
        f"{t}: !(pte_write(pte) && pte_dirty(pte)) after ptep_set_access_flags")
    k.ptep_get_and_clear_full(mm, vaddr, ptep, 1)
    pte = k.ptep_get(ptep)
    assert not (not k.pte_none(pte)), f"{t}: !pte_none(pte) after ptep_get_and_clear_full"

    pte = k.pfn_pte(args.pte_pfn, args.page_prot)
    pte = k.pte_mkyoung(pte)
    k.set_pte_at(mm, vaddr, ptep, pte)
    k.ptep_test_and_clear_young(vma, vaddr, ptep)
    pte = k.ptep_get(ptep)
    assert not k.pte_young(pte), f"{t}: pte_young(pte) after ptep_test_and_clear_young"

    k.ptep_get_and_clear_full(mm, vaddr, ptep, 1)


def pmd_advanced_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    _require_thp(k)
    _page(args, args.pmd_pfn, "pmd_pfn")
    mm, vma, pmdp = args.the_mm, args.the_vma, args.pmdp
    assert pmdp is not None and args.start_ptep is not None
    t = "pmd_advanced_tests"
    # Align the address wrt HPAGE_PMD_SIZE (HPAGE_PMD_SHIFT is PMD_SHIFT)
    vaddr = args.vaddr & k.PMD_MASK

    k.pgtable_trans_huge_deposit(mm, pmdp, args.start_ptep)

    pmd = k.pfn_pmd(args.pmd_pfn, args.page_prot)
    k.set_pmd_at(mm, vaddr, pmdp, pmd)
    k.pmdp_set_wrprotect(mm, vaddr, pmdp)
    pmd = k.pmdp_get(pmdp)
    assert not k.pmd_write(pmd), f"{t}: pmd_write(pmd) after pmdp_set_wrprotect"
    k.pmdp_huge_get_and_clear(mm, vaddr, pmdp)
    pmd = k.pmdp_get(pmdp)
    assert not (not k.pmd_none(pmd)), f"{t}: !pmd_none(pmd) after pmdp_huge_get_and_clear"

    pmd = k.pfn_pmd(args.pmd_pfn, args.page_prot)
    pmd = k.pmd_wrprotect(pmd)
    pmd = k.pmd_mkclean(pmd)
    k.set_pmd_at(mm, vaddr, pmdp, pmd)
    pmd = k.pmd_mkwrite(pmd, vma)
    pmd = k.pmd_mkdirty(pmd)
    k.pmdp_set_access_flags(vma, vaddr, pmdp, pmd, 1)
    pmd = k.pmdp_get(pmdp)
    assert not (not (k.pmd_write(pmd) and k.pmd_dirty(pmd))), (
        f"{t}: !(pmd_write(pmd) && pmd_dirty(pmd)) after pmdp_set_access_flags")
    k.pmdp_huge_get_and_clear_full(vma, vaddr, pmdp, 1)
    pmd = k.pmdp_get(pmdp)
    assert not (not k.pmd_none(pmd)), f"{t}: !pmd_none(pmd) after pmdp_huge_get_and_clear_full"

    pmd = k.pmd_mkhuge(k.pfn_pmd(args.pmd_pfn, args.page_prot))
    pmd = k.pmd_mkyoung(pmd)
    k.set_pmd_at(mm, vaddr, pmdp, pmd)
    k.pmdp_test_and_clear_young(vma, vaddr, pmdp)
    pmd = k.pmdp_get(pmdp)
    assert not k.pmd_young(pmd), f"{t}: pmd_young(pmd) after pmdp_test_and_clear_young"

    # Clear the pte entries
    k.pmdp_huge_get_and_clear(mm, vaddr, pmdp)
    withdrawn = k.pgtable_trans_huge_withdraw(mm, pmdp)
    assert withdrawn == args.start_ptep, f"{t}: withdrew {withdrawn}, deposited {args.start_ptep}"


def pud_advanced_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    _require_pud_thp(k)
    _page(args, args.pud_pfn, "pud_pfn")
    mm, vma, pudp = args.the_mm, args.the_vma, args.pudp
    assert pudp is not None
    t = "pud_advanced_tests"
    # Align the address wrt HPAGE_PUD_SIZE (HPAGE_PUD_SHIFT is PUD_SHIFT)
    vaddr = args.vaddr & k.PUD_MASK

    def mkdevmap(pud: pud_t) -> pud_t:
        # A: "Some architectures have debug checks to make sure huge pud mapping are only
        # found with devmap entries. For now test with only devmap entries."  B: no devmap.
        if args.version == "A" and k.ARCH_HAS_PTE_DEVMAP:
            return k.pud_mkdevmap(pud)
        return pud

    pud = mkdevmap(k.pfn_pud(args.pud_pfn, args.page_prot))
    k.set_pud_at(mm, vaddr, pudp, pud)
    k.pudp_set_wrprotect(mm, vaddr, pudp)
    pud = k.pudp_get(pudp)
    assert not k.pud_write(pud), f"{t}: pud_write(pud) after pudp_set_wrprotect"

    if not k.PAGETABLE_PMD_FOLDED:
        k.pudp_huge_get_and_clear(mm, vaddr, pudp)
        pud = k.pudp_get(pudp)
        assert not (not k.pud_none(pud)), f"{t}: !pud_none(pud) after pudp_huge_get_and_clear"

    pud = mkdevmap(k.pfn_pud(args.pud_pfn, args.page_prot))
    pud = k.pud_wrprotect(pud)
    pud = k.pud_mkclean(pud)
    k.set_pud_at(mm, vaddr, pudp, pud)
    pud = k.pud_mkwrite(pud)
    pud = k.pud_mkdirty(pud)
    k.pudp_set_access_flags(vma, vaddr, pudp, pud, 1)
    pud = k.pudp_get(pudp)
    assert not (not (k.pud_write(pud) and k.pud_dirty(pud))), (
        f"{t}: !(pud_write(pud) && pud_dirty(pud)) after pudp_set_access_flags")

    if not k.PAGETABLE_PMD_FOLDED:
        k.pudp_huge_get_and_clear_full(vma, vaddr, pudp, 1)
        pud = k.pudp_get(pudp)
        assert not (not k.pud_none(pud)), (
            f"{t}: !pud_none(pud) after pudp_huge_get_and_clear_full")

    pud = mkdevmap(k.pfn_pud(args.pud_pfn, args.page_prot))
    pud = k.pud_mkyoung(pud)
    k.set_pud_at(mm, vaddr, pudp, pud)
    k.pudp_test_and_clear_young(vma, vaddr, pudp)
    pud = k.pudp_get(pudp)
    assert not k.pud_young(pud), f"{t}: pud_young(pud) after pudp_test_and_clear_young"

    k.pudp_huge_get_and_clear(mm, vaddr, pudp)


# -- leaf and huge-vmap tests ------------------------------------------------------------


def pmd_leaf_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    _require_thp(k)
    pmd = k.pfn_pmd(args.fixed_pmd_pfn, args.page_prot)
    # PMD based THP is a leaf entry.
    pmd = k.pmd_mkhuge(pmd)
    assert not (not k.pmd_leaf(pmd)), "pmd_leaf_tests: !pmd_leaf(pmd_mkhuge(pmd))"


def pud_leaf_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    _require_pud_thp(k)
    pud = k.pfn_pud(args.fixed_pud_pfn, args.page_prot)
    # PUD based THP is a leaf entry.
    pud = k.pud_mkhuge(pud)
    assert not (not k.pud_leaf(pud)), "pud_leaf_tests: !pud_leaf(pud_mkhuge(pud))"


def pmd_huge_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if not k.HAVE_ARCH_HUGE_VMAP:
        raise skip("!CONFIG_HAVE_ARCH_HUGE_VMAP")
    if not k.arch_vmap_pmd_supported(args.page_prot) or args.fixed_alignment < k.PMD_SIZE:
        raise skip("!arch_vmap_pmd_supported(page_prot) || fixed_alignment < PMD_SIZE")
    pmdp = args.pmdp
    assert pmdp is not None
    t = "pmd_huge_tests"
    # X86 defined pmd_set_huge() verifies that the given PMD is not a populated non-leaf entry.
    _write_once(k, pmdp, 0)
    assert not (not k.pmd_set_huge(pmdp, args.fixed_pmd_pfn << k.PAGE_SHIFT, args.page_prot)), (
        f"{t}: !pmd_set_huge(pmdp, __pfn_to_phys(fixed_pmd_pfn), page_prot)")
    assert not (not k.pmd_clear_huge(pmdp)), f"{t}: !pmd_clear_huge(pmdp)"
    pmd = k.pmdp_get(pmdp)
    assert not (not k.pmd_none(pmd)), f"{t}: !pmd_none(pmd)"


def pud_huge_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if not k.HAVE_ARCH_HUGE_VMAP:
        raise skip("!CONFIG_HAVE_ARCH_HUGE_VMAP")
    if not k.arch_vmap_pud_supported(args.page_prot) or args.fixed_alignment < k.PUD_SIZE:
        raise skip("!arch_vmap_pud_supported(page_prot) || fixed_alignment < PUD_SIZE")
    pudp = args.pudp
    assert pudp is not None
    t = "pud_huge_tests"
    # X86 defined pud_set_huge() verifies that the given PUD is not a populated non-leaf entry.
    _write_once(k, pudp, 0)
    assert not (not k.pud_set_huge(pudp, args.fixed_pud_pfn << k.PAGE_SHIFT, args.page_prot)), (
        f"{t}: !pud_set_huge(pudp, __pfn_to_phys(fixed_pud_pfn), page_prot)")
    assert not (not k.pud_clear_huge(pudp)), f"{t}: !pud_clear_huge(pudp)"
    pud = k.pudp_get(pudp)
    assert not (not k.pud_none(pud)), f"{t}: !pud_none(pud)"


# -- clear and populate tests ------------------------------------------------------------


def pte_clear_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    _page(args, args.pte_pfn, "pte_pfn")
    pte = k.pfn_pte(args.pte_pfn, args.page_prot)
    assert args.ptep is not None, "pte_clear_tests: WARN_ON(!args->ptep)"
    mm, vaddr, ptep = args.the_mm, args.vaddr, args.ptep
    t = f"pte_clear_tests[{args.version}]"
    if args.version == "A":
        if k.config.family != "riscv":  # #ifndef CONFIG_RISCV
            pte = pte_t(pte | random_orvalue(k))
        k.set_pte_at(mm, vaddr, ptep, pte)
    else:
        k.set_pte_at(mm, vaddr, ptep, pte)
        assert not k.pte_none(pte), f"{t}: pte_none(pte)"
    # barrier()
    k.ptep_clear(mm, vaddr, ptep)
    pte = k.ptep_get(ptep)
    assert not (not k.pte_none(pte)), f"{t}: !pte_none(pte) after ptep_clear"


def pmd_clear_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    pmdp = args.pmdp
    assert pmdp is not None
    t = f"pmd_clear_tests[{args.version}]"
    pmd = k.pmdp_get(pmdp)
    if args.version == "A":
        pmd = pmd_t(pmd | random_orvalue(k))
        _write_once(k, pmdp, pmd)
    else:
        assert not k.pmd_none(pmd), f"{t}: pmd_none(pmd) before pmd_clear"
    k.pmd_clear(pmdp)
    pmd = k.pmdp_get(pmdp)
    assert not (not k.pmd_none(pmd)), f"{t}: !pmd_none(pmd) after pmd_clear"


def pmd_populate_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    assert args.pmdp is not None and args.start_ptep is not None
    # This entry points to next level page table page. Hence this must not qualify as
    # pmd_bad().
    k.pmd_populate(args.the_mm, args.pmdp, args.start_ptep)
    pmd = k.pmdp_get(args.pmdp)
    assert not k.pmd_bad(pmd), "pmd_populate_tests: pmd_bad(pmd) after pmd_populate"


def pud_clear_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if k.PAGETABLE_PUD_FOLDED:
        raise skip("__PAGETABLE_PUD_FOLDED")
    pudp = args.pudp
    assert pudp is not None
    pud = k.pudp_get(pudp)
    if k.mm_pmd_folded(args.the_mm):
        raise skip("mm_pmd_folded(mm)")
    t = f"pud_clear_tests[{args.version}]"
    if args.version == "A":
        pud = pud_t(pud | random_orvalue(k))
        _write_once(k, pudp, pud)
    else:
        assert not k.pud_none(pud), f"{t}: pud_none(pud) before pud_clear"
    k.pud_clear(pudp)
    pud = k.pudp_get(pudp)
    assert not (not k.pud_none(pud)), f"{t}: !pud_none(pud) after pud_clear"


def pud_populate_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if k.PAGETABLE_PUD_FOLDED:
        raise skip("__PAGETABLE_PUD_FOLDED")
    if k.mm_pmd_folded(args.the_mm):
        raise skip("mm_pmd_folded(mm)")
    assert args.pudp is not None and args.start_pmdp is not None
    # This entry points to next level page table page. Hence this must not qualify as
    # pud_bad().
    k.pud_populate(args.the_mm, args.pudp, args.start_pmdp)
    pud = k.pudp_get(args.pudp)
    assert not k.pud_bad(pud), "pud_populate_tests: pud_bad(pud) after pud_populate"


def p4d_clear_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if k.PAGETABLE_P4D_FOLDED:
        raise skip("__PAGETABLE_P4D_FOLDED")
    p4dp = args.p4dp
    assert p4dp is not None
    p4d = k.p4dp_get(p4dp)
    if k.mm_pud_folded(args.the_mm):
        raise skip("mm_pud_folded(mm)")
    t = f"p4d_clear_tests[{args.version}]"
    if args.version == "A":
        p4d = p4d_t(p4d | random_orvalue(k))
        _write_once(k, p4dp, p4d)
    else:
        assert not k.p4d_none(p4d), f"{t}: p4d_none(p4d) before p4d_clear"
    k.p4d_clear(p4dp)
    p4d = k.p4dp_get(p4dp)
    assert not (not k.p4d_none(p4d)), f"{t}: !p4d_none(p4d) after p4d_clear"


def p4d_populate_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if k.PAGETABLE_P4D_FOLDED:
        raise skip("__PAGETABLE_P4D_FOLDED")
    if k.mm_pud_folded(args.the_mm):
        raise skip("mm_pud_folded(mm)")
    assert args.pudp is not None and args.p4dp is not None and args.start_pudp is not None
    # This entry points to next level page table page. Hence this must not qualify as
    # p4d_bad().
    k.pud_clear(args.pudp)
    k.p4d_clear(args.p4dp)
    k.p4d_populate(args.the_mm, args.p4dp, args.start_pudp)
    p4d = k.p4dp_get(args.p4dp)
    assert not k.p4d_bad(p4d), "p4d_populate_tests: p4d_bad(p4d) after p4d_populate"


def pgd_clear_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if k.PAGETABLE_P4D_FOLDED:
        raise skip("__PAGETABLE_P4D_FOLDED")
    pgdp = args.pgdp
    assert pgdp is not None
    pgd = k.pgdp_get(pgdp)
    if k.mm_p4d_folded(args.the_mm):
        raise skip("mm_p4d_folded(mm)")
    t = f"pgd_clear_tests[{args.version}]"
    if args.version == "A":
        pgd = pgd_t(pgd | random_orvalue(k))
        _write_once(k, pgdp, pgd)
    else:
        assert not k.pgd_none(pgd), f"{t}: pgd_none(pgd) before pgd_clear"
    k.pgd_clear(pgdp)
    pgd = k.pgdp_get(pgdp)
    assert not (not k.pgd_none(pgd)), f"{t}: !pgd_none(pgd) after pgd_clear"


def pgd_populate_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if k.PAGETABLE_P4D_FOLDED:
        raise skip("__PAGETABLE_P4D_FOLDED")
    if k.mm_p4d_folded(args.the_mm):
        raise skip("mm_p4d_folded(mm)")
    assert args.p4dp is not None and args.pgdp is not None and args.start_p4dp is not None
    # This entry points to next level page table page. Hence this must not qualify as
    # pgd_bad().
    k.p4d_clear(args.p4dp)
    k.pgd_clear(args.pgdp)
    k.pgd_populate(args.the_mm, args.pgdp, args.start_p4dp)
    pgd = k.pgdp_get(args.pgdp)
    assert not k.pgd_bad(pgd), "pgd_populate_tests: pgd_bad(pgd) after pgd_populate"


# -- single-bit tests --------------------------------------------------------------------


def pte_special_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    pte = k.pfn_pte(args.fixed_pte_pfn, args.page_prot)
    if not k.ARCH_HAS_PTE_SPECIAL:
        raise skip("!IS_ENABLED(CONFIG_ARCH_HAS_PTE_SPECIAL)")
    assert not (not k.pte_special(k.pte_mkspecial(pte))), (
        "pte_special_tests: !pte_special(pte_mkspecial(pte))")


def pte_protnone_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    pte = k.pfn_pte(args.fixed_pte_pfn, args.page_prot_none)
    if not k.NUMA_BALANCING:
        raise skip("!IS_ENABLED(CONFIG_NUMA_BALANCING)")
    assert not (not k.pte_protnone(pte)), "pte_protnone_tests: !pte_protnone(pte)"
    assert not (not k.pte_present(pte)), "pte_protnone_tests: !pte_present(pte)"


def pmd_protnone_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if not k.TRANSPARENT_HUGEPAGE:
        raise skip("!CONFIG_TRANSPARENT_HUGEPAGE")
    if not k.NUMA_BALANCING:
        raise skip("!IS_ENABLED(CONFIG_NUMA_BALANCING)")
    if not k.has_transparent_hugepage():
        raise skip("!has_transparent_hugepage()")
    pmd = k.pmd_mkhuge(k.pfn_pmd(args.fixed_pmd_pfn, args.page_prot_none))
    assert not (not k.pmd_protnone(pmd)), "pmd_protnone_tests: !pmd_protnone(pmd)"
    assert not (not k.pmd_present(pmd)), "pmd_protnone_tests: !pmd_present(pmd)"


def pte_devmap_tests(args: PgtableDebugArgs) -> None:
    """A only (devmap is gone from B)."""
    k = args.k
    if not k.ARCH_HAS_PTE_DEVMAP:
        raise skip("!CONFIG_ARCH_HAS_PTE_DEVMAP")
    pte = k.pfn_pte(args.fixed_pte_pfn, args.page_prot)
    assert not (not k.pte_devmap(k.pte_mkdevmap(pte))), (
        "pte_devmap_tests: !pte_devmap(pte_mkdevmap(pte))")


def pmd_devmap_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if not k.ARCH_HAS_PTE_DEVMAP:
        raise skip("!CONFIG_ARCH_HAS_PTE_DEVMAP")
    _require_thp(k)
    pmd = k.pfn_pmd(args.fixed_pmd_pfn, args.page_prot)
    assert not (not k.pmd_devmap(k.pmd_mkdevmap(pmd))), (
        "pmd_devmap_tests: !pmd_devmap(pmd_mkdevmap(pmd))")


def pud_devmap_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if not k.ARCH_HAS_PTE_DEVMAP:
        raise skip("!CONFIG_ARCH_HAS_PTE_DEVMAP")
    _require_pud_thp(k)
    pud = k.pfn_pud(args.fixed_pud_pfn, args.page_prot)
    assert not (not k.pud_devmap(k.pud_mkdevmap(pud))), (
        "pud_devmap_tests: !pud_devmap(pud_mkdevmap(pud))")


def pte_soft_dirty_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    pte = k.pfn_pte(args.fixed_pte_pfn, args.page_prot)
    if not k.MEM_SOFT_DIRTY:
        raise skip("!IS_ENABLED(CONFIG_MEM_SOFT_DIRTY)")
    assert not (not k.pte_soft_dirty(k.pte_mksoft_dirty(pte))), (
        "pte_soft_dirty_tests: !pte_soft_dirty(pte_mksoft_dirty(pte))")
    assert not k.pte_soft_dirty(k.pte_clear_soft_dirty(pte)), (
        "pte_soft_dirty_tests: pte_soft_dirty(pte_clear_soft_dirty(pte))")


def pmd_soft_dirty_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if not k.TRANSPARENT_HUGEPAGE:
        raise skip("!CONFIG_TRANSPARENT_HUGEPAGE")
    if not k.MEM_SOFT_DIRTY:
        raise skip("!IS_ENABLED(CONFIG_MEM_SOFT_DIRTY)")
    if not k.has_transparent_hugepage():
        raise skip("!has_transparent_hugepage()")
    pmd = k.pfn_pmd(args.fixed_pmd_pfn, args.page_prot)
    assert not (not k.pmd_soft_dirty(k.pmd_mksoft_dirty(pmd))), (
        "pmd_soft_dirty_tests: !pmd_soft_dirty(pmd_mksoft_dirty(pmd))")
    assert not k.pmd_soft_dirty(k.pmd_clear_soft_dirty(pmd)), (
        "pmd_soft_dirty_tests: pmd_soft_dirty(pmd_clear_soft_dirty(pmd))")


def pte_swap_soft_dirty_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if not k.MEM_SOFT_DIRTY:
        raise skip("!IS_ENABLED(CONFIG_MEM_SOFT_DIRTY)")
    t = f"pte_swap_soft_dirty_tests[{args.version}]"
    if args.version == "A":
        pte = k.pfn_pte(args.fixed_pte_pfn, args.page_prot)
    else:
        _require_swp_entry(k)
        pte = k.swp_entry_to_pte(args.swp_entry)
        assert not (not k.is_swap_pte(pte)), f"{t}: !leafent_is_swap(leafent_from_pte(pte))"
    assert not (not k.pte_swp_soft_dirty(k.pte_swp_mksoft_dirty(pte))), (
        f"{t}: !pte_swp_soft_dirty(pte_swp_mksoft_dirty(pte))")
    assert not k.pte_swp_soft_dirty(k.pte_swp_clear_soft_dirty(pte)), (
        f"{t}: pte_swp_soft_dirty(pte_swp_clear_soft_dirty(pte))")


def pmd_swap_soft_dirty_tests(args: PgtableDebugArgs) -> None:
    """A; B renames it ``pmd_leaf_soft_dirty_tests`` and starts from a migration entry."""
    k = args.k
    if not k.TRANSPARENT_HUGEPAGE:
        raise skip("!CONFIG_TRANSPARENT_HUGEPAGE")
    if not k.MEM_SOFT_DIRTY or not k.ARCH_ENABLE_THP_MIGRATION:
        raise skip("!IS_ENABLED(CONFIG_MEM_SOFT_DIRTY) || "
                   "!IS_ENABLED(CONFIG_ARCH_ENABLE_THP_MIGRATION)")
    if not k.has_transparent_hugepage():
        raise skip("!has_transparent_hugepage()")
    t = f"pmd_swap_soft_dirty_tests[{args.version}]"
    if args.version == "A":
        pmd = k.pfn_pmd(args.fixed_pmd_pfn, args.page_prot)
    else:
        _require_swp_entry(k)
        pmd = k.swp_entry_to_pmd(args.leaf_entry)
        assert not (not k.is_swap_pmd(pmd)), f"{t}: !pmd_is_huge(pmd)"
        assert not (not k.is_pmd_migration_entry(pmd)), f"{t}: !pmd_is_valid_leafent(pmd)"
    assert not (not k.pmd_swp_soft_dirty(k.pmd_swp_mksoft_dirty(pmd))), (
        f"{t}: !pmd_swp_soft_dirty(pmd_swp_mksoft_dirty(pmd))")
    assert not k.pmd_swp_soft_dirty(k.pmd_swp_clear_soft_dirty(pmd)), (
        f"{t}: pmd_swp_soft_dirty(pmd_swp_clear_soft_dirty(pmd))")


# -- swap and migration entries ----------------------------------------------------------


def pte_swap_exclusive_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    _require_swp_entry(k)
    t = f"pte_swap_exclusive_tests[{args.version}]"
    if args.version == "A":
        # See generic_max_swapfile_size(): probe the maximum offset
        max_swap_offset = k.swp_offset(
            k.pte_to_swp_entry(k.swp_entry_to_pte(k.swp_entry(0, args.ULONG_MAX)))
        )
        # Create a swp entry with all possible bits set
        entry = k.swp_entry((1 << 5) - 1, max_swap_offset)  # (1 << MAX_SWAPFILES_SHIFT) - 1
    else:
        entry = args.swp_entry

    pte = k.swp_entry_to_pte(entry)
    assert not k.pte_swp_exclusive(pte), f"{t}: pte_swp_exclusive(pte)"
    assert not (not k.is_swap_pte(pte)), f"{t}: !is_swap_pte(pte)"
    entry2 = k.pte_to_swp_entry(pte)
    assert entry == entry2, f"{t}: memcmp(&entry, &entry2) ({entry:#x} != {entry2:#x})"

    pte = k.pte_swp_mkexclusive(pte)
    assert not (not k.pte_swp_exclusive(pte)), f"{t}: !pte_swp_exclusive(pte_swp_mkexclusive)"
    assert not (not k.is_swap_pte(pte)), f"{t}: !is_swap_pte(pte_swp_mkexclusive(pte))"
    assert not k.pte_swp_soft_dirty(pte), f"{t}: pte_swp_soft_dirty(pte_swp_mkexclusive(pte))"
    entry2 = k.pte_to_swp_entry(pte)
    assert entry == entry2, f"{t}: memcmp(&entry, &entry2) after pte_swp_mkexclusive"

    pte = k.pte_swp_clear_exclusive(pte)
    assert not k.pte_swp_exclusive(pte), f"{t}: pte_swp_exclusive(pte_swp_clear_exclusive)"
    assert not (not k.is_swap_pte(pte)), f"{t}: !is_swap_pte(pte_swp_clear_exclusive(pte))"
    entry2 = k.pte_to_swp_entry(pte)
    assert entry == entry2, f"{t}: memcmp(&entry, &entry2) after pte_swp_clear_exclusive"


def pte_swap_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    _require_swp_entry(k)
    t = f"pte_swap_tests[{args.version}]"
    if args.version == "A":
        pte = k.pfn_pte(args.fixed_pte_pfn, args.page_prot)
        swp = k._pte_to_swp_entry(pte)
        pte = k._swp_entry_to_pte(swp)
        assert not (args.fixed_pte_pfn != k.pte_pfn(pte)), f"{t}: fixed_pte_pfn != pte_pfn(pte)"
    else:
        pte1 = k.swp_entry_to_pte(args.swp_entry)
        assert not (not k.is_swap_pte(pte1)), f"{t}: !leafent_is_swap(leafent_from_pte(pte1))"
        arch_entry = k._pte_to_swp_entry(pte1)
        pte2 = k._swp_entry_to_pte(arch_entry)
        assert pte1 == pte2, f"{t}: memcmp(&pte1, &pte2)"


def pmd_swap_tests(args: PgtableDebugArgs) -> None:
    """A ``pmd_swap_tests``; B ``pmd_leafent_tests`` (``leafops`` checks with swapops)."""
    k = args.k
    if not k.TRANSPARENT_HUGEPAGE:
        raise skip("!CONFIG_TRANSPARENT_HUGEPAGE")
    if not k.ARCH_ENABLE_THP_MIGRATION:
        raise skip("!CONFIG_ARCH_ENABLE_THP_MIGRATION")
    if not k.has_transparent_hugepage():
        raise skip("!has_transparent_hugepage()")
    _require_swp_entry(k)
    t = f"pmd_swap_tests[{args.version}]"
    if args.version == "A":
        pmd = k.pfn_pmd(args.fixed_pmd_pfn, args.page_prot)
        swp = k._pmd_to_swp_entry(pmd)
        pmd = k._swp_entry_to_pmd(swp)
        assert not (args.fixed_pmd_pfn != k.pmd_pfn(pmd)), f"{t}: fixed_pmd_pfn != pmd_pfn(pmd)"
    else:
        pmd1 = k.swp_entry_to_pmd(args.leaf_entry)
        assert not (not k.is_swap_pmd(pmd1)), f"{t}: !pmd_is_huge(pmd1)"
        assert not (not k.is_pmd_migration_entry(pmd1)), f"{t}: !pmd_is_valid_leafent(pmd1)"
        arch_entry = k._pmd_to_swp_entry(pmd1)
        pmd2 = k._swp_entry_to_pmd(arch_entry)
        assert pmd1 == pmd2, f"{t}: memcmp(&pmd1, &pmd2)"


def swap_migration_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if not k.MIGRATION:
        raise skip("!IS_ENABLED(CONFIG_MIGRATION)")
    # swap_migration_tests() requires a dedicated page as it needs to be locked before
    # creating a migration entry from it.
    page = _page(args, args.pte_pfn, "pte_pfn")
    t = "swap_migration_tests"
    # make_[readable|writable]_migration_entry() expects given page to be locked, otherwise
    # it stumbles upon a BUG_ON().  (__SetPageLocked: no page flags are emulated.)
    swp = k.make_writable_migration_entry(page)
    assert not (not k.is_migration_entry(swp)), f"{t}: !is_migration_entry(writable)"
    assert not (not k.is_writable_migration_entry(swp)), (
        f"{t}: !is_writable_migration_entry(writable)")

    swp = k.make_readable_migration_entry(k.swp_offset(swp))
    assert not (not k.is_migration_entry(swp)), f"{t}: !is_migration_entry(readable)"
    assert not k.is_writable_migration_entry(swp), f"{t}: is_writable_migration_entry(readable)"

    swp = k.make_readable_migration_entry(page)
    assert not (not k.is_migration_entry(swp)), f"{t}: !is_migration_entry(readable(pfn))"
    assert not k.is_writable_migration_entry(swp), (
        f"{t}: is_writable_migration_entry(readable(pfn))")
    # __ClearPageLocked(page)


def hugetlb_basic_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    if not k.HUGETLB_PAGE:
        raise skip("!CONFIG_HUGETLB_PAGE")
    t = f"hugetlb_basic_tests[{args.version}]"
    if args.version == "A":
        # Accessing the page associated with the pfn is safe here, as it was previously
        # derived from a real kernel symbol.
        pte = k.mk_huge_pte(args.fixed_pmd_pfn, args.page_prot)
    else:
        pte = k.pfn_pte(args.fixed_pmd_pfn, args.page_prot)
        pte = k.arch_make_huge_pte(pte, k.PMD_SHIFT, VM_ACCESS_FLAGS)
        if k.ARCH_WANT_GENERAL_HUGETLB:
            assert not (not k.pte_huge(pte)), (
                f"{t}: !pte_huge(arch_make_huge_pte(...))")

    assert not (not k.huge_pte_dirty(k.huge_pte_mkdirty(pte))), (
        f"{t}: !huge_pte_dirty(huge_pte_mkdirty(pte))")
    assert not (not k.huge_pte_write(k.huge_pte_mkwrite(k.huge_pte_wrprotect(pte)))), (
        f"{t}: !huge_pte_write(huge_pte_mkwrite(huge_pte_wrprotect(pte)))")
    assert not k.huge_pte_write(k.huge_pte_wrprotect(k.huge_pte_mkwrite(pte))), (
        f"{t}: huge_pte_write(huge_pte_wrprotect(huge_pte_mkwrite(pte)))")

    if args.version == "A" and k.ARCH_WANT_GENERAL_HUGETLB:
        pte = k.pfn_pte(args.fixed_pmd_pfn, args.page_prot)
        assert not (not k.pte_huge(
            k.arch_make_huge_pte(pte, k.PMD_SHIFT, VM_ACCESS_FLAGS))), (
            f"{t}: !pte_huge(arch_make_huge_pte(pte, PMD_SHIFT, VM_ACCESS_FLAGS))")


# -- THP tests ---------------------------------------------------------------------------


def pmd_thp_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    _require_thp(k)
    t = "pmd_thp_tests"
    # pmd_trans_huge() and pmd_present() must return positive after MMU invalidation with
    # pmd_mkinvalid(). This behavior is an optimization for transparent huge page.
    # pmd_trans_huge() must be true if pmd_page() returns a valid THP to avoid taking the
    # pmd_lock when others walk over non transhuge pmds (i.e. there are no THP allocated).
    # Especially when splitting a THP and removing the present bit from the pmd,
    # pmd_trans_huge() still needs to return true. pmd_present() should be true whenever
    # pmd_trans_huge() returns true.
    pmd = k.pfn_pmd(args.fixed_pmd_pfn, args.page_prot)
    assert not (not k.pmd_trans_huge(k.pmd_mkhuge(pmd))), f"{t}: !pmd_trans_huge(pmd_mkhuge(pmd))"

    if not k._HAVE_ARCH_PMDP_INVALIDATE:
        invalid = k.pmd_mkinvalid(k.pmd_mkhuge(pmd))
        assert not (not k.pmd_trans_huge(invalid)), (
            f"{t}: !pmd_trans_huge(pmd_mkinvalid(pmd_mkhuge(pmd)))")
        assert not (not k.pmd_present(invalid)), (
            f"{t}: !pmd_present(pmd_mkinvalid(pmd_mkhuge(pmd)))")
        # B
        assert not (not k.pmd_leaf(invalid)), f"{t}: !pmd_leaf(pmd_mkinvalid(pmd_mkhuge(pmd)))"


def pud_thp_tests(args: PgtableDebugArgs) -> None:
    k = args.k
    _require_pud_thp(k)
    pud = k.pfn_pud(args.fixed_pud_pfn, args.page_prot)
    assert not (not k.pud_trans_huge(k.pud_mkhuge(pud))), (
        "pud_thp_tests: !pud_trans_huge(pud_mkhuge(pud))")
    # pud_mkinvalid() has been dropped for now. Enable back these tests when it comes back
    # with a modified pud_present().
    #
    # WARN_ON(!pud_trans_huge(pud_mkinvalid(pud_mkhuge(pud))));
    # WARN_ON(!pud_present(pud_mkinvalid(pud_mkhuge(pud))));


# -- the driver --------------------------------------------------------------------------


def _assert_held(lock: spinlock_t, what: str) -> None:
    assert lock.held, f"{what}: {lock.name} is not held"


@contextmanager
def pte_locked(args: PgtableDebugArgs) -> Iterator[None]:
    """``args.ptep = pte_offset_map_lock(args.mm, args.pmdp, args.vaddr, &ptl)`` ...
    ``if (args.ptep) pte_unmap_unlock(args.ptep, ptl)``."""
    k = args.k
    assert args.pmdp is not None
    r = k.pte_offset_map_lock(args.the_mm, args.pmdp, args.vaddr)
    ptl = None
    if r is not None:
        args.ptep, ptl = r
        assert ptl is k.ptep_lockptr(args.the_mm, args.ptep), "ptl is not the PTE table's lock"
        _assert_held(ptl, "pte_offset_map_lock")
    else:
        args.ptep = None
    try:
        yield
    finally:
        if args.ptep is not None:
            assert ptl is not None
            k.pte_unmap_unlock(args.ptep, ptl)
        args.ptep = None


@contextmanager
def pmd_locked(args: PgtableDebugArgs) -> Iterator[None]:
    """``ptl = pmd_lock(args.mm, args.pmdp)`` ... ``spin_unlock(ptl)``."""
    assert args.pmdp is not None
    ptl = args.k.pmd_lock(args.the_mm, args.pmdp)
    assert ptl is args.k.pmd_lockptr(args.the_mm, args.pmdp)
    try:
        yield
    finally:
        spin_unlock(ptl)


@contextmanager
def pud_locked(args: PgtableDebugArgs) -> Iterator[None]:
    """``ptl = pud_lock(args.mm, args.pudp)`` ... ``spin_unlock(ptl)``."""
    assert args.pudp is not None
    ptl = args.k.pud_lock(args.the_mm, args.pudp)
    assert ptl is args.k.pud_lockptr(args.the_mm, args.pudp)
    try:
        yield
    finally:
        spin_unlock(ptl)


@contextmanager
def page_table_locked(args: PgtableDebugArgs) -> Iterator[None]:
    """``spin_lock(&(args.mm->page_table_lock))`` ... ``spin_unlock(...)``."""
    lock = args.the_mm.page_table_lock
    spin_lock(lock)
    try:
        yield
    finally:
        spin_unlock(lock)


@contextmanager
def debug_args(k: GenericKernel, version: str, random_long: int) -> Iterator[PgtableDebugArgs]:
    args = init_args(k, version, random_long)
    try:
        yield args
    finally:
        destroy_args(args)


def _with_idx(basic: Callable[[PgtableDebugArgs, int], None], idx: int) -> Check:
    def check(args: PgtableDebugArgs) -> None:
        basic(args, idx)

    check.__name__ = basic.__name__
    return check


def run_check(fn: Check, args: PgtableDebugArgs, skipped: dict[str, str]) -> None:
    """Run one kernel test; a kernel-side early return is recorded, not an error."""
    try:
        fn(args)
    except Skip as s:
        skipped[getattr(fn, "__name__", repr(fn))] = s.reason


def debug_vm_pgtable(k: GenericKernel, version: str, random_long: int) -> dict[str, str]:
    """The driver: every test in the kernel's order, the page-table modifying ones under the
    proper page table lock.  Returns the tests the configuration skips, with the reason."""
    skipped: dict[str, str] = {}
    with debug_args(k, version, random_long) as args:
        # Iterate over each possible vm_flags to make sure that all the basic page table
        # transformation validations just hold true irrespective of the starting protection
        # value for a given page table entry.
        for idx in range(VM_FLAGS_START, VM_FLAGS_END + 1):
            for basic in (pte_basic_tests, pmd_basic_tests, pud_basic_tests):
                run_check(_with_idx(basic, idx), args, skipped)

        # Both P4D and PGD level tests are very basic which do not involve creating page
        # table entries from the protection value and the given pfn.
        unlocked: list[Check] = [
            p4d_basic_tests, pgd_basic_tests,
            pmd_leaf_tests, pud_leaf_tests,
            pte_special_tests, pte_protnone_tests, pmd_protnone_tests,
        ]
        if version == "A":
            unlocked += [pte_devmap_tests, pmd_devmap_tests, pud_devmap_tests]
        unlocked += [
            pte_soft_dirty_tests, pmd_soft_dirty_tests,
            pte_swap_soft_dirty_tests, pmd_swap_soft_dirty_tests,
            pte_swap_exclusive_tests,
            pte_swap_tests, pmd_swap_tests,
            swap_migration_tests,
            pmd_thp_tests, pud_thp_tests,
            hugetlb_basic_tests,
        ]
        for fn in unlocked:
            run_check(fn, args, skipped)
        assert not held_locks(k), "a lock is held outside the locked sections"

        # Page table modifying tests. They need to hold proper page table lock.
        with pte_locked(args):
            for fn in (pte_clear_tests, pte_advanced_tests):
                run_check(fn, args, skipped)

        with pmd_locked(args):
            for fn in (pmd_clear_tests, pmd_advanced_tests, pmd_huge_tests, pmd_populate_tests):
                run_check(fn, args, skipped)

        with pud_locked(args):
            for fn in (pud_clear_tests, pud_advanced_tests, pud_huge_tests, pud_populate_tests):
                run_check(fn, args, skipped)

        with page_table_locked(args):
            for fn in (p4d_clear_tests, pgd_clear_tests, p4d_populate_tests, pgd_populate_tests):
                run_check(fn, args, skipped)
    return skipped


# -- pytest ------------------------------------------------------------------------------


def _seed(request: pytest.FixtureRequest) -> int:
    """A fixed "get_random_long()" per test, so failures reproduce."""
    return zlib.crc32(request.node.nodeid.encode()) * 0x9E3779B97F4A7C15


def require_driver(k: GenericKernel) -> None:
    """``config DEBUG_VM_PGTABLE`` depends on ``ARCH_HAS_DEBUG_VM_PGTABLE``: an architecture
    that does not select it makes no promise these checks hold (32-bit arm)."""
    if not k.ARCH_HAS_DEBUG_VM_PGTABLE:
        pytest.skip("!CONFIG_ARCH_HAS_DEBUG_VM_PGTABLE")


def _run_alone(k: GenericKernel, fn: Check, version: str, seed: int,
               lock: Callable[[PgtableDebugArgs], object] | None = None) -> None:
    require_driver(k)
    with debug_args(k, version, seed) as args:
        try:
            if lock is None:
                fn(args)
            else:
                with lock(args):
                    fn(args)
        except Skip as s:
            pytest.skip(s.reason)


@pytest.mark.parametrize("idx", range(VM_FLAGS_START, VM_FLAGS_END + 1))
@pytest.mark.parametrize("version", ["A", "B"])
@pytest.mark.parametrize(
    "basic", [pte_basic_tests, pmd_basic_tests, pud_basic_tests], ids=lambda f: f.__name__
)
def test_basic(kernel: GenericKernel, basic: Callable[[PgtableDebugArgs, int], None],
               version: str, idx: int, request: pytest.FixtureRequest) -> None:
    """All 16 ``vm_get_page_prot(idx)``.  B adds the ``p?d_mkwrite_novma`` checks."""
    _run_alone(kernel, _with_idx(basic, idx), version, _seed(request))


UNLOCKED_SAME_IN_A_AND_B: list[Check] = [
    p4d_basic_tests, pgd_basic_tests, pmd_leaf_tests, pud_leaf_tests, pte_special_tests,
    pte_protnone_tests, pmd_protnone_tests, pte_devmap_tests, pmd_devmap_tests,
    pud_devmap_tests, pte_soft_dirty_tests, pmd_soft_dirty_tests, swap_migration_tests,
    pmd_thp_tests, pud_thp_tests,
]
UNLOCKED_A_OR_B: list[Check] = [
    pte_swap_soft_dirty_tests, pmd_swap_soft_dirty_tests, pte_swap_exclusive_tests,
    pte_swap_tests, pmd_swap_tests, hugetlb_basic_tests,
]


@pytest.mark.parametrize("fn", UNLOCKED_SAME_IN_A_AND_B, ids=lambda f: f.__name__)
def test_unlocked(kernel: GenericKernel, fn: Check, request: pytest.FixtureRequest) -> None:
    _run_alone(kernel, fn, "A", _seed(request))


@pytest.mark.parametrize("version", ["A", "B"])
@pytest.mark.parametrize("fn", UNLOCKED_A_OR_B, ids=lambda f: f.__name__)
def test_unlocked_versions(kernel: GenericKernel, fn: Check, version: str,
                           request: pytest.FixtureRequest) -> None:
    _run_alone(kernel, fn, version, _seed(request))


LOCKED: list[tuple[Check, Callable[[PgtableDebugArgs], object], bool]] = [
    # (test, the lock the driver holds, whether A and B differ)
    (pte_clear_tests, pte_locked, True),
    (pte_advanced_tests, pte_locked, False),
    (pmd_clear_tests, pmd_locked, True),
    (pmd_advanced_tests, pmd_locked, False),
    (pmd_huge_tests, pmd_locked, False),
    (pmd_populate_tests, pmd_locked, False),
    (pud_clear_tests, pud_locked, True),
    (pud_advanced_tests, pud_locked, False),
    (pud_huge_tests, pud_locked, False),
    (pud_populate_tests, pud_locked, False),
    (p4d_clear_tests, page_table_locked, True),
    (pgd_clear_tests, page_table_locked, True),
    (p4d_populate_tests, page_table_locked, False),
    (pgd_populate_tests, page_table_locked, False),
]


@pytest.mark.parametrize(
    ("fn", "lock", "version"),
    [(fn, lock, v) for fn, lock, differs in LOCKED for v in (("A", "B") if differs else ("A",))],
    ids=[f"{fn.__name__}-{v}" for fn, _, differs in LOCKED
         for v in (("A", "B") if differs else ("A",))],
)
def test_locked(kernel: GenericKernel, fn: Check, lock: Callable[[PgtableDebugArgs], object],
                version: str, request: pytest.FixtureRequest) -> None:
    _run_alone(kernel, fn, version, _seed(request), lock)


@pytest.mark.parametrize("version", ["A", "B"])
def test_debug_vm_pgtable(kernel: GenericKernel, version: str,
                          request: pytest.FixtureRequest) -> None:
    """The whole driver, in order, on one set of tables."""
    require_driver(kernel)
    skipped = debug_vm_pgtable(kernel, version, _seed(request))
    # What a configuration skips is decided by its Kconfig, nothing else: the pte tests are
    # never compiled out.
    for always in ("pte_advanced_tests", "pte_clear_tests", "pmd_clear_tests",
                   "pmd_populate_tests", "p4d_basic_tests", "pgd_basic_tests"):
        assert always not in skipped, f"{always} skipped: {skipped[always]}"


@pytest.mark.parametrize("name", legacy.arch_names())
@given(random_long=st.integers(min_value=0, max_value=2**64 - 1),
       version=st.sampled_from(["A", "B"]))
def test_debug_vm_pgtable_any_vaddr(name: str, random_long: int, version: str) -> None:
    """The driver for any ``get_random_long()``: any user page, any table position."""
    k = legacy.boot(name)
    require_driver(k)
    debug_vm_pgtable(k, version, random_long)


def test_init_args_tables(kernel: GenericKernel, request: pytest.FixtureRequest) -> None:
    """``init_args`` reaches a PTE table through the legacy allocation paths, charging
    ``pgtables_bytes`` only for unfolded levels; ``destroy_args`` gives it all back."""
    k = kernel
    frames = k.mem.allocated_frames()
    with debug_args(k, "A", _seed(request)) as args:
        mm = args.the_mm
        assert args.pmdp is not None and args.start_ptep is not None
        assert k.pmd_pgtable(k.pmdp_get(args.pmdp)) == args.start_ptep
        assert k.pte_offset_map(args.pmdp, args.vaddr) == args.start_ptep + k.pte_index(
            args.vaddr)
        assert k.mm_pgtables_bytes(mm) >= k.PTRS_PER_PTE * k.SIZEOF_PTE
        assert args.fixed_alignment in (k.PUD_SIZE, k.PMD_SIZE, k.PAGE_SIZE)
        assert k.FIRST_USER_ADDRESS <= args.vaddr < k.TASK_SIZE
        assert not held_locks(k)
    assert k.mem.allocated_frames() == frames
    assert mm not in k.mms


def test_random_orvalue(kernel: GenericKernel) -> None:
    """Version A's mask: all of ``unsigned long`` but s390's low type bits and ppc64's bit 62."""
    v = random_orvalue(kernel)
    assert v & 0xF == 0 and v >> (kernel.config.word_bits - 1) == 1
    assert v >> 62 & 1 == 0 and v <= kernel.ULONG_MASK


def test_random_vaddr_formula(kernel: GenericKernel) -> None:
    from tests.debug_vm_pgtable_args import get_random_vaddr

    k = kernel
    pages = (k.TASK_SIZE - k.FIRST_USER_ADDRESS) // k.PAGE_SIZE
    assert get_random_vaddr(k, 0) == k.FIRST_USER_ADDRESS
    assert get_random_vaddr(k, pages - 1) == k.FIRST_USER_ADDRESS + (pages - 1) * k.PAGE_SIZE
    assert get_random_vaddr(k, pages) == k.FIRST_USER_ADDRESS
    assert get_random_vaddr(k, random.getrandbits(64)) % k.PAGE_SIZE == 0
