"""The book3s64 radix kernel (``legacy/ppc64``): the kernel's table sizes and fragments
(arch/powerpc/mm/pgtable-frag.c, book3s64/pgtable.c, book3s/64/pgalloc.h), the directory
entry format (radix.h ``RADIX_*_VAL_BITS``), ``radix__pte_none`` and PROT_NONE, checked on
the emulated bytes and with the hardware walker."""

from __future__ import annotations

import pytest

from arches.config import Fault, Translation
from arches.ppc64 import bits as L
from legacy.ppc64.pgtable import Ppc64Radix4KKernel, Ppc64Radix64KKernel, RadixKernel
from legacy.types import pte_t


def boot(name: str) -> RadixKernel:
    from arches.ppc64 import CONFIGS

    cls = Ppc64Radix4KKernel if name == "ppc64-radix-4k" else Ppc64Radix64KKernel
    return cls(CONFIGS[name])


def test_64k_pte_tables_are_256_byte_fragments_of_one_mm() -> None:
    k = boot("ppc64-radix-64k")
    a, b = k.mm_alloc(), k.mm_alloc()
    assert a is not None and b is not None
    t1, t2 = k.pte_alloc_one(a), k.pte_alloc_one(a)
    t3 = k.pte_alloc_one(b)
    assert t1 is not None and t2 is not None and t3 is not None
    assert t2.pa == t1.pa + 256 and t1.pa % 65536 == 0  # one page, consecutive fragments
    assert k.frame_of(t3.pa) != k.frame_of(t1.pa)  # another mm: another page
    lock1, lock2 = k.ptlock_ptr(t1.pa), k.ptlock_ptr(t2.pa)
    assert lock1 is lock2 and lock1 is not k.ptlock_ptr(t3.pa)  # the page's split lock
    assert k.table_desc(t2.pa + 8) is k.ptdescs[t2.pa]
    k.pte_free(a, t1)
    assert k.mem.is_allocated(k.frame_of(t2.pa))  # the page lives on with t2
    assert k.mem.read(t1.pa, 8) != 0  # the freed fragment is poisoned in place
    k.pte_free(a, t2)
    assert k.mem.is_allocated(k.frame_of(t2.pa))  # 254 fragments still parked in a's context
    k.pte_free(b, t3)
    frame = k.frame_of(t1.pa)
    k.mmdrop(a)  # destroy_context: pte_frag_destroy drops the parked references
    assert not k.mem.is_allocated(frame)


def test_64k_pmd_fragments_and_4k_whole_pages() -> None:
    k = boot("ppc64-radix-64k")
    mm = k.mm_alloc()
    assert mm is not None
    p1, p2 = k.pmd_alloc_one(mm, 0), k.pmd_alloc_one(mm, 0)
    assert p1 is not None and p2 is not None and p2.pa == p1.pa + 4096
    assert k.PMD_FRAG_NR == 16 and k.PTE_FRAG_NR == 256
    k4 = boot("ppc64-radix-4k")
    mm4 = k4.mm_alloc()
    assert mm4 is not None
    q1, q2 = k4.pte_alloc_one(mm4), k4.pte_alloc_one(mm4)
    assert q1 is not None and q2 is not None and q1.pa % 4096 == q2.pa % 4096 == 0
    assert k4.PTE_FRAG_NR == k4.PMD_FRAG_NR == 1


@pytest.mark.parametrize("name", ["ppc64-radix-4k", "ppc64-radix-64k"])
def test_pgd_is_64k_and_entries_carry_nls(name: str) -> None:
    k = boot(name)
    mm = k.mm_alloc()
    assert mm is not None
    assert mm.pgd.pa % 65536 == 0 and k.PTRS_PER_PGD == 8192
    if name.endswith("4k"):
        assert all(k.frame_of(mm.pgd.pa + i * 4096) == mm.pgd.pa for i in range(16))
    va = 0x7FFF_0000_0000
    pgd = k.pgd_offset(mm, va)
    p4d = k.p4d_offset(pgd, va)
    pud = k.pud_alloc(mm, p4d, va)
    assert pud is not None
    pmd = k.pmd_alloc(mm, pud, va)
    assert pmd is not None
    assert k.pte_alloc(mm, pmd) == 0
    raw = k.mem.read_bytes(pmd.pa, 8)
    assert raw[0] == 0x80 and raw[7] & 0x1F == k.PTE_INDEX_SIZE  # V first, NLS last
    assert k.pgdp_get(pgd) & 0x1F == 9 and k.pudp_get(pud) & 0x1F == 9
    pte = k.pte_offset_kernel(pmd, va)
    k.lockdep_enabled = False
    k.set_pte_at(mm, va, pte, k.pfn_pte(0x123, k.PAGE_SHARED))
    regs = k.config.make_registers(k.mm_root(mm), k.mm_root(k.init_mm))
    t = k.config.walker.translate(k.mem, regs, va + 5)
    assert isinstance(t, Translation) and t.pa == (0x123 << k.PAGE_SHIFT) + 5 and t.writable
    k.set_pte_at(mm, va, pte, k.pte_modify(k.ptep_get(pte), k.PAGE_NONE))
    assert k.pte_present(k.ptep_get(pte)) and k.pte_protnone(k.ptep_get(pte))
    assert isinstance(k.config.walker.translate(k.mem, regs, va), Fault)


def test_pte_none_ignores_r_and_c_and_mkwrite_sets_read() -> None:
    k = boot("ppc64-radix-4k")
    assert k.pte_none(pte_t(L._PAGE_ACCESSED | L._PAGE_DIRTY))
    assert not k.pte_none(pte_t(L._PAGE_READ))
    assert k.pte_mkwrite_novma(pte_t(0)) == L._PAGE_READ | L._PAGE_WRITE
    swp = k._swp_entry(3, 0x1234)
    assert k._swp_type(swp) == 3 and k._swp_offset(swp) == 0x1234
    assert not k.pte_present(k._swp_entry_to_pte(swp))
