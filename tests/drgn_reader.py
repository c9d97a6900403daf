"""A second independent reader of exported page tables: drgn, the kernel developers' debugger.

drgn (0.3.0) walks Linux page tables itself, in C, for crash dumps and live kernels: its
``follow_phys(mm, addr)`` helper (``drgn.helpers.linux.mm``) translates a virtual address
through ``mm->pgd``.  Nobody on this project wrote that walker, and it reads the tables the
way the kernel's own crash tooling does, so agreeing with it is evidence that the emulated
kernel writes what real Linux writes.  :class:`DrgnReader` feeds it an export with no core
file:

- a ``drgn.Program`` for the configuration's platform (architecture, word size, byte order);
- one *physical* memory segment per run of exported frames, served from ``phys.bin``;
  (memory outside them reads as zeros);
- ``Program.set_linux_kernel_custom()`` with a minimal VMCOREINFO, as Linux writes it
  (``kernel/vmcore_info.c``: ``OSRELEASE``, ``PAGESIZE``, ``SYMBOL(swapper_pg_dir)``; x86-64,
  ``arch/x86/kernel/vmcore_info_64.c``: ``NUMBER(phys_base)``, ``NUMBER(pgtable_l5_enabled)``;
  arm64, ``arch/arm64/kernel/vmcore_info.c``: ``NUMBER(VA_BITS)``);
- ``mm_struct`` objects whose ``pgd`` is the kernel virtual address of a top table (the
  types ``follow_phys`` needs come from a tiny type finder: no debug info).  drgn reads the
  *top* table through that virtual address and every lower table physically, so each pgd
  gets a small *virtual* segment at its direct-map address (``PAGE_OFFSET + pa``, the
  configuration's ``kernel_range`` start).  ``swapper_pg_dir`` is read physically where drgn
  knows how: on x86-64 it is the kernel-image symbol ``init_top_pgt``,
  ``__START_KERNEL_map + pa - phys_base`` (``libdrgn/arch_x86_64.c``); on s390x drgn reads
  the table at the symbol's value (kernel virtual = physical before v6.10, the form used
  here); on arm64 it is read through its virtual segment like any pgd.

drgn checks addresses only: it reports the physical address a leaf maps, never permissions
(nor the A/D, NX, U/S, AP bits).  Which configurations it can read, :func:`unsupported` says;
drgn's own refusal decides the architecture (0.3.0 raises NotImplementedError for i386,
RISC-V, LoongArch), then the geometry its walker assumes (``libdrgn/arch_x86_64.c``,
``arch_aarch64.c``, ``arch_s390x.c``, ``arch_arm.c``) is compared with the configuration's
:class:`~arches.config.HwLevel` list, so a new configuration with a geometry drgn walks is
picked up when it is registered.  On s390x drgn takes the number of levels from the table
type of the top table's first entry, as Linux writes it (``mm->pgd`` carries no ASCE), and
ignores VA bits left of that table (:meth:`DrgnReader.judges`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from arches.config import ArchConfig
from ptshim.version import KERNEL_VERSION

_drgn: Any
_follow_phys: Any
try:  # optional dependency
    import drgn as _drgn
    from drgn.helpers.linux.mm import follow_phys as _follow_phys
except ImportError:  # pragma: no cover - depends on the environment
    _drgn = None
    _follow_phys = None

OSRELEASE = KERNEL_VERSION.removeprefix("v") + ".0"
"""The release the emulator pins, as ``uname -r`` spells it."""
START_KERNEL_MAP = 0xFFFF_FFFF_8000_0000
PPC64_PAGE_OFFSET = 0xC000_0000_0000_0000
PPC64_CPU_SPEC = 0xC000_0000_0000_1000
"""Where the ppc64 reader's ``struct cpu_spec`` sits (a linear-map address no pgd uses)."""
PPC64_MMU_FTR_TYPE_RADIX = 0x40
"""``__START_KERNEL_map`` (``arch/x86/include/asm/page_64_types.h``)."""
PHYS_BASE = 0x100_0000
"""x86-64 ``phys_base``: the default ``CONFIG_PHYSICAL_START`` (16 MiB).  It must not be 0:
drgn takes 0 to mean "not in VMCOREINFO" and then reads ``swapper_pg_dir`` virtually."""


