"""Swap entries: the arch-independent ``swp_entry_t`` and its conversions to and from ptes.

Follows ``include/linux/swapops.h`` and the ``MAX_SWAPFILES``/``SWP_*`` numbering of
``include/linux/swap.h``; the defaults of ``include/linux/pgtable.h`` (soft-dirty swap bits
without ``CONFIG_HAVE_ARCH_SOFT_DIRTY``) and ``include/asm-generic/pgtable_uffd.h`` (uffd-wp
swap bits without ``CONFIG_HAVE_ARCH_USERFAULTFD_WP``).

"swp_entry_t's are *never* stored anywhere in their arch-dependent format": the arch format
(``__swp_entry``, ``__swp_type``, ``__swp_offset``, ``__pte_to_swp_entry``,
``__swp_entry_to_pte`` -- spelled ``_swp_entry``... here) is the architecture's, and only
``swp_entry_to_pte``/``pte_to_swp_entry`` cross between the two.  An architecture whose
encoding the emulator implements sets ``SWP_ENTRY_EMULATED``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NewType

from legacy.pgtable import PgtableGeneric
from legacy.types import pmd_t, pte_t

swp_entry_t = NewType("swp_entry_t", int)
"""``swp_entry_t``: ``{ unsigned long val; }``, arch-independent or arch format."""

MAX_SWAPFILES_SHIFT = 5
"""include/linux/swap.h."""

SWP_PTE_MARKER_NUM = 1
"""Unconditional since PTE markers stopped depending on ``CONFIG_PTE_MARKER`` (6.x)."""


class ShiftedSwapEntry:
    """The arch swap-entry format arm, LoongArch and RISC-V write alike in their
    asm/pgtable.h ("Format of swap PTEs"): ``__swp_type`` is ``__SWP_TYPE_MASK`` bits from
    ``__SWP_TYPE_SHIFT``, ``__swp_offset`` everything from ``__SWP_OFFSET_SHIFT`` up.  A
    kernel class states the three numbers as ``ARCH_SWP_*`` (``SWP_TYPE_SHIFT`` is
    include/linux/swapops.h's arch-independent one) and inherits the helpers."""

    ARCH_SWP_TYPE_SHIFT: int
    ARCH_SWP_TYPE_MASK: int
    ARCH_SWP_OFFSET_SHIFT: int

    if TYPE_CHECKING:
        ULONG_MASK: int

    def _swp_type(self, x: swp_entry_t) -> int:
        return x >> self.ARCH_SWP_TYPE_SHIFT & self.ARCH_SWP_TYPE_MASK

    def _swp_offset(self, x: swp_entry_t) -> int:
        return x >> self.ARCH_SWP_OFFSET_SHIFT

    def _swp_entry(self, type_: int, offset: int) -> swp_entry_t:
        return swp_entry_t(((type_ & self.ARCH_SWP_TYPE_MASK) << self.ARCH_SWP_TYPE_SHIFT
                            | offset << self.ARCH_SWP_OFFSET_SHIFT) & self.ULONG_MASK)


class SwapopsGeneric(PgtableGeneric):
    """include/linux/swapops.h on top of the architecture's swap-entry encoding."""

    # Configuration (the values live on GenericKernel; see there).
    MIGRATION: bool
    SWP_ENTRY_EMULATED: bool
    MEMORY_FAILURE = False
    """``CONFIG_MEMORY_FAILURE`` (default n): reserves the ``SWP_HWPOISON`` type."""
    DEVICE_PRIVATE = False
    """``CONFIG_DEVICE_PRIVATE`` (default n): reserves four ``SWP_DEVICE_*`` types."""

    if TYPE_CHECKING:
        # The architecture's swap format (asm/pgtable*.h).
        def _swp_type(self, x: swp_entry_t) -> int: ...
        def _swp_offset(self, x: swp_entry_t) -> int: ...
        def _swp_entry(self, type_: int, offset: int) -> swp_entry_t: ...
        def _pte_to_swp_entry(self, pte: pte_t) -> swp_entry_t: ...
        def _swp_entry_to_pte(self, x: swp_entry_t) -> pte_t: ...
        def _pmd_to_swp_entry(self, pmd: pmd_t) -> swp_entry_t: ...
        def _swp_entry_to_pmd(self, x: swp_entry_t) -> pmd_t: ...
        def pte_swp_exclusive(self, pte: pte_t) -> bool: ...
        def pte_swp_mkexclusive(self, pte: pte_t) -> pte_t: ...
        def pte_swp_clear_exclusive(self, pte: pte_t) -> pte_t: ...

    # -- include/linux/swap.h numbering ----------------------------------------------------

    @property
    def SWP_DEVICE_NUM(self) -> int:
        return 4 if self.DEVICE_PRIVATE else 0

    @property
    def SWP_MIGRATION_NUM(self) -> int:
        return 3 if self.MIGRATION else 0

    @property
    def SWP_HWPOISON_NUM(self) -> int:
        return 1 if self.MEMORY_FAILURE else 0

    @property
    def MAX_SWAPFILES(self) -> int:
        return (
            (1 << MAX_SWAPFILES_SHIFT) - self.SWP_DEVICE_NUM - self.SWP_MIGRATION_NUM
            - self.SWP_HWPOISON_NUM - SWP_PTE_MARKER_NUM
        )

    @property
    def SWP_HWPOISON(self) -> int:
        return self.MAX_SWAPFILES

    @property
    def SWP_MIGRATION_READ(self) -> int:
        return self.MAX_SWAPFILES + self.SWP_HWPOISON_NUM

    @property
    def SWP_MIGRATION_READ_EXCLUSIVE(self) -> int:
        return self.MAX_SWAPFILES + self.SWP_HWPOISON_NUM + 1

    @property
    def SWP_MIGRATION_WRITE(self) -> int:
        return self.MAX_SWAPFILES + self.SWP_HWPOISON_NUM + 2

    @property
    def SWP_PTE_MARKER(self) -> int:
        return (
            self.MAX_SWAPFILES + self.SWP_HWPOISON_NUM + self.SWP_MIGRATION_NUM
            + self.SWP_DEVICE_NUM
        )

    # -- include/linux/swapops.h: the arch-independent format ------------------------------

    @property
    def SWP_TYPE_SHIFT(self) -> int:
        """``BITS_PER_XA_VALUE - MAX_SWAPFILES_SHIFT``; ``BITS_PER_XA_VALUE`` is
        ``BITS_PER_LONG - 1``."""
        return self.config.word_bits - 1 - MAX_SWAPFILES_SHIFT

    @property
    def SWP_OFFSET_MASK(self) -> int:
        return (1 << self.SWP_TYPE_SHIFT) - 1

    def swp_entry(self, type_: int, offset: int) -> swp_entry_t:
        """Store a type+offset into a swp_entry_t in an arch-independent format."""
        return swp_entry_t(
            ((type_ << self.SWP_TYPE_SHIFT) | (offset & self.SWP_OFFSET_MASK)) & self.ULONG_MASK
        )

    def swp_type(self, entry: swp_entry_t) -> int:
        return entry >> self.SWP_TYPE_SHIFT

    def swp_offset(self, entry: swp_entry_t) -> int:
        return entry & self.SWP_OFFSET_MASK

    def is_swap_pte(self, pte: pte_t) -> bool:
        """Check whether a pte points to a swap entry."""
        return not self.pte_none(pte) and not self.pte_present(pte)

    def pte_swp_clear_flags(self, pte: pte_t) -> pte_t:
        """Clear all flags but only keep swp_entry_t related information."""
        if self.pte_swp_exclusive(pte):
            pte = self.pte_swp_clear_exclusive(pte)
        if self.pte_swp_soft_dirty(pte):
            pte = self.pte_swp_clear_soft_dirty(pte)
        if self.pte_swp_uffd_wp(pte):
            pte = self.pte_swp_clear_uffd_wp(pte)
        return pte

    def pte_to_swp_entry(self, pte: pte_t) -> swp_entry_t:
        """Convert the arch-dependent pte representation of a swp_entry_t into an
        arch-independent swp_entry_t."""
        pte = self.pte_swp_clear_flags(pte)
        arch_entry = self._pte_to_swp_entry(pte)
        return self.swp_entry(self._swp_type(arch_entry), self._swp_offset(arch_entry))

    def swp_entry_to_pte(self, entry: swp_entry_t) -> pte_t:
        """Convert the arch-independent representation of a swp_entry_t into the
        arch-dependent pte representation."""
        arch_entry = self._swp_entry(self.swp_type(entry), self.swp_offset(entry))
        return self._swp_entry_to_pte(arch_entry)

    def pmd_to_swp_entry(self, pmd: pmd_t) -> swp_entry_t:
        """``CONFIG_ARCH_ENABLE_THP_MIGRATION``."""
        if self.pmd_swp_soft_dirty(pmd):
            pmd = self.pmd_swp_clear_soft_dirty(pmd)
        if self.pmd_swp_uffd_wp(pmd):
            pmd = self.pmd_swp_clear_uffd_wp(pmd)
        arch_entry = self._pmd_to_swp_entry(pmd)
        return self.swp_entry(self._swp_type(arch_entry), self._swp_offset(arch_entry))

    def swp_entry_to_pmd(self, entry: swp_entry_t) -> pmd_t:
        arch_entry = self._swp_entry(self.swp_type(entry), self.swp_offset(entry))
        return self._swp_entry_to_pmd(arch_entry)

    def is_swap_pmd(self, pmd: pmd_t) -> bool:
        """include/linux/huge_mm.h: ``!pmd_none(pmd) && !pmd_present(pmd)``."""
        return not self.pmd_none(pmd) and not self.pmd_present(pmd)

    def is_pmd_migration_entry(self, pmd: pmd_t) -> bool:
        return self.is_swap_pmd(pmd) and self.is_migration_entry(self.pmd_to_swp_entry(pmd))

    def non_swap_entry(self, entry: swp_entry_t) -> bool:
        return self.swp_type(entry) >= self.MAX_SWAPFILES

    # -- migration entries (CONFIG_MIGRATION; else stubs returning swp_entry(0, 0)) ---------

    def is_migration_entry(self, entry: swp_entry_t) -> bool:
        if not self.MIGRATION:
            return False
        return self.swp_type(entry) in (
            self.SWP_MIGRATION_READ, self.SWP_MIGRATION_READ_EXCLUSIVE, self.SWP_MIGRATION_WRITE
        )

    def is_writable_migration_entry(self, entry: swp_entry_t) -> bool:
        return self.MIGRATION and self.swp_type(entry) == self.SWP_MIGRATION_WRITE

    def is_readable_migration_entry(self, entry: swp_entry_t) -> bool:
        return self.MIGRATION and self.swp_type(entry) == self.SWP_MIGRATION_READ

    def is_readable_exclusive_migration_entry(self, entry: swp_entry_t) -> bool:
        return self.MIGRATION and self.swp_type(entry) == self.SWP_MIGRATION_READ_EXCLUSIVE

    def make_readable_migration_entry(self, offset: int) -> swp_entry_t:
        if not self.MIGRATION:
            return self.swp_entry(0, 0)
        return self.swp_entry(self.SWP_MIGRATION_READ, offset)

    def make_readable_exclusive_migration_entry(self, offset: int) -> swp_entry_t:
        if not self.MIGRATION:
            return self.swp_entry(0, 0)
        return self.swp_entry(self.SWP_MIGRATION_READ_EXCLUSIVE, offset)

    def make_writable_migration_entry(self, offset: int) -> swp_entry_t:
        if not self.MIGRATION:
            return self.swp_entry(0, 0)
        return self.swp_entry(self.SWP_MIGRATION_WRITE, offset)

    def is_pfn_swap_entry(self, entry: swp_entry_t) -> bool:
        """Migration entries (no device-private/exclusive ones are emulated)."""
        return self.is_migration_entry(entry)

    # -- include/linux/pgtable.h: !CONFIG_HAVE_ARCH_SOFT_DIRTY ----------------------------

    def pte_swp_mksoft_dirty(self, pte: pte_t) -> pte_t:
        return pte

    def pte_swp_soft_dirty(self, pte: pte_t) -> bool:
        return False

    def pte_swp_clear_soft_dirty(self, pte: pte_t) -> pte_t:
        return pte

    def pmd_swp_mksoft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd

    def pmd_swp_soft_dirty(self, pmd: pmd_t) -> bool:
        return False

    def pmd_swp_clear_soft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd

    # -- include/asm-generic/pgtable_uffd.h: !CONFIG_HAVE_ARCH_USERFAULTFD_WP --------------

    def pte_swp_mkuffd_wp(self, pte: pte_t) -> pte_t:
        return pte

    def pte_swp_uffd_wp(self, pte: pte_t) -> bool:
        return False

    def pte_swp_clear_uffd_wp(self, pte: pte_t) -> pte_t:
        return pte

    def pmd_swp_mkuffd_wp(self, pmd: pmd_t) -> pmd_t:
        return pmd

    def pmd_swp_uffd_wp(self, pmd: pmd_t) -> bool:
        return False

    def pmd_swp_clear_uffd_wp(self, pmd: pmd_t) -> pmd_t:
        return pmd
