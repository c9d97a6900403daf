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
from legacy.mm_types import mm_struct, spinlock_t
from legacy.pgalloc import PgallocGeneric
from legacy.types import PgdPtr, pgprot_t

# include/linux/mm.h vm_flags
VM_NONE = 0x0
VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC


class GenericKernel(PgallocGeneric):
    """A booted kernel: geometry, ``init_mm``, ``mm_alloc``, protections, ``check_mm``."""

    protection_map: tuple[pgprot_t, ...]
    """``protection_map[16]`` indexed by ``VM_READ|VM_WRITE|VM_EXEC|VM_SHARED`` (mm/mmap.c)."""
    PAGE_KERNEL: pgprot_t
    PAGE_KERNEL_RO: pgprot_t
    PAGE_KERNEL_EXEC: pgprot_t
    PAGE_KERNEL_ROX: pgprot_t
    PAGE_NONE: pgprot_t

    def __init__(self, config: ArchConfig) -> None:
        super().__init__(config)
        self.bad_entries = []
        self.arch_geometry()
        self.fold_geometry()
        self.derive_sizes()
        self.TASK_SIZE = config.user_range[1]
        self.mm_count = 0
        self.mms: list[mm_struct] = []
        self.init_mm = self._new_mm("init_mm", is_init=True)
        self.init_mm.pgd = self.paging_init()

    # -- hooks for architectures ----------------------------------------------------------

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
        )
        self.mms.append(mm)
        return mm

    def mm_alloc(self) -> mm_struct | None:
        """``mm_alloc()`` → ``mm_init()`` → ``mm_alloc_pgd()``; None on -ENOMEM."""
        self.mm_count += 1
        mm = self._new_mm(f"mm{self.mm_count}")
        pgd = self.pgd_alloc(mm)
        if pgd is None:
            self.mms.remove(mm)
            return None
        mm.pgd = pgd
        return mm

    def mmdrop(self, mm: mm_struct) -> None:
        """``__mmdrop``: free the pgd and run ``check_mm``.  Call after ``exit_mmap``."""
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