def available() -> str | None:
    """None when drgn is importable, else why not."""
    if _drgn is None:
        return "the optional 'drgn' package is not installed (pip install 'drgn>=0.3')"
    return None


def _drgn_arch(config: ArchConfig) -> str | None:
    """The name of drgn's ``Architecture`` for the configuration's MMU family."""
    fam, bits = config.family.lower(), config.word_bits
    if fam == "x86":
        return "X86_64" if bits == 64 else "I386"
    if fam == "arm64":
        return "AARCH64"
    if fam.startswith("riscv"):
        return "RISCV64" if bits == 64 else "RISCV32"
    if fam.startswith("s390"):
        return "S390X" if bits == 64 else "S390"
    if fam.startswith(("ppc", "powerpc")):
        return "PPC64"
    if fam == "loongarch":
        return "LOONGARCH64"
    if fam == "arm":  # 32-bit arm, classic or LPAE
        return "ARM"
    return None


def _platform(config: ArchConfig) -> Any:
    flags = _drgn.PlatformFlags(0)
    if config.word_bits == 64:
        flags |= _drgn.PlatformFlags.IS_64_BIT
    if config.endianness == "little":
        flags |= _drgn.PlatformFlags.IS_LITTLE_ENDIAN
    return _drgn.Platform(_drgn.Architecture[_drgn_arch(config)], flags)


@functools.cache
def _walks(arch: str) -> str | None:
    """None when drgn has a Linux page-table walker for ``arch``, else its own refusal."""
    flags = _drgn.PlatformFlags.IS_64_BIT | _drgn.PlatformFlags.IS_LITTLE_ENDIAN
    prog = _drgn.Program(_drgn.Platform(_drgn.Architecture[arch], flags))
    prog.add_memory_segment(0, 1 << 16, lambda a, n, o, p: bytes(n), physical=True)
    prog.set_linux_kernel_custom(
        f"OSRELEASE={OSRELEASE}\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=1000\nNUMBER(VA_BITS)=48\n",
        False)
    prog.add_memory_segment(0x1000, 1 << 14, lambda a, n, o, p: bytes(n), physical=False)
    try:
        _drgn.helpers.linux.mm._linux_helper_follow_phys(prog, 0x1000, 0)
    except NotImplementedError as e:
        return str(e)
    except Exception:  # a fault, or a missing symbol (ppc64's cur_cpu_spec): it walks
        return None
    return None


def _geometry_x86_64(config: ArchConfig) -> str | None:
    """``libdrgn/arch_x86_64.c``: 4 levels, or 5 with ``pgtable_l5_enabled``; 512 8-byte
    entries per 4 KiB table; next-table and leaf addresses from entry bits 51:12."""
    lv = config.hw_levels
    shifts = tuple(12 + 9 * i for i in reversed(range(len(lv))))
    if (len(lv) not in (4, 5) or config.page_shift != 12 or config.phys_bits > 52
            or tuple(x.shift for x in lv) != shifts
            or any(x.entries != 512 or x.entry_size != 8 for x in lv)):
        return (f"{config.name}: drgn's x86-64 walker knows only 4- and 5-level paging with "
                f"512 8-byte entries per 4 KiB table")
    return None


def aarch64_levels(page_shift: int, va_bits: int) -> tuple[int, int]:
    """(levels, entries of the top table) as ``libdrgn/arch_aarch64.c`` computes them from
    VMCOREINFO's PAGESIZE and VA_BITS."""
    per = page_shift - 3
    levels = (va_bits - page_shift + per - 1) // per
    return levels, 1 << ((va_bits - page_shift - 1) % per + 1)


