"""Generate ``docs/arches.md`` from the registry.

::

    python -m ptshim.archdoc            # print the page
    python -m ptshim.archdoc --write    # rewrite docs/arches.md
    python -m ptshim.archdoc --check    # exit 1 if docs/arches.md is stale

Every configuration of :func:`legacy.arch_names` is booted (``legacy.boot``) and the page is
written from what the hardware description (:class:`arches.ArchConfig`) and the booted kernel
say: levels, the levels the kernel folds (``__PAGETABLE_*_FOLDED``, or at run time
``mm_*_folded``/``PTRS_PER_* == 1``), page and leaf sizes, VA/PA bits, roots, table sizes,
endianness, what a fresh mm costs.  The notes are each configuration's ``ArchConfig.notes``
plus :data:`SURPRISES`, a hand-written list of what the kernel does that one would not guess.
``tests/test_archdoc.py`` fails when the page is not what this module generates.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from arches.config import HwLevel
from legacy import arch_names, boot
from ptshim.gendoc import generated_doc_main
from ptshim.scenario import Limits

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "arches.md"

LEVELS = ("pgd", "p4d", "pud", "pmd", "pte")
"""Kernel levels, top first."""


@dataclass(frozen=True)
class KernelLevel:
    """One level of the kernel's page-table API as a booted kernel has it."""

    name: str
    shift: int
    """``PGDIR_SHIFT`` ... ``PAGE_SHIFT``: the VA bit where the level's index starts."""
    entries: int
    """``PTRS_PER_*``."""
    entry_size: int
    """``sizeof(*_t)``."""
    folded: str
    """"" (a real level), "compile time" (asm-generic ``pgtable-nop*.h``) or "run time"
    (one entry although the kernel is built with the level, e.g. x86-64 without LA57)."""
    accounted: bool
    """Whether a table of this level counts in ``mm->pgtables_bytes``."""

    @property
    def table_bytes(self) -> int:
        return self.entries * self.entry_size


@dataclass(frozen=True)
class ArchFacts:
    """What ``docs/arches.md`` says about one configuration."""

    name: str
    family: str
    description: str
    hw_levels: tuple[HwLevel, ...]
    kernel_levels: tuple[KernelLevel, ...]
    page_size: int
    hw_leaf_sizes: tuple[int, ...]
    user_leaf_sizes: tuple[int, ...]
    kernel_leaf_sizes: tuple[int, ...]
    word_bits: int
    va_bits: int
    phys_bits: int
    roots: tuple[str, ...]
    endianness: str
    user_range: tuple[int, int]
    kernel_range: tuple[int, int]
    has_nx: bool
    separate_kernel_root: bool
    preallocated_pmds: int
    """PMDs ``pgd_alloc`` preallocates (x86 PAE: all four)."""
    sync_levels: tuple[str, ...]
    """Levels in ``ARCH_PAGE_TABLE_SYNC_MASK``: kernel entries copied into every pgd."""
    pgd_alloc_bytes: int
    """What ``pgd_alloc`` takes: a whole frame, or just the table (a slab object)."""
    fresh_mm_tables: tuple[tuple[str, int], ...]
    """Tables charged to a fresh ``mm_alloc()``'s mm, by level."""
    fresh_mm_pgtables_bytes: int
    boot_frames: int
    """Frames allocated right after boot (``swapper_pg_dir`` and what it preallocates)."""
    thp_pmd: bool
    thp_pud: bool
    huge_vmap: bool
    max_swap_offset: int | None
    """The largest swap offset a pte can hold (``generic_max_swapfile_size``'s probe), when
    the emulator implements the architecture's swap-entry format."""
    notes: tuple[str, ...]

    @property
    def folded(self) -> tuple[str, ...]:
        return tuple(lv.name for lv in self.kernel_levels if lv.folded)

    @property
    def levels(self) -> int:
        """Levels the kernel really walks (5 minus the folded ones)."""
        return sum(1 for lv in self.kernel_levels if not lv.folded)

    def level(self, name: str) -> KernelLevel:
        return next(lv for lv in self.kernel_levels if lv.name == name)


