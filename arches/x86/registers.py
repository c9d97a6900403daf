"""Control-register values that put a CPU in each x86 paging mode (Intel SDM Vol. 3A §4.1.1).

x86 has a single root, CR3, for both halves of the address space; ``kernel_root`` must equal
``user_root``.  CR0 = PE | WP | PG: paging on, supervisor writes honour R/W (as Linux sets it).
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.errors import BadInput
from arches.x86.bits import CR0_PG, CR0_WP
from arches.x86.walkcore import CR0_PE

CR0_PAGING = CR0_PE | CR0_WP | CR0_PG
"""0x80010001."""


@dataclass(frozen=True)
class X86Registers:
    """``make_registers`` for one paging mode: fixed CR0/CR4/IA32_EFER, CR3 = the root."""

    cr4: int
    efer: int
    cr3_align: int
    """Alignment CR3's table address must have (4096; 32 for the PAE PDPT, SDM Table 4-7)."""
    cr3_limit: int
    """Exclusive upper bound of the root's physical address (CR3 width / MAXPHYADDR)."""

    def __call__(self, user_root: int, kernel_root: int) -> dict[str, int]:
        if user_root != kernel_root:
            raise BadInput(
                f"x86 has one root (CR3): user root {user_root:#x} != kernel root {kernel_root:#x}"
            )
        if user_root % self.cr3_align or not 0 <= user_root < self.cr3_limit:
            raise BadInput(
                f"root {user_root:#x} is not a {self.cr3_align}-byte aligned address below "
                f"{self.cr3_limit:#x}, so CR3 cannot hold it"
            )
        return {"cr0": CR0_PAGING, "cr3": user_root, "cr4": self.cr4, "efer": self.efer}
