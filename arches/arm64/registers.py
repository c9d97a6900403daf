"""The EL1 system-register values Linux programs for a configuration (``make_registers``).

``tcr_el1`` is what ``__cpu_setup`` (``arch/arm64/mm/proc.S``) builds: ``TCR_TxSZ(VA_BITS) |
TCR_CACHE_FLAGS | TCR_SMP_FLAGS | TCR_TG_FLAGS | TCR_ASID16 | TCR_A1``, IPS from the CPU's
PARange (``tcr_compute_pa_size``), plus ``TCR_HA`` (hardware Access flag, FEAT_HAFDBS, set by
``__cpu_setup`` under CONFIG_ARM64_HW_AFDBM) and ``TCR_HD`` (hardware dirty state,
``cpu_enable_hw_dbm``): Linux's clean writable pages are ``PTE_RDONLY | PTE_WRITE`` (DBM), so
with HD the first write makes them writable without a fault.

One deliberate difference: Linux also sets ``TCR_TBI0`` (the tagged-address ABI: bits [63:56]
of user pointers are ignored).  Here TBI0 stays 0 so every user VA has exactly one encoding and
an address with a non-zero top byte faults, as the scenario contract wants; the walker honours
TBI0/TBI1 when a caller sets them.

``ttbr0_el1`` = ``mm->pgd`` (ASID 0), ``ttbr1_el1`` = ``swapper_pg_dir``; ``mair_el1`` =
``MAIR_EL1_SET`` (``arch/arm64/include/asm/memory.h``).
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.arm64.bits import (
    ID_AA64MMFR0_PARANGE_48,
    MAIR_EL1_SET,
    TCR_A1,
    TCR_ASID16,
    TCR_CACHE_FLAGS,
    TCR_HA,
    TCR_HD,
    TCR_IPS_SHIFT,
    TCR_SMP_FLAGS,
    TCR_TG0_4K,
    TCR_TG0_16K,
    TCR_TG0_64K,
    TCR_TG1_4K,
    TCR_TG1_16K,
    TCR_TG1_64K,
    TCR_TxSZ,
)
from arches.errors import BadInput

_TG_FLAGS = {
    12: TCR_TG0_4K | TCR_TG1_4K,
    14: TCR_TG0_16K | TCR_TG1_16K,
    16: TCR_TG0_64K | TCR_TG1_64K,
}


@dataclass(frozen=True)
class Arm64Registers:
    """``make_registers`` for one arm64 configuration: two roots, TCR_EL1 and MAIR_EL1."""

    page_shift: int
    va_bits: int
    pgd_bytes: int
    """Size of the top-level table: the alignment TTBRn_EL1.BADDR needs (Arm ARM: a
    translation table is aligned to its size; 64 bytes at least only with 52-bit PAs,
    which are not emulated) -- 16 bytes for the 2-entry L0 table of 16K/48."""
    pa_bits: int = 48
    parange: int = ID_AA64MMFR0_PARANGE_48

    @property
    def tcr_el1(self) -> int:
        return (
            TCR_TxSZ(self.va_bits)
            | TCR_CACHE_FLAGS
            | TCR_SMP_FLAGS
            | _TG_FLAGS[self.page_shift]
            | TCR_ASID16
            | TCR_A1
            | self.parange << TCR_IPS_SHIFT
            | TCR_HA
            | TCR_HD
        )

    def __call__(self, user_root: int, kernel_root: int) -> dict[str, int]:
        align = self.pgd_bytes if self.pa_bits <= 48 else max(self.pgd_bytes, 64)
        for name, root in (("user", user_root), ("kernel", kernel_root)):
            if root % align or not 0 <= root < 1 << self.pa_bits:
                raise BadInput(
                    f"{name} root {root:#x} is not a {align}-byte aligned address below "
                    f"2^{self.pa_bits}, so TTBR{0 if name == 'user' else 1}_EL1 cannot hold it"
                )
        return {
            "ttbr0_el1": user_root,
            "ttbr1_el1": kernel_root,
            "tcr_el1": self.tcr_el1,
            "mair_el1": MAIR_EL1_SET,
        }