def arch_facts(name: str) -> ArchFacts:
    """Boot ``name`` and collect its facts."""
    from legacy.pgtable import (
        PGTBL_P4D_MODIFIED,
        PGTBL_PGD_MODIFIED,
        PGTBL_PMD_MODIFIED,
        PGTBL_PTE_MODIFIED,
        PGTBL_PUD_MODIFIED,
    )

    k = boot(name)
    c = k.config
    boot_frames = len(k.mem)
    init = k.init_mm
    compile_time = {"p4d": k.PAGETABLE_P4D_FOLDED, "pud": k.PAGETABLE_PUD_FOLDED,
                    "pmd": k.PAGETABLE_PMD_FOLDED}
    run_time = {"p4d": k.mm_p4d_folded(init) or k.PTRS_PER_P4D == 1,
                "pud": k.mm_pud_folded(init) or k.PTRS_PER_PUD == 1,
                "pmd": k.mm_pmd_folded(init) or k.PTRS_PER_PMD == 1}
    geometry = {
        "pgd": (k.PGDIR_SHIFT, k.PTRS_PER_PGD, k.SIZEOF_PGD),
        "p4d": (k.P4D_SHIFT, k.PTRS_PER_P4D, k.SIZEOF_P4D),
        "pud": (k.PUD_SHIFT, k.PTRS_PER_PUD, k.SIZEOF_PUD),
        "pmd": (k.PMD_SHIFT, k.PTRS_PER_PMD, k.SIZEOF_PMD),
        "pte": (k.PAGE_SHIFT, k.PTRS_PER_PTE, k.SIZEOF_PTE),
    }
    levels = []
    for lv in LEVELS:
        shift, entries, size = geometry[lv]
        folded = ("compile time" if compile_time.get(lv) else
                  "run time" if run_time.get(lv) else "")
        accounted = lv == "pte" or (lv in ("pmd", "pud") and not folded)
        levels.append(KernelLevel(lv, shift, entries, size, folded, accounted))
    sync_bits = {"pgd": PGTBL_PGD_MODIFIED, "p4d": PGTBL_P4D_MODIFIED,
                 "pud": PGTBL_PUD_MODIFIED, "pmd": PGTBL_PMD_MODIFIED,
                 "pte": PGTBL_PTE_MODIFIED}
    mm = k.mm_alloc()
    if mm is None:
        raise RuntimeError(f"{name}: mm_alloc() failed on a fresh machine")
    desc = k.table_desc(mm.pgd.pa)
    pgd_table = k.PTRS_PER_PGD * k.SIZEOF_PGD
    in_slab = any(cache.holds_frame(mm.pgd.pa) for cache in k.kmem_caches)
    pgd_alloc = (c.page_size if desc is not None and desc.level == "pgd" and not in_slab
                 else pgd_table)
    tables = Counter(k.ptdescs[pa].level for pa in k.tables_of(mm))
    max_swap: int | None = None
    if k.SWP_ENTRY_EMULATED:
        entry = k.swp_entry_to_pte(k.swp_entry(0, k.ULONG_MASK))
        max_swap = k.swp_offset(k.pte_to_swp_entry(entry))
    lim = Limits.from_kernel(k)
    return ArchFacts(
        name=c.name,
        family=c.family,
        description=c.description,
        hw_levels=c.hw_levels,
        kernel_levels=tuple(levels),
        page_size=c.page_size,
        hw_leaf_sizes=c.leaf_sizes,
        user_leaf_sizes=lim.user_leaf_sizes,
        kernel_leaf_sizes=lim.kernel_leaf_sizes,
        word_bits=c.word_bits,
        va_bits=c.va_bits,
        phys_bits=c.phys_bits,
        roots=c.roots,
        endianness=c.endianness,
        user_range=c.user_range,
        kernel_range=c.kernel_range,
        has_nx=c.has_nx,
        separate_kernel_root=k.SEPARATE_KERNEL_ROOT,
        preallocated_pmds=int(getattr(k, "PREALLOCATED_PMDS", 0)),
        sync_levels=tuple(lv for lv in LEVELS if k.ARCH_PAGE_TABLE_SYNC_MASK & sync_bits[lv]),
        pgd_alloc_bytes=pgd_alloc,
        fresh_mm_tables=tuple((lv, tables[lv]) for lv in LEVELS if tables[lv]),
        fresh_mm_pgtables_bytes=mm.pgtables_bytes,
        boot_frames=boot_frames,
        thp_pmd=k.has_transparent_hugepage(),
        thp_pud=k.has_transparent_hugepage() and k.has_transparent_pud_hugepage(),
        huge_vmap=k.HAVE_ARCH_HUGE_VMAP,
        max_swap_offset=max_swap,
        notes=c.notes,
    )


