"""Huge pmd and pud leaves in user and kernel page tables: ``mm/huge_memory.c`` (linux-next
2025), ``move_huge_pud`` from ``mm/mremap.c`` and the x86 large-page split of
``arch/x86/mm/pat/set_memory.c`` (``__split_large_page``).

What a huge leaf is here.  User huge pmds are inserted by :func:`insert_pfn_pmd` (after
``vmf_insert_pfn_pmd``: ``pmd_mkspecial(pmd_mkhuge(pfn_pmd(pfn, prot)))`` under ``pmd_lock``)
but are treated as *anonymous-style* THPs for their page table: every one of them has a PTE
table deposited (``pgtable_trans_huge_deposit``, counted with ``mm_inc_nr_ptes``) as
``__do_huge_pmd_anonymous_page`` does, so that a split needs no allocation and a zap frees
it (``zap_deposited_table``).  The kernel's ``insert_pmd`` deposits only when
``arch_needs_pgtable_deposit()`` (ppc64 hash), and splits a pfn-mapped pmd by *zapping* it
(refaulted by the driver); our maps have no driver to refault them, and splits must keep
every page mapped, hence the anonymous-style deposit.  ``copy_huge_pmd`` and
``move_huge_pmd`` keep the invariant "one deposit per user huge pmd".

Splits.  Both keep the translation of every page of the leaf: same pfn, same protection.
- user pmd, :func:`split_huge_pmd` -> ``__split_huge_pmd_locked`` (anonymous THP path):
  ``pmdp_invalidate``, withdraw the deposited table, fill it with one ``set_ptes`` of
  ``HPAGE_PMD_NR`` ptes, ``pmd_populate``.  Deviation: the kernel builds the ptes from
  ``vma->vm_page_prot`` plus the pmd's write/young/dirty/soft-dirty bits (and drops
  NUMA-hinting PROT_NONE); we build them from the pmd's own protection
  (``pgprot_large_2_4k(pmd_pgprot(pmd))``), which carries those bits, ``special`` and a
  user PROT_NONE alike, because our callers need not keep ``vm_page_prot`` in step with a
  partially protected leaf.
- user pud, :func:`split_huge_pud`: the kernel only zaps (DAX) puds.  We follow the x86 cpa
  split instead (``__split_large_page``: allocate the lower table, fill it with leaves of the
  same protection, populate the upper entry), with user accounting: ``mm_inc_nr_pmds`` for
  the new PMD table and one deposited PTE table per new huge pmd (``mm_inc_nr_ptes`` each).
- kernel (``init_mm``) pmd or pud: :func:`split_large_page`, the cpa split, unaccounted as
  in the kernel, with cpa's ``__set_pmd_pte`` update of every pgd's copy of the entry where
  the architecture copies that level into every pgd (x86-32).

TLB and locks (v6.18).  Every store holds the lock the kernel holds (``pmd_lock`` /
``pud_lock``; cpa's ``pgd_lock`` for kernel splits on x86) and is flushed as the kernel
flushes it: ``zap_huge_p?d`` queue the range on the ``mmu_gather``
(``tlb_remove_p?d_tlb_entry``); ``change_huge_p?d`` take the mprotect gather and add
``tlb_flush_p?d_range`` (x86: only if ``huge_pmd_needs_flush``); the pmd split invalidates
and flushes (``pmdp_invalidate``) before it populates the deposited table, the pud split
clears and flushes (``pudp_huge_clear_flush``, as the kernel's ``__split_huge_pud_locked``)
before it populates the new PMD table; ``move_huge_p?d`` flush the old range
(``flush_p?d_tlb_range``); ``copy_huge_p?d`` write-protect the parent without a flush:
fork's ``dup_mmap`` ends with ``flush_tlb_mm(oldmm)``.  Kernel splits: see
:func:`split_large_page`.  No mmu notifiers, rmap or folio accounting is emulated: those
calls are left out.  Errors are negative errnos (:mod:`legacy.mm.internal`).
"""

from __future__ import annotations

from collections.abc import Callable

