"""4-level and 5-level paging (IA-32e mode), Intel SDM Vol. 3A §4.5.

Selected by CR0.PG = 1, CR4.PAE = 1, IA32_EFER.LME = 1 (LMA = 1 once active); CR4.LA57 picks
5-level (SDM §4.1.1, Table 4-1).  Entry formats: SDM Tables 4-12..4-19.  Reserved bits
(§4.5.4): 51:MAXPHYADDR in every present entry; PS in a PML5E/PML4E; 29:13 in a 1-GByte
PDPTE leaf; 20:13 in a 2-MByte PDE leaf; XD when IA32_EFER.NXE = 0.  Bits 62:52 are ignored
(or protection keys, not modelled).  1-GByte pages are assumed supported (CPUID Page1GB).
"""

from __future__ import annotations

from collections.abc import Mapping

from arches.config import reg
from arches.errors import BadInput
from arches.x86.bits import CR0_PG, CR4_LA57, CR4_PAE, EFER_LMA, EFER_LME, EFER_NXE
from arches.x86.walkcore import CR0_PE, PS, EntryRule, PagingWalker, WalkSetup, bits


class Ia32eWalker(PagingWalker):
    """4-level (``levels=4``, 48-bit VA) or 5-level (``levels=5``, 57-bit VA) paging with
    MAXPHYADDR = ``phys_bits``."""

    word_bits = 64

    def __init__(self, levels: int = 4, phys_bits: int = 52) -> None:
        if levels not in (4, 5):
            raise ValueError(f"IA-32e paging has 4 or 5 levels, not {levels}")
        if not 32 <= phys_bits <= 52:
            raise ValueError(f"MAXPHYADDR {phys_bits} is outside 32..52")
        self.levels = levels
        self.phys_bits = phys_bits
        self.va_bits = 12 + 9 * levels
        m = phys_bits
        high = bits(51, m)  # §4.5.4: bits 51:M reserved in every present entry
        addr = bits(m - 1, 12)
        upper = [
            EntryRule(name, shift, 9, 8, addr, high | PS, xd=True)  # PS reserved here
            for name, shift in (("PML5E", 48), ("PML4E", 39))[5 - levels :]
        ]
        gb_addr, gb_rsvd = bits(m - 1, 30), high | bits(29, 13)  # 1-GByte PDPTE leaf
        mb_addr, mb_rsvd = bits(m - 1, 21), high | bits(20, 13)  # 2-MByte PDE leaf
        self.rules = (
            *upper,
            EntryRule("PDPTE", 30, 9, 8, addr, high, gb_addr, gb_rsvd, ps_leaf=True, xd=True),
            EntryRule("PDE", 21, 9, 8, addr, high, mb_addr, mb_rsvd, ps_leaf=True, xd=True),
            EntryRule("PTE", 12, 9, 8, addr, high, addr, high, last=True, xd=True),
        )

    def __repr__(self) -> str:
        return f"Ia32eWalker(levels={self.levels}, phys_bits={self.phys_bits})"

    def setup(self, regs: Mapping[str, int]) -> WalkSetup:
        cr0, cr3, cr4, efer = (reg(regs, r) for r in ("cr0", "cr3", "cr4", "efer"))
        if not (cr0 & CR0_PG and cr0 & CR0_PE and cr4 & CR4_PAE):
            raise BadInput(f"CR0 {cr0:#x} / CR4 {cr4:#x} do not enable PAE-based paging")
        if efer & (EFER_LME | EFER_LMA) != EFER_LME | EFER_LMA:
            raise BadInput(f"IA32_EFER {efer:#x} does not have LME and LMA set (IA-32e mode)")
        if bool(cr4 & CR4_LA57) != (self.levels == 5):
            raise BadInput(f"CR4.LA57 in {cr4:#x} does not select {self.levels}-level paging")
        # SDM Table 4-12: CR3[M-1:12] locate the PML4/PML5 table; bits 63:M are reserved
        # (a MOV to CR3 setting them would #GP), 11:0 are PCD/PWT or the PCID.
        if cr3 >> self.phys_bits:
            raise BadInput(f"CR3 {cr3:#x} sets bits above MAXPHYADDR ({self.phys_bits})")
        return WalkSetup(cr3 & bits(self.phys_bits - 1, 12), self.rules, bool(efer & EFER_NXE))

    def canonical(self, va: int) -> bool:
        """SDM §4.5 / Vol. 1 §3.3.7.1: bits 63:N-1 all equal bit N-1 (N = 48 or 57)."""
        top = va >> (self.va_bits - 1)
        return top == 0 or top == (1 << (65 - self.va_bits)) - 1

    def sign_extend(self, va: int) -> int:
        if va >> (self.va_bits - 1) & 1:
            return va | bits(63, self.va_bits)
        return va
