"""The emulated machine a kernel runs on: configuration, physical memory, page descriptors.

``Machine`` is the base of every emulated kernel (:class:`legacy.generic.GenericKernel`).  It
holds what is outside the page-table API proper: the hardware configuration, physical memory,
the ``struct ptdesc`` of every page-table frame, and the list of live mms.
"""

from __future__ import annotations

from collections.abc import Callable

from arches import ArchConfig
from arches.errors import LockError, PhysMemError
from arches.memory import PhysMem
from legacy.mm_types import mm_struct, ptdesc, spinlock_t


def _nobody(pa: int) -> None:
    pass


class DescTable(dict[int, ptdesc]):
    """``ptdescs``: frame (or slab object) -> ``struct ptdesc``, telling ``on_change`` the
    address of every descriptor that comes, goes or changes, so that what was derived from
    it can be forgotten with it (the lockdep answers kept per table).  Change it by item
    assignment and ``del``, and report a change made to a descriptor in place with
    :meth:`changed` (the other ``dict`` mutators report nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_change: Callable[[int], None] = _nobody

    def __setitem__(self, pa: int, desc: ptdesc) -> None:
        self.on_change(pa)
        super().__setitem__(pa, desc)

    def __delitem__(self, pa: int) -> None:
        self.on_change(pa)
        super().__delitem__(pa)

    def changed(self, pa: int) -> None:
        """The descriptor at ``pa`` was changed in place (given or stripped of its lock)."""
        self.on_change(pa)


class Machine:
    """Configuration + physical memory + page-table frame descriptors."""

    def __init__(self, config: ArchConfig) -> None:
        self.config = config
        self.mem = PhysMem(config.page_size, config.endianness, config.phys_bits)
        self.ptdescs = DescTable()
        self.ULONG_MASK = config.addr_mask
        self._frame_mask = ~(config.page_size - 1)

    # -- page-table frames (pagetable_alloc / pagetable_free, include/linux/mm.h) ----------

    def pagetable_alloc(self, level: str, mm: mm_struct | None) -> int:
        """Allocate a zeroed page-table frame (``GFP_PGTABLE_*``) and its descriptor."""
        pa = self.mem.alloc_frame()
        self.ptdescs[pa] = ptdesc(pa=pa, level=level, mm=mm)
        return pa

    def pagetable_free(self, pa: int) -> None:
        """Free a page-table frame; refuses a frame whose split lock is still held."""
        desc = self.ptdescs.get(pa)
        if desc is None:
            raise PhysMemError(f"pagetable_free of {pa:#x}, which is not a page-table frame")
        if desc.ptl is not None and desc.ptl.held:
            raise LockError(f"freeing page table {pa:#x} while its lock {desc.ptl.name} is held")
        self.mem.free_frame(pa)
        del self.ptdescs[pa]

    def ptlock_init(self, pa: int) -> None:
        """``ptlock_init``: give the table at ``pa`` its own split lock."""
        desc = self.ptdescs[pa]
        if desc.ptl is not None:
            raise LockError(f"ptlock_init of {pa:#x}, which already has a lock")
        desc.ptl = spinlock_t(f"ptl@{pa:#x}")
        self.ptdescs.changed(pa)

    def ptlock_free(self, pa: int) -> None:
        desc = self.ptdescs[pa]
        if desc.ptl is not None and desc.ptl.held:
            raise LockError(f"ptlock_free of {desc.ptl.name} while it is held")
        desc.ptl = None
        self.ptdescs.changed(pa)

    def frame_of(self, pa: int) -> int:
        """Base of the frame containing ``pa``."""
        return pa & self._frame_mask

    def tables_of(self, mm: mm_struct) -> list[int]:
        """Physical addresses of every page-table frame charged to ``mm``."""
        return sorted(pa for pa, d in self.ptdescs.items() if d.mm is mm)
