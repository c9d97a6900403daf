"""32-bit paging, Intel SDM Vol. 3A §4.3.

Selected by CR0.PG = 1, CR4.PAE = 0 (SDM §4.1.1).  CR3[31:12] locate the page directory
(Table 4-3).  With CR4.PSE = 1 a PDE with PS = 1 maps a 4-MByte page (Table 4-4): PA[31:22] in
bits 31:22, PA[M-1:32] in bits (M-20):13 (PSE-36, M = min(MAXPHYADDR, 40)), bits 21:(M-19)
reserved, PAT in bit 12.  With CR4.PSE = 0 the PS bit is ignored.  No other bit of a 32-bit
entry is reserved and there is no XD: every page is executable.  Bit 7 of a PTE is PAT.
"""

from __future__ import annotations

from collections.abc import Mapping

from arches.config import reg
from arches.errors import BadInput
from arches.x86.bits import CR0_PG, CR4_PAE, CR4_PSE, EFER_LMA, EFER_LME
from arches.x86.walkcore import CR0_PE, EntryRule, PagingWalker, WalkSetup, bits


class Paging32Walker(PagingWalker):
    """32-bit (two-level, non-PAE) paging with MAXPHYADDR = ``phys_bits``."""

    word_bits = 32
    va_bits = 32

    def __init__(self, phys_bits: int = 32) -> None:
        if not 32 <= phys_bits <= 52:
            raise ValueError(f"MAXPHYADDR {phys_bits} is outside 32..52")
        self.phys_bits = phys_bits
        m = min(phys_bits, 40)
        addr = bits(31, 12)
        pte = EntryRule("PTE", 12, 10, 4, addr, 0, last=True, leaf_addr=addr)
        big_addr, big_rsvd, pse36 = bits(31, 22), bits(21, m - 19), m - 32  # 4-MByte leaf
        pde_pse = EntryRule(
            "PDE", 22, 10, 4, addr, 0, big_addr, big_rsvd, ps_leaf=True, pse36_bits=pse36
        )
        self.rules_pse = (pde_pse, pte)
        self.rules_nopse = (EntryRule("PDE", 22, 10, 4, addr, 0), pte)

    def __repr__(self) -> str:
        return f"Paging32Walker(phys_bits={self.phys_bits})"

    def setup(self, regs: Mapping[str, int]) -> WalkSetup:
        cr0, cr3, cr4, efer = (reg(regs, r) for r in ("cr0", "cr3", "cr4", "efer"))
        if not (cr0 & CR0_PG and cr0 & CR0_PE):
            raise BadInput(f"CR0 {cr0:#x} does not enable paging")
        if cr4 & CR4_PAE or efer & (EFER_LME | EFER_LMA):
            raise BadInput(f"CR4 {cr4:#x} / IA32_EFER {efer:#x} select PAE or IA-32e paging")
        rules = self.rules_pse if cr4 & CR4_PSE else self.rules_nopse
        return WalkSetup(cr3 & bits(31, 12), rules, False)