# -- rendering ---------------------------------------------------------------------------------


def size_str(n: int) -> str:
    """4096 -> 4K, 2097152 -> 2M; sizes that are not a whole unit stay in bytes."""
    for unit in ("", "K", "M", "G", "T", "P"):
        if n < 1024 or n % 1024:
            return f"{n}{unit}"
        n //= 1024
    return f"{n}E"


def bits_str(n: int) -> str:
    """A power of two as 2^k, anything else in hex."""
    if n and n & (n - 1) == 0:
        return f"2^{n.bit_length() - 1}"
    return f"{n:#x}"


def range_str(r: tuple[int, int]) -> str:
    return f"`[{r[0]:#x}, {bits_str(r[1]) if r[1] & (r[1] - 1) == 0 else hex(r[1])})`"


def index_bits(shift: int, entries: int) -> str:
    return f"{shift + entries.bit_length() - 2}:{shift}"


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def sizes(xs: Sequence[int]) -> str:
    return ", ".join(size_str(x) for x in xs)


def level_cell(lv: KernelLevel) -> str:
    if lv.folded:
        return f"folded ({lv.folded})"
    return f"{lv.entries} × {lv.entry_size} B = {lv.table_bytes}"


def summary(facts: Sequence[ArchFacts]) -> list[str]:
    rows = [(
        f"[`{f.name}`](#{f.name.replace('.', '')})",
        f"{len(f.hw_levels)}: " + " → ".join(lv.name for lv in f.hw_levels),
        str(f.levels),
        ", ".join(f.folded) or "–",
        size_str(f.page_size),
        sizes(f.hw_leaf_sizes),
        sizes(f.user_leaf_sizes),
        sizes(f.kernel_leaf_sizes),
        str(f.va_bits),
        str(f.phys_bits),
        ", ".join(f"`{r}`" for r in f.roots),
        f.endianness,
    ) for f in facts]
    head = ("configuration", "hardware levels", "kernel levels", "folded", "page",
            "leaf sizes", "user leaves", "kernel leaves", "VA bits", "PA bits", "roots",
            "endianness")
    return table(head, rows)


def tables_summary(facts: Sequence[ArchFacts]) -> list[str]:
    rows = []
    for f in facts:
        fresh = ", ".join(f"{n} {lv}" for lv, n in f.fresh_mm_tables)
        rows.append((
            f"`{f.name}`",
            *(level_cell(f.level(lv)) for lv in LEVELS),
            size_str(f.pgd_alloc_bytes),
            f"{fresh}; {f.fresh_mm_pgtables_bytes}",
        ))
    head = ("configuration", *LEVELS, "pgd_alloc takes", "fresh mm: tables; pgtables_bytes")
    return table(head, rows)