from arches.errors import BadInput, OutOfMemory
from legacy.generic import GenericKernel
from legacy.mm.internal import EAGAIN, EBUSY, EFAULT, EINVAL, ENOMEM
from legacy.mm.mmu_gather import (
    mmu_gather,
    tlb_change_page_size,
    tlb_flush_pmd_range,
    tlb_flush_pud_range,
    tlb_remove_pmd_tlb_entry,
    tlb_remove_pud_tlb_entry,
)
from legacy.mm.vm_flags import is_cow_mapping
from legacy.mm_types import mm_struct, spin_lock, spin_unlock, spinlock_t, vm_area_struct
from legacy.pgtable import PGTBL_PMD_MODIFIED, PGTBL_PUD_MODIFIED
from legacy.types import PmdPtr, PudPtr, pgprot_t, pgtable_t, pmd_t, pud_t


def HPAGE_PMD_NR(k: GenericKernel) -> int:
    return k.PMD_SIZE >> k.PAGE_SHIFT


def HPAGE_PUD_NR(k: GenericKernel) -> int:
    return k.PUD_SIZE >> k.PAGE_SHIFT


# -- locking helpers ---------------------------------------------------------------------


def _pmd_trans_huge_lock(k: GenericKernel, pmd: PmdPtr, vma: vm_area_struct) -> spinlock_t | None:
    """``__pmd_trans_huge_lock``: the pmd lock, held, if the pmd maps a huge page."""
    ptl = k.pmd_lock(vma.vm_mm, pmd)
    if k.pmd_trans_huge(k.pmdp_get(pmd)):
        return ptl
    spin_unlock(ptl)
    return None


def _pud_trans_huge_lock(k: GenericKernel, pud: PudPtr, vma: vm_area_struct) -> spinlock_t | None:
    ptl = k.pud_lock(vma.vm_mm, pud)
    if k.pud_trans_huge(k.pudp_get(pud)):
        return ptl
    spin_unlock(ptl)
    return None


def _pudp_invalidate(k: GenericKernel, vma: vm_area_struct, address: int, pudp: PudPtr) -> pud_t:
    """``pudp_invalidate``: arch/x86/mm/pgtable.c (invalidate, ``flush_pud_tlb_range``) where
    ``CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD``; there is no generic one.  Elsewhere
    (arm64, whose kernel has no huge user puds) only the read is kept: the caller's
    ``tlb_flush_pud_range`` flushes the restricted translation.  Kernel quirk: x86
    ``pud_present`` ignores ``_PAGE_PROTNONE``, so on a PROT_NONE huge pud the kernel's
    ``VM_WARN_ON_ONCE(!pud_present(*pudp))`` fires and it goes on; the entry is already
    invalid to the MMU, so here only the read is kept (no warning raised)."""
    invalidate = getattr(k, "pudp_invalidate", None)
    if (k.has_transparent_pud_hugepage() and invalidate is not None
            and k.pud_present(k.pudp_get(pudp))):
        return pud_t(invalidate(vma, address, pudp))
    return k.pudp_get(pudp)


def huge_pmd_needs_flush(k: GenericKernel, oldpmd: pmd_t, newpmd: pmd_t) -> bool:
    """``huge_pmd_needs_flush``: the architecture's (x86 asm/tlbflush.h), else
    include/linux/pgtable.h's ``true``."""
    return k.huge_pmd_needs_flush(oldpmd, newpmd)


def zap_deposited_table(k: GenericKernel, mm: mm_struct, pmd: PmdPtr) -> None:
    pgtable = k.pgtable_trans_huge_withdraw(mm, pmd)
    k.pte_free(mm, pgtable)
    k.mm_dec_nr_ptes(mm)


# -- zap -------------------------------------------------------------------------------


def zap_huge_pmd(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, pmd: PmdPtr,
                 addr: int) -> int:
    """Clear a whole huge pmd and free its deposited table; 1 if it was huge, else 0."""
    tlb_change_page_size(k, tlb, k.PMD_SIZE)
    ptl = _pmd_trans_huge_lock(k, pmd, vma)
    if ptl is None:
        return 0
    # "do the pgtable_trans_huge_withdraw after finishing pmdp related operations"
    k.pmdp_huge_get_and_clear_full(vma, addr, pmd, int(tlb.fullmm))
    tlb_remove_pmd_tlb_entry(k, tlb, pmd, addr)
    # Anonymous-style map: a table was deposited (the kernel's special-vma branch zaps it
    # only if arch_needs_pgtable_deposit()).
    zap_deposited_table(k, tlb.mm, pmd)
    spin_unlock(ptl)
    return 1


