"""32-bit arm with the classic MMU (``!CONFIG_ARM_LPAE``): the ``arm`` kernel.

Follows ``arch/arm/include/asm/pgtable.h``, ``pgtable-2level.h``, ``pgtable-2level-types.h``,
``pgtable-2level-hwdef.h``, ``pgalloc.h``, ``tlb.h``, ``tlbflush.h``, ``memory.h``,
``arch/arm/mm/pgd.c`` (``pgd_alloc``/``pgd_free``), ``proc-v7-2level.S``
(``cpu_v7_set_pte_ext``), ``mmu.c`` (``set_ptes``, ``protection_map``,
``build_mem_type_table``), ``ioremap.c`` (``__check_vmalloc_seq``) and ``pageattr.c``, at Linux
v6.18.  Hardware bit names come from :mod:`arches.arm.bits_short`.

The kernel emulated: ARMv7 SMP (Cortex-A15), ``VMSPLIT_3G``, high vectors, no
``CONFIG_CPU_USE_DOMAINS`` (``CONFIG_CPU_SW_DOMAIN_PAN``), no THP, no huge vmap, no
``ARCH_HAS_PTE_SPECIAL`` (all LPAE-only), split PTE locks.

Linux sees three levels and the hardware two: ``pgtable.h`` includes pgtable-nopud.h, and
pgtable-2level.h folds the pmd by hand (``__PAGETABLE_PMD_FOLDED``): ``pmd_offset`` returns
the pud (= pgd) pointer as a ``pmd_t *``, a 4-byte pointer into an 8-byte ``pgd_t`` that is
two hardware first-level descriptors.  ``pmd_populate`` writes both, ``pmd_clear`` clears
both; ``pmd_none``/``pmd_present``/``pmd_leaf`` look at the first one only (``pgd_val`` is
``(x)[0]``).  A PTE table is a page holding the two 256-entry Linux tables (offsets 0 and
1024) and the two hardware tables they shadow (2048 and 3072): the first-level descriptors
point at the hardware halves, ``pmd_page_vaddr`` masks back to the page, ``set_pte_ext``
writes both halves.

TLB maintenance is the generic kind here: ARMv7's TLBIMVA (``flush_tlb_page``,
``flush_tlb_range`` page by page, ``v7wbi_flush_user_tlb_range``) invalidates the walk-cache
entries of its MVA as well (ARM ARM B3.10.1), ``tlb_flush`` is asm-generic's; the one arm
quirk, ``__pte_free_tlb`` widening the gather around the 1M boundary, is
:meth:`ArmKernel.pte_free_tlb_range`.

Departures: the kernel's linear map (``map_lowmem``'s sections), the vectors page and the
modules area are not built (the emulated kernel's direct map is the identity, as on every
configuration); a later vmalloc pgd entry reaches other mms at once
(:meth:`ArmKernel.arch_sync_kernel_mappings`) instead of at their next ``switch_mm``
(``check_vmalloc_seq``) or translation fault.
"""

from __future__ import annotations

from arches import ArchConfig
from arches.arm import PAGE_OFFSET
from arches.arm.bits_short import (
    _PAGE_KERNEL_TABLE,
    _PAGE_USER_TABLE,
    DOMAIN_KERNEL,
    PMD_DOMAIN,
    PMD_PXNTABLE,
    PMD_SECT_AP_WRITE,
    PMD_SECT_S,
    PMD_SECT_WBWA,
    PMD_SECT_XN,
    PMD_TYPE_MASK,
    PMD_TYPE_SECT,
    PMD_TYPE_TABLE,
    PTE_EXT_AP0,
    PTE_EXT_AP1,
    PTE_EXT_APX,
    PTE_EXT_NG,
    PTE_EXT_TEX,
    PTE_EXT_XN,
    PTE_TYPE_MASK,
    PMD_SECT_nG,
)
from arches.errors import BadInput
from legacy.arm.pgtable import ArmPgtable
from legacy.arm.ptdump_2level import ArmPtdump
from legacy.folding import Nopud
from legacy.mm_types import mm_struct, spin_lock, spin_unlock, spinlock_t, vm_area_struct
from legacy.pgtable import PGTBL_PMD_MODIFIED
from legacy.swapops import swp_entry_t
from legacy.types import (
    EntryPtr,
    PgdPtr,
    PmdPtr,
    PtePtr,
    PudPtr,
    pgprot_t,
    pmd_t,
    pte_t,
    pud_t,
)

