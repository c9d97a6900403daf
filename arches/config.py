"""What a configuration is, as hardware: geometry, address ranges, roots and a walker.

A configuration is data (:class:`ArchConfig`) plus a :class:`HardwareWalker` written from the
CPU manual.  Nothing here knows the Linux page-table API: the walker is the oracle that says
what an MMU would make of the bytes the emulated kernel wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from arches.errors import BadInput
from arches.memory import PhysMem
from arches.tlb import RootWalk


@dataclass(frozen=True)
class HwLevel:
    """One level of the hardware walk, top first: its manual name, the VA bit where its index
    starts, its number of entries and the entry size in bytes."""

    name: str
    shift: int
    entries: int
    entry_size: int
    leaf_ok: bool
    """Whether the hardware (and Linux) may end a walk with a leaf (block/huge page) here."""

    @property
    def table_bytes(self) -> int:
        return self.entries * self.entry_size

    @property
    def span(self) -> int:
        """Bytes of VA one entry of this level maps."""
        return 1 << self.shift


class Translation(NamedTuple):
    """A successful hardware translation of one address, with the effective permissions
    (a named tuple: a walk of every leaf makes one per page)."""

    va: int
    pa: int
    size: int
    """Size of the leaf that maps ``va`` (4K page, 2M/1G block...)."""
    level: int
    """Index into :attr:`ArchConfig.hw_levels` of the level holding the leaf."""
    writable: bool
    executable: bool
    user: bool
    """Accessible from user mode (x86 U/S, arm64 AP[1], RISC-V U)."""

    @property
    def prot(self) -> str:
        """The scenario PROT string for these permissions (a present leaf is readable)."""
        return PROT_OF[self.writable][self.executable]


PROT_OF = (("r", "rx"), ("rw", "rwx"))
"""``PROT_OF[writable][executable]``: :attr:`Translation.prot` of a leaf's permissions."""


class LeafRun(NamedTuple):
    """Consecutive leaves of one size that continue each other -- VA and PA contiguous, the
    same rights (:meth:`HardwareWalker.leaf_runs`)."""

    va: int
    pa: int
    size: int
    """Bytes the run maps: a multiple of ``leaf_size``."""
    leaf_size: int
    writable: bool
    executable: bool
    user: bool


class RunsOfLeaves:
    """:meth:`HardwareWalker.leaf_runs` for a walker that has no faster way: its
    :meth:`~HardwareWalker.leaves` merged (:func:`merge_leaves`)."""

    def leaves(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[Translation]:
        raise NotImplementedError

    def leaf_runs(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[LeafRun]:
        return merge_leaves(self.leaves(mem, regs))


def merge_leaves(leaves: Iterable[Translation]) -> Iterator[LeafRun]:
    """:meth:`HardwareWalker.leaf_runs` from a walker's :meth:`~HardwareWalker.leaves`."""
    run: list[Any] | None = None  # [va, pa, size, leaf_size, writable, executable, user]
    for va, pa, size, _level, w, x, u in leaves:
        if (run is not None and run[0] + run[2] == va and run[1] + run[2] == pa
                and run[3] == size and run[4] == w and run[5] == x and run[6] == u):
            run[2] += size
            continue
        if run is not None:
            yield LeafRun(*run)
        run = [va, pa, size, size, w, x, u]
    if run is not None:
        yield LeafRun(*run)


@dataclass(frozen=True)
class Fault:
    """The hardware would fault on this address; ``reason`` says why, as the manual would."""

    va: int
    reason: str
    level: int | None = None


def reg(regs: Mapping[str, int], name: str) -> int:
    """Register ``name`` from ``regs`` (a walker's input); a missing one is a
    :class:`~arches.errors.BadInput` naming the registers there are."""
    try:
        return regs[name]
    except KeyError:
        raise BadInput(f"register {name!r} missing (have: {', '.join(regs)})") from None


class HardwareWalker(Protocol):
    """A page-table walker written from the CPU manual."""

    def translate(self, mem: PhysMem, regs: Mapping[str, int], va: int) -> Translation | Fault:
        """Translate ``va`` with the tables the registers point at."""
        ...

    def leaves(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[Translation]:
        """Every valid leaf entry reachable from the roots, one per entry, in VA order;
        ``va``/``pa``/``size`` are the leaf's own base and size."""
        ...

    def leaf_runs(self, mem: PhysMem, regs: Mapping[str, int]) -> Iterator[LeafRun]:
        """The leaves of :meth:`leaves`, merged where consecutive ones continue each other
        (a run may still be followed by one that continues it): what a comparison of
        whole mappings reads, without a tuple per page."""
        ...

    def structure(self, regs: Mapping[str, int]) -> tuple[RootWalk, ...]:
        """The walks the registers select, one per root, for the TLB model
        (:mod:`arches.tlb`): root table, level shapes and how one entry decodes."""
        ...


class RegisterBuilder(Protocol):
    def __call__(self, user_root: int, kernel_root: int) -> dict[str, int]: ...


@dataclass(frozen=True)
class ArchConfig:
    """One hardware configuration: the facts its MMU defines, independent of Linux."""

    name: str
    family: str
    description: str
    word_bits: int
    """Width of a virtual address / ``unsigned long`` (64 or 32)."""
    va_bits: int
    """Bits of VA the MMU translates per half (48 for 4-level x86-64, 57 for LA57...)."""
    phys_bits: int
    """Physical address bits the entries can hold (``__PHYSICAL_MASK_SHIFT``)."""
    page_shift: int
    endianness: str
    hw_levels: tuple[HwLevel, ...]
    user_range: tuple[int, int]
    """Half-open VA range of user addresses."""
    kernel_range: tuple[int, int]
    """Half-open VA range of kernel addresses (end may be ``2**word_bits``)."""
    roots: tuple[str, ...]
    """Names of the roots the hardware uses, e.g. ('cr3',) or ('ttbr0_el1', 'ttbr1_el1')."""
    walker: HardwareWalker
    make_registers: RegisterBuilder
    break_before_make: bool = False
    """Replacing a valid entry by one of another output address or size needs an invalid
    entry and a TLB invalidation in between (Arm ARM D8.16.1); the TLB model enforces it."""
    range_flush_clears_walk_caches: bool = False
    """A by-address invalidation also drops every paging-structure-cache entry of the
    address space (x86 INVLPG, SDM §4.10.4.1); Arm TLBI by VA drops only that VA's."""
    addr_flush_reaches_walk_caches: bool = True
    """Some invalidation by address drops walk-cache (non-leaf) entries (x86 INVLPG, Arm
    ``TLBI VAE1``); RISC-V ``sfence.vma`` with ``rs1 != x0`` orders leaf entries only."""
    has_nx: bool = True
    """Whether a present, readable page can be made non-executable (x86 32-bit paging has
    no XD bit: every readable page is executable)."""
    notes: tuple[str, ...] = field(default=())

    @property
    def page_size(self) -> int:
        return 1 << self.page_shift

    @property
    def addr_mask(self) -> int:
        """All-ones in ``unsigned long``: the modulus of the kernel's address arithmetic."""
        return (1 << self.word_bits) - 1

    @property
    def leaf_sizes(self) -> tuple[int, ...]:
        """Leaf sizes the configuration can map, ascending."""
        return tuple(sorted(lv.span for lv in self.hw_levels if lv.leaf_ok))

    def is_user(self, va: int) -> bool:
        return self.user_range[0] <= va < self.user_range[1]

    def is_kernel(self, va: int) -> bool:
        return self.kernel_range[0] <= va < self.kernel_range[1]
