"""``vm_flags`` bits of ``struct vm_area_struct`` (include/linux/mm.h) and the predicates
on them that the call sites use (``is_cow_mapping``, ``is_vm_hugetlb_page``)."""

from __future__ import annotations

from legacy.generic import VM_EXEC, VM_NONE, VM_READ, VM_SHARED, VM_WRITE
from legacy.mm_types import vm_area_struct

VM_MAYREAD = 0x00000010
VM_MAYWRITE = 0x00000020
VM_MAYEXEC = 0x00000040
VM_MAYSHARE = 0x00000080
VM_GROWSDOWN = 0x00000100
VM_PFNMAP = 0x00000400
"""Page-ranges managed without "struct page", just pure PFN."""
VM_LOCKED = 0x00002000
VM_IO = 0x00004000
VM_DONTCOPY = 0x00020000
VM_DONTEXPAND = 0x00040000
VM_ACCOUNT = 0x00100000
VM_NORESERVE = 0x00200000
VM_HUGETLB = 0x00400000
VM_DONTDUMP = 0x04000000
VM_MIXEDMAP = 0x10000000


def is_cow_mapping(flags: int) -> bool:
    """include/linux/mm.h: private and may become writable."""
    return (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE


def is_vm_hugetlb_page(vma: vm_area_struct) -> bool:
    """include/linux/hugetlb_inline.h."""
    return bool(vma.vm_flags & VM_HUGETLB)


__all__ = [
    "VM_ACCOUNT", "VM_DONTCOPY", "VM_DONTDUMP", "VM_DONTEXPAND", "VM_EXEC", "VM_GROWSDOWN",
    "VM_HUGETLB", "VM_IO", "VM_LOCKED", "VM_MAYEXEC", "VM_MAYREAD", "VM_MAYSHARE",
    "VM_MAYWRITE", "VM_MIXEDMAP", "VM_NONE", "VM_NORESERVE", "VM_PFNMAP", "VM_READ",
    "VM_SHARED", "VM_WRITE", "is_cow_mapping", "is_vm_hugetlb_page",
]