# -- "Linux" PTE bits (pgtable-2level.h) -----------------------------------------------------
L_PTE_VALID = 1 << 0
L_PTE_PRESENT = 1 << 0
L_PTE_YOUNG = 1 << 1
L_PTE_DIRTY = 1 << 6
L_PTE_RDONLY = 1 << 7
L_PTE_USER = 1 << 8
L_PTE_XN = 1 << 9
L_PTE_SHARED = 1 << 10
L_PTE_NONE = 1 << 11
L_PTE_SWP_EXCLUSIVE = L_PTE_RDONLY
""""We borrow bit 7 to store the exclusive marker in swap PTEs"."""
L_PTE_MT_UNCACHED = 0x00 << 2
L_PTE_MT_BUFFERABLE = 0x01 << 2
L_PTE_MT_WRITETHROUGH = 0x02 << 2
L_PTE_MT_WRITEBACK = 0x03 << 2
L_PTE_MT_MINICACHE = 0x06 << 2
L_PTE_MT_WRITEALLOC = 0x07 << 2
L_PTE_MT_DEV_SHARED = 0x04 << 2
L_PTE_MT_DEV_NONSHARED = 0x0C << 2
L_PTE_MT_DEV_WC = 0x09 << 2
L_PTE_MT_DEV_CACHED = 0x0B << 2
L_PTE_MT_VECTORS = 0x0F << 2
L_PTE_MT_MASK = 0x0F << 2

PTRS_PER_PTE = 512
PTE_HWTABLE_PTRS = PTRS_PER_PTE
PTE_HWTABLE_OFF = PTE_HWTABLE_PTRS * 4
"""``PTE_HWTABLE_PTRS * sizeof(pte_t)``: the hardware half starts 2048 bytes in."""
SECTION_SHIFT = 20
SECTION_SIZE = 1 << SECTION_SHIFT
PGD_ORDER = 2
"""``_pgd_alloc(mm)`` = ``__pgd_alloc(mm, 2)``: 16 KiB (arch/arm/mm/pgd.c)."""

# build_mem_type_table() on an SMP ARMv7: cachepolicy WRITEALLOC, shareable (arch/arm/mm/mmu.c)
USER_PGPROT = L_PTE_MT_WRITEALLOC | L_PTE_SHARED
KERN_PGPROT = L_PTE_MT_WRITEALLOC | L_PTE_SHARED
_L_PTE_DEFAULT = L_PTE_PRESENT | L_PTE_YOUNG