def zap_huge_pud(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, pud: PudPtr,
                 addr: int) -> int:
    """Clear a whole huge pud (no deposit at this level); 1 if it was huge, else 0."""
    ptl = _pud_trans_huge_lock(k, pud, vma)
    if ptl is None:
        return 0
    k.pudp_huge_get_and_clear_full(vma, addr, pud, int(tlb.fullmm))
    tlb_remove_pud_tlb_entry(k, tlb, pud, addr)
    spin_unlock(ptl)
    return 1


# -- split -----------------------------------------------------------------------------


def _split_huge_pmd_locked(k: GenericKernel, vma: vm_area_struct, pmd: PmdPtr,
                           haddr: int) -> None:
    """``__split_huge_pmd_locked``, anonymous THP path, ``freeze`` false: the new ptes go in
    with one ``set_ptes(mm, haddr, pte, entry, HPAGE_PMD_NR)`` (v6.18; older kernels
    stored them one ``set_pte_at`` at a time)."""
    mm = vma.vm_mm
    old_pmd = k.pmdp_invalidate(vma, haddr, pmd)
    pfn = k.pmd_pfn(old_pmd)
    prot = k.pgprot_large_2_4k(k.pmd_pgprot(old_pmd))

    # "Withdraw the table only after we mark the pmd entry invalid."
    pgtable = k.pgtable_trans_huge_withdraw(mm, pmd)
    # pmd_populate(mm, &_pmd, pgtable); pte = pte_offset_map(&_pmd, haddr): a stack pmd
    # pointing at the table, i.e. the table itself.
    pte = pgtable + k.pte_index(haddr)
    entry = k.pfn_pte(pfn, prot)
    for i in range(HPAGE_PMD_NR(k)):
        assert k.pte_none(k.ptep_get(pte + i)), "VM_WARN_ON(!pte_none(ptep_get(pte + i)))"
    k.set_ptes(mm, haddr, pte, entry, HPAGE_PMD_NR(k))
    k.pte_unmap(pte)
    # smp_wmb(): make pte visible before pmd
    k.pmd_populate(mm, pmd, pgtable)


def _split_huge_pmd(k: GenericKernel, vma: vm_area_struct, pmd: PmdPtr, address: int) -> None:
    """``__split_huge_pmd(vma, pmd, address, false)``."""
    if vma.vm_mm.is_init_mm:
        if split_large_page(k, vma.vm_mm, pmd, address):
            raise OutOfMemory(f"split of the huge pmd at {address:#x}: no memory")
        return
    haddr = address & k.PMD_MASK
    ptl = k.pmd_lock(vma.vm_mm, pmd)
    # split_huge_pmd_locked()
    if k.pmd_trans_huge(k.pmdp_get(pmd)):
        _split_huge_pmd_locked(k, vma, pmd, haddr)
    spin_unlock(ptl)


def split_huge_pmd(k: GenericKernel, vma: vm_area_struct, pmd: PmdPtr, address: int) -> None:
    """Split the huge pmd mapping ``address`` into a PTE table (no-op if not huge)."""
    if k.pmd_trans_huge(k.pmdp_get(pmd)):
        _split_huge_pmd(k, vma, pmd, address)


def _split_pud_prealloc(k: GenericKernel, mm: mm_struct, haddr: int
                        ) -> tuple[PmdPtr, list[pgtable_t]] | None:
    """The PMD table and, for a user mm, one PTE table per huge pmd to deposit."""
    new = k.pmd_alloc_one(mm, haddr)
    if new is None:
        return None
    deposits: list[pgtable_t] = []
    if not mm.is_init_mm:
        for _ in range(k.PTRS_PER_PMD):
            pgtable = k.pte_alloc_one(mm)
            if pgtable is None:
                for t in deposits:
                    k.pte_free(mm, t)
                k.pmd_free(mm, new)
                return None
            deposits.append(pgtable)
    return new, deposits


