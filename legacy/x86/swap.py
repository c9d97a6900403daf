"""x86 swap entries: the swap-pte flag bits and the x86-64 encoding.

:class:`X86SwpFlags` follows ``arch/x86/include/asm/pgtable.h`` (``pte_swp_*exclusive``,
``pte_swp_*soft_dirty``, ``pmd_swp_*soft_dirty``, ``*_swp_*uffd_wp``) and
``pgtable_types.h`` (``_PAGE_SWP_SOFT_DIRTY`` = ``_PAGE_RW`` "we borrow bit 1 for soft dirty
tracking", ``_PAGE_SWP_UFFD_WP`` = ``_PAGE_USER``, ``_PAGE_SWP_EXCLUSIVE`` = ``_PAGE_PWT``;
the first two are 0 without ``CONFIG_MEM_SOFT_DIRTY`` / ``CONFIG_HAVE_ARCH_USERFAULTFD_WP``).

:class:`X86_64Swap` adds the x86-64 format of ``arch/x86/include/asm/pgtable_64.h``::

    |     ...            | 11| 10|  9|8|7|6|5| 4| 3|2| 1|0| <- bit number
    |     ...            |SW3|SW2|SW1|G|L|D|A|CD|WT|U| W|P| <- bit names
    | TYPE (59-63) | ~OFFSET (9-58)  |0|0|X|X| X| E|F|SD|0| <- swp entry

"G (8) is aliased and used as a PROT_NONE indicator for !present ptes", "bit 7 in swp entry
should be 0 because pmd_present checks not only P, but also L and G", and "the offset is
inverted by a binary not operation to make the high physical bits set" (L1TF).
"""

from __future__ import annotations

from arches.x86.bits import (
    _PAGE_BIT_PROTNONE,
    _PAGE_RW,
    _PAGE_SWP_EXCLUSIVE,
    _PAGE_USER,
)
from legacy.swapops import swp_entry_t
from legacy.types import pmd_t, pte_t
from legacy.x86.pgtable import X86Kernel

M64 = (1 << 64) - 1
"""``unsigned long`` on x86-64: every shift of the encoding is truncated to 64 bits."""

SWP_TYPE_BITS = 5
SWP_OFFSET_FIRST_BIT = _PAGE_BIT_PROTNONE + 1
SWP_OFFSET_SHIFT = SWP_OFFSET_FIRST_BIT + SWP_TYPE_BITS
""""We always extract/encode the offset by shifting it all the way up, and then down again"."""


class X86SwpFlags(X86Kernel):
    """The swap-pte flag helpers of arch/x86/include/asm/pgtable.h (every paging mode)."""

    @property
    def _PAGE_SWP_SOFT_DIRTY(self) -> int:
        return _PAGE_RW if self.MEM_SOFT_DIRTY else 0

    @property
    def _PAGE_SWP_UFFD_WP(self) -> int:
        return _PAGE_USER if self.HAVE_ARCH_USERFAULTFD_WP else 0

    def pte_swp_mkexclusive(self, pte: pte_t) -> pte_t:
        return self.pte_set_flags(pte, _PAGE_SWP_EXCLUSIVE)

    def pte_swp_exclusive(self, pte: pte_t) -> bool:
        return bool(self.pte_flags(pte) & _PAGE_SWP_EXCLUSIVE)

    def pte_swp_clear_exclusive(self, pte: pte_t) -> pte_t:
        return self.pte_clear_flags(pte, _PAGE_SWP_EXCLUSIVE)

    # CONFIG_HAVE_ARCH_SOFT_DIRTY (the bit is 0 without CONFIG_MEM_SOFT_DIRTY)

    def pte_swp_mksoft_dirty(self, pte: pte_t) -> pte_t:
        return self.pte_set_flags(pte, self._PAGE_SWP_SOFT_DIRTY)

    def pte_swp_soft_dirty(self, pte: pte_t) -> bool:
        return bool(self.pte_flags(pte) & self._PAGE_SWP_SOFT_DIRTY)

    def pte_swp_clear_soft_dirty(self, pte: pte_t) -> pte_t:
        return self.pte_clear_flags(pte, self._PAGE_SWP_SOFT_DIRTY)

    # CONFIG_ARCH_ENABLE_THP_MIGRATION

    def pmd_swp_mksoft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd | self._PAGE_SWP_SOFT_DIRTY)

    def pmd_swp_soft_dirty(self, pmd: pmd_t) -> bool:
        return bool(self.pmd_flags(pmd) & self._PAGE_SWP_SOFT_DIRTY)

    def pmd_swp_clear_soft_dirty(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~self._PAGE_SWP_SOFT_DIRTY)

    # CONFIG_HAVE_ARCH_USERFAULTFD_WP

    def pte_swp_mkuffd_wp(self, pte: pte_t) -> pte_t:
        return self.pte_set_flags(pte, self._PAGE_SWP_UFFD_WP)

    def pte_swp_uffd_wp(self, pte: pte_t) -> bool:
        return bool(self.pte_flags(pte) & self._PAGE_SWP_UFFD_WP)

    def pte_swp_clear_uffd_wp(self, pte: pte_t) -> pte_t:
        return self.pte_clear_flags(pte, self._PAGE_SWP_UFFD_WP)

    def pmd_swp_mkuffd_wp(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd | self._PAGE_SWP_UFFD_WP)

    def pmd_swp_uffd_wp(self, pmd: pmd_t) -> bool:
        return bool(self.pmd_flags(pmd) & self._PAGE_SWP_UFFD_WP)

    def pmd_swp_clear_uffd_wp(self, pmd: pmd_t) -> pmd_t:
        return pmd_t(pmd & ~self._PAGE_SWP_UFFD_WP)


class X86_64Swap(X86SwpFlags):
    """arch/x86/include/asm/pgtable_64.h: encode and decode a swap entry."""

    SWP_ENTRY_EMULATED = True

    def _swp_type(self, x: swp_entry_t) -> int:
        """``__swp_type``: "Extract the high bits for type"."""
        return x >> (64 - SWP_TYPE_BITS)

    def _swp_offset(self, x: swp_entry_t) -> int:
        """``__swp_offset``: "Shift up (to get rid of type), then down to get value"."""
        return ((~x << SWP_TYPE_BITS) & M64) >> SWP_OFFSET_SHIFT

    def _swp_entry(self, type_: int, offset: int) -> swp_entry_t:
        """``__swp_entry``: "Shift the offset up "too far" by TYPE bits, then down again"."""
        inverted = (((~offset & M64) << SWP_OFFSET_SHIFT) & M64) >> SWP_TYPE_BITS
        return swp_entry_t(inverted | ((type_ << (64 - SWP_TYPE_BITS)) & M64))

    def _pte_to_swp_entry(self, pte: pte_t) -> swp_entry_t:
        return swp_entry_t(pte)

    def _pmd_to_swp_entry(self, pmd: pmd_t) -> swp_entry_t:
        return swp_entry_t(pmd)

    def _swp_entry_to_pte(self, x: swp_entry_t) -> pte_t:
        return pte_t(x)

    def _swp_entry_to_pmd(self, x: swp_entry_t) -> pmd_t:
        return pmd_t(x)