def section(f: ArchFacts) -> list[str]:
    out = [f"### {f.name}", "", f.description, ""]
    out += table(
        ("hardware level", "VA bits", "entries", "entry", "table", "leaf"),
        [(lv.name, index_bits(lv.shift, lv.entries), str(lv.entries), f"{lv.entry_size} B",
          f"{lv.table_bytes} B", size_str(lv.span) if lv.leaf_ok else "–")
         for lv in f.hw_levels],
    )
    out.append("")
    out += table(
        ("kernel level", "shift", "PTRS_PER", "sizeof", "table", "folded", "accounted"),
        [(lv.name, str(lv.shift), str(lv.entries), f"{lv.entry_size} B",
          f"{lv.table_bytes} B", lv.folded or "no", "yes" if lv.accounted else "no")
         for lv in f.kernel_levels],
    )
    out.append("")
    if f.separate_kernel_root:
        kernel = (f"a root of their own (`{f.roots[-1]}` = `swapper_pg_dir`); `pgd_alloc` "
                  "copies no kernel half")
    elif f.preallocated_pmds:
        kernel = ("the kernel half of every pgd: `pgd_alloc` preallocates "
                  f"{f.preallocated_pmds} PMDs and copies `swapper_pg_dir`'s kernel PMD into "
                  "the kernel ones")
    else:
        kernel = ("the kernel half of every pgd, which `pgd_ctor` copies from "
                  "`swapper_pg_dir`")
    if not f.separate_kernel_root and f.sync_levels:
        kernel += ("; `arch_sync_kernel_mappings` copies changed "
                   + "/".join(f.sync_levels) + " entries into every pgd on `pgd_list`")
    swap = ("not emulated" if f.max_swap_offset is None
            else f"max offset {bits_str(f.max_swap_offset + 1)} - 1")
    out += [
        f"- {f.word_bits}-bit `unsigned long`; user range {range_str(f.user_range)}, "
        f"kernel range {range_str(f.kernel_range)}.",
        f"- Kernel addresses are translated through {kernel}.",
        f"- A fresh machine allocates {f.boot_frames} frame(s) at boot; a fresh mm has "
        + ", ".join(f"{n} {lv}" for lv, n in f.fresh_mm_tables)
        + f" table(s), `pgtables_bytes` {f.fresh_mm_pgtables_bytes}; `pgd_alloc` takes "
        f"{f.pgd_alloc_bytes} bytes for a {f.level('pgd').table_bytes}-byte table.",
        f"- Huge pages: THP pmd {'yes' if f.thp_pmd else 'no'}, THP pud "
        f"{'yes' if f.thp_pud else 'no'}, `HAVE_ARCH_HUGE_VMAP` "
        f"{'yes' if f.huge_vmap else 'no'}.  NX: {'yes' if f.has_nx else 'no'}.  "
        f"Swap entries: {swap}.",
        "",
    ]
    if f.notes:
        out += ["Notes:", ""] + [f"- {n}" for n in f.notes] + [""]
    return out