def _geometry_aarch64(config: ArchConfig) -> str | None:
    """``libdrgn/arch_aarch64.c``: 4K/16K/64K granules, VA_BITS <= 52, levels and top-table
    size from PAGESIZE and VA_BITS; output addresses from descriptor bits 47:PAGE_SHIFT (plus
    51:48 from bits 15:12 with 64K pages, FEAT_LPA) -- never FEAT_LPA2's bits 9:8."""
    ps, va = config.page_shift, config.va_bits
    if ps not in (12, 14, 16) or not ps < va <= 52:
        return f"{config.name}: drgn's AArch64 walker needs a 4K/16K/64K granule, VA_BITS <= 52"
    if config.phys_bits > (52 if ps == 16 else 48):
        return (f"{config.name}: {config.phys_bits}-bit output addresses with a "
                f"{1 << ps >> 10}K granule need FEAT_LPA2, which drgn's AArch64 walker lacks")
    levels, top = aarch64_levels(ps, va)
    per = ps - 3
    want = [(ps + per * (levels - 1 - i), top if i == 0 else 1 << per) for i in range(levels)]
    have = [(x.shift, x.entries) for x in config.hw_levels]
    if have != want or any(x.entry_size != 8 for x in config.hw_levels):
        return (f"{config.name}: drgn's AArch64 walker assumes levels (shift, entries) {want}, "
                f"the configuration has {have}")
    return None


S390X_LEVELS = ((53, 2048), (42, 2048), (31, 2048), (20, 2048), (12, 256))
"""(shift, entries) of drgn's s390x ``dat_levels``, region-first table first."""


def _geometry_s390x(config: ArchConfig) -> str | None:
    """``libdrgn/arch_s390x.c``: 4K pages; region tables of 2048 entries (shifts 53, 42,
    31), segment tables of 2048 (20), page tables of 256 (12); 1M and 2G large frames;
    big-endian.  The number of levels comes from the table-type bits of the top table's
    *first entry* (``mm->pgd`` carries no ASCE), as Linux writes its empty entries."""
    have = tuple((x.shift, x.entries) for x in config.hw_levels)
    if (config.page_shift != 12 or config.endianness != "big"
            or have != S390X_LEVELS[5 - len(have):]
            or any(x.entry_size != 8 for x in config.hw_levels)):
        return (f"{config.name}: drgn's s390x walker assumes levels (shift, entries) "
                f"{list(S390X_LEVELS)}, big-endian, the configuration has {list(have)}")
    return None


def _geometry_ppc64(config: ArchConfig) -> str | None:
    """``libdrgn/arch_ppc64.c``: book3s64 radix only (``cur_cpu_spec->mmu_features`` has
    ``MMU_FTR_TYPE_RADIX``), ``pt_levels_radix_4k`` (13/9/9/9) or ``_64k`` (13/9/9/5) by
    PAGESIZE; big-endian entries, leaf = ``_PAGE_PTE`` at any level, addresses bits 52:12."""
    pte = 9 if config.page_shift == 12 else 5
    want = [(39, 8192), (30, 512), (21, 512), (config.page_shift, 1 << pte)]
    have = [(x.shift, x.entries) for x in config.hw_levels]
    if config.page_shift not in (12, 16) or have != want or config.endianness != "big":
        return (f"{config.name}: drgn's ppc64 walker assumes radix levels (shift, entries) "
                f"{want}, big-endian, the configuration has {have}")
    return None


def _geometry_arm(config: ArchConfig) -> str | None:
    """``libdrgn/arch_arm.c`` without ``CONFIG_ARM_LPAE`` in VMCOREINFO: the classic
    Short-descriptor walk, 4096 4-byte first-level entries (1M sections, 16M
    supersections, tables of 256 4-byte entries: 4K small and 64K large pages),
    little-endian; the first level read through ``mm->pgd``, the second physically.  Its
    LPAE walk (``vmcoreinfo.arm_lpae``) is not set up by this reader."""
    have = [(x.shift, x.entries, x.entry_size) for x in config.hw_levels]
    want = [(20, 4096, 4), (12, 256, 4)]
    lpae = [(30, 4, 8), (21, 512, 8), (12, 512, 8)]
    if have not in (want, lpae) or config.endianness != "little" or config.page_shift != 12:
        return (f"{config.name}: this reader sets up drgn's 32-bit arm walks only, levels "
                f"(shift, entries, entry size) {want} or (LPAE) {lpae}; the configuration "
                f"has {have}")
    return None