def _split_huge_pud(k: GenericKernel, vma: vm_area_struct, pud: PudPtr, address: int) -> int:
    """The cpa split of a huge pud into a PMD table of huge pmds; 0 or -ENOMEM."""
    mm = vma.vm_mm
    haddr = address & k.PUD_MASK
    pre = _split_pud_prealloc(k, mm, haddr)
    if pre is None:
        return ENOMEM
    new, deposits = pre
    ptl = k.pud_lock(mm, pud)
    old_pud = k.pudp_get(pud)
    if not k.pud_trans_huge(old_pud):  # changed under us: drop the preallocation
        spin_unlock(ptl)
        for t in deposits:
            k.pte_free(mm, t)
        k.pmd_free(mm, new)
        return 0
    _fill_pmd_table(k, mm, new, old_pud, haddr)
    # Break before make, as __split_huge_pud_locked starts: the huge pud is cleared and
    # flushed before the table is installed (no pud_trans_huge window matters here).
    k.pudp_huge_clear_flush(vma, haddr, pud)
    pmd_ptl = k.pmd_lockptr(mm, new)
    if pmd_ptl is not ptl:
        spin_lock(pmd_ptl)
    for i, pgtable in enumerate(deposits):
        k.mm_inc_nr_ptes(mm)
        k.pgtable_trans_huge_deposit(mm, new + i, pgtable)
    if pmd_ptl is not ptl:
        spin_unlock(pmd_ptl)
    k.mm_inc_nr_pmds(mm)
    k.pud_populate(mm, pud, new)
    spin_unlock(ptl)
    return 0


def split_huge_pud(k: GenericKernel, vma: vm_area_struct, pud: PudPtr, address: int) -> None:
    """Split the huge pud mapping ``address`` into huge pmds (no-op if not huge).
    Raises :class:`OutOfMemory`, leaving the pud as it was, if a table cannot be allocated."""
    if not k.pud_trans_huge(k.pudp_get(pud)):
        return
    if vma.vm_mm.is_init_mm:
        err = split_large_page(k, vma.vm_mm, pud, address)
    else:
        err = _split_huge_pud(k, vma, pud, address)
    if err:
        raise OutOfMemory(f"split of the huge pud at {address:#x}: no memory")


def _fill_pmd_table(k: GenericKernel, mm: mm_struct, table: PmdPtr, pud: pud_t,
                    lpaddr: int) -> None:
    """cpa ``PG_LEVEL_1G``: ``PTRS_PER_PMD`` huge pmds, ``pfninc = PMD_SIZE >> PAGE_SHIFT``,
    with the pud's own protection (PSE kept: the entries are leaves)."""
    ref_prot = k.pud_pgprot(pud)
    pfn = k.pud_pfn(pud)
    pfninc = k.PMD_SIZE >> k.PAGE_SHIFT
    for i in range(k.PTRS_PER_PMD):
        k.set_pmd_at(mm, lpaddr, table + i, k.pfn_pmd(pfn, ref_prot))
        pfn += pfninc
        lpaddr = (lpaddr + k.PMD_SIZE) & k.ULONG_MASK


def cpa_lock(k: GenericKernel) -> spinlock_t | None:
    """The lock x86 cpa holds while it rewrites a large kernel leaf (``pgd_lock``: it also
    walks ``pgd_list``); None where the architecture has none (arm64 ``pageattr.c``)."""
    lock = getattr(k, "pgd_lock", None)
    return lock if isinstance(lock, spinlock_t) else None


