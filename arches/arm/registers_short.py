"""The CP15 register values Linux programs for one mm on a classic (short-descriptor) ARMv7
kernel (``make_registers`` of the ``arm`` configuration).

``arch/arm/mm/proc-v7-2level.S`` (v6.18): ``cpu_v7_switch_mm`` writes CONTEXTIDR (the ASID)
and TTBR0 = ``__pa(pgd) | TTB_FLAGS_SMP``; ``v7_ttb_setup`` writes TTBCR = 0 (no split:
TTBR0 translates every address, kernel ones included) and TTBR1 = ``swapper_pg_dir |
TTB_FLAGS_SMP`` (unused with N = 0); SCTLR comes from ``v7_crval`` (MMU on, TEX remap on,
Access flag off, high vectors).  DACR: the value while user space runs
(``DACR_UACCESS_ENABLE``, arch/arm/include/asm/domain.h).
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.arm.bits_short import DACR_UACCESS_ENABLE, TTB_FLAGS_SMP, V7_CRVAL_MMUSET
from arches.errors import BadInput


@dataclass(frozen=True)
class ShortRegisters:
    """``make_registers`` for ``arm``: one root (the mm's pgd) for user and kernel."""

    def __call__(self, user_root: int, kernel_root: int) -> dict[str, int]:
        if user_root != kernel_root:
            raise BadInput(
                f"classic arm has one root (TTBR0, TTBCR.N = 0): user root {user_root:#x} "
                f"!= kernel root {kernel_root:#x}"
            )
        if user_root % 0x4000 or not 0 <= user_root < 1 << 32:
            raise BadInput(
                f"root {user_root:#x} is not a 16 KiB aligned address below 2^32, so "
                "TTBR0[31:14] cannot hold it"
            )
        return {
            "sctlr": V7_CRVAL_MMUSET,
            "ttbcr": 0,
            "ttbr0": user_root | TTB_FLAGS_SMP,
            "ttbr1": user_root | TTB_FLAGS_SMP,
            "dacr": DACR_UACCESS_ENABLE,
            "contextidr": 0,
        }
