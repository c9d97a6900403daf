"""PAE paging, Intel SDM Vol. 3A §4.4.

Selected by CR0.PG = 1, CR4.PAE = 1, IA32_EFER.LME = 0 (SDM §4.1.1).  CR3[31:5] locate a
32-byte page-directory-pointer table of four PDPTEs (Table 4-7); the CPU loads them into the
PDPTE registers on a MOV to CR3 (§4.4.1).  This walker reads them from memory at walk time, as
if CR3 had just been reloaded.

Reserved bits: PDPTE bits 2:1, 8:5 and 63:M (Table 4-8; the CPU would #GP on the CR3 load,
reported here as a fault); PDE/PTE bits 62:M, bits 20:13 of a 2-MByte leaf and XD when
IA32_EFER.NXE = 0 (§4.4.2).  The PDPTE has no R/W, U/S or XD: it does not take part in the
access rights.  Bit 7 of a PTE is PAT; bit 12 of a 2-MByte PDE is PAT.
"""

from __future__ import annotations

from collections.abc import Mapping

from arches.config import reg
from arches.errors import BadInput
from arches.x86.bits import CR0_PG, CR4_PAE, EFER_LMA, EFER_LME, EFER_NXE
from arches.x86.walkcore import CR0_PE, EntryRule, PagingWalker, WalkSetup, bits


class PaeWalker(PagingWalker):
    """PAE paging (32-bit VA) with MAXPHYADDR = ``phys_bits``."""

    word_bits = 32
    va_bits = 32

    def __init__(self, phys_bits: int = 52) -> None:
        if not 32 <= phys_bits <= 52:
            raise ValueError(f"MAXPHYADDR {phys_bits} is outside 32..52")
        self.phys_bits = m = phys_bits
        addr = bits(m - 1, 12)
        high = bits(62, m)
        pdpte_rsvd = bits(63, m) | bits(8, 5) | bits(2, 1)
        mb_addr, mb_rsvd = bits(m - 1, 21), high | bits(20, 13)  # 2-MByte PDE leaf
        self.rules = (
            EntryRule("PDPTE", 30, 2, 8, addr, pdpte_rsvd, access=False),
            EntryRule("PDE", 21, 9, 8, addr, high, mb_addr, mb_rsvd, ps_leaf=True, xd=True),
            EntryRule("PTE", 12, 9, 8, addr, high, addr, high, last=True, xd=True),
        )

    def __repr__(self) -> str:
        return f"PaeWalker(phys_bits={self.phys_bits})"

    def setup(self, regs: Mapping[str, int]) -> WalkSetup:
        cr0, cr3, cr4, efer = (reg(regs, r) for r in ("cr0", "cr3", "cr4", "efer"))
        if not (cr0 & CR0_PG and cr0 & CR0_PE and cr4 & CR4_PAE):
            raise BadInput(f"CR0 {cr0:#x} / CR4 {cr4:#x} do not enable PAE paging")
        if efer & (EFER_LME | EFER_LMA):
            raise BadInput(f"IA32_EFER {efer:#x} selects IA-32e mode, not PAE paging")
        return WalkSetup(cr3 & bits(31, 5), self.rules, bool(efer & EFER_NXE))