def _install_split_table(k: GenericKernel, mm: mm_struct, kpte: PmdPtr | PudPtr, start: int,
                         size: int, populate: Callable[[], None]) -> None:
    """Replace the live kernel leaf at ``kpte`` by the filled table ``populate`` installs.

    - x86 (cpa ``__split_large_page``): ``__set_pmd_pte`` over the leaf, every pgd's copy
      too where the level is synced, then ``flush_tlb_all()`` -- "Do a global flush tlb
      after splitting the large page and before we do the actual change page attribute";
    - break-before-make hardware (arm64): the kernel splits live kernel blocks only with
      BBML2_NOABORT (``split_kernel_leaf_mapping``, v6.18, which installs the table over
      the block); the emulated CPU has no BBML2, so -- a documented departure -- the block is
      cleared, ``flush_tlb_kernel_range`` (the old entry is a leaf: last level suffices),
      then the table is installed: the sequence of ``pmd_free_pte_page``/``contpte_convert``.
      The range is briefly unmapped, which the kernel avoids for memory in use."""
    if k.config.break_before_make:
        if isinstance(kpte, PudPtr):
            k.pud_clear(kpte)
        else:
            k.pmd_clear(kpte)
        k.flush_tlb_kernel_range(start, (start + size) & k.ULONG_MASK)
        populate()
        return
    populate()
    mod = PGTBL_PUD_MODIFIED if isinstance(kpte, PudPtr) else PGTBL_PMD_MODIFIED
    if mod & k.ARCH_PAGE_TABLE_SYNC_MASK:
        _set_pmd_pte(k, kpte, start)
    k.flush_tlb_all()


def split_large_page(k: GenericKernel, mm: mm_struct, kpte: PmdPtr | PudPtr,
                     address: int) -> int:
    """arch/x86/mm/pat/set_memory.c ``__split_large_page`` for ``init_mm``: replace the huge
    pmd or pud at ``kpte`` by a table of entries with the same pfns and protection, without
    accounting (as cpa), under cpa's ``pgd_lock`` (elsewhere ``init_mm.page_table_lock``,
    standing for arm64's ``pgtable_split_lock``), installed and flushed by
    :func:`_install_split_table`.  0, or -ENOMEM with nothing changed.  User mms split with
    :func:`split_huge_pmd` / :func:`split_huge_pud`."""
    if not mm.is_init_mm:
        raise BadInput(f"split_large_page: {mm.name} is not init_mm")
    lock = cpa_lock(k) or mm.page_table_lock
    if isinstance(kpte, PudPtr):
        pre = _split_pud_prealloc(k, mm, address & k.PUD_MASK)
        if pre is None:
            return ENOMEM
        new_pmd = pre[0]
        spin_lock(lock)
        old_pud = k.pudp_get(kpte)
        if k.pud_leaf(old_pud):
            start = address & k.PUD_MASK
            _fill_pmd_table(k, mm, new_pmd, old_pud, start)
            _install_split_table(k, mm, kpte, start, k.PUD_SIZE,
                                 lambda: k.pud_populate(mm, kpte, new_pmd))
        else:
            k.pmd_free(mm, new_pmd)
        spin_unlock(lock)
        return 0
    base = k.pte_alloc_one_kernel(mm)
    if base is None:
        return ENOMEM
    spin_lock(lock)
    old_pmd = k.pmdp_get(kpte)
    if k.pmd_leaf(old_pmd):
        # PG_LEVEL_2M: "Clear PSE (aka _PAGE_PAT) and move PAT bit to correct position."
        ref_prot = k.pgprot_large_2_4k(k.pmd_pgprot(old_pmd))
        pfn = k.pmd_pfn(old_pmd)
        for i in range(k.PTRS_PER_PTE):
            k.set_pte(base + i, k.pfn_pte(pfn + i, ref_prot))
        # "We use the standard kernel pagetable protections for the new pagetable"
        _install_split_table(k, mm, kpte, address & k.PMD_MASK, k.PMD_SIZE,
                             lambda: k.pmd_populate_kernel(mm, kpte, base))
    else:
        k.pte_free_kernel(mm, base)
    spin_unlock(lock)
    return 0


def _set_pmd_pte(k: GenericKernel, kpte: PmdPtr | PudPtr, address: int) -> None:
    """cpa ``__set_pmd_pte``: "change init_mm", then, where every pgd holds its own copy of
    this level of the kernel half (CONFIG_X86_32: the level is in
    ``ARCH_PAGE_TABLE_SYNC_MASK``), write the new entry into each copy (the kernel walks
    ``pgd_list``; here every live mm).  ``arch_sync_kernel_mappings`` would not do: it only
    copies entries whose presence differs.  The caller holds cpa's ``pgd_lock``; the caller
    flushes."""
    for mm in k.mms:
        if mm is k.init_mm:
            continue
        pud = k.pud_offset(k.p4d_offset(k.pgd_offset(mm, address), address), address)
        if isinstance(kpte, PudPtr):
            if pud.pa != kpte.pa:
                k.set_pud(pud, k.pudp_get(kpte))
        else:
            pmd = k.pmd_offset(pud, address)
            if pmd.pa != kpte.pa:
                k.set_pmd(pmd, k.pmdp_get(kpte))


