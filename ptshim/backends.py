"""Backends: what turns a scenario op into calls of page-table call sites.

A :class:`Backend` maps, unmaps and protects user ranges (in a process ``mm``) and kernel
ranges (in ``init_mm``), and tears the process down.  :class:`LegacyBackend` does it with
the legacy call sites of :mod:`legacy.mm`; the differential harness runs the same ops on a
second kernel through another backend and compares the machines.

Adding a backend (e.g. the unified API's): write a factory ``(kernel) -> Backend`` and add
it to :data:`BACKENDS`.  When the unified API ports the same call sites, it is enough to
build a :class:`CallSites` from them: ``BACKENDS["unified"] = lambda k: LegacyBackend(k,
unified_call_sites(), name="unified")``; the VMA bookkeeping (``legacy.mm.vma``) is shared.

Every method raises :class:`~arches.errors.OutOfMemory` when the kernel code returns
-ENOMEM, *after* undoing what the kernel's error path undoes; for a map that is everything
(the machine is as before the op, except that kernel page tables stay allocated, as they do
in the kernel).  Other unexpected errors are :class:`~arches.errors.CheckFailed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from arches.errors import BadInput, CheckFailed, OutOfMemory
from legacy import GenericKernel, mm_struct, vm_area_struct
from legacy.types import PmdPtr, PudPtr, pgprot_t
from ptshim.model import Prot

ENOMEM = -12


class Backend(Protocol):
    """Drives one kernel.  Ranges are validated by the session before any call."""

    name: str
    k: GenericKernel

    def split_size(self, leaf_size: int, user: bool) -> int:
        """The leaf size a huge user leaf of ``leaf_size`` becomes when an unmap or protect
        covers only part of it (what the backend's ``split_huge_p?d`` produces)."""
        ...

    def map_user(self, mm: mm_struct, va: int, size: int, pa: int, prot: Prot,
                 page_size: int) -> None: ...

    def unmap_user(self, mm: mm_struct, va: int, size: int) -> None: ...

    def protect_user(self, mm: mm_struct, va: int, size: int, prot: Prot) -> None: ...

    def map_kernel(self, va: int, size: int, pa: int, prot: Prot, page_size: int) -> None: ...

    def unmap_kernel(self, va: int, size: int) -> None:
        """Huge leaves straddling the edges are split first: the range's neighbours stay."""
        ...

    def protect_kernel(self, va: int, size: int, prot: Prot) -> None: ...

    def teardown(self, mm: mm_struct) -> None:
        """``mmput(mm)``: unmap everything, free every table and the pgd, ``check_mm``."""
        ...

    def map_anon(self, mm: mm_struct, va: int, size: int, prot: Prot) -> None:
        """A private anonymous mapping, populated (``MAP_POPULATE``)."""
        ...

    def fork(self, mm: mm_struct) -> mm_struct:
        """``dup_mm``: the child's mm."""
        ...

    def mremap(self, mm: mm_struct, va: int, size: int, new_va: int) -> None:
        """Move ``[va, va + size)`` to ``new_va`` (``MREMAP_MAYMOVE | MREMAP_FIXED``)."""
        ...


# -- the call sites a LegacyBackend drives --------------------------------------------------

Vma = vm_area_struct


@dataclass(frozen=True)
class CallSites:
    """The kernel functions a backend calls (kernel first, kernel signatures)."""

    mmap_region: Callable[[GenericKernel, mm_struct, int, int, int, int], int]
    """``mmap_region(k, mm, addr, len, vm_flags, pgoff)``: addr or -errno."""
    find_vma: Callable[[GenericKernel, mm_struct, int], Vma | None]
    split_vma: Callable[[GenericKernel, Vma, int, bool], int]
    remap_pfn_range: Callable[[GenericKernel, Vma, int, int, int, pgprot_t], int]
    insert_pfn_pmd: Callable[[GenericKernel, Vma, int, int, pgprot_t], int]
    insert_pfn_pud: Callable[[GenericKernel, Vma, int, int, pgprot_t], int]
    do_munmap: Callable[[GenericKernel, mm_struct, int, int], int]
    change_protection: Callable[[GenericKernel, Vma, int, int, pgprot_t], int]
    vmap_range: Callable[[GenericKernel, int, int, int, pgprot_t, int], int]
    vunmap_range: Callable[[GenericKernel, int, int], None]
    split_huge_pmd: Callable[[GenericKernel, Vma, PmdPtr, int], None]
    """Raises :class:`OutOfMemory` (nothing changed) when it cannot allocate."""
    split_huge_pud: Callable[[GenericKernel, Vma, PudPtr, int], None]
    change_memory_common: Callable[..., int]
    """``(k, start, end, ops)``: the no-vma walk of ``init_mm`` (mm/pagewalk.c)."""
    mmput: Callable[[GenericKernel, mm_struct], None]
    populate_vma_page_range: Callable[[GenericKernel, Vma, int, int], int]
    """mm/gup.c: fault in an anonymous range (``MAP_POPULATE``); pages or -errno."""
    dup_mm: Callable[[GenericKernel, mm_struct], mm_struct | None]
    """kernel/fork.c: the child's mm, or None on -ENOMEM."""
    mremap_to: Callable[[GenericKernel, mm_struct, int, int, int, int], int]
    """``mremap_to(k, mm, addr, old_len, new_addr, new_len)``: new_addr or -errno."""


def legacy_call_sites() -> CallSites:
    """The legacy call sites of :mod:`legacy.mm` (imported here, when first needed)."""
    from legacy.mm.anon import populate_vma_page_range
    from legacy.mm.huge_memory import (
        insert_pfn_pmd,
        insert_pfn_pud,
        split_huge_pmd,
        split_huge_pud,
    )
    from legacy.mm.memory import remap_pfn_range
    from legacy.mm.mmap import do_munmap, dup_mm, mmap_region, mmput
    from legacy.mm.mprotect import change_protection
    from legacy.mm.mremap import mremap_to
    from legacy.mm.pageattr import change_memory_common
    from legacy.mm.vma import find_vma, split_vma
    from legacy.mm.vmalloc import vmap_range, vunmap_range

    return CallSites(
        mmap_region=mmap_region,
        find_vma=find_vma,
        split_vma=split_vma,
        remap_pfn_range=remap_pfn_range,
        insert_pfn_pmd=insert_pfn_pmd,
        insert_pfn_pud=insert_pfn_pud,
        do_munmap=do_munmap,
        change_protection=change_protection,
        vmap_range=vmap_range,
        vunmap_range=vunmap_range,
        split_huge_pmd=split_huge_pmd,
        split_huge_pud=split_huge_pud,
        change_memory_common=change_memory_common,
        mmput=mmput,
        populate_vma_page_range=populate_vma_page_range,
        dup_mm=dup_mm,
        mremap_to=mremap_to,
    )


# include/linux/mm.h vm_flags (legacy.mm.vm_flags has them too; the values are the ABI).
VM_READ, VM_WRITE, VM_EXEC, VM_SHARED = 0x1, 0x2, 0x4, 0x8
VM_MAYREAD, VM_MAYWRITE, VM_MAYEXEC, VM_MAYSHARE = 0x10, 0x20, 0x40, 0x80
VM_PFNMAP, VM_IO, VM_DONTEXPAND, VM_DONTDUMP = 0x400, 0x4000, 0x40000, 0x4000000
VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC


def calc_vm_prot_bits(prot: Prot) -> int:
    """include/linux/mman.h: PROT_* → VM_READ/VM_WRITE/VM_EXEC."""
    return ((VM_READ if "r" in prot else 0) | (VM_WRITE if "w" in prot else 0)
            | (VM_EXEC if "x" in prot else 0))


def user_vm_flags(prot: Prot) -> int:
    """A shared mapping of a device (``mmap(MAP_SHARED)`` of a driver that maps PFNs): the
    ``VM_MAY*`` bits ``do_mmap`` sets for a shared writable file, and the bits a PFN-mapping
    driver sets in its ``->mmap`` (``remap_pfn_range`` sets the same for base pages)."""
    return (calc_vm_prot_bits(prot) | VM_SHARED | VM_MAYSHARE | VM_MAYREAD | VM_MAYWRITE
            | VM_MAYEXEC | VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP)


def anon_vm_flags(prot: Prot) -> int:
    """``mmap(MAP_PRIVATE | MAP_ANONYMOUS)``: the protection bits and the ``VM_MAY*`` bits
    ``do_mmap`` adds (no ``VM_SHARED``: a COW mapping when ``VM_MAYWRITE``)."""
    return calc_vm_prot_bits(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC


def kernel_pgprot(k: GenericKernel, prot: Prot) -> pgprot_t:
    """The ``PAGE_KERNEL*`` protection a kernel mapping of ``prot`` uses (looked up by name:
    a kernel may define no ``PAGE_KERNEL_ROX``, s390; ``Limits.kernel_prots`` refuses it)."""
    name = {"none": "PAGE_NONE", "r": "PAGE_KERNEL_RO", "rw": "PAGE_KERNEL",
            "rx": "PAGE_KERNEL_ROX", "rwx": "PAGE_KERNEL_EXEC"}[prot]
    return pgprot_t(getattr(k, name))


class LegacyBackend:
    """Scenario ops as the kernel performs them, through the call sites in ``cs``.

    - user map: ``mmap_region`` (a ``MAP_FIXED`` shared vma), then ``remap_pfn_range`` for
      base pages or one ``insert_pfn_pmd``/``insert_pfn_pud`` per huge page (as a driver's
      ``->huge_fault`` would); on failure the vma is unmapped again (``do_munmap``: zap, then
      ``free_pgtables`` with the neighbours' floor/ceiling -- what ``mmap_region``'s error
      path ``unmap_region`` does);
    - user anonymous map: ``mmap_region`` of a private vma (``vma_set_anonymous``), then
      ``populate_vma_page_range`` (``MAP_POPULATE``: write faults for a writable vma, read
      faults mapping the zero page otherwise);
    - fork: ``dup_mm``; mremap: ``mremap_to`` (``move_vma``);
    - user unmap: ``do_munmap``;
    - user protect: ``mprotect_fixup`` for each vma of the range: skip it if its flags do
      not change, else split it at the range edges, set ``vm_flags``/``vm_page_prot``,
      ``change_protection``;
    - kernel map: ``vmap_range`` with ``PAGE_KERNEL*`` and ``max_page_shift =
      log2(page_size)``; on failure ``vunmap_range`` (what ``free_vm_area`` does);
    - kernel unmap: split the huge leaves straddling an edge (``split_huge_p?d`` on an
      ``init_mm`` pseudo-vma: cpa's ``split_large_page``), then ``vunmap_range``;
    - kernel protect: ``set_memory_*``: split the straddling huge leaves, then
      ``change_memory_common`` (legacy/mm/pageattr.py);
    - teardown: ``mmput``.
    """

    def __init__(self, k: GenericKernel, cs: CallSites | None = None,
                 name: str = "legacy") -> None:
        self.k = k
        self.cs = legacy_call_sites() if cs is None else cs
        self.name = name

    def split_size(self, leaf_size: int, user: bool) -> int:
        k = self.k
        if leaf_size == k.PUD_SIZE and k.PUD_SIZE != k.PMD_SIZE:
            return k.PMD_SIZE
        return k.PAGE_SIZE

    # -- user ----------------------------------------------------------------------------

    def map_user(self, mm: mm_struct, va: int, size: int, pa: int, prot: Prot,
                 page_size: int) -> None:
        k, cs = self.k, self.cs
        pfn = pa >> k.PAGE_SHIFT
        addr = cs.mmap_region(k, mm, va, size, user_vm_flags(prot), pfn)
        if addr < 0:
            raise self._error("mmap_region", addr)
        vma = cs.find_vma(k, mm, va)
        if vma is None or vma.vm_start != va or vma.vm_end != va + size:
            raise CheckFailed(f"mmap_region did not create a vma [{va:#x}, {va + size:#x})")
        err = 0
        try:
            if page_size == k.PAGE_SIZE:
                err = cs.remap_pfn_range(k, vma, va, pfn, size, pgprot_t(vma.vm_page_prot))
            else:
                insert = cs.insert_pfn_pmd if page_size == k.PMD_SIZE else cs.insert_pfn_pud
                for off in range(0, size, page_size):
                    err = insert(k, vma, va + off, pfn + (off >> k.PAGE_SHIFT),
                                 pgprot_t(vma.vm_page_prot))
                    if err:
                        break
        except OutOfMemory:
            err = ENOMEM
        if err:
            undo = cs.do_munmap(k, mm, va, size)
            if undo:
                raise self._error("do_munmap (undoing a failed map)", undo)
            raise self._error("remap_pfn_range" if page_size == k.PAGE_SIZE
                              else "insert_pfn_pmd/pud", err)

    def map_anon(self, mm: mm_struct, va: int, size: int, prot: Prot) -> None:
        """``mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE)``:
        ``mmap_region`` (``vma_set_anonymous``), then ``populate_vma_page_range``.  A
        populate that fails is undone with ``do_munmap`` (the kernel's ``mm_populate``
        would ignore the error and leave the range partly populated)."""
        from legacy.mm.vma import vma_set_anonymous

        k, cs = self.k, self.cs
        addr = cs.mmap_region(k, mm, va, size, anon_vm_flags(prot), 0)
        if addr < 0:
            raise self._error("mmap_region", addr)
        vma = cs.find_vma(k, mm, va)
        if vma is None or vma.vm_start != va or vma.vm_end != va + size:
            raise CheckFailed(f"mmap_region did not create a vma [{va:#x}, {va + size:#x})")
        vma_set_anonymous(vma)  # __mmap_new_vma: !file && !VM_SHARED
        try:
            ret = cs.populate_vma_page_range(k, vma, va, va + size)
        except OutOfMemory:
            ret = ENOMEM
        if ret < 0:
            undo = cs.do_munmap(k, mm, va, size)
            if undo:
                raise self._error("do_munmap (undoing a failed populate)", undo)
            raise self._error("populate_vma_page_range", ret)

    def fork(self, mm: mm_struct) -> mm_struct:
        """kernel/fork.c ``copy_mm`` -> ``dup_mm``: the child's mm (``dup_mmap`` takes
        both ``mmap_lock``s itself)."""
        try:
            child = self.cs.dup_mm(self.k, mm)
        except OutOfMemory:
            child = None
        if child is None:
            raise OutOfMemory("dup_mm returned NULL (-ENOMEM)")
        return child

    def mremap(self, mm: mm_struct, va: int, size: int, new_va: int) -> None:
        """``mremap(va, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, new_va)``."""
        try:
            ret = self.cs.mremap_to(self.k, mm, va, size, new_va, size)
        except OutOfMemory:
            ret = ENOMEM
        if ret < 0:
            raise self._error("mremap_to", ret)
        if ret != new_va:
            raise CheckFailed(f"mremap_to returned {ret:#x}, not {new_va:#x}")

    def unmap_user(self, mm: mm_struct, va: int, size: int) -> None:
        err = self.cs.do_munmap(self.k, mm, va, size)
        if err:
            raise self._error("do_munmap", err)

    def protect_user(self, mm: mm_struct, va: int, size: int, prot: Prot) -> None:
        """mm/mprotect.c ``do_mprotect_pkey`` → ``mprotect_fixup`` for each vma."""
        k, cs = self.k, self.cs
        end = va + size
        newbits = calc_vm_prot_bits(prot)
        start = va
        while start < end:
            vma = cs.find_vma(k, mm, start)
            if vma is None or vma.vm_start > start:
                raise BadInput(f"protect: [{start:#x}, {end:#x}) is not mapped (ENOMEM)")
            newflags = (vma.vm_flags & ~VM_ACCESS_FLAGS) | newbits
            if newflags == vma.vm_flags:  # mprotect_fixup: nothing to do, no split
                start = min(vma.vm_end, end)
                continue
            if vma.vm_start < start:
                self._check(cs.split_vma(k, vma, start, True), "split_vma")
            if vma.vm_end > end:
                self._check(cs.split_vma(k, vma, end, False), "split_vma")
            vma.vm_flags = newflags
            vma.vm_page_prot = k.vm_get_page_prot(vma.vm_flags)  # vma_set_page_prot
            ret = cs.change_protection(k, vma, vma.vm_start, vma.vm_end,
                                       pgprot_t(vma.vm_page_prot))
            if ret < 0:
                raise self._error("change_protection", ret)
            start = vma.vm_end

    # -- kernel --------------------------------------------------------------------------

    def map_kernel(self, va: int, size: int, pa: int, prot: Prot, page_size: int) -> None:
        k, cs = self.k, self.cs
        shift = page_size.bit_length() - 1
        end = (va + size) & k.ULONG_MASK  # unsigned long: 0 at the very top
        try:
            err = cs.vmap_range(k, va, end, pa, kernel_pgprot(k, prot), shift)
        except OutOfMemory:
            err = ENOMEM
        if err:
            cs.vunmap_range(k, va, end)
            raise self._error("vmap_range", err)

    def unmap_kernel(self, va: int, size: int) -> None:
        """``vunmap_range`` clears a huge leaf whole even when the range covers only part
        of it; so first split the leaves straddling either edge (cpa-style, through
        ``split_huge_p?d`` on an ``init_mm`` pseudo-vma)."""
        k = self.k
        end = (va + size) & k.ULONG_MASK
        for edge in (va, end):
            if edge:
                self._split_kernel_leaf_at(edge)
        self.cs.vunmap_range(k, va, end)

    def _kernel_vma(self, va: int, end: int, prot: pgprot_t, flags: int = 0) -> vm_area_struct:
        """A pseudo-vma of ``init_mm`` for the call sites that take a vma."""
        return vm_area_struct(vm_mm=self.k.init_mm, vm_start=va, vm_end=end,
                              vm_flags=flags, vm_page_prot=prot)

    def _split_kernel_leaf_at(self, addr: int) -> None:
        """Split the huge pud/pmd mapping ``addr`` unless ``addr`` is its first byte."""
        k = self.k
        vma = self._kernel_vma(addr, addr + k.PAGE_SIZE, k.PAGE_KERNEL)
        pgd = k.pgd_offset_k(addr)
        if k.pgd_none(k.pgdp_get(pgd)):
            return
        p4d = k.p4d_offset(pgd, addr)
        if k.p4d_none(k.p4dp_get(p4d)):
            return
        pud = k.pud_offset(p4d, addr)
        if k.pud_leaf(k.pudp_get(pud)) and addr & ~k.PUD_MASK:
            self.cs.split_huge_pud(k, vma, pud, addr)
        v = k.pudp_get(pud)
        # walk_pud_range without a vma stops at "pud_leaf(*pud) || !pud_present(*pud)"
        # (mm/pagewalk.c): a riscv PROT_NONE pud leaf is neither, and is no table either.
        if k.pud_none(v) or k.pud_leaf(v) or not k.pud_present(v):
            return
        pmd = k.pmd_offset(pud, addr)
        if k.pmd_leaf(k.pmdp_get(pmd)) and addr & ~k.PMD_MASK:
            self.cs.split_huge_pmd(k, vma, pmd, addr)

    def protect_kernel(self, va: int, size: int, prot: Prot) -> None:
        """``set_memory_*``: split the huge leaves straddling the edges, then
        ``change_memory_common`` (legacy/mm/pageattr.py)."""
        k, cs = self.k, self.cs
        end = (va + size) & k.ULONG_MASK
        for edge in (va, end):
            if edge:
                self._split_kernel_leaf_at(edge)
        ret = cs.change_memory_common(k, va, end, kernel_pgprot(k, prot))
        if ret:
            raise self._error("change_memory_common", ret)

    def teardown(self, mm: mm_struct) -> None:
        self.cs.mmput(self.k, mm)

    # -- errors --------------------------------------------------------------------------

    def _check(self, err: int, what: str) -> None:
        if err:
            raise self._error(what, err)

    def _error(self, what: str, err: int) -> Exception:
        if err == ENOMEM:
            return OutOfMemory(f"{what} returned -ENOMEM")
        return CheckFailed(f"{what} returned {err}")


BackendFactory = Callable[[GenericKernel], Backend]

def _unified_backend(k: GenericKernel) -> Backend:
    """``--api unified``: :class:`ptshim.backends_unified.UnifiedBackend` (imported when
    first used: it imports this module)."""
    from ptshim.backends_unified import UnifiedBackend

    return UnifiedBackend(k)


BACKENDS: dict[str, BackendFactory] = {
    "legacy": LegacyBackend,
    "unified": _unified_backend,
}
"""``--api`` name → backend factory.  The unified API adds its entry here."""

API_NAMES: tuple[str, ...] = ("legacy", "unified")
"""Every ``--api`` value the CLI accepts; one without a :data:`BACKENDS` entry is refused
with exit code 2 ("not available yet")."""


def make_backend(api: str, k: GenericKernel) -> Backend:
    factory = BACKENDS.get(api)
    if factory is None:
        if api in API_NAMES:
            raise BadInput(f"--api {api}: the {api} backend is not available yet "
                           f"(available: {', '.join(BACKENDS)})")
        raise BadInput(f"unknown --api {api!r} (known: {', '.join(API_NAMES)})")
    return factory(k)
