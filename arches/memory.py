"""Emulated physical memory: page-table frames as real bytes, and the frame allocator.

Frames are kept in a dict keyed by physical address, so a sparse 57-bit address space costs
only the frames its tables use.  Entries are read and written in the configuration's
endianness, exactly as an MMU would read them.

Allocation is deterministic: a fresh allocation takes the lowest free physical address.  Two
machines that allocate and free the same set of frames therefore hold the same frames, which
is what lets the differential harness compare memory images byte for byte.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

from arches.errors import OutOfMemory, PhysMemError, TlbError

POISON_FREE = 0x6B
"""Byte written over a freed frame (the kernel's ``POISON_FREE`` from include/linux/poison.h)."""

DEFAULT_BASE = 0x0100_0000
"""Physical address of the first frame handed out (16 MiB, clear of the low legacy ranges)."""


class MemObserver(Protocol):
    """Hardware that watches stores into memory (the emulated TLB, :mod:`arches.tlb`)."""

    def on_write(self, pa: int, size: int, old: int, new: int) -> None: ...

    def on_free(self, pa: int, size: int) -> None: ...

    def is_live(self, pa: int) -> bool: ...


class PhysMem:
    """Sparse physical memory made of ``frame_size`` frames, with a frame allocator.

    ``fail_after(n)`` makes the n-th allocation from now fail with :class:`OutOfMemory`
    (n = 1: the very next one), to exercise the kernel's -ENOMEM paths.
    """

    def __init__(
        self,
        frame_size: int,
        byteorder: str,
        phys_bits: int,
        base: int = DEFAULT_BASE,
    ) -> None:
        if frame_size & (frame_size - 1) or frame_size < 64:
            raise ValueError(f"frame size {frame_size} is not a power of two >= 64")
        if byteorder not in ("little", "big"):
            raise ValueError(f"byte order {byteorder!r} is neither 'little' nor 'big'")
        self.frame_size = frame_size
        self.byteorder = byteorder
        self.phys_bits = phys_bits
        self._offset_mask = frame_size - 1
        self._frames: dict[int, bytearray] = {}
        self._poisoned: dict[int, bytearray] = {}
        self._free_heap: list[int] = []
        self._next = base
        self._fail_countdown = 0
        self.allocations = 0
        self.frees = 0
        self.writes = 0
        """Entry stores so far (progress reports read it)."""
        prefix = "<" if byteorder == "little" else ">"
        self._codec = {4: struct.Struct(prefix + "I"), 8: struct.Struct(prefix + "Q")}
        self._unpack = {n: c.unpack_from for n, c in self._codec.items()}
        self._pack = {n: c.pack_into for n, c in self._codec.items()}
        self._runs: dict[tuple[int, int], struct.Struct] = {}
        self._zeros = bytes(frame_size)
        self._poison = bytes([POISON_FREE]) * frame_size
        self._frame_mask = ~self._offset_mask
        self.observer: MemObserver | None = None
        """Told of every entry store (before it lands) and every frame free."""

    # -- allocator ---------------------------------------------------------------------

    def fail_after(self, n: int) -> None:
        """Make the n-th allocation from now fail (n >= 1); n = 0 cancels."""
        if n < 0:
            raise ValueError("fail_after takes n >= 0")
        self._fail_countdown = n

    def alloc_frame(self) -> int:
        """Allocate one zeroed frame and return its physical address."""
        if self._fail_countdown:
            self._fail_countdown -= 1
            if self._fail_countdown == 0:
                raise OutOfMemory("frame allocation failed (injected failure)")
        if self._free_heap:
            pa = heapq.heappop(self._free_heap)
            frame = self._poisoned.pop(pa)
            frame[:] = self._zeros
        else:
            pa = self._next
            if pa + self.frame_size > 1 << self.phys_bits:
                raise OutOfMemory(f"physical address space of {self.phys_bits} bits exhausted")
            self._next += self.frame_size
            frame = bytearray(self.frame_size)
        self._frames[pa] = frame
        self.allocations += 1
        return pa

    def alloc_frames(self, order: int) -> int:
        """Allocate ``2**order`` contiguous zeroed frames aligned to their total size, as
        the buddy allocator's ``alloc_pages(gfp, order)`` does (an s390x region or segment
        table is an order-2 block, ``CRST_ALLOC_ORDER``), and return the first one's
        address: the lowest such block whose frames are all free.  One allocation for
        :meth:`fail_after`; each frame is freed with :meth:`free_frame`.  Frames skipped
        to align a block taken from never-used memory become free frames."""
        if order == 0:
            return self.alloc_frame()
        if self._fail_countdown:
            self._fail_countdown -= 1
            if self._fail_countdown == 0:
                raise OutOfMemory("frame allocation failed (injected failure)")
        fs = self.frame_size
        size = fs << order

        def free(base: int) -> bool:
            return all(f in self._poisoned or f >= self._next for f in range(base, base + size, fs))

        base = next((b for b in sorted({f - f % size for f in self._poisoned}) if free(b)),
                    -(-self._next // size) * size)
        if base + size > 1 << self.phys_bits:
            raise OutOfMemory(f"physical address space of {self.phys_bits} bits exhausted")
        for pa in range(self._next, base, fs):  # the alignment gap: free memory
            self._poisoned[pa] = bytearray([POISON_FREE]) * fs
            heapq.heappush(self._free_heap, pa)
        taken = range(base, base + size, fs)
        if any(pa in self._poisoned for pa in taken):
            self._free_heap = [pa for pa in self._free_heap if not base <= pa < base + size]
            heapq.heapify(self._free_heap)
        for pa in taken:
            self._poisoned.pop(pa, None)
            self._frames[pa] = bytearray(fs)
        self._next = max(self._next, base + size)
        self.allocations += 1
        return base

    def free_frame(self, pa: int) -> None:
        """Free a frame: refuse double frees and frees of frames never allocated; poison it."""
        if self.observer is not None and pa in self._frames:
            self.observer.on_free(pa, self.frame_size)
        frame = self._frames.pop(pa, None)
        if frame is None:
            if pa in self._poisoned:
                raise PhysMemError(f"double free of frame {pa:#x}")
            raise PhysMemError(f"free of frame {pa:#x}, which is not an allocated frame")
        frame[:] = self._poison
        self._poisoned[pa] = frame
        heapq.heappush(self._free_heap, pa)
        self.frees += 1

    def poison(self, pa: int, length: int) -> None:
        """A sub-frame object ``[pa, pa+length)`` (a slab object, a table fragment) is freed
        inside a frame that stays allocated: tell the observer as :meth:`free_frame` does,
        then poison the bytes."""
        off = pa & self._offset_mask
        if off + length > self.frame_size:
            raise PhysMemError(f"free of {length} bytes at {pa:#x} crosses a frame boundary")
        frame = self._frame(pa)
        if self.observer is not None:
            self.observer.on_free(pa, length)
        frame[off : off + length] = bytes([POISON_FREE]) * length

    def is_allocated(self, pa: int) -> bool:
        """Whether ``pa`` is the base of an allocated frame."""
        return pa in self._frames

    def allocated_frames(self) -> list[int]:
        """Physical addresses of every allocated frame, ascending."""
        return sorted(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    # -- access ------------------------------------------------------------------------

    def _frame(self, pa: int) -> bytearray:
        frame = self._frames.get(pa & ~self._offset_mask)
        if frame is None:
            state = "freed" if (pa & ~self._offset_mask) in self._poisoned else "unallocated"
            raise PhysMemError(f"access to physical address {pa:#x} in an {state} frame")
        return frame

    def read(self, pa: int, size: int) -> int:
        """Read a ``size``-byte (4 or 8) entry at ``pa`` in the memory's byte order."""
        frame = self._frames.get(pa & self._frame_mask)
        if frame is None:
            frame = self._frame(pa)  # raises, naming the frame's state
        value: int = self._unpack[size](frame, pa & self._offset_mask)[0]
        return value

    def exchange(self, pa: int, size: int, value: int) -> int:
        """Write a ``size``-byte (4 or 8) entry at ``pa`` in the memory's byte order and
        return the value it replaced (an ``xchg``; a plain store, :meth:`write`, ignores
        it: the observer needs the old value anyway)."""
        frame = self._frames.get(pa & self._frame_mask)
        if frame is None:
            frame = self._frame(pa)  # raises, naming the frame's state
        off = pa & self._offset_mask
        old: int = self._unpack[size](frame, off)[0]
        self.writes += 1
        if self.observer is not None:
            self.observer.on_write(pa, size, old, value)
        self._pack[size](frame, off, value)
        return old

    write = exchange

    def write_run(self, pa: int, size: int, values: Sequence[int]) -> None:
        """:meth:`write` of ``values`` into consecutive entries from ``pa`` on, which must
        lie in one table (``set_ptes``).  Into a table some root reaches they go to the
        observer entry by entry, as :meth:`write` does; into one no root reaches (being
        filled before it is linked: a split's), at once."""
        n = len(values)
        off = pa & self._offset_mask
        end = pa + (n - 1) * size
        if (off + n * size > self.frame_size or self.observer is not None and (
                self.observer.is_live(pa) or self.observer.is_live(end))):
            for i, v in enumerate(values):
                self.write(pa + i * size, size, v)
            return
        frame = self._frames.get(pa & self._frame_mask)
        if frame is None:
            frame = self._frame(pa)  # raises, naming the frame's state
        run = self._runs.get((n, size))
        if run is None:
            run = self._runs[n, size] = struct.Struct(
                self._codec[size].format[0] + str(n) + self._codec[size].format[1:])
        run.pack_into(frame, off, *values)
        self.writes += n

    def read_bytes(self, pa: int, length: int) -> bytes:
        """Bytes ``[pa, pa+length)``; a range that crosses frames (a 16 KiB s390x region
        table in an order-2 block, :meth:`alloc_frames`) must be allocated throughout."""
        off = pa & self._offset_mask
        if off + length <= self.frame_size:
            return bytes(self._frame(pa)[off : off + length])
        out = bytearray()
        while length:
            n = min(length, self.frame_size - (pa & self._offset_mask))
            off = pa & self._offset_mask
            out += self._frame(pa)[off : off + n]
            pa, length = pa + n, length - n
        return bytes(out)

    def fill(self, pa: int, size: int, value: int, count: int) -> None:
        """``memset64``/``memset32``: ``count`` ``size``-byte entries of ``value`` from
        ``pa``, which may cross the frames of one block (a 16 KiB s390x region table).  A
        store into a table some root reaches goes to the observer entry by entry, as
        :meth:`write` does; a table no root reaches yet (being initialised) is filled at
        once."""
        ends = range(pa, pa + size * count, self.frame_size)
        if self.observer is not None and any(self.observer.is_live(a) for a in ends):
            for i in range(count):
                self.write(pa + i * size, size, value)
            return
        entry = value.to_bytes(size, self.byteorder)  # type: ignore[arg-type]
        end = pa + size * count
        while pa < end:
            off = pa & self._offset_mask
            n = min(end - pa, self.frame_size - off)
            self._frame(pa)[off : off + n] = entry * (n // size)
            pa += n
        self.writes += count

    def copy(self, dst: int, src: int, length: int) -> None:
        """memcpy within memory; each range must lie inside one frame."""
        data = self.read_bytes(src, length)
        if self.observer is not None and self.observer.is_live(dst):
            raise TlbError(f"memcpy into the live page table at {dst:#x} is not modelled "
                           f"(copy into a table before it is linked)")
        off = dst & self._offset_mask
        if off + length > self.frame_size:
            raise PhysMemError(f"copy of {length} bytes to {dst:#x} crosses a frame boundary")
        self._frame(dst)[off : off + length] = data

    def frames(self) -> Mapping[int, bytearray]:
        """Every allocated frame by address, live (no copy): what a comparison made at
        once reads; :meth:`image` for a copy that stays."""
        return MappingProxyType(self._frames)

    def image(self) -> Iterator[tuple[int, bytes]]:
        """(pa, bytes) of every allocated frame, ascending by address."""
        for pa in sorted(self._frames):
            yield pa, bytes(self._frames[pa])

    def load_frame(self, pa: int, data: bytes) -> None:
        """Install a frame with the given contents at ``pa`` (rebuilding memory from an
        exported image); the allocator will not hand ``pa`` out."""
        if pa & self._offset_mask or len(data) != self.frame_size or pa in self._frames:
            raise PhysMemError(f"cannot load a {len(data)}-byte frame at {pa:#x}")
        self._frames[pa] = bytearray(data)
        self._next = max(self._next, pa + self.frame_size)