# -- fork, mremap ----------------------------------------------------------------------


def copy_huge_pmd(k: GenericKernel, dst_mm: mm_struct, src_mm: mm_struct, dst_pmd: PmdPtr,
                  src_pmd: PmdPtr, addr: int, dst_vma: vm_area_struct,
                  src_vma: vm_area_struct) -> int:
    """fork: share the huge pmd with the child, with a deposit of its own.  0, -ENOMEM, or
    -EAGAIN (not huge any more: the caller copies the PTE table).  A special (pfn) pmd is
    copied as is, others are write-protected in both mms (COW) as for an anonymous THP."""
    pgtable = k.pte_alloc_one(dst_mm)
    if pgtable is None:
        return ENOMEM

    dst_ptl = k.pmd_lock(dst_mm, dst_pmd)
    src_ptl = k.pmd_lockptr(src_mm, src_pmd)
    spin_lock(src_ptl)  # spin_lock_nested(src_ptl, SINGLE_DEPTH_NESTING)

    ret = EAGAIN
    pmd = k.pmdp_get(src_pmd)
    if not k.pmd_trans_huge(pmd):
        k.pte_free(dst_mm, pgtable)
    else:
        k.mm_inc_nr_ptes(dst_mm)
        k.pgtable_trans_huge_deposit(dst_mm, dst_pmd, pgtable)
        if not k.pmd_special(pmd):
            k.pmdp_set_wrprotect(src_mm, addr, src_pmd)
            pmd = k.pmd_wrprotect(pmd)
        # set_pmd:
        pmd = k.pmd_mkold(pmd)
        k.set_pmd_at(dst_mm, addr, dst_pmd, pmd)
        ret = 0
    spin_unlock(src_ptl)
    spin_unlock(dst_ptl)
    return ret


def copy_huge_pud(k: GenericKernel, dst_mm: mm_struct, src_mm: mm_struct, dst_pud: PudPtr,
                  src_pud: PudPtr, addr: int, vma: vm_area_struct) -> int:
    """fork: copy a huge pud (write-protected in both if the mapping is COW); 0 or -EAGAIN."""
    dst_ptl = k.pud_lock(dst_mm, dst_pud)
    src_ptl = k.pud_lockptr(src_mm, src_pud)
    spin_lock(src_ptl)

    ret = EAGAIN
    pud = k.pudp_get(src_pud)
    if k.pud_trans_huge(pud):
        if is_cow_mapping(vma.vm_flags) and k.pud_write(pud):
            k.pudp_set_wrprotect(src_mm, addr, src_pud)
            pud = k.pud_wrprotect(pud)
        pud = k.pud_mkold(pud)
        k.set_pud_at(dst_mm, addr, dst_pud, pud)
        ret = 0
    spin_unlock(src_ptl)
    spin_unlock(dst_ptl)
    return ret


def pmd_move_must_withdraw(new_pmd_ptl: spinlock_t, old_pmd_ptl: spinlock_t,
                           vma: vm_area_struct) -> bool:
    """"With split pmd lock we also need to move preallocated PTE page table if new_pmd is
    on different PMD page table."  Every user vma is anonymous-style here."""
    return new_pmd_ptl is not old_pmd_ptl