SURPRISES = """\
## What the kernel does that surprises

Found while emulating; each is what the kernel really does, and ptshim does the same.

**x86**

- *x86-64 folds p4d at run time.*  The kernel is built with five levels; without LA57,
  `pgtable_l5_enabled()` is false, `PTRS_PER_P4D` is `ptrs_per_p4d` = 1, `PGDIR_SHIFT` is
  `pgdir_shift` = 39 and `p4d_offset()` returns the pgd pointer: the effect of
  `pgtable-nop4d.h`, decided when the CPU boots (`__PAGETABLE_P4D_FOLDED` is not defined).
- *x86-64 swap entries keep 50 offset bits.*  The offset is stored inverted in bits 9..58 (the
  high physical bits stay set for L1TF) and the type in 59..63, so the largest offset a pte
  holds is 2^50 - 1 while the arch-independent `swp_entry_t` has room for 58 bits.
- *PAE's `__PHYSICAL_MASK_SHIFT` is 52*, "beyond the 44 bit limit imposed by the 32bit long
  pfns": an inverted PROT_NONE or swap entry keeps every host physical bit set (L1TF, 2018).
  A pfn is still an `unsigned long`: a PAE pte maps at most 2^44 bytes.
- *A PAE PDPTE holds only P* (plus PWT/PCD and the address): R/W, U/S and A are reserved
  there, so `pud_populate()` writes `__pa(pmd) | _PAGE_PRESENT` and
  `native_make_pgd`/`native_pgd_val` mask with `PGD_ALLOWED_BITS`.  The CPU loads the four
  PDPTEs on a CR3 write: changing one needs a CR3 reload.
- *PAE preallocates all four PMDs* in `pgd_alloc` (`PREALLOCATED_PMDS` = `PTRS_PER_PGD`), each
  accounted with `mm_inc_nr_pmds`: a fresh mm has `pgtables_bytes` = 16384.  Since
  `SHARED_KERNEL_PMD` was removed (2025), every pgd gets its own *copy* of the kernel PMD
  (slot 3), kept in sync like the non-PAE kernel half.  `munmap` may free a preallocated
  user PMD (`free_pmd_range`); `pgd_free` mops up the rest.
- *The PAE pgd is 32 bytes, but Linux allocates a whole page for it* ("PTI and Xen need a
  whole page"); older kernels used a 32-byte `pgd_cache` slab with a shared kernel PMD.
- *i386 (2-level) has no huge vmap*: `HAVE_ARCH_HUGE_VMAP` is selected only `if X86_64 ||
  X86_PAE`, so `pmd_set_huge()` is the generic stub returning 0 and `vmap` never makes a 4M
  leaf; 4M kernel leaves only come from `set_pmd()` (the direct map).  On PAE
  `pmd_free_pte_page()` succeeds only on an empty pmd, so `vmap` falls back to ptes where a
  (now empty) PTE table is left from an earlier `vunmap`.
- *32-bit `arch_sync_kernel_mappings()` ignores `end`*: it syncs every pmd from
  `start & PMD_MASK` up to `VMALLOC_END` into every pgd on `pgd_list`, and only where the
  presence differs (`vmalloc_sync_one`).
- *x86 `pud_bad()` counts PSE as bad*, so `mremap`'s `get_old_pud()`
  (`pud_none_or_clear_bad`) clears a huge pud as a bad entry before `pud_trans_huge()` is
  looked at.
- *A huge pmd made by `pmd_set_huge()` with a non-present protection* goes through
  `pfn_pte()`, so the PFN inversion covers bits 12..20 too (`pfn_pmd()` would mask them off).

**arm64**

- *Two roots*: user addresses go through TTBR0 (`mm->pgd`), kernel ones through TTBR1
  (`swapper_pg_dir`); `pgd_alloc` hands out a zeroed table with no kernel half and
  `ARCH_PAGE_TABLE_SYNC_MASK` is 0.
- *`PTE_PRESENT_INVALID` is `PTE_NG` (bit 11) since 6.10*: a PROT_NONE pte (and a pmd being
  split) is invalid to the MMU but present to Linux, marked by the nG bit, which only means
  "not global" in a valid entry.
- *`pte_mkwrite_novma()` no longer dirties* ("arm64, mm: avoid always making PTE dirty in
  pte_mkwrite()", 2025): it sets `PTE_WRITE` (the DBM bit) and clears `PTE_RDONLY` only for a
  software-dirty pte, so a clean writable pte stays `PTE_RDONLY | PTE_WRITE` until the
  hardware's dirty-bit management makes it writable on the first write.
- *Table entries carry attributes*: `p?d_populate()` sets the table AF bit (ignored without
  FEAT_HAFT) and `PXNTable` for user tables or `UXNTable` for kernel ones.
- *`pud_bad()` is "not a table"*, so a block pud is bad too: `get_old_pud()` would clear it
  (arm64 has no PUD-level THP, only hugetlb and the kernel's block mappings).
- *`vmap` of `PAGE_NONE` with huge pages makes a valid block*: `pmd_set_huge()` ORs in
  `PMD_TYPE_SECT` whatever the protection, and `PAGE_NONE` without `PTE_USER` is a kernel
  read-only mapping to the MMU.
- *A pgd can be 16 bytes*: 16K pages with 48-bit VAs leave one VA bit for L0
  (`PTRS_PER_PGD` = 2); 64K pages with 48-bit VAs a 512-byte L1 pgd.  `pgd_alloc` then takes
  it from the slab cache `pgd_cache` (`arch/arm64/mm/pgd.c`: `PGD_SIZE` objects aligned to
  `PGD_SIZE`), so 1024 (or 128) mms' pgds share one page, TTBR0 points into the middle of a
  page, and the pgd has no `struct ptdesc` and no constructor; `swapper_pg_dir` stays a
  page.  The Arm ARM wants the table aligned to its size only (64 bytes with 52-bit PAs).

**ppc64 (radix)**

- *Tables are fragments*: with 64K pages a PTE table is a 256-byte fragment (256 to a page)
  and a PMD table a 4 KiB one, handed out per mm from `mm->context`, and all fragments of a
  page share one split lock (arch/powerpc/mm/pgtable-frag.c); with 4K pages the pgd is an
  order-4 block of 64 KiB.
- *Flushes name what they drop*: a radix invalidation carries a RIC (translations, walk
  cache, or both); `flush_tlb_mm` keeps the walk cache, `flush_tlb_kernel_range` flushes all
  of PID 0, and a range of at least `PMD_SIZE` also drops the walk cache ("mremap() depends
  on this", arch/powerpc/mm/book3s64/radix_tlb.c).
- *PROT_NONE is a valid leaf* (privileged, no permissions), `pte_mkwrite` also sets read,
  and `pte_none` ignores R and C.

**loongarch64**

- *Empty directory entries point at tables*: an empty pgd/pmd entry holds the address of
  `invalid_pmd_table`/`invalid_pte_table`, which the refill handler reads straight through
  (arch/loongarch/include/asm/pgtable.h, `tlbex.S`); kernel PTE tables start full of
  `_PAGE_GLOBAL` and `pte_clear` keeps G, so an empty kernel pte is not zero either.
- *The walk is software*: `LDDIR`/`LDPTE` in the TLB refill handler walk what
  `PWCL`/`PWCH` describe; the pgd is Dir3, the pmd Dir1 and Dir2 has width 0
  (`setup_ptwalker`); PGDL or PGDH is chosen by VA bit 63.
- *`set_pmd_at` ends with `flush_tlb_all()`* (arch/loongarch/mm/pgtable.c), and user pages
  are mapped young but never dirty: read-only to the TLB until the first store.

**arm (classic)**

- *One Linux pmd is two hardware entries*: the 2048-entry Linux pgd is 4096 1 MiB
  first-level descriptors in pairs, and a PTE page holds two 256-entry hardware tables after
  the two Linux tables (pgtable-2level.h); `__pte_free_tlb` widens the flush to the 1 MiB
  boundary for that reason (asm/tlb.h).
- *The hardware pte is derived, not written*: `cpu_v7_set_pte_ext` gives an old, PROT_NONE
  or invalid pte a zero hardware pte and a clean one AP[2] = 1 (proc-v7-2level.S);
  `pgtables_bytes` counts only the Linux half (2048 bytes per PTE page).
- *`pgtable-2level.h` folds the pmd itself* (`__PAGETABLE_PMD_FOLDED` without
  pgtable-nopmd.h), `pmd_bad` equals `pmd_leaf`, and `pgd_free` frees the PTE page under
  entry 0 because `FIRST_USER_ADDRESS` is two pages.

**arm (LPAE)**

- *The pgd is 4 entries, 32 bytes from kmalloc*, and `pgd_alloc` gives each mm its own pmd
  for the modules area (pgd slot 2), shared with the top of user space: hence
  `USER_PGTABLES_CEILING = TASK_SIZE` (arch/arm/mm/pgd.c).
- *What is written is not what is read back*: `cpu_v7_set_pte_ext` clears the valid bit for
  PROT_NONE and sets AP[2] for a clean or read-only page (proc-v7-3level.S); `L_PTE_PRESENT`
  is 3, so `pte_present` is either of bits 1:0, while `pmd_present` is bit 0 only.
- *`pmd_pfn` masks with `PMD_MASK`*, an `int` that sign-extends, so PA bits 39:32 survive
  (pgtable-3level.h).

**s390x**

- *The root grows under a live mm*: a mapping above `mm->context.asce_limit` makes
  `check_asce_limit` -> `crst_table_upgrade` add one or two region tables (3 -> 4 -> 5
  levels) and load a new ASCE; the old top becomes entry 0 of the new one and is charged as
  a pud (arch/s390/mm/pgalloc.c).  `free_pgd_range` starts at the first vma, so with no vma
  below the old limit that chain is never freed: a real process always has its stack there;
  scenarios have none, so ptshim frees an *empty* chain with the table holding it (a
  documented departure, `S390Kernel.pgd_free`).
- *Empty is not zero*: region and segment entries start as `_REGION_ENTRY_EMPTY` /
  `_SEGMENT_ENTRY_EMPTY`, ptes as `_PAGE_INVALID`; region and segment tables are 16 KiB
  order-2 blocks, a PTE table 2 KiB (256 entries) in a page of its own, the other half left
  for PGSTEs (`crst_table_init`, `page_table_alloc`).
- *The store is the flush*: IPTE and IDTE invalidate as they clear (`ptep_clear_flush`,
  `pmdp_huge_get_and_clear`), so `flush_tlb_page` and `flush_tlb_all` are empty; a lazy
  clear only sets `mm->context.flush_mm`, and `flush_tlb_range`, `flush_tlb_mm` and the
  gather's `tlb_flush` purge the whole address space when it is set, and nothing otherwise
  (asm/tlbflush.h, asm/tlb.h).
- *Young and dirty are faults*: an old pte is DAT-invalid and a clean one DAT-protected
  (`pte_mkold`/`pte_mkclean`); `pte_pgprot` keeps the frame number, because
  `_PAGE_CHG_MASK` includes `PAGE_MASK`.
- *No THP pud*: the hardware has 2 GiB region-third frames (EDAT-2) and the kernel a
  `pud_leaf`, but no `pfn_pud`/`pud_mkhuge`: only hugetlb and the kernel's 1:1 map make them.

**Generic**

- *`free_pgd_range()` keeps tables shared with the neighbours*: a table is freed only if its
  whole span lies between the previous vma's end (`floor`) and the next one's start
  (`ceiling`), so unmapping leaves the tables a neighbouring mapping still uses.
- *`vunmap` frees no page table*; huge `vmap` frees the empty table it replaces
  (`pmd_free_pte_page`, `pud_free_pmd_page`) where the architecture allows it.
"""


