"""The control-register values Linux programs on s390x for one mm (``make_registers``).

A root on s390x is an address-space-control element (ASCE), not a table address: its
designation type says how many levels the walk has, and Linux changes it under a live mm when
``crst_table_upgrade`` adds a level (``arch/s390/mm/pgalloc.c``).  So the two arguments are
ASCEs: the user's ``mm->context.asce`` (``__pa(mm->pgd) | _ASCE_TABLE_LENGTH |
_ASCE_USER_BITS | type``) and the kernel's ``S390_lowcore.kernel_asce``
(``__pa(swapper_pg_dir) | _ASCE_TABLE_LENGTH | type``).

Where they go (``arch/s390/include/asm/mmu_context.h``, v6.18): ``activate_mm`` /
``finish_arch_post_lock_switch`` load CR1 (primary) and CR7 (secondary) with the user ASCE
(``get_lowcore()->user_asce``); the kernel runs in the home space, CR13 = ``kernel_asce``.
CR0 has the enhanced-DAT enablement (``CR0_EDAT_BIT``, set when the machine has EDAT-1) and the
instruction-execution-protection control (``CR0_INSTRUCTION_EXEC_PROTECTION_BIT``, set by
``mark_rodata_ro`` when ``cpu_has_nx()``) (``arch/s390/include/asm/ctlreg.h``).
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.errors import BadInput
from arches.s390.bits import (
    _ASCE_REAL_SPACE,
    _ASCE_TABLE_LENGTH,
    CR0_EDAT,
    CR0_INSTRUCTION_EXEC_PROTECTION,
)

CR0_LINUX = CR0_EDAT | CR0_INSTRUCTION_EXEC_PROTECTION
"""The CR0 bits this emulation models, as Linux sets them on a machine with EDAT-1 and NX."""


@dataclass(frozen=True)
class S390Registers:
    """``make_registers`` for s390x: CR0, CR1 = CR7 = the user ASCE, CR13 = the kernel ASCE."""

    cr0: int = CR0_LINUX

    def __call__(self, user_root: int, kernel_root: int) -> dict[str, int]:
        for name, asce in (("user", user_root), ("kernel", kernel_root)):
            if not 0 <= asce < 1 << 64:
                raise BadInput(f"{name} ASCE {asce:#x} does not fit in 64 bits")
            if asce & _ASCE_TABLE_LENGTH != _ASCE_TABLE_LENGTH or asce & _ASCE_REAL_SPACE:
                raise BadInput(
                    f"{name} root {asce:#x} is not an ASCE as Linux builds one (table length "
                    "3, no real-space control): an s390x root is origin | type | length, "
                    "not a bare table address"
                )
        return {"cr0": self.cr0, "cr1": user_root, "cr7": user_root, "cr13": kernel_root}