def move_huge_pmd(k: GenericKernel, vma: vm_area_struct, old_addr: int, new_addr: int,
                  old_pmd: PmdPtr, new_pmd: PmdPtr) -> bool:
    """mremap: move a whole huge pmd (and its deposit), ``flush_pmd_tlb_range`` of the old
    range if it was present; False if the caller must split."""
    mm = vma.vm_mm
    # "The destination pmd shouldn't be established, free_pgtables() should have released it"
    if not k.pmd_none(k.pmdp_get(new_pmd)):
        return False

    old_ptl = _pmd_trans_huge_lock(k, old_pmd, vma)
    if old_ptl is None:
        return False
    new_ptl = k.pmd_lockptr(mm, new_pmd)
    if new_ptl is not old_ptl:
        spin_lock(new_ptl)
    pmd = k.pmdp_huge_get_and_clear(mm, old_addr, old_pmd)
    force_flush = k.pmd_present(pmd)
    if pmd_move_must_withdraw(new_ptl, old_ptl, vma):
        pgtable = k.pgtable_trans_huge_withdraw(mm, old_pmd)
        k.pgtable_trans_huge_deposit(mm, new_pmd, pgtable)
    # move_soft_dirty_pmd()
    if k.MEM_SOFT_DIRTY and k.pmd_present(pmd):
        pmd = k.pmd_mksoft_dirty(pmd)
    k.set_pmd_at(mm, new_addr, new_pmd, pmd)
    if force_flush:
        k.flush_pmd_tlb_range(vma, old_addr, (old_addr + k.PMD_SIZE) & k.ULONG_MASK)
    if new_ptl is not old_ptl:
        spin_unlock(new_ptl)
    spin_unlock(old_ptl)
    return True


def move_huge_pud(k: GenericKernel, vma: vm_area_struct, old_addr: int, new_addr: int,
                  old_pud: PudPtr, new_pud: PudPtr) -> bool:
    """mm/mremap.c (with its ``pmc`` unpacked): move a whole huge pud and flush the old
    range; False if the destination is populated."""
    mm = vma.vm_mm
    if not k.pud_none(k.pudp_get(new_pud)):  # WARN_ON_ONCE
        return False
    old_ptl = k.pud_lock(mm, old_pud)
    new_ptl = k.pud_lockptr(mm, new_pud)
    if new_ptl is not old_ptl:
        spin_lock(new_ptl)
    pud = k.pudp_get(old_pud)  # "Clear the pud"
    k.pud_clear(old_pud)
    k.set_pud_at(mm, new_addr, new_pud, pud)
    k.flush_pud_tlb_range(vma, old_addr, (old_addr + k.PUD_SIZE) & k.ULONG_MASK)
    if new_ptl is not old_ptl:
        spin_unlock(new_ptl)
    spin_unlock(old_ptl)
    return True


# -- mprotect --------------------------------------------------------------------------


def change_huge_pmd(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, pmd: PmdPtr,
                    addr: int, newprot: pgprot_t) -> int:
    """0 if the pmd is not huge any more, else ``HPAGE_PMD_NR`` (protection changed); the
    range goes on ``tlb`` if ``huge_pmd_needs_flush`` (x86: a demotion; else always)."""
    mm = vma.vm_mm
    tlb_change_page_size(k, tlb, k.PMD_SIZE)  # HPAGE_PMD_SIZE
    ptl = _pmd_trans_huge_lock(k, pmd, vma)
    if ptl is None:
        return 0
    # "Can't clear PMD or it can race with concurrent zapping"
    oldpmd = k.pmdp_invalidate_ad(vma, addr, pmd)
    entry = k.pmd_modify(oldpmd, newprot)
    ret = HPAGE_PMD_NR(k)
    k.set_pmd_at(mm, addr, pmd, entry)
    if huge_pmd_needs_flush(k, oldpmd, entry):
        tlb_flush_pmd_range(k, tlb, addr, k.PMD_SIZE)
    spin_unlock(ptl)
    return ret


def change_huge_pud(k: GenericKernel, tlb: mmu_gather, vma: vm_area_struct, pudp: PudPtr,
                    addr: int, newprot: pgprot_t) -> int:
    """0 if the pud is not huge any more, else ``HPAGE_PUD_NR``; the range goes on
    ``tlb`` (``tlb_flush_pud_range``)."""
    mm = vma.vm_mm
    tlb_change_page_size(k, tlb, k.PUD_SIZE)  # HPAGE_PUD_SIZE
    ptl = _pud_trans_huge_lock(k, pudp, vma)
    if ptl is None:
        return 0
    # "Can't clear PUD or it can race with concurrent zapping.  See change_huge_pmd()."
    oldpud = _pudp_invalidate(k, vma, addr, pudp)
    entry = k.pud_modify(oldpud, newprot)
    k.set_pud_at(mm, addr, pudp, entry)
    tlb_flush_pud_range(k, tlb, addr, k.PUD_SIZE)
    spin_unlock(ptl)
    return HPAGE_PUD_NR(k)