def render(facts: Sequence[ArchFacts] | None = None) -> str:
    if facts is None:
        facts = [arch_facts(n) for n in arch_names()]
    out = [
        "# Architecture configurations",
        "",
        "<!-- Generated by `python -m ptshim.archdoc --write` (ptshim/archdoc.py): edit the "
        "generator or the configurations, not this file. -->",
        "",
        "Generated from the registry (`legacy.arch_names()`): the hardware of each "
        "configuration (`arches.ArchConfig`) and the facts of its kernel, read from a freshly "
        "booted `legacy.boot(name)`.  `tests/test_archdoc.py` fails when this page is stale; "
        "regenerate it with `python -m ptshim.archdoc --write`.",
        "",
        "Vocabulary: *hardware levels* are the tables the MMU walks; *kernel levels* are "
        "pgd, p4d, pud, pmd and pte, of which a *folded* one has a single entry that is its "
        "parent's entry (`pgtable-nop4d.h`/`-nopud.h`/`-nopmd.h` at compile time, or one "
        "entry at run time).  *Leaf sizes* are what the hardware can map at some level; "
        "*user leaves* what a user mapping can use (PTEs, THP pmd/pud), *kernel leaves* "
        "what `vmap` can use (`HAVE_ARCH_HUGE_VMAP`).  Ranges are half-open.",
        "",
        "## Summary",
        "",
        *summary(facts),
        "",
        "## Tables",
        "",
        "`PTRS_PER_X × sizeof(X_t)` per kernel level; `pgd_alloc takes` is what the kernel "
        "allocates for the pgd; a *fresh mm* is the one `mm_alloc()` returns, before any "
        "mapping.",
        "",
        *tables_summary(facts),
        "",
        "## Configurations",
        "",
    ]
    for f in facts:
        out += section(f)
    out.append(SURPRISES)
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    return generated_doc_main(argv, "ptshim.archdoc", __doc__, DOC_PATH, render)


if __name__ == "__main__":
    sys.exit(main())
