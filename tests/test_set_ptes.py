"""``set_ptes`` (include/linux/pgtable.h, and each architecture's own): ``nr`` entries of
one PTE table mapping consecutive pfns.  It must store exactly what ``nr`` calls of
``set_pte_at`` with ``pfn_pte(pfn + i, prot)`` store, PROT_NONE included (x86 keeps that
pfn inverted, so ``pte_advance_pfn`` counts down); and where the generic one writes the run
at once, a table a root reaches must still see every store (TLB model, lockdep)."""

from __future__ import annotations

import pytest

import legacy
from arches.errors import LockError, TlbError
from legacy import spin_lock, spin_unlock
from legacy.generic import VM_NONE, VM_READ, VM_SHARED, VM_WRITE
from tests.conftest import ARCH_NAMES
from tests.test_tlb_model import VA, _flush_page, _pte, _setup

PROTS = {"read-only": VM_READ, "shared": VM_READ | VM_WRITE | VM_SHARED, "none": VM_NONE}


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_set_ptes_stores_what_set_pte_at_of_each_pfn_stores(arch: str) -> None:
    k = legacy.boot(arch)
    mm = k.mm_alloc()
    assert mm is not None
    nr, pfn = 16, 0x12345
    for name, flags in PROTS.items():
        prot = k.vm_get_page_prot(flags)
        run, one = k.pte_alloc_one(mm), k.pte_alloc_one(mm)
        assert run is not None and one is not None
        k.set_ptes(mm, VA, run, k.pfn_pte(pfn, prot), nr)
        for i in range(nr):
            k.set_pte_at(mm, VA + i * k.PAGE_SIZE, one + i, k.pfn_pte(pfn + i, prot))
        got = [k.ptep_get(run + i) for i in range(nr + 1)]
        want = [k.ptep_get(one + i) for i in range(nr + 1)]
        assert got == want, f"{arch} {name}"
        assert [k.pte_pfn(v) for v in got[:nr]] == list(range(pfn, pfn + nr)), f"{arch} {name}"


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_set_ptes_into_a_live_table_needs_its_lock_and_is_seen_by_the_tlb(arch: str) -> None:
    """Write-protecting four mapped pages with one ``set_ptes``: without the PTE table's
    lock nothing is stored; with it, the cached translations are stale until flushed."""
    if arch == "s390x":
        pytest.skip("s390x changes a valid pte only through ptep_xchg (IPTE): no flush "
                    "purges a plain store over one (flush_tlb_range is __tlb_flush_mm_lazy)")
    k, mm, vma = _setup(arch)
    pmd, pte = _pte(k, mm, VA)
    before = [k.ptep_get(pte + i) for i in range(4)]
    wrprotected = k.pte_wrprotect(before[0])
    with pytest.raises(LockError):
        k.set_ptes(mm, VA, pte, wrprotected, 4)
    assert [k.ptep_get(pte + i) for i in range(4)] == before
    ptl = k.pte_lockptr(mm, pmd)
    spin_lock(ptl)
    k.set_ptes(mm, VA, pte, wrprotected, 4)
    spin_unlock(ptl)
    assert [k.pte_write(k.ptep_get(pte + i)) for i in range(4)] == [False] * 4
    with pytest.raises(TlbError) as e:
        k.syscall_exit("wrprotect")
    assert f"[{VA:#x}, " in str(e.value)
    for i in range(4):
        _flush_page(k, vma, VA + i * k.PAGE_SIZE)
    k.syscall_exit("wrprotect")
