"""The kernel's TLB flush API (Documentation/core-api/cachetlb.rst, include/linux/pgtable.h,
mm/pgtable-generic.c, include/asm-generic/tlb.h ``tlb_flush``), over the emulated TLB of
:mod:`arches.tlb`.

Every emulated kernel has a hardware TLB (``k.hw_tlb``) that notes which translations a
page-table store left possibly stale; the functions here invalidate them with each
architecture's semantics.  The generic versions are what an architecture without its own
gets; ``legacy/x86/tlbflush.py`` and ``legacy/arm64/tlbflush.py`` say what differs (on
arm64 ``flush_tlb_page`` and ``flush_tlb_kernel_range`` invalidate the last level only).

Also here: the end-of-call-site check (:meth:`TlbflushGeneric.syscall_exit`) and the
emulator's hooks that tell the TLB which roots a CPU uses (``switch_mm``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import TYPE_CHECKING, NamedTuple

from arches.errors import LockError
from arches.tlb import KERNEL_SPACE, NONE, TABLE, Tlb, space_by_range
from legacy.mm_types import mm_assert_write_locked_for, mm_struct, spinlock_t, vm_area_struct
from legacy.pgtable import PgtableGeneric
from legacy.types import EntryPtr, PmdPtr, PtePtr, PudPtr, pmd_t, pte_t, pud_t

if TYPE_CHECKING:
    from legacy.mm.mmu_gather import mmu_gather

_UNIFIED_API = ("/unified/legacy_ops.py", "/unified/pagetables.py", "/unified/handles.py",
                "/unified/flush.py")


class Site(NamedTuple):
    """Where a call site wrote an entry; printed ``function (dir/file.py:line)``."""

    function: str
    filename: str
    line: int

    def __str__(self) -> str:
        short = self.filename.replace("\\", "/").rsplit("/", 2)
        return f"{self.function} ({'/'.join(short[-2:])}:{self.line})"


_is_api: dict[CodeType, bool] = {}


def _api_code(code: CodeType) -> bool:
    """The page-table API itself: the hardware (``arches/``), the legacy kernel but its call
    sites (``legacy/mm/``, except the ``mmu_gather`` machinery), the unified core."""
    fn = code.co_filename.replace("\\", "/")
    if "/legacy/" in fn:
        r = "/legacy/mm/" not in fn or fn.endswith("/legacy/mm/mmu_gather.py")
    else:
        r = "/arches/" in fn or fn.endswith(_UNIFIED_API)
    _is_api[code] = r
    return r


def call_site(depth: int = 2) -> Site | str:
    """The innermost caller outside the page-table API itself: the call site that wrote an
    entry or took a decision."""
    f: FrameType | None = sys._getframe(depth)
    while f is not None:
        code = f.f_code
        api = _is_api.get(code)
        if api is None:
            api = _api_code(code)
        if not api:
            return Site(code.co_name, code.co_filename, f.f_lineno)
        f = f.f_back
    return "?"


class TlbflushGeneric(PgtableGeneric):
    """The generic flush API.  ``hw_tlb`` is made by :meth:`tlb_init`."""

    hw_tlb: Tlb
    mms: list[mm_struct]
    SEPARATE_KERNEL_ROOT: bool

    def tlb_init(self) -> None:
        """Power on the TLB: attach it to memory as the store observer."""
        c = self.config
        self.hw_tlb = Tlb(
            self.mem.read, self.mem.read_bytes, c.endianness,
            space_by_range(c.kernel_range[0]), c.addr_mask,
            break_before_make=c.break_before_make,
            range_flush_clears_walk_caches=c.range_flush_clears_walk_caches,
        )
        self.hw_tlb.site = call_site
        self.mem.observer = self.hw_tlb
        self._lock_memo: dict[int, tuple[int, spinlock_t | None]] = {}
        self._lock_memo_shift = min(lv.table_bytes for lv in c.hw_levels).bit_length() - 1
        self._lock_memo_frames: dict[int, list[int]] = {}
        self.ptdescs.on_change = self._forget_locks
        self.syscall_exit_hooks: list[Callable[[str], None]] = []
        """Further end-of-call-site checks (the unified API's unconsumed flush obligations
        register here); each gets ``where`` and raises on a violation."""

    # -- lockdep: the lock every page-table store needs -------------------------------------

    lockdep_enabled = True
    """Assert the kernel's page-table locking rules on every store (tests may switch it
    off to plant a bug elsewhere)."""
    _lockless: tuple[mm_struct, str] | None = None

    def _write(self, p: EntryPtr, v: int) -> int:
        if self.lockdep_enabled:
            # The answer kept for the table, looked at inline: most stores need no more.
            memo = self._lock_memo.get(p.pa >> self._lock_memo_shift)
            if (memo is None or memo[0] != self.hw_tlb.generation
                    or self._lockless is not None
                    or memo[1] is not None and not memo[1].held):
                self._lockdep(p, v)
        return self.mem.exchange(p.pa, p.size, v)

    def _write_run(self, p: EntryPtr, values: Sequence[int]) -> None:
        """Consecutive entries of one table (``set_ptes``): the lock every store needs is the
        table's, asked for the first and the last; the stores reach the TLB model entry by
        entry when a root reaches the table (:meth:`PhysMem.write_run`)."""
        if self.lockdep_enabled:
            self._lockdep(p, values[0])
            self._lockdep(p + (len(values) - 1), values[-1])
        self.mem.write_run(p.pa, p.size, values)

    def _lockdep(self, p: EntryPtr, v: int) -> None:
        """Raise unless the lock storing ``v`` at ``p`` needs is held (the answer kept for
        the table, else :meth:`pgtable_lock_required`)."""
        memo = self._lock_memo.get(p.pa >> self._lock_memo_shift)
        if (memo is not None and memo[0] == self.hw_tlb.generation
                and self._lockless is None):
            lock = memo[1]
        else:
            lock = self.pgtable_lock_required(p, v)
        if lock is not None and not lock.held:
            self.lockdep_assert_pgtable_write(p, v)  # raises, saying what is missing

    def pgtable_lock_required(self, p: EntryPtr, v: int) -> spinlock_t | None:
        """The lock the kernel requires for storing ``v`` at ``p``, or None when none is
        (Documentation/mm/process_addrs.rst, "Page table locks"):

        - a table no root reaches (being prepared, deposited, detached): none -- only its
          owner can see it;
        - user entries: the PTE table's split lock (``pte_offset_map_lock``), the PMD
          table's ``pmd_lock``, ``mm->page_table_lock`` above (``pud_lock`` and the
          ``__p?d_alloc`` populate paths) -- with the folding of the configuration;
        - kernel entries (``init_mm``, and the kernel half of a process pgd): stores are
          serialised by their callers (the vmalloc area's owner, cpa), except populating a
          table, which takes the page-table lock of the table's mm (``__pte_alloc_kernel``,
          ``__p?d_alloc``, ``sync_global_pgds``);
        - ``free_pgtables`` / exit: none, with ``mmap_lock`` held for write and the range
          detached (:meth:`pgtable_lockless`)."""
        desc = self.table_desc(p.pa)  # a sub-page table's own, not its frame's
        if desc is None:
            return None
        space = self.hw_tlb.space_at(p.pa)
        if space is None:
            return self._memo_lock(p, None)  # until a root reaches the table
        mm = desc.mm if desc.mm is not None else self.init_mm
        if space == KERNEL_SPACE or mm.is_init_mm:
            tlb = self.hw_tlb
            if tlb.at_last_level(p.pa):
                return self._memo_lock(p, None)  # no table to populate below a pte
            if tlb.classify(p.pa, v) == TABLE and tlb.classify(
                p.pa, self.mem.read(p.pa, p.size)
            ) == NONE:
                cpa = self.kernel_split_lock()
                if cpa is not None and cpa.held:
                    return cpa  # cpa splits a kernel leaf under its own lock
                return mm.page_table_lock
            return None
        if self._lockless is not None and self._lockless[0] is mm:
            return None
        if desc.level == "pte":
            if self.USE_SPLIT_PTE_PTLOCKS and desc.ptl is not None:
                lock = desc.ptl  # ptep_lockptr: the split lock of the table's own ptdesc
            else:
                lock = self.ptep_lockptr(mm, PtePtr(p.pa, p.size))
        elif desc.level == "pmd":
            lock = self.pmd_lockptr(mm, PmdPtr(p.pa, p.size))
        else:
            lock = mm.page_table_lock
        if self.hw_tlb.table_space(p.pa) is not None:
            self._memo_lock(p, lock)  # a user table below the root: one lock for all of it
        return lock

    def _memo_lock(self, p: EntryPtr, lock: spinlock_t | None) -> spinlock_t | None:
        """Keep the answer of :meth:`pgtable_lock_required` for every entry of the table
        holding ``p`` (a block of the smallest table size) until the roots reach other
        tables, or a descriptor in the block's frame comes, goes or changes (the answer
        reads only the descriptor of the table and of its frame): stores come by the
        thousand into one table (a split's fill, a zap) and asked the same question."""
        if self._lockless is None:
            block = p.pa >> self._lock_memo_shift
            if block not in self._lock_memo:
                self._lock_memo_frames.setdefault(self.frame_of(p.pa), []).append(block)
            self._lock_memo[block] = (self.hw_tlb.generation, lock)
        return lock

    def _forget_locks(self, pa: int) -> None:
        """The descriptor at ``pa`` came, went or changed: forget the answers kept for the
        tables of its frame."""
        for block in self._lock_memo_frames.pop(self.frame_of(pa), ()):
            self._lock_memo.pop(block, None)

    def kernel_split_lock(self) -> spinlock_t | None:
        """The lock under which the architecture's set_memory code splits a kernel leaf into
        a table (x86 cpa: ``pgd_lock``, arch/x86/mm/pat/set_memory.c); None by default."""
        return None

    def lockdep_assert_pgtable_write(self, p: EntryPtr, v: int) -> None:
        """``lockdep_assert_held`` of :meth:`pgtable_lock_required` for this store."""
        lock = self.pgtable_lock_required(p, v)
        if lock is None or lock.held:
            return
        desc = self.table_desc(p.pa)
        assert desc is not None
        where = self.hw_tlb.lookup(p.pa)
        va = f" mapping [{where[1]:#x}, +{where[2]:#x}) ({where[3]})" if where else ""
        held = [m.page_table_lock.name for m in self.mms if m.page_table_lock.held]
        held += [d.ptl.name for d in self.ptdescs.values() if d.ptl is not None and d.ptl.held]
        raise LockError(
            f"lockdep: {call_site()} writes the {desc.level} table entry at {p.pa:#x}{va} "
            f"of {desc.mm.name if desc.mm else 'init_mm'} without {lock.name}; held: "
            f"{', '.join(held) or 'nothing'}"
        )

    @contextmanager
    def pgtable_lockless(self, mm: mm_struct, why: str) -> Iterator[None]:
        """The documented exception to the page-table locks: tearing down tables of a range
        no one can reach (``free_pgtables``: the vmas are detached and ``mmap_lock`` is held
        for write).  Asserts ``mmap_lock`` is write-held."""
        if self.lockdep_enabled:
            mm_assert_write_locked_for(mm, why)
        saved = self._lockless
        self._lockless = (mm, why)
        try:
            yield
        finally:
            self._lockless = saved

    # -- which roots the CPU uses (switch_mm) ---------------------------------------------

    def mm_root(self, mm: mm_struct) -> int:
        """The value ``switch_mm`` loads into the root register for ``mm`` (what
        ``ArchConfig.make_registers`` takes): ``__pa(mm->pgd)`` -- x86 ``build_cr3``, arm64
        ``phys_to_ttbr(virt_to_phys(pgd))``, RISC-V ``satp`` PPN (the register builders add
        the mode and flag bits).  s390 overrides it: its root is ``mm->context.asce``.  Not
        a kernel symbol."""
        return mm.pgd.pa

    def switch_mm(self, mm: mm_struct) -> None:
        """Load ``mm``'s roots (CR3 / TTBR0+TTBR1) under its ASID: from now on the TLB sees
        every store into the tables they reach.  ``init_mm`` is loaded for the kernel
        half only where the kernel has a root of its own."""
        user = self.mm_root(mm)
        kernel = self.mm_root(self.init_mm) if self.SEPARATE_KERNEL_ROOT else user
        walks = self.config.walker.structure(self.config.make_registers(user, kernel))
        if mm.is_init_mm and self.SEPARATE_KERNEL_ROOT:
            # the kernel root's walk, not the user one: it starts above user space (ppc64
            # radix quadrant 3 starts at 0xc000..., below its vmalloc area's kernel_range)
            start = self.config.user_range[1]
            walks = tuple(w for w in walks if w.va_base >= start)
        self.hw_tlb.activate(mm.asid, walks)

    def mm_tlb_retire(self, mm: mm_struct) -> None:
        """The mm is gone: its ASID is retired (``__mmdrop``)."""
        self.hw_tlb.deactivate(mm.asid)

    def _space(self, mm: mm_struct) -> int:
        return KERNEL_SPACE if mm.is_init_mm else mm.asid

    # -- include/linux/... flush_tlb_* (generic: a full invalidation of what is asked) ----

    # What the architecture's flush functions invalidate, where the hardware allows more
    # (``ArchConfig.range_flush_clears_walk_caches``/``addr_flush_reaches_walk_caches`` say
    # what the instructions can do; these say which ones the kernel chose).  Not kernel
    # symbols: tests use them to predict which stale entries a flush leaves.
    FLUSH_TLB_PAGE_LAST_LEVEL = False
    """``flush_tlb_page`` invalidates leaf entries only (arm64 ``TLBI VALE1IS``)."""
    FLUSH_TLB_KERNEL_RANGE_LAST_LEVEL = False
    """``flush_tlb_kernel_range`` invalidates leaf entries only (arm64 ``TLBI VAALE1IS``)."""
    FLUSH_TLB_KERNEL_RANGE_ALL = False
    """``flush_tlb_kernel_range`` invalidates every kernel translation and walk-cache entry
    whatever the range (ppc64 radix ``_tlbie_pid(0, RIC_FLUSH_ALL)``, s390 IDTE)."""
    FLUSH_TLB_MM_KEEPS_WALK_CACHES = False
    """``flush_tlb_mm`` invalidates translations only, not walk-cache entries (ppc64 radix
    ``RIC_FLUSH_TLB``: the mmu_gather flushes the page walk cache when tables are freed)."""
    SPURIOUS_FAULT_FLUSH_EMPTY = False
    """``flush_tlb_fix_spurious_fault`` is empty (arm64: broadcast TLBIs; book3s64: the pte
    is re-fetched on a permission fault; s390 without the RDP facility); the generic one is
    ``flush_tlb_page``."""
    FLUSH_PENDING_PER_MM = False
    """The flush owed for a cleared entry is remembered per mm, not per range, and any
    ``flush_tlb_range``/``flush_tlb_mm``/``tlb_flush`` purges the whole space while one is
    pending (s390 ``mm->context.flush_mm``, ``__tlb_flush_mm_lazy``): a flush given the wrong
    range does no harm there -- and they purge nothing when none is pending (a plain
    ``pmd_clear`` sets no ``flush_mm``: only the lazy exchanges and ``p?d_free_tlb`` do)."""
    FLUSH_TLB_PAGE_EMPTY = False
    """``flush_tlb_page`` invalidates nothing (s390 asm/tlbflush.h: ``do { } while (0)``):
    the kernel's single-page clears invalidate at the store (s390 ``ptep_clear_flush`` is
    ``ptep_xchg_direct``: IPTE), and a lazily cleared pte (``ptep_get_and_clear``) owes
    ``flush_tlb_range``/``flush_tlb_mm``."""
    HUGE_CLEAR_INVALIDATES = False
    """``pmdp_huge_get_and_clear`` (so ``pmdp_huge_clear_flush``) and
    ``pudp_huge_get_and_clear`` invalidate the TLB as they clear (s390 asm/pgtable.h:
    ``pmdp_xchg_direct``/``pudp_xchg_direct``, IDTE): nothing is left stale for
    ``flush_pmd_tlb_range``/``flush_pud_tlb_range``."""
    PTE_CHANGE_GOES_THROUGH_INVALID = False
    """A present pte is never changed in place: ``ptep_set_wrprotect`` and the other
    exchanges store the invalid bit (or IPTE) first, then the new value (s390 asm/tlb.h: "a
    two step process: i) invalidate the pte, ii) store the new pte"; ``ptep_xchg_lazy``,
    ``ptep_xchg_direct`` in arch/s390/mm/pgtable.c).  The TLB sees a translation cleared,
    then made again: a write-protect is reported as "cleared", not as "write permission
    removed"."""
    HAVE_MMU_GATHER_PAGE_SIZE = False
    """``CONFIG_HAVE_MMU_GATHER_PAGE_SIZE`` (powerpc): the mmu_gather flushes with one page
    size, so ``tlb_change_page_size`` flushes what was gathered at another
    (include/asm-generic/tlb.h)."""

    def pte_free_tlb_range(self, addr: int) -> tuple[int, int] | None:
        """``(start, size)`` that the architecture's ``__pte_free_tlb`` adds to the gather
        before freeing the PTE table mapping ``addr`` (classic arm: a page on each side of
        the 1 MiB boundary, asm/tlb.h), or None: the generic one adds nothing.  Not a
        kernel symbol: the hook the shared ``pte_free_tlb`` calls."""
        return None

    def flush_tlb_all(self) -> None:
        self.hw_tlb.flush_all()

    def flush_tlb_mm(self, mm: mm_struct) -> None:
        """Invalidate every user translation of ``mm`` (its ASID/PCID)."""
        self.hw_tlb.flush_space(self._space(mm))

    def flush_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        """Invalidate ``[start, end)`` of ``vma->vm_mm``: leaf and walk-cache entries."""
        self.hw_tlb.flush(self._space(vma.vm_mm), start, end & self.ULONG_MASK, walk=True)

    def flush_tlb_page(self, vma: vm_area_struct, addr: int) -> None:
        addr &= self.PAGE_MASK
        self.flush_tlb_range(vma, addr, (addr + self.PAGE_SIZE) & self.ULONG_MASK)

    def flush_tlb_kernel_range(self, start: int, end: int) -> None:
        """Invalidate ``[start, end)`` of the kernel's (global) translations."""
        self.hw_tlb.flush(KERNEL_SPACE, start, end & self.ULONG_MASK, walk=True)

    def flush_pmd_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        """include/linux/pgtable.h: ``flush_tlb_range`` unless the architecture has its own."""
        self.flush_tlb_range(vma, start, end)

    def flush_pud_tlb_range(self, vma: vm_area_struct, start: int, end: int) -> None:
        self.flush_tlb_range(vma, start, end)

    def flush_tlb_fix_spurious_fault(self, vma: vm_area_struct, address: int,
                                     ptep: PtePtr) -> None:
        """include/linux/pgtable.h default: ``flush_tlb_page``."""
        self.flush_tlb_page(vma, address)

    def pte_needs_flush(self, oldpte: pte_t, newpte: pte_t) -> bool:
        """include/linux/pgtable.h default: a changed pte always needs a flush (x86 knows
        better: legacy/x86/tlbflush.py)."""
        return True

    def huge_pmd_needs_flush(self, oldpmd: pmd_t, newpmd: pmd_t) -> bool:
        """include/linux/pgtable.h default, as :meth:`pte_needs_flush`."""
        return True

    # -- mm/pgtable-generic.c: clear-and-flush ----------------------------------------------

    def pte_accessible(self, mm: mm_struct, pte: pte_t) -> bool:
        """include/linux/pgtable.h default: ``pte_present``."""
        return self.pte_present(pte)

    def ptep_clear_flush(self, vma: vm_area_struct, address: int, ptep: PtePtr) -> pte_t:
        """Clear the pte and flush it if the hardware could have cached it."""
        mm = vma.vm_mm
        pte = self.ptep_get_and_clear(mm, address, ptep)
        if self.pte_accessible(mm, pte):
            self.flush_tlb_page(vma, address)
        return pte

    def pmdp_huge_clear_flush(self, vma: vm_area_struct, address: int, pmdp: PmdPtr) -> pmd_t:
        """``VM_BUG_ON(address & ~HPAGE_PMD_MASK)``; get-and-clear; flush the huge range."""
        if address & ~self.PMD_MASK & self.ULONG_MASK:
            raise AssertionError("pmdp_huge_clear_flush: address not PMD aligned")
        pmd = self.pmdp_huge_get_and_clear(vma.vm_mm, address, pmdp)  # type: ignore[attr-defined]
        self.flush_pmd_tlb_range(vma, address, address + self.PMD_SIZE)
        return pmd  # type: ignore[no-any-return]

    def pudp_huge_clear_flush(self, vma: vm_area_struct, address: int, pudp: PudPtr) -> pud_t:
        if address & ~self.PUD_MASK & self.ULONG_MASK:
            raise AssertionError("pudp_huge_clear_flush: address not PUD aligned")
        pud = self.pudp_huge_get_and_clear(vma.vm_mm, address, pudp)  # type: ignore[attr-defined]
        self.flush_pud_tlb_range(vma, address, address + self.PUD_SIZE)
        return pud  # type: ignore[no-any-return]

    # -- include/asm-generic/tlb.h: the mmu_gather's flush ---------------------------------

    def tlb_flush(self, tlb: mmu_gather) -> None:
        """asm-generic ``tlb_flush``: ``flush_tlb_mm`` for a full-mm or need-flush-all
        gather, else ``flush_tlb_range`` of the gathered range."""
        if tlb.fullmm or tlb.need_flush_all:
            self.flush_tlb_mm(tlb.mm)
        elif tlb.end:
            vma = vm_area_struct(vm_mm=tlb.mm, vm_start=tlb.start, vm_end=tlb.end,
                                 vm_flags=0, vm_page_prot=0)
            self.flush_tlb_range(vma, tlb.start, tlb.end)

    # -- the end of a call site ------------------------------------------------------------

    def syscall_exit(self, where: str) -> None:
        """What must hold when the kernel returns to user space (``where`` names the call
        site or op): no stale translation, no page-table spinlock and no ``mmap_lock`` held.
        Raises :class:`~arches.errors.TlbError` or :class:`~arches.errors.LockError`."""
        held = [m.page_table_lock.name for m in self.mms if m.page_table_lock.held]
        held += [d.ptl.name for d in self.ptdescs.values() if d.ptl is not None and d.ptl.held]
        held += [m.mmap_lock.name for m in self.mms if m.mmap_lock.held]
        extra = getattr(self, "pgd_lock", None)
        if extra is not None and extra.held:
            held.append(extra.name)
        if held:
            raise LockError(f"locks still held at the end of {where}: {', '.join(held)}")
        for hook in self.syscall_exit_hooks:
            hook(where)
        self.hw_tlb.check_flushed(where)
