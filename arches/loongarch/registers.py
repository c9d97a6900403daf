"""The CSR values Linux programs on LoongArch64 for one mm (``make_registers``).

Two roots, as on arm64: ``PGDL`` serves VAs whose bit 63 is 0, ``PGDH`` those whose bit 63
is 1 (Reference Manual, Vol. 1, "CSR.PGDL/PGDH/PGD").  Linux (v6.18) writes
``swapper_pg_dir`` into ``PGDH`` once (``setup_ptwalker``, arch/loongarch/mm/tlb.c) and the
next mm's ``pgd`` into ``PGDL`` at every ``switch_mm`` (``invalid_pg_dir`` for a kernel
thread; asm/mmu_context.h).  Both are *kernel virtual addresses* in the cached direct-map
window (``CACHE_BASE | pa``): the hardware uses only bits PALEN-1:12, so a bare physical
address is accepted as well.  ``PWCL``/``PWCH`` describe the walk as ``setup_ptwalker``
computes it for the configured page size and level count; ``CRMD`` has paging on (PG = 1,
DA = 0) and ``DMW1`` is the cached window (``CSR_DMW1_INIT``).
"""

from __future__ import annotations

from dataclasses import dataclass

from arches.errors import BadInput
from arches.loongarch.bits import CSR_DMW1_INIT

CRMD_PG = 1 << 4
"""Paging enabled (CRMD.PG), direct address translation off (CRMD.DA = 0), PLV0."""


def pwctl(page_shift: int, levels: int) -> tuple[int, int]:
    """``setup_ptwalker``: ``pwctl0 = pte_i | pte_w << 5 | pmd_i << 10 | pmd_w << 15 |
    pud_i << 20 | pud_w << 25``, ``pwctl1 = pgd_i | pgd_w << 6`` -- the pgd is always
    Dir3 (PWCH), the pmd Dir1 and the pud Dir2 (PWCL), a level Linux folds has width 0."""
    w = page_shift - 3
    pte_i, pte_w = page_shift, w
    pmd_i = pmd_w = pud_i = pud_w = 0
    shift = page_shift + w
    if levels > 2:
        pmd_i, pmd_w = shift, w
        shift += w
    if levels > 3:
        pud_i, pud_w = shift, w
        shift += w
    pgd_i, pgd_w = shift, w
    pwcl = pte_i | pte_w << 5 | pmd_i << 10 | pmd_w << 15 | pud_i << 20 | pud_w << 25
    pwch = pgd_i | pgd_w << 6
    return pwcl, pwch


@dataclass(frozen=True)
class LoongarchRegisters:
    """``make_registers`` for one page size / level count."""

    page_shift: int
    levels: int

    def __call__(self, user_root: int, kernel_root: int) -> dict[str, int]:
        for name, root in (("user (PGDL)", user_root), ("kernel (PGDH)", kernel_root)):
            if not 0 <= root < 1 << 64 or root & 0xFFF:
                raise BadInput(f"{name} root {root:#x} is not a 4096-byte aligned 64-bit "
                               "address, so the PGD register's base field cannot hold it")
        pwcl, pwch = pwctl(self.page_shift, self.levels)
        return {"crmd": CRMD_PG, "pgdl": user_root, "pgdh": kernel_root, "pwcl": pwcl,
                "pwch": pwch, "dmw1": CSR_DMW1_INIT}
