"""``struct pgtable_debug_args`` with ``init_args``/``destroy_args`` of mm/debug_vm_pgtable.c.

Written against a booted kernel ``k`` with the legacy API only.  Two versions of the kernel
file are followed: **A** =
torvalds/linux (6.6-6.14 era: ``RANDOM_ORVALUE``, devmap, ``swp_entry`` API) and **B** =
linux-next (``leafops`` era: ``args->swp_entry``/``leaf_entry``, ``destroy_args`` clears each
parent entry before freeing the table it points to, ``mmput``).

Both versions share this setup.  ``destroy_args`` always follows B: with A's order (free the
table, leave the parent entry pointing at it) the emulated i386-pae ``pgd_free`` would free
the PMD preallocated by ``pgd_alloc`` a second time (``pgd_mop_up_pmds`` finds the stale
pgd entry).

The debug mm is never loaded on a CPU (as in the kernel): ``init_args`` keeps it out of the
emulated TLB (``mm_tlb_retire``).

The machine has no page allocator for data pages, so :class:`DataPages` stands in for
``alloc_pages``/``alloc_contig_pages``/``__free_pages``: it hands out naturally aligned pfn
ranges above the physical range ``init_fixed_pfns`` picks, well clear of the page-table frame
allocator (which starts at 16 MiB and grows one frame at a time).  The pages are never
touched (``flush_dcache_page`` is a no-op on the emulated architectures), so they are not
materialized in :class:`arches.memory.PhysMem`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from arches.errors import CheckFailed
from legacy.generic import VM_ACCESS_FLAGS, VM_NONE, GenericKernel
from legacy.mm.mmap import mmput
from legacy.mm_types import mm_struct, spinlock_t, vm_area_struct
from legacy.swapops import MAX_SWAPFILES_SHIFT, swp_entry_t
from legacy.types import P4dPtr, PgdPtr, PmdPtr, PtePtr, PudPtr, pgprot_t, pgtable_t

RANDOM_NZVALUE = 0xFF
"""``GENMASK(7, 0)``: the byte ``memset`` fills p4d/pgd values with."""

MAX_PAGE_ORDER = 10
"""The buddy allocator's largest order (``MAX_ORDER`` before 6.8); above it
``alloc_contig_pages`` is needed."""


class Skip(Exception):
    """A test the kernel compiles out (``#ifdef``) or returns from early; the reason is the
    kernel's condition."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def skip(reason: str) -> Skip:
    """``raise skip("...")``: the kernel's reason for not running a test."""
    return Skip(reason)


def random_orvalue(k: GenericKernel) -> int:
    """Version A's ``RANDOM_ORVALUE``: ``GENMASK(BITS_PER_LONG - 1, 0) & ~ARCH_SKIP_MASK``,
    where ``ARCH_SKIP_MASK`` = ``GENMASK(3, 0)`` (s390's entry type bits) | bit 62 on 64-bit
    (ppc64's pte marker): the same mask on every architecture."""
    skip_mask = 0xF | ((1 << 62) if k.config.word_bits == 64 else 0)
    return k.ULONG_MASK & ~skip_mask


class DataPages:
    """``alloc_pages(GFP_KERNEL, order)`` / ``alloc_contig_pages`` / ``__free_pages`` for
    pages that hold data: naturally aligned pfn ranges, each freed exactly once."""

    def __init__(self, k: GenericKernel, base: int) -> None:
        self.k = k
        self.cursor = base
        self.live: dict[int, int] = {}
        """pfn -> order of every allocated block."""

    def alloc(self, order: int) -> int | None:
        """First-fit above the cursor; None (NULL) when the range would leave physical
        memory or overlap a page-table frame."""
        k = self.k
        size = k.PAGE_SIZE << order
        start = (self.cursor + size - 1) & ~(size - 1)
        end = start + size
        if end > 1 << k.config.phys_bits:
            return None
        if any(start <= pa < end for pa in k.mem.allocated_frames()):
            return None
        self.cursor = end
        pfn = start >> k.PAGE_SHIFT
        self.live[pfn] = order
        return pfn

    def free(self, pfn: int, order: int) -> None:
        if self.live.get(pfn) != order:
            raise CheckFailed(f"__free_pages({pfn:#x}, {order}): not an allocated block")
        del self.live[pfn]

    def check_untouched(self) -> None:
        """No page-table frame was handed out inside a live data block."""
        k = self.k
        for pfn, order in self.live.items():
            start, end = pfn << k.PAGE_SHIFT, (pfn << k.PAGE_SHIFT) + (k.PAGE_SIZE << order)
            clash = [pa for pa in k.mem.allocated_frames() if start <= pa < end]
            if clash:
                raise CheckFailed(f"page-table frame {clash[0]:#x} inside data page {pfn:#x}")


@dataclass(eq=False)
class PgtableDebugArgs:
    """``struct pgtable_debug_args``; ``k`` and ``version`` are the emulator's additions."""

    k: GenericKernel
    version: str
    mm: mm_struct | None = None
    vma: vm_area_struct | None = None

    pgdp: PgdPtr | None = None
    p4dp: P4dPtr | None = None
    pudp: PudPtr | None = None
    pmdp: PmdPtr | None = None
    ptep: PtePtr | None = None

    start_p4dp: P4dPtr | None = None
    start_pudp: PudPtr | None = None
    start_pmdp: PmdPtr | None = None
    start_ptep: pgtable_t | None = None

    vaddr: int = 0
    page_prot: pgprot_t = pgprot_t(0)
    page_prot_none: pgprot_t = pgprot_t(0)

    is_contiguous_page: bool = False
    pud_pfn: int = 0
    pmd_pfn: int = 0
    pte_pfn: int = 0

    fixed_alignment: int = 0
    fixed_pgd_pfn: int = 0
    fixed_p4d_pfn: int = 0
    fixed_pud_pfn: int = 0
    fixed_pmd_pfn: int = 0
    fixed_pte_pfn: int = 0

    swp_entry: swp_entry_t = swp_entry_t(0)
    """B: a swap entry with all possible bits set while still being swap."""
    leaf_entry: swp_entry_t = swp_entry_t(0)
    """B: a non-present migration entry."""

    pages: DataPages | None = None
    frames_before: frozenset[int] = field(default_factory=frozenset)
    """Physical frames allocated before ``init_args``: what ``destroy_args`` must leave."""

    @property
    def ULONG_MAX(self) -> int:
        return self.k.ULONG_MASK

    # Non-None views of the pointers for the tests (init_args WARNs when one is NULL).
    @property
    def the_mm(self) -> mm_struct:
        assert self.mm is not None
        return self.mm

    @property
    def the_vma(self) -> vm_area_struct:
        assert self.vma is not None
        return self.vma


def get_random_vaddr(k: GenericKernel, random_long: int) -> int:
    """``FIRST_USER_ADDRESS + (get_random_long() % total_user_pages) * PAGE_SIZE``."""
    total_user_pages = (k.TASK_SIZE - k.FIRST_USER_ADDRESS) // k.PAGE_SIZE
    random_pages = (random_long & k.ULONG_MASK) % total_user_pages
    return k.FIRST_USER_ADDRESS + random_pages * k.PAGE_SIZE


def for_each_mem_range(k: GenericKernel) -> list[tuple[int, int]]:
    """The emulated machine's memory: all of its physical address space, in one range."""
    return [(0, 1 << k.config.phys_bits)]


def phys_align_check(
    k: GenericKernel, pstart: int, pend: int, psize: int, physp: list[int], alignp: list[int]
) -> None:
    """Whether ``[pstart, pend)`` holds a ``psize``-aligned ``psize`` area; "Don't use
    address 0, an all-zeroes physical address might mask bugs"."""
    if pstart == 0:
        pstart = k.PAGE_SIZE
    aligned_start = (pstart + psize - 1) & ~(psize - 1)
    aligned_end = aligned_start + psize
    if aligned_end > aligned_start and aligned_end <= pend:
        alignp[0] = psize
        physp[0] = aligned_start


def pfn_valid(k: GenericKernel, pfn: int) -> bool:
    return any(s <= pfn << k.PAGE_SHIFT < e for s, e in for_each_mem_range(k))


def init_fixed_pfns(args: PgtableDebugArgs) -> None:
    """A usable physical range, PUD-aligned by preference, else PMD-aligned; the kernel would
    fall back to ``__pa_symbol(&start_kernel)``.  The memory is never touched."""
    k = args.k
    phys = [k.PAGE_SIZE]  # __pa_symbol(&start_kernel): the emulated kernel has no image
    alignment = [k.PAGE_SIZE]
    for pstart, pend in for_each_mem_range(k):
        # First check for a PUD-aligned area
        phys_align_check(k, pstart, pend, k.PUD_SIZE, phys, alignment)
        # If a PUD-aligned area is found, we're done
        if alignment[0] == k.PUD_SIZE:
            break
        # If no PMD-aligned area found yet, check for one, but continue the loop to look for
        # a PUD-aligned area.
        if alignment[0] < k.PMD_SIZE:
            phys_align_check(k, pstart, pend, k.PMD_SIZE, phys, alignment)
    args.fixed_alignment = alignment[0]
    p = phys[0]
    args.fixed_pgd_pfn = (p & k.PGDIR_MASK) >> k.PAGE_SHIFT
    args.fixed_p4d_pfn = (p & k.P4D_MASK) >> k.PAGE_SHIFT
    args.fixed_pud_pfn = (p & k.PUD_MASK) >> k.PAGE_SHIFT
    args.fixed_pmd_pfn = (p & k.PMD_MASK) >> k.PAGE_SHIFT
    args.fixed_pte_pfn = (p & k.PAGE_MASK) >> k.PAGE_SHIFT
    assert pfn_valid(k, args.fixed_pte_pfn), "init_fixed_pfns: WARN_ON(!pfn_valid(fixed_pte_pfn))"


def debug_vm_pgtable_alloc_huge_page(args: PgtableDebugArgs, order: int) -> int | None:
    """``alloc_contig_pages`` above ``MAX_PAGE_ORDER`` (``CONFIG_CONTIG_ALLOC``), else
    ``alloc_pages``; returns the pfn or None."""
    assert args.pages is not None
    if order > MAX_PAGE_ORDER:
        pfn = args.pages.alloc(order)
        if pfn is not None:
            args.is_contiguous_page = True
            return pfn
    if order <= MAX_PAGE_ORDER:
        return args.pages.alloc(order)
    return None


def vm_area_alloc(k: GenericKernel, mm: mm_struct) -> vm_area_struct:
    """``vm_area_alloc(mm)``: a zeroed vma of ``mm`` (``vma_init``), not linked anywhere."""
    return vm_area_struct(vm_mm=mm, vm_start=0, vm_end=0, vm_flags=0, vm_page_prot=0)


def init_args(k: GenericKernel, version: str = "A", random_long: int | None = None) -> (
    PgtableDebugArgs
):
    """Allocate the mm, its page tables down to a PTE table for a random user address, pick
    the fixed pfns and allocate the (huge) page.  -ENOMEM is a test failure here."""
    if random_long is None:
        random_long = random.getrandbits(k.config.word_bits)
    args = PgtableDebugArgs(k=k, version=version)
    args.frames_before = frozenset(k.mem.allocated_frames())
    pool = 2 * max(k.PUD_SIZE, k.PMD_SIZE)
    args.pages = DataPages(k, pool)

    # vm_get_page_prot(VM_NONE) or vm_get_page_prot(VM_SHARED|VM_NONE) will help create page
    # table entries with PROT_NONE permission as required for pxx_protnone_tests().
    args.vaddr = get_random_vaddr(k, random_long)
    args.page_prot = k.vm_get_page_prot(VM_ACCESS_FLAGS)
    args.page_prot_none = k.vm_get_page_prot(VM_NONE)
    args.is_contiguous_page = False
    ulong_max = k.ULONG_MASK
    args.pud_pfn = args.pmd_pfn = args.pte_pfn = ulong_max
    args.fixed_pgd_pfn = args.fixed_p4d_pfn = args.fixed_pud_pfn = ulong_max
    args.fixed_pmd_pfn = args.fixed_pte_pfn = ulong_max

    # Allocate mm and vma
    args.mm = k.mm_alloc()
    if args.mm is None:
        raise CheckFailed("init_args: Failed to allocate mm struct")
    # No CPU ever runs on this mm (the kernel never switch_mm()s to it), so no TLB caches its
    # translations: its ASID is not loaded in the emulated TLB.  The tests write raw and even
    # garbage entries as the kernel's do, without flushes; the emulated lockdep, which checks
    # stores into tables a CPU can reach, does not look at them either -- the locks the
    # driver takes are asserted by the tests themselves.
    k.mm_tlb_retire(args.mm)
    args.vma = vm_area_alloc(k, args.mm)

    # Allocate page table entries. They will be modified in the tests.  Lets save the page
    # table entries so that they can be released when the tests are completed.
    args.pgdp = k.pgd_offset(args.mm, args.vaddr)
    args.p4dp = k.p4d_alloc(args.mm, args.pgdp, args.vaddr)
    if args.p4dp is None:
        destroy_args(args)
        raise CheckFailed("init_args: Failed to allocate p4d entries")
    args.start_p4dp = k.p4d_offset(args.pgdp, 0)
    assert args.start_p4dp is not None, "init_args: WARN_ON(!args->start_p4dp)"

    args.pudp = k.pud_alloc(args.mm, args.p4dp, args.vaddr)
    if args.pudp is None:
        destroy_args(args)
        raise CheckFailed("init_args: Failed to allocate pud entries")
    args.start_pudp = k.pud_offset(args.p4dp, 0)
    assert args.start_pudp is not None, "init_args: WARN_ON(!args->start_pudp)"

    args.pmdp = k.pmd_alloc(args.mm, args.pudp, args.vaddr)
    if args.pmdp is None:
        destroy_args(args)
        raise CheckFailed("init_args: Failed to allocate pmd entries")
    args.start_pmdp = k.pmd_offset(args.pudp, 0)
    assert args.start_pmdp is not None, "init_args: WARN_ON(!args->start_pmdp)"

    if k.pte_alloc(args.mm, args.pmdp):
        destroy_args(args)
        raise CheckFailed("init_args: Failed to allocate pte entries")
    args.start_ptep = k.pmd_pgtable(k.pmdp_get(args.pmdp))
    assert args.start_ptep is not None, "init_args: WARN_ON(!args->start_ptep)"

    init_fixed_pfns(args)

    # B: the swap entries some tests start from.
    if k.SWP_ENTRY_EMULATED:
        # See generic_max_swapfile_size(): probe the maximum offset
        max_swap_offset = k.swp_offset(
            k.pte_to_swp_entry(k.swp_entry_to_pte(k.swp_entry(0, ulong_max)))
        )
        # Create a swp entry with all possible bits set while still being swap.
        args.swp_entry = k.swp_entry(k.MAX_SWAPFILES - 1, max_swap_offset)
    # Create a non-present migration entry.
    args.leaf_entry = k.make_writable_migration_entry(ulong_max)

    # Allocate (huge) pages because some of the tests need to access the data in the pages.
    # The corresponding tests will be skipped if we fail to allocate (huge) pages.
    if k.TRANSPARENT_HUGEPAGE and k.has_transparent_pud_hugepage():
        pfn = debug_vm_pgtable_alloc_huge_page(args, k.PUD_SHIFT - k.PAGE_SHIFT)
        if pfn is not None:
            args.pud_pfn = args.pmd_pfn = args.pte_pfn = pfn
            return args

    if k.TRANSPARENT_HUGEPAGE and k.has_transparent_hugepage():
        pfn = debug_vm_pgtable_alloc_huge_page(args, k.PMD_SHIFT - k.PAGE_SHIFT)
        if pfn is not None:
            args.pmd_pfn = args.pte_pfn = pfn
            return args

    pfn = args.pages.alloc(0)
    if pfn is not None:
        args.pte_pfn = pfn
    return args


def held_locks(k: GenericKernel) -> list[spinlock_t]:
    """Every emulated spinlock still held: split ptlocks, page_table_locks, pgd_lock."""
    locks = [d.ptl for d in k.ptdescs.values() if d.ptl is not None]
    locks += [mm.page_table_lock for mm in (k.init_mm, *k.mms)]
    pgd_lock = getattr(k, "pgd_lock", None)
    if isinstance(pgd_lock, spinlock_t):
        locks.append(pgd_lock)
    return [lock for lock in locks if lock.held]


def _mmput_or_mmdrop(args: PgtableDebugArgs, mm: mm_struct) -> None:
    """A ends with ``mmdrop``, B with ``mmput`` (``exit_mmap``, then ``mmdrop``); both run
    ``check_mm``."""
    if args.version == "B":
        mmput(args.k, mm)
    else:
        args.k.mmdrop(mm)


def destroy_args(args: PgtableDebugArgs) -> None:
    """Free the (huge) page, then each page table after clearing the entry that points to
    it (B), with the ``mm_dec_nr_*`` the allocation paths charged; then drop the mm, which
    runs ``check_mm``.  Finally check that every frame ``init_args`` allocated is free
    again and that no lock is left held."""
    k = args.k
    ulong_max = k.ULONG_MASK
    assert args.pages is not None
    args.pages.check_untouched()

    # Free (huge) page
    if k.TRANSPARENT_HUGEPAGE and k.has_transparent_pud_hugepage() and args.pud_pfn != ulong_max:
        args.pages.free(args.pud_pfn, k.PUD_SHIFT - k.PAGE_SHIFT)
        args.pud_pfn = args.pmd_pfn = args.pte_pfn = ulong_max
    if k.TRANSPARENT_HUGEPAGE and k.has_transparent_hugepage() and args.pmd_pfn != ulong_max:
        args.pages.free(args.pmd_pfn, k.PMD_SHIFT - k.PAGE_SHIFT)
        args.pmd_pfn = args.pte_pfn = ulong_max
    if args.pte_pfn != ulong_max:
        args.pages.free(args.pte_pfn, 0)
        args.pte_pfn = ulong_max
    assert not args.pages.live, "destroy_args: a data page was not freed"

    mm = args.the_mm
    # Free page table entries
    if args.start_ptep is not None:
        assert args.pmdp is not None
        k.pmd_clear(args.pmdp)
        k.pte_free(mm, args.start_ptep)
        k.mm_dec_nr_ptes(mm)
    if args.start_pmdp is not None:
        assert args.pudp is not None
        k.pud_clear(args.pudp)
        k.pmd_free(mm, args.start_pmdp)
        k.mm_dec_nr_pmds(mm)
    if args.start_pudp is not None:
        assert args.p4dp is not None
        k.p4d_clear(args.p4dp)
        k.pud_free(mm, args.start_pudp)
        k.mm_dec_nr_puds(mm)
    if args.start_p4dp is not None:
        assert args.pgdp is not None
        k.pgd_clear(args.pgdp)
        k.p4d_free(mm, args.start_p4dp)

    # Free vma and mm struct
    args.vma = None
    _mmput_or_mmdrop(args, mm)
    args.mm = None

    leaked = sorted(set(k.mem.allocated_frames()) - args.frames_before)
    if leaked:
        raise CheckFailed(f"destroy_args: {len(leaked)} frame(s) not freed: {leaked[0]:#x}...")
    if k.pmd_huge_ptes:
        raise CheckFailed("destroy_args: a deposited page table was never withdrawn")
    held = held_locks(k)
    if held:
        raise CheckFailed(f"destroy_args: locks still held: {held}")


__all__ = [
    "MAX_SWAPFILES_SHIFT", "RANDOM_NZVALUE", "DataPages", "PgtableDebugArgs", "Skip",
    "destroy_args", "get_random_vaddr", "held_locks", "init_args", "random_orvalue", "skip",
]