# -- inserting huge pfn maps -----------------------------------------------------------


def insert_pfn_pmd(k: GenericKernel, vma: vm_area_struct, addr: int, pfn: int,
                   prot: pgprot_t) -> int:
    """Map the ``PMD_SIZE`` block at ``addr & PMD_MASK`` to ``pfn`` with one huge pmd
    (``vmf_insert_pfn_pmd`` after the fault path's ``pXd_alloc``s).  0; -ENOMEM; -EFAULT if
    the block is not inside the vma; -EINVAL if ``pfn`` is not block aligned; -EBUSY if
    something is mapped there (the kernel's ``insert_pmd`` silently keeps it)."""
    mm = vma.vm_mm
    addr &= k.PMD_MASK
    if addr < vma.vm_start or addr + k.PMD_SIZE > vma.vm_end:
        return EFAULT
    if pfn & (HPAGE_PMD_NR(k) - 1):
        return EINVAL

    pgd = k.pgd_offset(mm, addr)
    p4d = k.p4d_alloc(mm, pgd, addr)
    if p4d is None:
        return ENOMEM
    pud = k.pud_alloc(mm, p4d, addr)
    if pud is None:
        return ENOMEM
    if k.pud_leaf(k.pudp_get(pud)):
        return EBUSY
    pmd = k.pmd_alloc(mm, pud, addr)
    if pmd is None:
        return ENOMEM

    pgtable = k.pte_alloc_one(mm)
    if pgtable is None:
        return ENOMEM

    ptl = k.pmd_lock(mm, pmd)
    if not k.pmd_none(k.pmdp_get(pmd)):
        spin_unlock(ptl)
        k.pte_free(mm, pgtable)
        return EBUSY
    entry = k.pmd_mkhuge(k.pfn_pmd(pfn, prot))
    entry = k.pmd_mkspecial(entry)
    k.pgtable_trans_huge_deposit(mm, pmd, pgtable)
    k.mm_inc_nr_ptes(mm)
    k.set_pmd_at(mm, addr, pmd, entry)
    spin_unlock(ptl)
    return 0


def insert_pfn_pud(k: GenericKernel, vma: vm_area_struct, addr: int, pfn: int,
                   prot: pgprot_t) -> int:
    """Map the ``PUD_SIZE`` block at ``addr & PUD_MASK`` to ``pfn`` with one huge pud
    (``vmf_insert_pfn_pud``).  Return codes as :func:`insert_pfn_pmd`."""
    mm = vma.vm_mm
    addr &= k.PUD_MASK
    if addr < vma.vm_start or addr + k.PUD_SIZE > vma.vm_end:
        return EFAULT
    if pfn & (HPAGE_PUD_NR(k) - 1):
        return EINVAL

    pgd = k.pgd_offset(mm, addr)
    p4d = k.p4d_alloc(mm, pgd, addr)
    if p4d is None:
        return ENOMEM
    pud = k.pud_alloc(mm, p4d, addr)
    if pud is None:
        return ENOMEM

    ptl = k.pud_lock(mm, pud)
    if not k.pud_none(k.pudp_get(pud)):
        spin_unlock(ptl)
        return EBUSY
    entry = k.pud_mkhuge(k.pfn_pud(pfn, prot))
    entry = k.pud_mkspecial(entry)
    k.set_pud_at(mm, addr, pud, entry)
    spin_unlock(ptl)
    return 0


__all__ = [
    "HPAGE_PMD_NR", "HPAGE_PUD_NR", "change_huge_pmd", "change_huge_pud",
    "copy_huge_pmd", "copy_huge_pud", "insert_pfn_pmd", "insert_pfn_pud", "move_huge_pmd",
    "move_huge_pud", "split_huge_pmd", "split_huge_pud", "split_large_page",
    "zap_huge_pmd", "zap_huge_pud",
]
