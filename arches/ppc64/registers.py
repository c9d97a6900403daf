"""The register and process-table values that put a POWER9/10 thread in Linux's radix mode.

A radix root is not a register: the CPU finds it through the partition table (``PTCR``) and,
for the partition's process table, the entry of the PID in force.  Linux (host, LPID 0,
``arch/powerpc/mm/book3s64/radix_pgtable.c`` ``radix_init_partition_table``,
``arch/powerpc/mm/book3s64/mmu_context.c`` ``radix__switch_mmu_context``,
``asm/book3s/64/mmu.h``) writes:

- ``LPCR |= LPCR_UPRT | LPCR_HR``; ``LPIDR`` = 0;
- the process-table entry of PID ``p``, doubleword 0 (``prtb0``): ``RTS | __pa(pgd) |
  RADIX_PGD_INDEX_SIZE`` (``radix__get_tree_size``: a 52-bit tree, RPDS = 13: an 8192-entry
  root);
- PID 0's entry points at ``swapper_pg_dir`` (``init_mm.pgd``): quadrant 3 (EA bits 63:62 =
  0b11) always walks PID 0;
- ``mtspr(SPRN_PID, mm->context.id)`` on every switch: quadrant 0 walks that PID's entry.

``make_registers`` returns those values as the CPU would fetch them: ``pidr``, ``lpidr``,
``lpcr``, ``prte_pidr`` (doubleword 0 of PIDR's entry) and ``prte_0`` (PID 0's).  PIDR is 1
here (the first user context id).  The partition and process tables themselves are not
emulated memory; the Unicorn cross-check builds them in its own copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.errors import BadInput
from arches.ppc64.bits import LPCR_HR, LPCR_UPRT, RADIX_PGD_INDEX_SIZE, RTS_FIELD

USER_PID = 1
"""The PID the emulation gives the running user mm (``mm->context.id``)."""


def prtb0(root: int) -> int:
    """Process-table doubleword 0 for a root page directory at ``root``."""
    return RTS_FIELD | root | RADIX_PGD_INDEX_SIZE


@dataclass(frozen=True)
class RadixRegisters:
    """``make_registers`` for book3s64 radix: user root -> PIDR's entry, kernel root -> PID 0's."""

    def __call__(self, user_root: int, kernel_root: int) -> dict[str, int]:
        size = 8 << RADIX_PGD_INDEX_SIZE
        for name, root in (("user", user_root), ("kernel", kernel_root)):
            if root % size or not 0 <= root < 1 << 56:
                raise BadInput(
                    f"{name} root {root:#x} is not a {size}-byte aligned address below 2^56: "
                    "the process-table entry's RPDB cannot hold it"
                )
        return {
            "lpcr": LPCR_UPRT | LPCR_HR,
            "lpidr": 0,
            "pidr": USER_PID,
            "prte_pidr": prtb0(user_root),
            "prte_0": prtb0(kernel_root),
        }
