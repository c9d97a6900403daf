"""``PhysMem.alloc_frames`` (order-n blocks, the buddy allocator's ``alloc_pages(gfp,
order)``) and reads across frames: what s390x's 16 KiB region and segment tables need
(``arch/s390/mm/pgalloc.c`` ``crst_table_alloc``: ``pagetable_alloc(GFP_KERNEL,
CRST_ALLOC_ORDER)``, order 2)."""

from __future__ import annotations

import pytest

from arches.errors import OutOfMemory, PhysMemError
from arches.memory import DEFAULT_BASE, PhysMem


def test_block_is_aligned_contiguous_and_zeroed() -> None:
    mem = PhysMem(4096, "big", 64)
    one = mem.alloc_frame()
    block = mem.alloc_frames(2)
    assert block % 16384 == 0 and block > one
    assert all(mem.is_allocated(block + i * 4096) for i in range(4))
    assert mem.read_bytes(block, 16384) == bytes(16384)
    # the frames skipped to align the block are free and handed out next, lowest first
    assert [mem.alloc_frame() for _ in range(3)] == [one + 4096, one + 8192, one + 12288]
    assert mem.alloc_frame() == block + 16384


def test_lowest_free_block_is_reused_and_partly_free_blocks_are_not() -> None:
    mem = PhysMem(4096, "big", 64)
    a = mem.alloc_frames(2)
    b = mem.alloc_frames(2)
    assert (a, b) == (DEFAULT_BASE, DEFAULT_BASE + 16384)
    for i in range(4):
        mem.free_frame(a + i * 4096)
    mem.free_frame(b)  # b's first frame only: b is not a free block
    assert mem.alloc_frames(2) == a
    assert mem.alloc_frames(2) == b + 16384
    assert mem.alloc_frame() == b  # the single free frame is still there


def test_counts_as_one_allocation_for_fail_after() -> None:
    mem = PhysMem(4096, "big", 64)
    mem.fail_after(2)
    mem.alloc_frames(2)
    before = len(mem)
    with pytest.raises(OutOfMemory):
        mem.alloc_frames(2)
    assert len(mem) == before and mem.allocations == 1


def test_read_bytes_across_frames() -> None:
    mem = PhysMem(4096, "big", 64)
    base = mem.alloc_frames(2)
    mem.write(base + 4096 - 8, 8, 0x1122334455667788)
    mem.write(base + 4096, 8, 0x99AABBCCDDEEFF00)
    assert mem.read_bytes(base + 4096 - 8, 16) == bytes.fromhex("112233445566778899aabbccddeeff00")
    mem.free_frame(base + 8192)
    with pytest.raises(PhysMemError):
        mem.read_bytes(base, 16384)


class _Watcher:
    """A MemObserver that calls one frame live and records what it is told."""

    def __init__(self, live: int) -> None:
        self.live, self.writes = live, []  # type: ignore[var-annotated]

    def on_write(self, pa: int, size: int, old: int, new: int) -> None:
        self.writes.append((pa, old, new))

    def on_free(self, pa: int, size: int) -> None:
        pass

    def is_live(self, pa: int) -> bool:
        return pa & ~0xFFF == self.live


def test_fill_is_memset64_and_a_live_table_sees_every_store() -> None:
    """``PhysMem.fill`` (``crst_table_init``'s ``memset64``) writes big-endian entries
    across the four frames of an order-2 block at once while no root reaches them, and
    entry by entry through the observer once one does."""
    from arches.memory import PhysMem

    mem = PhysMem(4096, "big", 52)
    base = mem.alloc_frames(2)
    w = _Watcher(live=-1)
    mem.observer = w
    mem.fill(base, 8, 0x20, 2048)
    assert mem.read_bytes(base, 16384) == (0x20).to_bytes(8, "big") * 2048
    assert w.writes == []
    w.live = base + 4096  # the second frame is a live table's
    mem.fill(base, 8, 0x24, 2048)
    assert len(w.writes) == 2048 and w.writes[0] == (base, 0x20, 0x24)
    assert mem.read(base + 16376, 8) == 0x24