_GEOMETRY: dict[str, Callable[[ArchConfig], str | None]] = {
    "X86_64": _geometry_x86_64,
    "AARCH64": _geometry_aarch64,
    "S390X": _geometry_s390x,
    "PPC64": _geometry_ppc64,
    "ARM": _geometry_arm,
}


def unsupported(config: ArchConfig) -> str | None:
    """None when drgn can read this configuration's tables, else why not (one line)."""
    if _drgn is None:
        return available()
    arch = _drgn_arch(config)
    if arch is None:
        return f"{config.name}: drgn has no architecture for the {config.family} family"
    refusal = _walks(arch)
    if refusal is not None:
        return f"{config.name}: drgn {_drgn.__version__}: {refusal}"
    geometry = _GEOMETRY.get(arch)
    if geometry is None:
        return (f"{config.name}: drgn walks {arch} page tables, but this reader does not "
                f"set up its VMCOREINFO and roots yet")
    return geometry(config)


class DrgnReader:
    """drgn reading one machine's exported page tables (see the module doc).

    ``frames``/``data``: the export's frame list and ``phys.bin``; ``swapper_pg_dir``: the
    physical address of ``init_mm.pgd``."""

    def __init__(self, config: ArchConfig, frames: Sequence[int], frame_size: int,
                 data: bytes, swapper_pg_dir: int) -> None:
        why = unsupported(config)
        if why is not None:
            raise ValueError(why)
        self.config = config
        self.arch = arch = _drgn_arch(config)
        # ppc64: pgds are linear-map addresses (PAGE_OFFSET = 0xc000000000000000, below the
        # vmalloc area of kernel_range), and drgn finds swapper_pg_dir's table from there.
        self.direct_map = PPC64_PAGE_OFFSET if arch == "PPC64" else config.kernel_range[0]
        self.prog = prog = _drgn.Program(_platform(config))
        # Memory outside the exported frames reads as zeros: drgn's s390x walker reads
        # 16 KiB from a 2 KiB page table's address (it uses the first 256 entries).
        limit = (1 << min(config.phys_bits, 64)) - 1
        prog.add_memory_segment(0, limit, lambda a, n, o, p: bytes(n), physical=True)
        self.frame_size = frame_size
        self._phys = {pa: data[i * frame_size:(i + 1) * frame_size]
                      for i, pa in enumerate(frames)}
        for start, first, count in _runs(frames, frame_size):
            prog.add_memory_segment(start, count * frame_size,
                                    _serve(data, first * frame_size), physical=True)
        if arch == "X86_64":
            swapper = (START_KERNEL_MAP + swapper_pg_dir - PHYS_BASE) & ((1 << 64) - 1)
        elif arch == "S390X":
            swapper = swapper_pg_dir  # drgn reads it physically (kernel VA = PA, as < v6.10)
        else:
            swapper = self.direct_map + swapper_pg_dir
        info = [f"OSRELEASE={OSRELEASE}", f"PAGESIZE={config.page_size}",
                f"SYMBOL(swapper_pg_dir)={swapper:x}"]
        if arch == "X86_64":
            info += [f"NUMBER(phys_base)={PHYS_BASE}",
                     f"NUMBER(pgtable_l5_enabled)={int(len(config.hw_levels) == 5)}"]
        elif arch == "AARCH64":
            info.append(f"NUMBER(VA_BITS)={config.va_bits}")
        elif arch == "ARM" and config.hw_levels[0].entry_size == 8:
            info.append("CONFIG_ARM_LPAE=y")  # arch/arm/kernel/machine_kexec.c
        prog.set_linux_kernel_custom("\n".join(info) + "\n", False)
        # Registered after set_linux_kernel_custom(), so they win over its catch-all
        # virtual segment (the page-table reader).
        self._types()
        if arch == "PPC64":
            self._ppc64_cpu_spec()
        self._swapper = swapper
        self._virtual: set[int] = set()
        self._pgd_pa: dict[int, int] = {swapper: swapper_pg_dir}
        self.init_mm = self._mm(swapper, None if arch in ("X86_64", "S390X")
                                else swapper_pg_dir)

    def _types(self) -> None:
        """The two types ``follow_phys`` needs: ``phys_addr_t`` and ``struct mm_struct``
        (with only ``pgd``; no debug info is loaded)."""
        prog = self.prog
        word = prog.int_type("unsigned long", self.config.word_bits // 8, False)
        phys = prog.typedef_type("phys_addr_t",
                                 prog.int_type("unsigned long long", 8, False))
        pgd_t = prog.struct_type("pgd_t", 8, (_drgn.TypeMember(word, "pgd", 0),))
        mm = prog.struct_type("mm_struct", self.config.word_bits // 8,
                              (_drgn.TypeMember(prog.pointer_type(pgd_t), "pgd", 0),))
        known = {"phys_addr_t": phys, "mm_struct": mm}

        def find(_prog: Any, kinds: Any, name: str, _filename: str | None) -> Any:
            t = known.get(name)
            return t if t is not None and t.kind in kinds else None

        prog.register_type_finder("ptshim", find, enable_index=0)
        self._mm_type = mm

    def _ppc64_cpu_spec(self) -> None:
        """drgn's ppc64 walker first reads ``cur_cpu_spec->mmu_features`` and refuses
        anything but radix (``MMU_FTR_TYPE_RADIX`` = 0x40, ``arch/powerpc/include/asm/
        mmu.h``): a one-member ``struct cpu_spec`` in a virtual segment of its own (below
        the pgds' direct-map segments), found by name."""
        prog = self.prog
        ulong = prog.int_type("unsigned long", 8, False)
        spec = prog.struct_type("cpu_spec", 8, (_drgn.TypeMember(ulong, "mmu_features", 0),))
        raw = PPC64_MMU_FTR_TYPE_RADIX.to_bytes(8, "big")
        prog.add_memory_segment(PPC64_CPU_SPEC, 8, lambda a, n, o, p: raw[o:o + n],
                                physical=False)
        obj = _drgn.Object(prog, prog.pointer_type(spec), value=PPC64_CPU_SPEC)

        def find(_prog: Any, name: str, _flags: Any, _filename: str | None) -> Any:
            return obj if name == "cur_cpu_spec" else None

        prog.register_object_finder("ptshim-ppc64", find, enable_index=0)

    def _lpae_judges(self, pgd_va: int, va: int) -> bool:
        """drgn's LPAE walk (``linux_kernel_pgtable_iterator_next_arm_lpae``) takes any
        valid block or page as mapped, where the MMU raises an Access flag fault on one
        whose AF (bit 10) is clear: Linux's old pages (``L_PTE_YOUNG`` is AF; ARMv7 has no
        hardware AF update).  So an address is compared unless its leaf is valid with AF
        clear (read here from ``mm->pgd``, 4 x 1G, 512 x 2M, 512 x 4K)."""
        table = self._pgd_pa[pgd_va]
        for shift in (30, 21, 12):
            entries = 4 if shift == 30 else 512
            desc = int.from_bytes(self.read_phys(table + 8 * (va >> shift & (entries - 1)), 8),
                                  "little")
            if not desc & 1:
                return True  # invalid: both say unmapped
            if shift == 12 or not desc & 2:  # a page, or a block
                return bool(desc & 1 << 10)
            table = desc & 0xFF_FFFF_F000
        return True

    def _ppc64_judges(self, pgd_va: int, va: int) -> bool:
        """drgn's ppc64 walker indexes ``mm->pgd`` with EA bits 51:39 whatever the
        quadrant and EA bits 61:52 (the MMU uses PID 0's tree for quadrant 3, the process's
        for quadrant 0, and takes a segment interrupt for bits 61:52), and it takes any
        present leaf as mapped, where the MMU faults on a leaf whose EAA grants nothing
        (Linux's PROT_NONE).  So an address is compared when drgn's own view of ``mm->pgd``
        finds no leaf there (both must say unmapped: the other tree a quadrant selects maps
        nothing at such addresses here), or finds an accessible leaf for an address of this
        pgd's quadrant with EA bits 61:52 clear."""
        quadrant = 3 if pgd_va == self._swapper else 0
        table = self._pgd_pa[pgd_va]
        for lv in self.config.hw_levels:
            idx = va >> lv.shift & (lv.entries - 1)
            entry = int.from_bytes(self.read_phys(table + 8 * idx, 8), "big")
            if not entry >> 63:
                return True
            if entry >> 62 & 1:
                break
            table = entry & ~0xC0000000000000FF
        if va >> 62 != quadrant or (va & ((1 << 62) - 1)) >> 52:
            return False
        return bool(entry & 0x7)  # the leaf's EAA: read, read/write or execute

    def _mm(self, pgd_va: int, pgd_pa: int | None) -> Any:
        """A ``struct mm_struct`` value whose ``pgd`` is ``pgd_va``; with ``pgd_pa``, a
        virtual segment serves the top table there."""
        if pgd_pa is not None and pgd_va not in self._virtual:
            self._pgd_pa[pgd_va] = pgd_pa
            size = self.config.hw_levels[0].table_bytes
            self.prog.add_memory_segment(pgd_va, size, self._serve_at(pgd_pa), physical=False)
            self._virtual.add(pgd_va)
        return _drgn.Object(self.prog, self._mm_type, value={"pgd": pgd_va})

    def mm(self, pgd_pa: int) -> Any:
        """An ``mm_struct`` whose ``pgd`` is the direct-map address of the table at
        ``pgd_pa`` (as ``pgd_alloc`` returns it)."""
        return self._mm(self.direct_map + pgd_pa, pgd_pa)

    def _serve_at(self, pa: int) -> Callable[[int, int, int, bool], bytes]:
        def read(_address: int, count: int, offset: int, _physical: bool) -> bytes:
            return self.read_phys(pa + offset, count)
        return read

    def read_phys(self, pa: int, count: int) -> bytes:
        out = bytearray()
        while count:
            base = pa - pa % self.frame_size
            frame = self._phys.get(base)
            if frame is None:
                raise _drgn.FaultError("not an exported frame", pa)
            n = min(count, base + self.frame_size - pa)
            out += frame[pa - base:pa - base + n]
            pa, count = pa + n, count - n
        return bytes(out)

    def judges(self, mm: Any, va: int) -> bool:
        """Whether drgn's answer for ``va`` means anything.  Always, except on s390x: drgn
        takes the levels from the top table's first entry and ignores the VA bits left of
        what that table translates, where the hardware raises an ASCE-type exception; on
        ppc64 see :meth:`_ppc64_judges`."""
        if self.arch == "PPC64":
            return self._ppc64_judges(int(mm.pgd), va)
        if self.arch == "ARM" and self.config.hw_levels[0].entry_size == 8:
            return self._lpae_judges(int(mm.pgd), va)
        if self.arch != "S390X":
            return True
        pa = self._pgd_pa[int(mm.pgd)]
        first = int.from_bytes(self.read_phys(pa, 8), "big")
        shift = S390X_LEVELS[3 - (first >> 2 & 3)][0]  # TT 0 = segment table .. 3 = RFT
        return shift == 53 or va >> (shift + 11) == 0

    def follow_phys(self, mm: Any, va: int) -> int | None:
        """drgn's ``follow_phys(mm, va)``: the physical address, or None when drgn says the
        address is not mapped."""
        try:
            return int(_follow_phys(mm, va))
        except _drgn.FaultError as e:
            if "not mapped" in str(e):
                return None
            raise


def _runs(frames: Sequence[int], frame_size: int) -> list[tuple[int, int, int]]:
    """Runs of frames that follow each other both in ``frames`` and in physical memory:
    (start PA, index of the first, number of frames)."""
    out: list[tuple[int, int, int]] = []
    for i, pa in enumerate(frames):
        if out and out[-1][0] + out[-1][2] * frame_size == pa:
            out[-1] = (out[-1][0], out[-1][1], out[-1][2] + 1)
        else:
            out.append((pa, i, 1))
    return out


def _serve(data: bytes, base: int) -> Callable[[int, int, int, bool], memoryview]:
    """A segment's read callback: ``data`` from offset ``base`` on."""
    view = memoryview(data)

    def read(_address: int, count: int, offset: int, _physical: bool) -> memoryview:
        return view[base + offset:base + offset + count]
    return read
