"""The CSR values that put a hart in a configuration's paging mode (``make_registers``).

One root, ``satp``, for both halves of the address space: Linux writes
``PFN_DOWN(__pa(mm->pgd)) | satp_mode`` (``arch/riscv/mm/context.c``, ``set_mm``; ASID 0
here), ``satp_mode`` being the mode ``set_satp_mode`` settled on at boot
(``arch/riscv/mm/init.c``).  ``menvcfg`` is the M-mode firmware's: ``ADUE`` set (Svadu, the
hardware updates A and D), as firmware does when the hart has Svadu and not Svade.
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.errors import BadInput
from arches.riscv.bits import ENVCFG_ADUE


@dataclass(frozen=True)
class RiscvRegisters:
    """``make_registers`` for one Sv mode: ``satp`` = mode | root PPN, fixed ``menvcfg``."""

    satp_mode: int
    """``SATP_MODE_32``/``39``/``48``/``57``."""
    ppn_bits: int
    """Width of ``satp.PPN`` (22 on RV32, 44 on RV64)."""

    def __call__(self, user_root: int, kernel_root: int) -> dict[str, int]:
        if user_root != kernel_root:
            raise BadInput(
                f"RISC-V has one root (satp): user root {user_root:#x} != kernel root "
                f"{kernel_root:#x}"
            )
        if user_root % 4096 or not 0 <= user_root < 1 << (self.ppn_bits + 12):
            raise BadInput(
                f"root {user_root:#x} is not a 4096-byte aligned address below "
                f"2^{self.ppn_bits + 12}, so satp.PPN cannot hold it"
            )
        return {"satp": self.satp_mode | user_root >> 12, "menvcfg": ENVCFG_ADUE}
