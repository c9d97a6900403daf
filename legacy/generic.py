"""The generic kernel: everything an architecture does not override.

:class:`GenericKernel` is one booted kernel on one emulated machine.  An architecture class
subclasses it (possibly behind a folding mixin), sets its geometry in ``arch_geometry`` and
provides the ``asm/pgtable.h`` primitives; everything else comes from the generic code of
``include/linux/pgtable.h``, ``include/linux/mm.h``, ``include/asm-generic/pgalloc.h`` and
``mm/memory.c`` (:mod:`legacy.pgtable`, :mod:`legacy.pgalloc`).
"""

from __future__ import annotations

from arches import ArchConfig
from arches.errors import CheckFailed
from legacy.huge_mm import HugeMmGeneric
from legacy.mm_types import mm_struct, rw_semaphore, spinlock_t
from legacy.pgalloc import PgallocGeneric
from legacy.ptdump import PtdumpGeneric
from legacy.swapops import SwapopsGeneric
from legacy.tlbflush import TlbflushGeneric
from legacy.types import PgdPtr, pgprot_t

# include/linux/mm.h vm_flags
VM_NONE = 0x0
VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC
MAP_FIXED = 0x10
"""include/uapi/asm-generic/mman-common.h."""


class GenericKernel(HugeMmGeneric, SwapopsGeneric, PgallocGeneric, TlbflushGeneric,
                    PtdumpGeneric):
    """A booted kernel: geometry, ``init_mm``, ``mm_alloc``, protections, ``check_mm``."""

    # -- configuration: Kconfig symbols (``CONFIG_`` dropped) and ``__HAVE_ARCH_*`` guards,
    # with the kernel's defaults; an architecture class overrides what its Kconfig selects.
    # Callers test them where the kernel has an ``#ifdef`` (mm/debug_vm_pgtable.c does).
    HAVE_ARCH_TRANSPARENT_HUGEPAGE = False
    TRANSPARENT_HUGEPAGE = False
    """``CONFIG_TRANSPARENT_HUGEPAGE`` (needs ``HAVE_ARCH_TRANSPARENT_HUGEPAGE``)."""
    HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD = False
    ARCH_ENABLE_THP_MIGRATION = False
    HAVE_ARCH_HUGE_VMAP = False
    HUGETLB_PAGE = False
    ARCH_WANT_GENERAL_HUGETLB = False
    ARCH_HAS_PTE_DEVMAP = False
    """Gone since 6.15 (devmap removed); no emulated architecture sets it."""
    NUMA_BALANCING = False
    """Selects the ``pte_protnone``/``pmd_protnone`` semantics (``ARCH_SUPPORTS_...``)."""
    MEM_SOFT_DIRTY = False
    """``CONFIG_MEM_SOFT_DIRTY`` (needs ``HAVE_ARCH_SOFT_DIRTY``): ``_PAGE_SOFT_DIRTY`` etc."""
    HAVE_ARCH_USERFAULTFD_WP = False
    MIGRATION = True
    """``def_bool y`` with NUMA, COMPACTION or CMA: migration swap entries exist."""
    _HAVE_ARCH_PMDP_INVALIDATE = False
    """``__HAVE_ARCH_PMDP_INVALIDATE``: the architecture has its own ``pmdp_invalidate``."""
    SWP_ENTRY_EMULATED = False
    """Not a kernel symbol (every MMU architecture encodes swap entries): whether the
    emulator implements this architecture's ``__swp_entry``/``__swp_type``/... format."""

    protection_map: tuple[pgprot_t, ...]
    """``protection_map[16]`` indexed by ``VM_READ|VM_WRITE|VM_EXEC|VM_SHARED`` (mm/mmap.c)."""
    PAGE_KERNEL: pgprot_t
    PAGE_KERNEL_RO: pgprot_t
    PAGE_KERNEL_EXEC: pgprot_t
    PAGE_KERNEL_ROX: pgprot_t
    PAGE_NONE: pgprot_t
    SEPARATE_KERNEL_ROOT = False
    """The MMU translates kernel addresses through a root of their own (arm64 TTBR1 =
    ``swapper_pg_dir``), so ``pgd_alloc`` clones no kernel half.  Not a kernel symbol: the
    emulator's statement of an architecture fact the kernel encodes in its MMU setup."""
    ARCH_HAS_DEBUG_VM_PGTABLE = True
    """``CONFIG_ARCH_HAS_DEBUG_VM_PGTABLE``: the architecture claims its helpers follow the
    common semantics mm/debug_vm_pgtable.c checks (32-bit arm does not select it: e.g. its
    ``pmd_mkinvalid`` makes a section non-present)."""
    PGD_ALLOC_PINNED_PMDS: tuple[int, ...] = ()
    """Addresses whose PMD table ``pgd_alloc`` allocates and only ``pgd_free`` frees:
    ``free_pgtables`` never reaches them (32-bit arm LPAE: the ``MODULES_VADDR`` pmd, above
    ``USER_PGTABLES_CEILING``; x86 PAE's ``PREALLOCATED_PMDS`` are another matter).  Not
    a kernel symbol: tests use it to predict the tables an mm holds."""
    SOFTWARE_YOUNG_DIRTY = False
    """The CPU never records an access in the entry: a present but old leaf is invalid to
    the hardware and a clean writable one read-only, so that the first access (store)
    faults and the kernel sets young (dirty) -- s390 (arch/s390/include/asm/pgtable.h:
    ``pte_mkold`` sets ``_PAGE_INVALID``, ``pte_mkclean`` sets ``_PAGE_PROTECT``; the same
    for segment entries).  Not a kernel symbol: the harness uses it to predict what the
    hardware walker may find."""
    ARCH_PAGE_TABLE_SYNC_MASK = 0
    """``PGTBL_*_MODIFIED`` levels whose change must be copied into every pgd
    (include/linux/pgtable.h default: none)."""

    def __init__(self, config: ArchConfig) -> None:
        super().__init__(config)
        self.tlb_init()
        self.bad_entries = []
        self.arch_geometry()
        self.fold_geometry()
        self.derive_sizes()
        self.TASK_SIZE = config.user_range[1]
        self.mm_count = 0
        self.mms: list[mm_struct] = []
        self.init_mm = self._new_mm("init_mm", is_init=True)
        self.init_mm.pgd = self.paging_init()
        self.switch_mm(self.init_mm)

    # -- hooks for architectures ----------------------------------------------------------

    def arch_sync_kernel_mappings(self, start: int, end: int) -> None:
        """include/linux/pgtable.h: nothing to do unless ``ARCH_PAGE_TABLE_SYNC_MASK``."""

    def arch_geometry(self) -> None:
        """Set ``PAGE_SHIFT``, ``*_SHIFT``, ``PTRS_PER_*`` and ``SIZEOF_*`` (asm headers)."""
        raise NotImplementedError

    def fold_geometry(self) -> None:
        """Folding mixins override this to set the folded level's constants."""

    def paging_init(self) -> PgdPtr:
        """Allocate ``swapper_pg_dir`` (and whatever the architecture preallocates)."""
        pa = self.pagetable_alloc("pgd", self.init_mm)
        return PgdPtr(pa, self.SIZEOF_PGD)

    def pgd_alloc(self, mm: mm_struct) -> PgdPtr | None:
        raise NotImplementedError

    def pgd_free(self, mm: mm_struct, pgd: PgdPtr) -> None:
        raise NotImplementedError

    def mm_upgrade_tables(self, mm: mm_struct) -> list[int]:
        """Tables an upgrade of ``mm``'s page-table levels left below its new top table
        (the old top at entry 0) and no ``free_pgtables`` has freed since: none here; s390
        overrides it (arch/s390/mm/pgalloc.c ``crst_table_upgrade``).  Not a kernel
        function: tests use it to predict the tables an mm holds."""
        return []

    # -- mm/mmap.c: the arch's unmapped-area hook -------------------------------------------

    def arch_get_unmapped_area(self, mm: mm_struct, addr: int, len: int, pgoff: int,
                               flags: int) -> int:
        """mm/mmap.c ``generic_get_unmapped_area`` for a ``MAP_FIXED`` request (the only
        kind the emulation makes): ``-ENOMEM`` when ``len`` exceeds ``TASK_SIZE -
        mmap_min_addr`` (``mmap_min_addr`` = 0 here), else ``addr``.  s390 overrides it
        (arch/s390/mm/mmap.c: ``check_asce_limit``, which may add page-table levels)."""
        if len > self.TASK_SIZE:
            return -12  # -ENOMEM
        return addr

    # -- protections -------------------------------------------------------------------

    def vm_get_page_prot(self, vm_flags: int) -> pgprot_t:
        return self.protection_map[vm_flags & (VM_ACCESS_FLAGS | VM_SHARED)]

    # -- mm lifetime (kernel/fork.c) -------------------------------------------------------

    def _new_mm(self, name: str, is_init: bool = False) -> mm_struct:
        mm = mm_struct(
            name=name,
            pgd=PgdPtr(0, self.SIZEOF_PGD),
            page_table_lock=spinlock_t(f"{name}.page_table_lock"),
            is_init_mm=is_init,
            mmap_lock=rw_semaphore(f"{name}.mmap_lock"),
            asid=0 if is_init else self.mm_count,
        )
        self.mms.append(mm)
        return mm

    def mm_alloc(self, oldmm: mm_struct | None = None) -> mm_struct | None:
        """``mm_alloc()`` → ``mm_init()`` → ``mm_alloc_pgd()``; None on -ENOMEM.

        With ``oldmm``: kernel/fork.c ``dup_mm``'s ``allocate_mm()`` + ``memcpy(mm, oldmm,
        sizeof(*mm))`` + ``mm_init()`` -- of the copied struct only ``mm->context`` matters
        here (s390: the child keeps its parent's ``asce_limit``, asm/mmu_context.h
        ``init_new_context``); the rest is built anew."""
        self.mm_count += 1
        mm = self._new_mm(f"mm{self.mm_count}")
        if oldmm is not None:
            mm.context = dict(oldmm.context)
        pgd = self.pgd_alloc(mm)
        if pgd is None:
            self.mms.remove(mm)
            return None
        mm.pgd = pgd
        self.switch_mm(mm)
        return mm

    def mmdrop(self, mm: mm_struct) -> None:
        """``__mmdrop``: free the pgd and run ``check_mm``.  Call after ``exit_mmap``."""
        self.mm_tlb_retire(mm)
        self.pgd_free(mm, mm.pgd)
        self.mms.remove(mm)
        self.check_mm(mm)

    def check_mm(self, mm: mm_struct) -> None:
        """kernel/fork.c ``check_mm``: non-zero ``pgtables_bytes`` is a bug; so is any
        page-table frame still charged to the mm (a leak the kernel could not see)."""
        problems = []
        if mm.pgtables_bytes:
            problems.append(f"non-zero pgtables_bytes {mm.pgtables_bytes}")
        leaked = self.tables_of(mm)
        if leaked:
            frames = ", ".join(f"{pa:#x}" for pa in leaked[:8])
            problems.append(f"{len(leaked)} leaked page-table frame(s): {frames}")
        if problems:
            raise CheckFailed(f"check_mm({mm.name}): " + "; ".join(problems))
