"""A slab cache for page tables smaller than a page: ``kmem_cache_create`` /
``kmem_cache_alloc`` / ``kmem_cache_free`` (include/linux/slab.h, mm/slub.c at v6.18).

arm64 takes a pgd smaller than a page from ``pgd_cache`` (arch/arm64/mm/pgd.c), so a table is
no longer a frame: several mms' pgds share one.  :class:`KmemCache` models what SLUB does
with such a cache, as far as page tables can see it:

- ``kmem_cache_create(name, size, align, flags, ctor)``: objects of ``size`` bytes, each
  aligned to ``align`` (``calculate_alignment``: at least ``ARCH_SLAB_MINALIGN`` = 8), laid
  out every ``ALIGN(size, align)`` bytes in a slab (``calculate_sizes``); small objects get
  an order-0 slab, one page, which is all this model supports.
- ``kmem_cache_alloc(cache, gfp)``: an object from a slab with a free one, else a new slab
  from the page allocator (``allocate_slab``); when that fails, NULL -- nothing is
  allocated.  ``__GFP_ZERO`` (in ``GFP_PGTABLE_USER``) zeroes the object
  (``slab_post_alloc_hook``).  ``__GFP_ACCOUNT`` charges the object to the allocating
  task's memcg (``memcg_slab_post_alloc_hook``): here, to the mm it is allocated for
  (:attr:`KmemCache.owner`), so leak checks can name it.
- ``kmem_cache_free(cache, obj)``: the object goes back to its slab; a double free or a free
  of something that is not an allocated object of the cache is refused (``slab_free``'s
  debug checks, ``CONFIG_SLUB_DEBUG_ON``); the object is poisoned with ``POISON_FREE``
  (``slub_debug=P``).  When the slab's last object is freed the slab's page goes back to
  the page allocator (``discard_slab``).

Deliberate simplifications, all invisible to a page-table walk: one slab list per cache (no
per-CPU slabs, no NUMA nodes), allocation of the lowest free object of the lowest slab (SLUB
pops the per-CPU freelist, most recently freed first), no freelist pointer stored in free
objects, no cached empty slabs (SLUB keeps up to ``min_partial``), no freelist
randomisation, no ``failslab`` fault injection (only the slab page's allocation can fail:
``PhysMem.fail_after``).  No ``struct ptdesc`` is made for a slab page or its objects: no
page-table constructor runs, no split lock, and the object is not counted in
``NR_PAGETABLE`` (the slab page counts as ``NR_SLAB_UNRECLAIMABLE_B``).

The cache is generic over the frame source (``alloc_frame`` / ``free_frame``), so other
sub-page page tables can reuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from arches.errors import OutOfMemory, PhysMemError
from arches.memory import PhysMem

ARCH_SLAB_MINALIGN = 8
"""include/linux/slab.h default: ``__alignof__(unsigned long long)``."""


def ALIGN(x: int, a: int) -> int:
    """include/linux/align.h."""
    return (x + a - 1) & ~(a - 1)


@dataclass(eq=False)
class slab:
    """One slab: a page of ``objects`` objects, the ones in use with their owners."""

    frame: int
    objects: int
    inuse: dict[int, object] = field(default_factory=dict)
    """Object address -> what it is charged to (the mm), in allocation order."""


class KmemCache:
    """``struct kmem_cache`` of one cache (see the module docstring).

    ``level`` names what the objects are (``"pgd"``) for the leak checks and dumps."""

    def __init__(self, mem: PhysMem, name: str, size: int, align: int, level: str,
                 alloc_frame: Callable[[], int] | None = None,
                 free_frame: Callable[[int], None] | None = None) -> None:
        align = max(align, ARCH_SLAB_MINALIGN)
        if align & (align - 1) or size <= 0 or size % 4:
            raise ValueError(f"kmem_cache_create({name!r}): size {size}, align {align}")
        self.mem = mem
        self.name = name
        self.object_size = size
        self.align = align
        self.size = ALIGN(size, align)
        """Bytes from one object to the next (``s->size``)."""
        self.level = level
        self.objects_per_slab = mem.frame_size // self.size
        if not self.objects_per_slab:
            raise ValueError(f"kmem_cache_create({name!r}): a {size}-byte object needs a "
                             f"slab order above 0, which is not modelled")
        self._alloc_frame = mem.alloc_frame if alloc_frame is None else alloc_frame
        self._free_frame = mem.free_frame if free_frame is None else free_frame
        self.slabs: dict[int, slab] = {}
        """Frame -> slab, for every slab page the cache holds."""

    def __repr__(self) -> str:
        return (f"<kmem_cache {self.name}: {self.object_size} B objects aligned to "
                f"{self.align}, {len(self.slabs)} slab(s)>")

    # -- allocation ---------------------------------------------------------------------

    def alloc(self, owner: object) -> int | None:
        """``kmem_cache_alloc(s, GFP_PGTABLE_USER)``: a zeroed object charged to ``owner``,
        or None (NULL) when a new slab is needed and its page cannot be allocated."""
        for frame in sorted(self.slabs):
            sl = self.slabs[frame]
            if len(sl.inuse) < sl.objects:
                obj = next(frame + i * self.size for i in range(sl.objects)
                           if frame + i * self.size not in sl.inuse)
                break
        else:
            try:
                frame = self._alloc_frame()
            except OutOfMemory:
                return None
            sl = self.slabs[frame] = slab(frame, self.objects_per_slab)
            obj = frame
        sl.inuse[obj] = owner
        word = 8 if self.object_size % 8 == 0 else 4
        for off in range(0, self.object_size, word):  # __GFP_ZERO: memset, seen by the TLB
            self.mem.write(obj + off, word, 0)
        return obj

    def free(self, obj: int) -> None:
        """``kmem_cache_free(s, obj)``: refuse what is not a live object of this cache;
        poison the object; give the slab's page back when it was the last one."""
        frame = obj - obj % self.mem.frame_size
        sl = self.slabs.get(frame)
        if sl is None or obj not in sl.inuse:
            raise PhysMemError(f"kmem_cache_free({self.name}): {obj:#x} is not an allocated "
                               f"object of the cache (double free?)")
        del sl.inuse[obj]
        self.mem.poison(obj, self.object_size)
        if not sl.inuse:
            del self.slabs[frame]
            self._free_frame(frame)

    # -- introspection ------------------------------------------------------------------

    def owner(self, obj: int) -> object | None:
        """What the live object at ``obj`` is charged to (None: not a live object)."""
        sl = self.slabs.get(obj - obj % self.mem.frame_size)
        return None if sl is None else sl.inuse.get(obj)

    def holds_frame(self, pa: int) -> bool:
        """Whether ``pa`` lies in one of the cache's slab pages."""
        return pa - pa % self.mem.frame_size in self.slabs

    def object_containing(self, pa: int) -> int | None:
        """The live object holding the byte at ``pa``, or None."""
        frame = pa - pa % self.mem.frame_size
        sl = self.slabs.get(frame)
        if sl is None:
            return None
        obj = pa - (pa - frame) % self.size
        if obj in sl.inuse and pa < obj + self.object_size:
            return obj
        return None

    def objects_of(self, owner: object) -> list[int]:
        """Every live object charged to ``owner``, ascending."""
        return sorted(o for sl in self.slabs.values() for o, w in sl.inuse.items()
                      if w is owner)

    def objects(self) -> list[int]:
        """Every live object, ascending."""
        return sorted(o for sl in self.slabs.values() for o in sl.inuse)
