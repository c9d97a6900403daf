"""The legacy per-level page-table API, with kernel names and kernel semantics.

``boot(name)`` returns a :class:`~legacy.generic.GenericKernel` for one configuration: the
kernel "compiled" for that architecture, running on its own emulated machine.  Its methods
are the kernel's functions (``k.pgd_offset(mm, addr)``, ``k.pte_mkwrite(pte)``...); the
call sites in :mod:`legacy.mm` are written against it.
"""

from arches.errors import BadInput, LockError, OutOfMemory, PtshimError, TlbError
from legacy.generic import MAP_FIXED, VM_EXEC, VM_NONE, VM_READ, VM_SHARED, VM_WRITE, GenericKernel
from legacy.mm_types import mm_struct, spin_lock, spin_unlock, spinlock_t, vm_area_struct
from legacy.registry import arch_names, boot
from legacy.types import (
    EntryPtr,
    P4dPtr,
    PgdPtr,
    PmdPtr,
    PtePtr,
    PudPtr,
    p4d_t,
    pgd_t,
    pgprot_t,
    pgtable_t,
    pmd_t,
    pte_t,
    pud_t,
)

__all__ = [
    "BadInput", "LockError", "OutOfMemory", "PtshimError", "TlbError",
    "MAP_FIXED", "VM_EXEC", "VM_NONE", "VM_READ", "VM_SHARED", "VM_WRITE", "EntryPtr",
    "GenericKernel",
    "P4dPtr", "PgdPtr", "PmdPtr", "PtePtr", "PudPtr", "arch_names", "boot", "mm_struct",
    "p4d_t", "pgd_t", "pgprot_t", "pgtable_t", "pmd_t", "pte_t", "pud_t", "spin_lock",
    "spin_unlock", "spinlock_t", "vm_area_struct",
]