class ArmKernel(ArmPgtable, ArmPtdump, Nopud):
    """The classic (2-level) arm kernel: asm-generic pgtable-nopud.h (and nop4d) plus the
    pmd folding of pgtable-2level.h, the pgd/pmd/pte of pgtable.h and pgalloc.h."""

    # pgtable-2level.h's Linux pte bits, for asm/pgtable.h (legacy.arm.pgtable)
    L_PTE_VALID = L_PTE_VALID
    L_PTE_PRESENT = L_PTE_PRESENT
    L_PTE_YOUNG = L_PTE_YOUNG
    L_PTE_DIRTY = L_PTE_DIRTY
    L_PTE_RDONLY = L_PTE_RDONLY
    L_PTE_USER = L_PTE_USER
    L_PTE_XN = L_PTE_XN
    L_PTE_SWP_EXCLUSIVE = L_PTE_SWP_EXCLUSIVE

    PAGETABLE_PMD_FOLDED = True
    """``#define __PAGETABLE_PMD_FOLDED 1`` (pgtable-2level.h, not pgtable-nopmd.h)."""
    USE_SPLIT_PMD_PTLOCKS = False
    ARCH_HAS_PTE_SPECIAL = False
    """``select ARCH_HAS_PTE_SPECIAL if ARM_LPAE``."""
    SWP_ENTRY_EMULATED = True
    SOFTWARE_YOUNG_DIRTY = True
    """An old pte gets a zero hardware pte, a clean one AP[2] = 1 (``cpu_v7_set_pte_ext``)."""
    ARCH_HAS_DEBUG_VM_PGTABLE = False  # arch/arm/Kconfig does not select it
    ARCH_PAGE_TABLE_SYNC_MASK = PGTBL_PMD_MODIFIED
    """Not an arm definition: the hook of the eager ``check_vmalloc_seq`` stand-in (vmap
    reports a new first-level table as ``PGTBL_PMD_MODIFIED``)."""
    FIRST_USER_ADDRESS = 2 * 4096
    """``PAGE_SIZE * 2`` (asm/pgtable.h): the PTE page under pgd entry 0 survives
    free_pgtables; ``pgd_free`` frees it."""
    user_pmd_table = _PAGE_USER_TABLE | PMD_PXNTABLE
    """arch/arm/mm/mmu.c: ``_PAGE_USER_TABLE``, plus ``PMD_PXNTABLE`` on an ARMv7 whose
    ID_MMFR0 VMSA support is >= 4 (PXN implemented: every Cortex-A15)."""

    def __init__(self, config: ArchConfig) -> None:
        self._pgd_head: dict[int, int] = {}
        super().__init__(config)

    # -- geometry (pgtable-2level.h) ------------------------------------------------------

    def arch_geometry(self) -> None:
        self.PAGE_SHIFT = 12
        self.PGDIR_SHIFT = 21
        self.PTRS_PER_PGD = 2048
        self.PTRS_PER_PTE = PTRS_PER_PTE
        self.SIZEOF_PGD = 8
        """``typedef pmdval_t pgd_t[2]``."""
        self.SIZEOF_PTE = 4

    def fold_geometry(self) -> None:
        """pgtable-nopud.h, then pgtable-2level.h: ``PMD_SHIFT`` 21, ``PTRS_PER_PMD`` 1,
        ``pmd_t`` one 32-bit word."""
        super().fold_geometry()
        self.PMD_SHIFT = 21
        self.PTRS_PER_PMD = 1
        self.SIZEOF_PMD = 4

    def derive_sizes(self) -> None:
        """Protections (asm/pgtable.h ``PAGE_*``/``__PAGE_*``, mmu.c ``protection_map``
        with ``user_pgprot`` ORed in by ``build_mem_type_table``)."""
        super().derive_sizes()
        self.USER_PTRS_PER_PGD = self.config.user_range[1] // self.PGDIR_SIZE
        self.VMALLOC_START, self.VMALLOC_END = self.config.kernel_range
        self.PAGE_OFFSET = PAGE_OFFSET
        p = pgprot_t
        self.pgprot_user = p(_L_PTE_DEFAULT | USER_PGPROT)
        self.pgprot_kernel = p(_L_PTE_DEFAULT | L_PTE_DIRTY | KERN_PGPROT)
        u = self.pgprot_user
        self.PAGE_NONE = p(u | L_PTE_XN | L_PTE_RDONLY | L_PTE_NONE)
        self.PAGE_SHARED = p(u | L_PTE_USER | L_PTE_XN)
        self.PAGE_SHARED_EXEC = p(u | L_PTE_USER)
        self.PAGE_COPY = p(u | L_PTE_USER | L_PTE_RDONLY | L_PTE_XN)
        self.PAGE_COPY_EXEC = p(u | L_PTE_USER | L_PTE_RDONLY)
        self.PAGE_READONLY = p(u | L_PTE_USER | L_PTE_RDONLY | L_PTE_XN)
        self.PAGE_READONLY_EXEC = p(u | L_PTE_USER | L_PTE_RDONLY)
        self.PAGE_KERNEL = p(self.pgprot_kernel | L_PTE_XN)
        self.PAGE_KERNEL_EXEC = self.pgprot_kernel
        # arm defines neither: what set_memory_ro() (and set_memory_x()) make of PAGE_KERNEL
        # (arch/arm/mm/pageattr.c: set L_PTE_RDONLY, clear L_PTE_XN)
        self.PAGE_KERNEL_RO = p(self.PAGE_KERNEL | L_PTE_RDONLY)
        self.PAGE_KERNEL_ROX = p(self.pgprot_kernel | L_PTE_RDONLY)
        b = _L_PTE_DEFAULT | USER_PGPROT
        none = p(b | L_PTE_RDONLY | L_PTE_XN | L_PTE_NONE)
        ro = p(b | L_PTE_USER | L_PTE_RDONLY | L_PTE_XN)
        rox = p(b | L_PTE_USER | L_PTE_RDONLY)
        copy, copyx = ro, rox
        shared = p(b | L_PTE_USER | L_PTE_XN)
        sharedx = p(b | L_PTE_USER)
        self.protection_map = (
            none, ro, copy, copy, rox, rox, copyx, copyx,
            none, ro, shared, shared, rox, rox, sharedx, sharedx,
        )

    # -- pfn and conversions (asm/pgtable.h) ----------------------------------------------------

    def _check_pfn(self, pfn: int, what: str) -> None:
        """Not in the kernel (``pfn_pte`` trusts its caller): a pfn of more than 20 bits
        would not fit the 32-bit entry, so the emulation refuses it."""
        if not 0 <= pfn < 1 << 20:
            raise BadInput(f"{what}: pfn {pfn:#x} does not fit a 32-bit arm pte")

    def pte_pfn(self, pte: pte_t) -> int:
        """``(pte_val(pte) & PHYS_MASK) >> PAGE_SHIFT`` (PHYS_MASK is ~0)."""
        return (pte & 0xFFFFFFFF) >> self.PAGE_SHIFT

    def pfn_pte(self, page_nr: int, pgprot: pgprot_t) -> pte_t:
        self._check_pfn(page_nr, "pfn_pte")
        return pte_t((page_nr << self.PAGE_SHIFT) | pgprot)

    def pte_pgprot(self, pte: pte_t) -> pgprot_t:
        """include/linux/pgtable.h ``pte_pgprot``: the bits below ``PAGE_SHIFT``."""
        return pgprot_t(pte & (self.PAGE_SIZE - 1))

    def pte_advance_pfn(self, pte: pte_t, nr: int) -> pte_t:
        return pte_t((pte + (nr << self.PAGE_SHIFT)) & 0xFFFFFFFF)

    def pmd_pfn(self, pmd: pmd_t) -> int:
        """pgtable-2level.h: ``__phys_to_pfn(pmd_val(pmd) & PHYS_MASK)``."""
        return (pmd & 0xFFFFFFFF) >> self.PAGE_SHIFT

    def pgprot_noncached(self, prot: pgprot_t) -> pgprot_t:
        return pgprot_t((prot & ~L_PTE_MT_MASK) | L_PTE_MT_UNCACHED)

    def pgprot_writecombine(self, prot: pgprot_t) -> pgprot_t:
        return pgprot_t((prot & ~L_PTE_MT_MASK) | L_PTE_MT_BUFFERABLE)

    def pgprot_nx(self, prot: pgprot_t) -> pgprot_t:
        """include/linux/pgtable.h default (arm has no ``pgprot_nx``): unchanged."""
        return prot

    # -- pte predicates (pte_isset/pte_isclear) ----------------------------------------------

    def pte_present(self, pte: pte_t) -> bool:
        return bool(pte & L_PTE_PRESENT)

    def pte_accessible(self, mm: mm_struct, pte: pte_t) -> bool:
        """``mm_tlb_flush_pending(mm) ? pte_present(pte) : pte_valid(pte)`` (the same bit)."""
        return self.pte_valid(pte)

    def pte_special(self, pte: pte_t) -> bool:
        """include/linux/pgtable.h stub without ``ARCH_HAS_PTE_SPECIAL``."""
        return False

    def pte_mkspecial(self, pte: pte_t) -> pte_t:
        return pte

    def pte_protnone(self, pte: pte_t) -> bool:
        """include/linux/pgtable.h stub: arm has no NUMA balancing."""
        return False

    # -- pte modifiers ---------------------------------------------------------------------

    def pte_mkwrite_novma(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~L_PTE_RDONLY & 0xFFFFFFFF)

    def pte_mkwrite(self, pte: pte_t, vma: vm_area_struct | None = None) -> pte_t:
        return self.pte_mkwrite_novma(pte)

    def pte_mkclean(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~L_PTE_DIRTY & 0xFFFFFFFF)

    def pte_mkold(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~L_PTE_YOUNG & 0xFFFFFFFF)

    def pte_mkexec(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~L_PTE_XN & 0xFFFFFFFF)

    def pte_mkhuge(self, pte: pte_t) -> pte_t:
        return pte

    def pte_modify(self, pte: pte_t, newprot: pgprot_t) -> pte_t:
        """Only XN, RDONLY, USER, NONE and VALID come from ``newprot``: young, dirty and
        the memory type stay."""
        mask = L_PTE_XN | L_PTE_RDONLY | L_PTE_USER | L_PTE_NONE | L_PTE_VALID
        return pte_t((pte & ~mask & 0xFFFFFFFF) | (newprot & mask))

    # -- set_pte_ext (proc-v7-2level.S) and set_ptes (mmu.c) --------------------------------

    def hw_pte(self, pte: int, ext: int) -> int:
        """The hardware PTE ``cpu_v7_set_pte_ext`` derives from the Linux one: a small page
        (type 2, AP[0] = 1) keeping PFN, S, nG, C, B; TEX[0] from Linux bit 4; AP[2]
        (read-only) unless dirty and writable; AP[1] for user; XN; zero (fault) when old,
        not valid, or PROT_NONE."""
        r3 = pte & ~0x3F0 & ~PTE_TYPE_MASK & 0xFFFFFFFF
        r3 |= ext
        r3 |= PTE_EXT_AP0 | 2
        if pte & (1 << 4):
            r3 |= PTE_EXT_TEX(1)
        r1 = pte ^ L_PTE_DIRTY
        if r1 & (L_PTE_RDONLY | L_PTE_DIRTY):
            r3 |= PTE_EXT_APX
        if r1 & L_PTE_USER:
            r3 |= PTE_EXT_AP1
        if r1 & L_PTE_XN:
            r3 |= PTE_EXT_XN
        if not r1 & L_PTE_YOUNG or not r1 & L_PTE_VALID or r1 & L_PTE_NONE:
            r3 = 0
        return r3

    def set_pte_ext(self, ptep: PtePtr, pte: pte_t, ext: int) -> None:
        """``cpu_v7_set_pte_ext``: the Linux version at ``ptep``, the hardware one at
        ``ptep + 2048`` bytes."""
        self._write(ptep, pte)
        self._write(PtePtr(ptep.pa + PTE_HWTABLE_OFF, 4), self.hw_pte(pte, ext))

    def set_ptes(self, mm: mm_struct, addr: int, ptep: PtePtr, pteval: pte_t, nr: int) -> None:
        """arch/arm/mm/mmu.c: a valid user pte below ``TASK_SIZE`` gets ``PTE_EXT_NG`` (its
        TLB entry is tagged with the ASID); ``pte_next_pfn`` between entries."""
        ext = 0
        if addr < self.TASK_SIZE and self.pte_valid_user(pteval):
            ext |= PTE_EXT_NG
        while True:
            self.set_pte_ext(ptep, pteval, ext)
            nr -= 1
            if nr == 0:
                break
            ptep = ptep + 1
            pteval = self.pte_advance_pfn(pteval, 1)

    def set_pte(self, ptep: PtePtr, pte: pte_t) -> None:
        """arm has no ``set_pte``: the generic helpers that store a pte without an mm get
        ``set_pte_ext(ptep, pte, 0)`` (a global, kernel-style entry)."""
        self.set_pte_ext(ptep, pte, 0)

    def pte_clear(self, mm: mm_struct, addr: int, ptep: PtePtr) -> None:
        """``set_pte_ext(ptep, __pte(0), 0)``."""
        self.set_pte_ext(ptep, pte_t(0), 0)

    # -- read-modify-write helpers (include/linux/pgtable.h, mm/pgtable-generic.c) -----------

    def ptep_set_access_flags(self, vma: object, addr: int, ptep: PtePtr, entry: pte_t,
                              dirty: int) -> int:
        """mm/pgtable-generic.c: store if different, then
        ``flush_tlb_fix_spurious_fault`` -- needed here: a write fault on a clean page
        makes the hardware pte writable (AP[2] cleared) only in memory."""
        mm = getattr(vma, "vm_mm", self.init_mm)
        changed = self.ptep_get(ptep) != entry
        if changed:
            self.set_pte_at(mm, addr, ptep, entry)
            if isinstance(vma, vm_area_struct):
                self.flush_tlb_fix_spurious_fault(vma, addr, ptep)
        return int(changed)

    def ptep_test_and_clear_young(self, vma: object, addr: int, ptep: PtePtr) -> int:
        """include/linux/pgtable.h generic: ``set_pte_at(pte_mkold(pte))`` -- which zeroes
        the hardware pte ("we deny access to the page by clearing the hardware PTE.
        Currently Linux does not flush the TLB for us in this case")."""
        pte = self.ptep_get(ptep)
        if not self.pte_young(pte):
            return 0
        self.set_pte_at(getattr(vma, "vm_mm", self.init_mm), addr, ptep, self.pte_mkold(pte))
        return 1

    def ptep_clear_flush_young(self, vma: vm_area_struct, addr: int, ptep: PtePtr) -> int:
        """mm/pgtable-generic.c: ``flush_tlb_page`` when the pte was young."""
        young = self.ptep_test_and_clear_young(vma, addr, ptep)
        if young:
            self.flush_tlb_page(vma, addr)
        return young

    # -- pmd (pgtable-2level.h, asm/pgtable.h) --------------------------------------------------

    def pud_none(self, pud: pud_t) -> bool:
        return False

    def pud_bad(self, pud: pud_t) -> bool:
        return False

    def pud_present(self, pud: pud_t) -> bool:
        return True

    def pud_clear(self, pudp: PudPtr) -> None:
        pass

    def set_pud(self, pudp: PudPtr, pud: pud_t) -> None:
        pass

    def pud_leaf(self, pud: pud_t) -> bool:
        return False

    def pud_pgtable(self, pud: pud_t) -> PmdPtr:
        raise NotImplementedError("classic arm: pud_pgtable is never needed (pmd folded)")

    def pmd_offset(self, pud: PudPtr, a: int) -> PmdPtr:
        """``(pmd_t *)pud``: the first hardware word of the pgd entry."""
        return PmdPtr(pud.pa, self.SIZEOF_PMD)

    def pmd_addr_end(self, addr: int, end: int) -> int:
        """"we don't need complex calculations here as the pmd is folded into the pgd"."""
        return end

    def pmd_present(self, pmd: pmd_t) -> bool:
        return pmd != 0

    def pmd_leaf(self, pmd: pmd_t) -> bool:
        """``pmd_val(pmd) & PMD_TYPE_SECT`` (bit 1: a section, or a supersection)."""
        return bool(pmd & PMD_TYPE_SECT)

    def pmd_bad(self, pmd: pmd_t) -> bool:
        """``pmd_leaf(pmd)``: a section where a table was expected."""
        return self.pmd_leaf(pmd)

    def pmd_trans_huge(self, pmd: pmd_t) -> bool:
        return False

    def pmd_page_vaddr(self, pmd: pmd_t) -> PtePtr:
        """``__va(pmd_val(pmd) & PHYS_MASK & (s32)PAGE_MASK)``: the page, Linux half first."""
        return PtePtr(pmd & self.PAGE_MASK, self.SIZEOF_PTE)

    def pmd_pgtable(self, pmd: pmd_t) -> PtePtr:
        """``pmd_page(pmd)``."""
        return self.pmd_page_vaddr(pmd)

    def set_pmd(self, pmdp: PmdPtr, pmd: pmd_t) -> None:
        """Classic arm has no ``set_pmd`` (pgtable-3level.h only): a one-word store, for the
        generic helpers that call it on a folded pmd."""
        self._write(pmdp, pmd)

    def pmd_clear(self, pmdp: PmdPtr) -> None:
        """``pmdp[0] = pmdp[1] = __pmd(0)``, then ``clean_pmd_entry``."""
        self._write(PmdPtr(pmdp.pa, 4), 0)
        self._write(PmdPtr(pmdp.pa + 4, 4), 0)

    def copy_pmd(self, dst: PmdPtr, src: PmdPtr) -> None:
        """``pmdpd[0] = pmdps[0]; pmdpd[1] = pmdps[1]; flush_pmd_entry(pmdpd)``."""
        self._write(PmdPtr(dst.pa, 4), self.mem.read(src.pa, 4))
        self._write(PmdPtr(dst.pa + 4, 4), self.mem.read(src.pa + 4, 4))

    def pmd_alloc_one(self, mm: mm_struct, addr: int) -> PmdPtr | None:
        """``({ BUG(); ((pmd_t *)2); })``, never reached (``pud_none`` is 0, so
        ``__pmd_alloc`` is never called).  A departure for direct callers: NULL, as
        pgtable-nopmd.h's ``pmd_alloc_one`` returns, rather than a BUG()."""
        return None

    def pmd_free(self, mm: mm_struct, pmd: PmdPtr) -> None:
        pass

    def pgtable_lock_required(self, p: EntryPtr, v: int) -> spinlock_t | None:
        """A Linux-half pte store needs the lock its hardware twin (2048 bytes further)
        needs: the emulated TLB only sees the hardware half, but the kernel guards the
        pair with the one PTE-table lock."""
        desc = self.table_desc(p.pa)
        if (desc is not None and desc.level == "pte"
                and p.pa % self.config.page_size < PTE_HWTABLE_OFF):
            return super().pgtable_lock_required(PtePtr(p.pa + PTE_HWTABLE_OFF, 4),
                                                 self.hw_pte(v, 0))
        return super().pgtable_lock_required(p, v)

    def lockdep_assert_pgtable_write(self, p: EntryPtr, v: int) -> None:
        """Asserted for a Linux-half store as for its hardware twin, so the report names
        the VA and level the MMU would use (the twin's address is printed)."""
        desc = self.table_desc(p.pa)
        if (desc is not None and desc.level == "pte"
                and p.pa % self.config.page_size < PTE_HWTABLE_OFF):
            super().lockdep_assert_pgtable_write(PtePtr(p.pa + PTE_HWTABLE_OFF, 4),
                                                 self.hw_pte(v, 0))
            return
        super().lockdep_assert_pgtable_write(p, v)

    def pud_populate(self, mm: mm_struct, pud: PudPtr, pmd: PmdPtr) -> None:
        raise AssertionError("pud_populate: BUG() (classic arm, !CONFIG_KASAN)")

    def _pmd_populate(self, pmdp: PmdPtr, pte_pa: int, prot: int) -> None:
        """``__pmd_populate``: both first-level descriptors, at the hardware halves."""
        pmdval = (pte_pa + PTE_HWTABLE_OFF) | prot
        self._write(PmdPtr(pmdp.pa, 4), pmdval)
        self._write(PmdPtr(pmdp.pa + 4, 4), pmdval + 256 * 4)

    def pmd_populate_kernel(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        self._pmd_populate(pmd, pte.pa, _PAGE_KERNEL_TABLE)

    def pmd_populate(self, mm: mm_struct, pmd: PmdPtr, pte: PtePtr) -> None:
        """``prot = user_pmd_table`` (``__LINUX_ARM_ARCH__ >= 6``)."""
        self._pmd_populate(pmd, pte.pa, self.user_pmd_table)

    def pmd_domain(self, pmd: pmd_t) -> int:
        """Not a kernel helper: the domain field (``pmd_val & PMD_DOMAIN_MASK``, dump.c)."""
        return (pmd >> 5) & 0xF

    def pmd_is_table(self, pmd: pmd_t) -> bool:
        """``(pmd_val(pmd) & PMD_TYPE_MASK) == PMD_TYPE_TABLE`` (ioremap.c)."""
        return (pmd & PMD_TYPE_MASK) == PMD_TYPE_TABLE

    # -- sections (arch/arm/mm/mmu.c) --------------------------------------------------------

    MT_MEMORY_RW_SECT = (PMD_TYPE_SECT | PMD_SECT_AP_WRITE | PMD_SECT_XN | PMD_SECT_WBWA
                         | PMD_SECT_S | PMD_DOMAIN(DOMAIN_KERNEL))
    """``mem_types[MT_MEMORY_RW].prot_sect`` after ``build_mem_type_table`` on an SMP ARMv7
    (cache policy WBWA, shareable, domain 0): what ``map_lowmem`` maps the kernel's lowmem
    with."""

    def map_init_section(self, pmd: PmdPtr, addr: int, end: int, phys: int, prot_sect: int,
                         ng: bool = False) -> None:
        """``__map_init_section``: one first-level section descriptor per 1M of
        ``[addr, end)`` -- "PGDs refer to a group of L1 entries making up one logical
        pointer to an L2 table (2MB), where as PMDs refer to the individual L1 entries
        (1MB). Hence increment to get the correct offset for odd 1MB sections"."""
        p = PmdPtr(pmd.pa + (4 if addr & SECTION_SIZE else 0), 4)
        while True:
            self._write(p, phys | prot_sect | (PMD_SECT_nG if ng else 0))
            phys += SECTION_SIZE
            p = p + 1
            addr = (addr + SECTION_SIZE) & self.ULONG_MASK
            if addr == end:
                break

    def create_mapping_sections(self, virt: int, phys: int, length: int,
                                prot_sect: int) -> None:
        """``create_mapping`` of a section-aligned range into ``init_mm`` (``__create_mapping``
        -> ``alloc_init_pmd`` -> ``__map_init_section``); the page-table fallback of an
        unaligned range is not emulated (refused)."""
        if (virt | phys | length) & (SECTION_SIZE - 1) or not length:
            raise BadInput(f"create_mapping_sections: {virt:#x}/{phys:#x}/{length:#x} is not "
                           "1M aligned (the page fallback is not emulated)")
        end = (virt + length) & self.ULONG_MASK
        addr = virt
        while True:
            nxt = self.pgd_addr_end(addr, end)
            self.map_init_section(self.pmd_off_k(addr), addr, nxt, phys, prot_sect)
            phys += (nxt - addr) & self.ULONG_MASK
            addr = nxt
            if addr == end:
                break

    # -- pgd (arch/arm/mm/pgd.c) ---------------------------------------------------------------

    def frame_of(self, pa: int) -> int:
        """The page whose descriptor describes the table at ``pa``: for a pgd (an order-2
        block) its first page."""
        frame = pa & ~(self.config.page_size - 1)
        return self._pgd_head.get(frame, frame)

    def _pgd_alloc(self, mm: mm_struct) -> int | None:
        """``__pgd_alloc(mm, 2)``: 16 KiB, 16 KiB aligned (TTBR0[31:14]); NULL on failure."""
        from arches.errors import OutOfMemory
        from legacy.mm_types import ptdesc

        try:
            pa = self.mem.alloc_frames(PGD_ORDER)
        except OutOfMemory:
            return None
        self.ptdescs[pa] = ptdesc(pa=pa, level="pgd", mm=mm)
        for i in range(1 << PGD_ORDER):
            self._pgd_head[pa + i * self.config.page_size] = pa
        return pa

    def _pgd_free(self, mm: mm_struct, pgd: PgdPtr) -> None:
        pa = pgd.pa
        for i in range(1 << PGD_ORDER):
            frame = pa + i * self.config.page_size
            self.mem.free_frame(frame)
            del self._pgd_head[frame]
        del self.ptdescs[pa]

    def paging_init(self) -> PgdPtr:
        """``swapper_pg_dir``: 16 KiB (the linear map, vectors and fixmap are not built)."""
        pa = self._pgd_alloc(self.init_mm)
        if pa is None:
            raise AssertionError("no memory for swapper_pg_dir")
        return PgdPtr(pa, self.SIZEOF_PGD)

    def _copy_pgd_entries(self, dst: PgdPtr, src: PgdPtr, n: int) -> None:
        """``memcpy`` of ``n`` pgd entries, frame by frame (the pgd spans four)."""
        done = 0
        fs = self.config.page_size
        while done < n * self.SIZEOF_PGD:
            d, s = dst.pa + done, src.pa + done
            chunk = min(n * self.SIZEOF_PGD - done, fs - (d % fs), fs - (s % fs))
            self.mem.copy(d, s, chunk)
            done += chunk

    def pgd_alloc(self, mm: mm_struct) -> PgdPtr | None:
        """Copy the kernel and IO entries ``[USER_PTRS_PER_PGD, PTRS_PER_PGD)`` from
        ``init_mm``; with high vectors nothing else (no low-vectors PTE table)."""
        pa = self._pgd_alloc(mm)
        if pa is None:
            return None
        new_pgd = PgdPtr(pa, self.SIZEOF_PGD)
        init_pgd = self.pgd_offset_k(0)
        n = self.USER_PTRS_PER_PGD
        self._copy_pgd_entries(new_pgd + n, init_pgd + n, self.PTRS_PER_PGD - n)
        return new_pgd

    def arch_sync_kernel_mappings(self, start: int, end: int) -> None:
        """Stand-in for ``check_vmalloc_seq``/``__check_vmalloc_seq`` (arch/arm/mm/ioremap.c:
        ``memcpy_pgd`` of the vmalloc area from ``init_mm`` at the next ``switch_mm``) and
        ``do_translation_fault`` (fault.c: ``copy_pmd`` of the missing entry): done at once,
        for every mm, under its ``page_table_lock`` (a ptshim departure)."""
        addr = start & self.PGDIR_MASK
        while True:
            src = self.pgd_offset_k(addr)
            lo, hi = self.mem.read(src.pa, 4), self.mem.read(src.pa + 4, 4)
            for mm in self.mms:
                if mm.is_init_mm or not mm.pgd.pa:
                    continue
                dst = self.pgd_offset(mm, addr)
                if lo and (self.mem.read(dst.pa, 4), self.mem.read(dst.pa + 4, 4)) != (lo, hi):
                    spin_lock(mm.page_table_lock)
                    self.copy_pmd(PmdPtr(dst.pa, 4), PmdPtr(src.pa, 4))
                    spin_unlock(mm.page_table_lock)
            addr = (addr + self.PGDIR_SIZE) & self.ULONG_MASK
            if addr == 0 or addr >= end:
                break

    # -- asm/tlb.h -------------------------------------------------------------------------------

    def pte_free_tlb_range(self, addr: int) -> tuple[int, int]:
        """``__pte_free_tlb``'s ``__tlb_adjust_range(tlb, addr - PAGE_SIZE, 2 * PAGE_SIZE)``
        with ``addr = (addr & PMD_MASK) + SZ_1M``: "a pte page has two corresponding pmd
        entries, each covering 1MB", so the flush must touch both megabytes."""
        addr = (addr & self.PMD_MASK) + SECTION_SIZE
        return (addr - self.PAGE_SIZE) & self.ULONG_MASK, 2 * self.PAGE_SIZE

    # -- swap entries (asm/pgtable.h) -------------------------------------------------------
    #   bits 1:0 zero (not present); 6:2 type; 7 exclusive marker; 31:8 offset

    def _pte_to_swp_entry(self, pte: pte_t) -> swp_entry_t:
        return swp_entry_t(pte)

    def pte_swp_clear_exclusive(self, pte: pte_t) -> pte_t:
        return pte_t(pte & ~L_PTE_SWP_EXCLUSIVE & 0xFFFFFFFF)


__all__ = ["ArmKernel", "L_PTE_DIRTY", "L_PTE_NONE", "L_PTE_PRESENT", "L_PTE_RDONLY",
           "L_PTE_USER", "L_PTE_XN", "L_PTE_YOUNG", "PTE_HWTABLE_OFF"]
