"""An independent MMU for cross-checking exports: the x86, AArch64 and RISC-V CPUs of Unicorn
(QEMU's TCG).

``ptshim run … --export DIR`` writes page tables our own walkers (``arches/``) read back.
This module loads the same bytes into an emulated CPU that nobody on this project wrote --
Unicorn 2's x86 CPU with ``UC_TLB_CPU``, i.e. QEMU's own page walker -- and asks it what a
virtual address translates to:

- the exported frames are mapped at their physical addresses, and CR0/CR3/CR4/IA32_EFER
  are set to the exported ``registers`` (plus CR4.SMAP, see below);
- a probe executes a one-byte load (``mov al, [rbx]``), store (``mov [rbx], al``) or a jump
  to the address at CPL 0.  Nothing but the page tables is mapped, so a load that
  translates ends in Unicorn's "unmapped memory" hook, which reports the *physical* address
  QEMU's walk produced; a load that does not translate raises #PF (or #GP for a
  non-canonical address), seen by the interrupt hook;
- writable = the store does not fault (CR0.WP is set, so read-only pages fault at CPL 0
  too); executable = the jump does not fault (EFER.NXE); user = with CR4.SMAP set, a load
  with EFLAGS.AC clear faults on a user page and not on a supervisor page.

The probes need code at a mapped virtual address: :class:`UnicornX86Mmu` adds one page of
its own ("the harness") under a *non-present* entry of the exported tables (in Unicorn's
copy only), in physical memory no frame and no mapping uses.  Its VA span,
:attr:`UnicornX86Mmu.harness_span`, is the span of that one entry; callers must not probe
inside it.

Configurations: x86_64 (4-level), x86_64-la57 (5-level: the Icelake-Server model has LA57),
i386 (2-level, PSE) and i386-pae.  Limits: QEMU 5.0 TCG (Unicorn 2.1) gives these CPU
models 40 physical address bits -- a translation to a PA at or above 2^40 faults (reserved
bits).  A translation that lands in an exported frame (a mapping of a page-table page) reads
memory instead of reporting a PA: :meth:`UnicornX86Mmu.probe` raises :class:`Ambiguous`.

arm64 (every configuration: 4K/39, 4K/48, 16K/36, 16K/47, 16K/48, 64K/42, 64K/48; with
16K/48 the TTBR0 root may be a 2-entry table 16 bytes into a ``pgd_cache`` slab page):
:class:`UnicornArm64Mmu`, the same idea with TTBR0/TTBR1_EL1, TCR_EL1, MAIR_EL1 and
SCTLR_EL1.M; see its doc for the two Unicorn quirks it works around (EL1 reset to AArch32
for the MMU; no hardware dirty state).

RISC-V (riscv32-sv32, riscv64-sv39, -sv48, -sv57): :class:`UnicornRiscvMmu`, the same idea
with ``satp`` and the privilege level (``UC_RISCV_REG_PRIV``); QEMU 5.0 walks all four modes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

_uc: Any
_x86: Any
_a64: Any
_rv: Any
try:  # optional dependency
    import unicorn as _uc
    from unicorn import arm64_const as _a64
    from unicorn import riscv_const as _rv
    from unicorn import x86_const as _x86
except ImportError:  # pragma: no cover - depends on the environment
    _uc = None
    _x86 = None
    _a64 = None
    _rv = None

IA32_EFER = 0xC0000080
CR4_LA57 = 1 << 12
CR4_SMAP = 1 << 21
EFLAGS_AC = 1 << 18
INTR_PF = 14

# mov al, [rbx] / mov [rbx], al: the same bytes in 32- and 64-bit mode (ebx/rbx).
LOAD = b"\x8a\x03"
STORE = b"\x88\x03"


class Unsupported(Exception):
    """This independent MMU cannot run this configuration (the message says why)."""


class Ambiguous(Exception):
    """The translation hit memory Unicorn has mapped, so its physical address is unseen."""


def available() -> str | None:
    """None when Unicorn is importable, else why not."""
    if _uc is None:
        return "the optional 'unicorn' package is not installed (pip install unicorn)"
    return None


@dataclass(frozen=True)
class Probe:
    """What the emulated CPU does with one virtual address."""

    pa: int | None
    """Physical address a load reaches; None when the load faults."""
    writable: bool | None
    """A store does not fault (None when the load faults; on arm64 also when the store
    faults on a DBM-clean page, which Unicorn cannot make writable: see the module doc)."""
    executable: bool | None
    """A jump there does not fault (None when the load faults)."""
    user: bool | None
    """x86: a supervisor load faults under SMAP; arm64: an unprivileged load (LDTRB) does not
    fault (None when the load faults)."""
    fault: int | None = None
    """The exception number of a faulting load (x86: vector 14 #PF, 13 #GP; arm64: QEMU's
    EXCP_DATA_ABORT 4)."""


@dataclass(frozen=True)
class _Mode:
    levels: int
    entry: int  # bytes per entry
    top_entries: int
    root_mask: int  # CR3 bits that hold the root table's address
    addr_mask: int  # entry bits that hold the next table's address
    word_bits: int
    ps_levels: frozenset[int]  # levels (0 = top) whose entries may be leaves (PS)


_MODES = {
    4: _Mode(4, 8, 512, ((1 << 52) - 1) & ~0xFFF, ((1 << 52) - 1) & ~0xFFF, 64,
             frozenset({1, 2})),
    5: _Mode(5, 8, 512, ((1 << 52) - 1) & ~0xFFF, ((1 << 52) - 1) & ~0xFFF, 64,
             frozenset({2, 3})),
    2: _Mode(2, 4, 1024, 0xFFFFF000, 0xFFFFF000, 32, frozenset({0})),
    3: _Mode(3, 8, 4, 0xFFFFFFE0, ((1 << 52) - 1) & ~0xFFF, 32, frozenset({1})),
}


def _mode_of(regs: dict[str, int]) -> _Mode:
    cr4, efer = regs["cr4"], regs["efer"]
    if efer & (1 << 10):  # LMA
        return _MODES[5 if cr4 & CR4_LA57 else 4]
    return _MODES[3 if cr4 & (1 << 5) else 2]


class UnicornX86Mmu:
    """Unicorn's x86 CPU loaded with one export (``machine.json`` dict + ``phys.bin``)."""

    PAGE = 0x1000

    def __init__(self, machine: dict[str, Any], phys: bytes) -> None:
        why = available()
        if why is not None:
            raise Unsupported(why)
        arch = machine["arch"]
        if not arch.startswith(("x86", "i386")):
            raise Unsupported(f"{arch}: not an x86 configuration")
        regs = machine["registers"]
        self.mode = m = _mode_of(regs)
        self.arch = arch
        uc: Any = _uc.Uc(_uc.UC_ARCH_X86, _uc.UC_MODE_64 if m.word_bits == 64 else _uc.UC_MODE_32)
        # A model with SMAP and NX; TCG ignores what it cannot do, checked below.
        uc.ctl_set_cpu_model(_x86.UC_CPU_X86_ICELAKE_SERVER)
        uc.ctl_set_tlb_mode(_uc.UC_TLB_CPU)
        self.uc = uc
        fs = machine["frame_size"]
        frames: list[int] = machine["frames"]
        if len(phys) != fs * len(frames) or fs % self.PAGE:
            raise ValueError("phys.bin does not match machine.json")
        for lo, hi in _merge((pa, pa + fs) for pa in frames):
            uc.mem_map(lo, hi - lo)
        for i, pa in enumerate(frames):
            uc.mem_write(pa, phys[i * fs:(i + 1) * fs])
        self._ram = _merge((pa, pa + fs) for pa in frames)
        busy = self._ram + [(r["pa"], r["pa"] + r["size"]) for r in machine["mappings"]]
        self.harness_span = self._install_harness(regs["cr3"] & m.root_mask, _merge(busy))
        uc.msr_write(IA32_EFER, regs["efer"])
        uc.reg_write(_x86.UC_X86_REG_CR4, regs["cr4"] | CR4_SMAP)
        uc.reg_write(_x86.UC_X86_REG_CR3, regs["cr3"])
        uc.reg_write(_x86.UC_X86_REG_CR0, regs["cr0"])
        got = (uc.reg_read(_x86.UC_X86_REG_CR0), uc.reg_read(_x86.UC_X86_REG_CR4),
               uc.msr_read(IA32_EFER))
        want = (regs["cr0"], regs["cr4"] | CR4_SMAP, regs["efer"])
        if got != want:
            raise Unsupported(f"{arch}: the emulated CPU refused the control registers: "
                              f"cr0/cr4/efer {tuple(map(hex, got))}, wanted "
                              f"{tuple(map(hex, want))}")
        self._events: list[tuple[str, int]] = []
        uc.hook_add(_uc.UC_HOOK_INTR, self._on_intr)
        uc.hook_add(_uc.UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        self._ctx = uc.context_save()
        self._check_harness()

    # -- the harness page --------------------------------------------------------------

    def _install_harness(self, root: int, busy: list[tuple[int, int]]) -> tuple[int, int]:
        """Map one code page under a non-present entry; return the entry's VA span."""
        m, uc = self.mode, self.uc
        found = self._free_entry(root, 0, 0)
        if found is None:
            raise Unsupported(f"{self.arch}: no non-present entry to hang the probe code on")
        entry_pa, level, va = found
        tables = m.levels - 1 - level  # tables below the free entry
        need = (tables + 1) * self.PAGE
        base = self._free_phys(need, busy)
        uc.mem_map(base, need)
        self.code_pa = base + tables * self.PAGE
        flags = 0x3  # present, writable, supervisor
        cur = entry_pa
        for i in range(tables):
            t = base + i * self.PAGE
            # PAE PDPTEs have no R/W or U/S bits (they are reserved there).
            pdpte = m.levels == 3 and level == 0 and i == 0
            self._write_entry(cur, t | (0x1 if pdpte else flags))
            cur = t  # index 0 of every new table: va has zero bits below the free entry
        self._write_entry(cur, self.code_pa | 0x1)  # present, read-only, supervisor
        uc.mem_write(self.code_pa, LOAD + STORE + b"\x90")
        self.code_va = va
        span = 1 << (12 + (m.levels - 1 - level) * (10 if m.entry == 4 else 9))
        return va, va + span

    def _free_entry(self, table: int, level: int, va: int) -> tuple[int, int, int] | None:
        m = self.mode
        n = m.top_entries if level == 0 else self.PAGE // m.entry
        shift = 12 + (m.levels - 1 - level) * (10 if m.entry == 4 else 9)
        order = list(range(1, n)) + [0]  # leave VA 0 alone if possible
        present: list[tuple[int, int]] = []
        for i in order:
            e = self._read_entry(table + i * m.entry)
            v = _canonical(va | i << shift, m)
            if v is None:
                continue
            if not e & 1:
                return table + i * m.entry, level, v
            leaf = level == m.levels - 1 or (level in m.ps_levels and e & 0x80)
            if not leaf and not e >> 63:  # skip NX paths: the code must be executable
                present.append((i, e))
        if level + 1 >= m.levels:
            return None
        for i, e in present:
            child = e & m.addr_mask
            if self._is_ram(child):
                hit = self._free_entry(child, level + 1, _canonical(va | i << shift, m) or 0)
                if hit is not None:
                    return hit
        return None

    def _free_phys(self, size: int, busy: list[tuple[int, int]]) -> int:
        step = 0x200000
        base = step
        limit = 1 << 32
        while base + size <= limit:
            if all(base + size <= lo or hi <= base for lo, hi in busy):
                return base
            base += step
        raise Unsupported(f"{self.arch}: no free physical memory below 4G for the harness")

    def _is_ram(self, pa: int) -> bool:
        return any(lo <= pa < hi for lo, hi in self._ram)

    def _read_entry(self, pa: int) -> int:
        fmt = "<I" if self.mode.entry == 4 else "<Q"
        return int(struct.unpack(fmt, self.uc.mem_read(pa, self.mode.entry))[0])

    def _write_entry(self, pa: int, value: int) -> None:
        self.uc.mem_write(pa, struct.pack("<I" if self.mode.entry == 4 else "<Q", value))

    def _check_harness(self) -> None:
        """The code page itself must load (from our own RAM: no PA report) without faults."""
        ev = self._run(self.code_va, self.code_va, self.code_va + len(LOAD), ac=True)
        if ev:
            raise Unsupported(f"{self.arch}: the probe code does not run: {ev}")

    # -- probing ---------------------------------------------------------------------------

    def _on_intr(self, uc: Any, intno: int, _ud: Any) -> None:
        self._events.append(("intr", intno))
        uc.emu_stop()

    def _on_unmapped(self, uc: Any, access: int, address: int, size: int, value: int,
                     _ud: Any) -> bool:
        self._events.append(("pa", address))
        return False

    def _run(self, va: int, start: int, end: int, ac: bool) -> list[tuple[str, int]]:
        uc = self.uc
        self._events = []
        uc.context_restore(self._ctx)
        uc.reg_write(_x86.UC_X86_REG_RBX if self.mode.word_bits == 64 else _x86.UC_X86_REG_EBX,
                     va)
        uc.reg_write(_x86.UC_X86_REG_EFLAGS, 0x2 | (EFLAGS_AC if ac else 0))
        try:
            uc.emu_start(start, end)
        except _uc.UcError:
            pass  # the unmapped-memory stop; the hook has recorded it
        return self._events

    def _access(self, va: int, kind: str, ac: bool = True) -> tuple[int | None, int | None]:
        """(pa, None) when the access translates, (None, vector) when it faults."""
        if kind == "x":
            ev = self._run(va, va, va + 1, ac)
        else:
            off = 0 if kind == "r" else len(LOAD)
            ev = self._run(va, self.code_va + off, self.code_va + off + 2, ac)
        if not ev:
            raise Ambiguous(f"{va:#x}: the {kind} access hit mapped memory")
        what, n = ev[0]
        return (n, None) if what == "pa" else (None, n)

    def probe(self, va: int) -> Probe:
        lo, hi = self.harness_span
        if lo <= va < hi:
            raise ValueError(f"{va:#x} is inside the harness span [{lo:#x}, {hi:#x})")
        pa, vec = self._access(va, "r")
        if pa is None:
            return Probe(None, None, None, None, vec)
        wpa, _ = self._access(va, "w")
        xpa, _ = self._access(va, "x")
        spa, _ = self._access(va, "r", ac=False)
        for other in (wpa, xpa, spa):
            if other is not None and other != pa:
                raise AssertionError(f"{va:#x}: accesses reach different PAs {pa:#x}, "
                                     f"{other:#x}")
        return Probe(pa, wpa is not None, xpa is not None, spa is None)


# -- arm64 -------------------------------------------------------------------------------------

# AArch64 instructions (little-endian words); x0 holds the address, w1 the data.
A64_LDRB = struct.pack("<I", 0x39400001)  # ldrb  w1, [x0]
A64_STRB = struct.pack("<I", 0x39000001)  # strb  w1, [x0]
A64_LDTRB = struct.pack("<I", 0x38400801)  # ldtrb w1, [x0]: an EL0 access made at EL1
A64_ERET = struct.pack("<I", 0xD69F03E0)  # eret: to ELR_EL1 at the SPSR_EL1 level (EL0t)

# (crn, crm, op0, op1, op2) of the system registers Unicorn has no constants for.
SCTLR_EL1 = (1, 0, 3, 0, 0)
TCR_EL1 = (2, 0, 3, 0, 2)
SPSR_EL1 = (4, 0, 3, 0, 0)
SCR_EL3 = (1, 1, 3, 6, 0)
HCR_EL2 = (1, 1, 3, 4, 0)
SCR_NS = 1 << 0
SCR_RW = 1 << 10  # the next lower level (EL2, hence EL1) is AArch64
HCR_RW = 1 << 31  # EL1 is AArch64
PSTATE_EL1H = 0x3C5  # EL1 with SP_EL1, DAIF masked
SPSR_EL0T = 0x3C0  # eret to EL0 with DAIF masked
SCTLR_M = 1 << 0
SCTLR_WXN = 1 << 19
SCTLR_SPAN = 1 << 23  # keep PSTATE.PAN untouched on exception entry
TCR_HD = 1 << 40

# Descriptor fields (Arm ARM D8.3), for the harness and the DBM check only.
D_VALID = 1 << 0
D_TABLE = 1 << 1
D_AP2 = 1 << 7  # read-only
D_AF = 1 << 10
D_SH_INNER = 3 << 8
D_DBM = 1 << 51
D_PXN_TABLE = 1 << 59
D_UXN_TABLE = 1 << 60
D_ADDR = ((1 << 48) - 1)


class UnicornArm64Mmu:
    """Unicorn's AArch64 CPU (QEMU 5.0 TCG, ``max`` model) loaded with one arm64 export.

    SCTLR_EL1.M = 1 (WXN 0), TCR_EL1 / MAIR_EL1 / TTBR0_EL1 / TTBR1_EL1 = the exported
    ``registers``; the probes run at EL1 (PAN clear): load = ``ldrb``, store = ``strb``,
    user = ``ldtrb`` (an unprivileged load) does not fault, executable = execution starting
    at the address does not fault -- at EL0 (an ``eret`` to it) for a user page (UXN), at EL1
    otherwise (PXN), as the arm64 walker defines it.  The code runs from a harness page hung
    under an empty entry of the TTBR1 (else TTBR0) tables, as :class:`UnicornX86Mmu` does,
    reached through table descriptors without PXNTable.

    Unicorn 2.1.4 resets SCR_EL3.RW and HCR_EL2.RW to 0, so although the code runs as
    AArch64, QEMU's MMU takes EL1 for AArch32 and walks AArch32 long-descriptor tables with the
    low 32 VA bits (an earlier reading of this was "every walk that starts at level 0
    aborts").  Both RW bits are set here, after which 39-, 42-, 47- and 48-bit walks work.

    Unicorn has no FEAT_HAFDBS: TCR_EL1.HD is ignored, so a store to a *DBM-clean* page
    (AP[2] = 1 with DBM = 1, Linux's clean writable pages) faults where the hardware the
    export describes would set AP[2] = 0 and complete it.  For such a page only (the leaf
    descriptor read from the exported bytes), :attr:`Probe.writable` is None: "not checked";
    every other page's writability is Unicorn's own.  AF = 0 pages would likewise fault
    (no TCR_EL1.HA); Linux's protections all set AF.
    """

    def __init__(self, machine: dict[str, Any], phys: bytes) -> None:
        why = available()
        if why is not None:
            raise Unsupported(why)
        self.arch = arch = machine["arch"]
        regs = machine["registers"]
        self.granule = g = int(machine["frame_size"])
        self.gshift = g.bit_length() - 1
        tcr = int(regs["tcr_el1"])
        t0sz, t1sz = tcr & 0x3F, tcr >> 16 & 0x3F
        if t0sz != t1sz:
            raise Unsupported(f"{arch}: T0SZ {t0sz} != T1SZ {t1sz}")
        self.va_bits = 64 - t0sz
        stride = self.gshift - 3
        self.levels = -(-(self.va_bits - self.gshift) // stride)
        self.uc = uc = _uc.Uc(_uc.UC_ARCH_ARM64, _uc.UC_MODE_ARM)
        uc.ctl_set_cpu_model(_a64.UC_CPU_ARM64_MAX)
        uc.ctl_set_tlb_mode(_uc.UC_TLB_CPU)
        frames: list[int] = machine["frames"]
        if len(phys) != g * len(frames):
            raise ValueError("phys.bin does not match machine.json")
        self._ram = _merge((pa, pa + g) for pa in frames)
        for lo, hi in self._ram:
            uc.mem_map(lo, hi - lo)
        for i, pa in enumerate(frames):
            uc.mem_write(pa, phys[i * g:(i + 1) * g])
        self.roots = (regs["ttbr0_el1"] & D_ADDR & ~1, regs["ttbr1_el1"] & D_ADDR & ~1)
        busy = self._ram + [(r["pa"], r["pa"] + r["size"]) for r in machine["mappings"]]
        self.harness_span = self._install_harness(_merge(busy))
        # Unicorn resets SCR_EL3.RW = HCR_EL2.RW = 0: EL1 would be AArch32 to the MMU, which
        # then walks AArch32 long-descriptor tables with the low 32 VA bits.
        for reg, bits in ((SCR_EL3, SCR_NS | SCR_RW), (HCR_EL2, HCR_RW)):
            uc.reg_write(_a64.UC_ARM64_REG_CP_REG,
                         reg + (uc.reg_read(_a64.UC_ARM64_REG_CP_REG, reg + (0,)) | bits,))
        uc.reg_write(_a64.UC_ARM64_REG_CP_REG, SPSR_EL1 + (SPSR_EL0T,))
        uc.reg_write(_a64.UC_ARM64_REG_PSTATE, PSTATE_EL1H)
        uc.reg_write(_a64.UC_ARM64_REG_MAIR_EL1, regs["mair_el1"])
        uc.reg_write(_a64.UC_ARM64_REG_TTBR0_EL1, regs["ttbr0_el1"])
        uc.reg_write(_a64.UC_ARM64_REG_TTBR1_EL1, regs["ttbr1_el1"])
        uc.reg_write(_a64.UC_ARM64_REG_CP_REG, TCR_EL1 + (tcr,))
        sctlr = (uc.reg_read(_a64.UC_ARM64_REG_CP_REG, SCTLR_EL1 + (0,)) | SCTLR_M | SCTLR_SPAN
                 ) & ~SCTLR_WXN
        uc.reg_write(_a64.UC_ARM64_REG_CP_REG, SCTLR_EL1 + (sctlr,))
        got = (uc.reg_read(_a64.UC_ARM64_REG_CP_REG, TCR_EL1 + (0,)),
               uc.reg_read(_a64.UC_ARM64_REG_MAIR_EL1),
               uc.reg_read(_a64.UC_ARM64_REG_TTBR0_EL1),
               uc.reg_read(_a64.UC_ARM64_REG_TTBR1_EL1),
               uc.reg_read(_a64.UC_ARM64_REG_CP_REG, SCTLR_EL1 + (0,)) & SCTLR_M,
               uc.reg_read(_a64.UC_ARM64_REG_CP_REG, SCR_EL3 + (0,)) & SCR_RW,
               uc.reg_read(_a64.UC_ARM64_REG_CP_REG, HCR_EL2 + (0,)) & HCR_RW)
        want = (tcr, regs["mair_el1"], regs["ttbr0_el1"], regs["ttbr1_el1"], SCTLR_M, SCR_RW,
                HCR_RW)
        if got != want:
            raise Unsupported(f"{arch}: the emulated CPU refused the system registers: "
                              f"{tuple(map(hex, got))}, wanted {tuple(map(hex, want))}")
        self._events: list[tuple[str, int]] = []
        uc.hook_add(_uc.UC_HOOK_INTR, self._on_intr)
        uc.hook_add(_uc.UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        self._ctx = uc.context_save()
        ev = self._run(self.code_va, self.code_va, self.code_va + 4, PSTATE_EL1H)
        if ev:
            raise Unsupported(f"{arch}: the probe code does not run: {ev}")

    # -- tables (harness placement and the DBM check) -------------------------------------

    def _shift(self, i: int) -> int:
        """log2 of the VA span of one entry of a table ``i`` levels below the root."""
        return self.gshift + (self.levels - 1 - i) * (self.gshift - 3)

    def _entries(self, i: int) -> int:
        return 1 << (self.va_bits - self._shift(0)) if i == 0 else self.granule // 8

    def _sext(self, va: int, half: int) -> int:
        return va | ((1 << 64) - (1 << self.va_bits)) if half else va

    def _read_entry(self, pa: int) -> int:
        return int(struct.unpack("<Q", self.uc.mem_read(pa, 8))[0])

    def _is_ram(self, pa: int) -> bool:
        return any(lo <= pa < hi for lo, hi in self._ram)

    def _free_entry(self, table: int, i: int, va: int) -> tuple[int, int, int] | None:
        shift = self._shift(i)
        n = self._entries(i)
        tables: list[tuple[int, int]] = []
        for k in list(range(1, n)) + [0]:
            e = self._read_entry(table + 8 * k)
            if e == 0:
                return table + 8 * k, i, va | k << shift
            # the harness runs at EL1: a table under PXNTable would not execute it
            # (UXNTable, on every kernel table, only stops EL0; a 2-entry 16K/48 root may
            # have no empty entry of its own)
            if i + 1 < self.levels and e & 3 == 3 and not e & D_PXN_TABLE:
                tables.append((k, e))
        for k, e in tables:
            child = e & D_ADDR & ~(self.granule - 1)
            if self._is_ram(child):
                hit = self._free_entry(child, i + 1, va | k << shift)
                if hit is not None:
                    return hit
        return None

    def _install_harness(self, busy: list[tuple[int, int]]) -> tuple[int, int]:
        for half in (1, 0):
            found = self._free_entry(self.roots[half], 0, 0)
            if found is not None:
                break
        else:
            raise Unsupported(f"{self.arch}: no empty entry to hang the probe code on")
        entry_pa, i, va = found
        tables = self.levels - 1 - i
        g = self.granule
        need = (tables + 1) * g
        base = 0x200000
        while any(base < hi and lo < base + need for lo, hi in busy):
            base += 0x200000
        self.uc.mem_map(base, need)
        self.code_pa = base + tables * g
        cur = entry_pa
        for t in range(tables):
            self.uc.mem_write(cur, struct.pack("<Q", base + t * g | D_VALID | D_TABLE))
            cur = base + t * g  # index 0 below: va has zero bits under the free entry
        # read-only, EL1 only, UXN = PXN = 0 (Unicorn fetches only when both are clear)
        leaf = self.code_pa | D_VALID | D_TABLE | D_AF | D_SH_INNER | D_AP2
        self.uc.mem_write(cur, struct.pack("<Q", leaf))  # AttrIndx 0: MT_NORMAL
        self.uc.mem_write(self.code_pa, A64_LDRB + A64_STRB + A64_LDTRB + A64_ERET)
        self.code_va = self._sext(va, half)
        return self.code_va, self.code_va + (1 << self._shift(i))

    def _dbm_clean(self, va: int) -> bool:
        """The leaf descriptor of ``va`` (read from the exported bytes) has AP[2] = 1 and
        DBM = 1: writable only through hardware dirty-state management."""
        half = va >> 63
        table = self.roots[half]
        for i in range(self.levels):
            e = self._read_entry(table + 8 * (va >> self._shift(i) & (self._entries(i) - 1)))
            if not e & D_VALID:
                return False
            if i + 1 < self.levels and e & D_TABLE:
                table = e & D_ADDR & ~(self.granule - 1)
                continue
            return bool(e & D_AP2 and e & D_DBM)
        return False

    # -- probing ---------------------------------------------------------------------------

    def _on_intr(self, uc: Any, intno: int, _ud: Any) -> None:
        self._events.append(("intr", intno))
        uc.emu_stop()

    def _on_unmapped(self, uc: Any, access: int, address: int, size: int, value: int,
                     _ud: Any) -> bool:
        self._events.append(("pa", address))
        return False

    def _run(self, va: int, start: int, end: int, pstate: int, restore: bool = True
             ) -> list[tuple[str, int]]:
        uc = self.uc
        self._events = []
        if restore:
            uc.context_restore(self._ctx)
        uc.reg_write(_a64.UC_ARM64_REG_X0, va)
        uc.reg_write(_a64.UC_ARM64_REG_PSTATE, pstate)
        try:
            uc.emu_start(start, end)
        except _uc.UcError:
            pass  # the unmapped-memory stop; the hook has recorded it
        return self._events

    def _access(self, va: int, kind: str) -> tuple[int | None, int | None]:
        """(pa, None) when the access translates, (None, exception) when it faults.
        Kinds: r/w/u = ldrb/strb/ldtrb at EL1; x = execute at EL1; x0 = eret to EL0 there."""
        if kind == "x":
            ev = self._run(va, va, va + 4, PSTATE_EL1H)
        elif kind == "x0":
            self.uc.context_restore(self._ctx)
            self.uc.reg_write(_a64.UC_ARM64_REG_ELR_EL1, va)
            ev = self._run(va, self.code_va + 12, va + 4, PSTATE_EL1H, restore=False)
        else:
            off = 4 * "rwu".index(kind)
            ev = self._run(va, self.code_va + off, self.code_va + off + 4, PSTATE_EL1H)
        if not ev:
            raise Ambiguous(f"{va:#x}: the {kind} access hit mapped memory")
        what, n = ev[0]
        return (n, None) if what == "pa" else (None, n)

    def probe(self, va: int) -> Probe:
        lo, hi = self.harness_span
        if lo <= va < hi:
            raise ValueError(f"{va:#x} is inside the harness span [{lo:#x}, {hi:#x})")
        pa, exc = self._access(va, "r")
        if pa is None:
            return Probe(None, None, None, None, exc)
        wpa, _ = self._access(va, "w")
        upa, _ = self._access(va, "u")
        xpa, _ = self._access(va, "x0" if upa is not None else "x")
        for other in (wpa, xpa, upa):
            if other is not None and other != pa:
                raise AssertionError(f"{va:#x}: accesses reach different PAs {pa:#x}, "
                                     f"{other:#x}")
        writable: bool | None = wpa is not None
        if not writable and self._dbm_clean(va):
            writable = None  # no FEAT_HAFDBS in Unicorn: not checked (see the class doc)
        return Probe(pa, writable, xpa is not None, upa is not None)


def _canonical(va: int, m: _Mode) -> int | None:
    if m.word_bits == 32:
        return va if va < 1 << 32 else None
    bits = 12 + m.levels * 9
    if va >> (bits - 1):
        return va | ((1 << 64) - (1 << bits))
    return va


def _merge(ranges: Any) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


# RISC-V (privileged spec PTE bits and the instructions of the harness).
RV_V, RV_R, RV_W, RV_X, RV_U, RV_G, RV_A, RV_D = (1 << i for i in range(8))
RV_SUM = 1 << 18  # sstatus.SUM: S-mode may load/store U pages
RV_PRIV_U, RV_PRIV_S = 0, 1
RV_LB = struct.pack("<I", 0x00050283)  # lb t0, 0(a0)
RV_SB = struct.pack("<I", 0x00550023)  # sb t0, 0(a0)


class UnicornRiscvMmu:
    """Unicorn's RISC-V CPU (QEMU 5.0 TCG) loaded with one riscv export: ``satp`` = the
    exported register, the probes run in S-mode (``UC_RISCV_REG_PRIV``): load = ``lb``,
    store = ``sb`` with ``sstatus.SUM`` = 1; user = the load faults with SUM = 0 (S-mode
    may not touch a U page then); executable = execution starting at the address does not
    fault, in U-mode for a U page (S-mode never executes one), in S-mode otherwise.  The
    code runs from a harness page (V R X A D G) hung under an empty entry of the exported
    tables (in Unicorn's copy only), as :class:`UnicornX86Mmu` does.

    QEMU 5.0 walks Sv32, Sv39, Sv48 and Sv57 (``VM_1_10_SV57``, 5 levels) and updates A
    and D itself, as the exported ``menvcfg.ADUE`` = 1 asks; it does not check PTE bits
    63:54 (reserved, PBMT, N), which Linux leaves 0 in what it exports here.  Note:
    ``UC_RISCV_REG_MSTATUS`` reads back garbage in the 2.1.4 binding; ``sstatus`` works.
    """

    def __init__(self, machine: dict[str, Any], phys: bytes) -> None:
        why = available()
        if why is not None:
            raise Unsupported(why)
        self.arch = arch = machine["arch"]
        regs = machine["registers"]
        satp = int(regs["satp"])
        self.rv32 = arch.startswith("riscv32")
        if self.rv32:
            self.levels, self.entry, self.vpn = 2, 4, 10
            root_ppn = satp & ((1 << 22) - 1)
            mode = _uc.UC_MODE_RISCV32
        else:
            self.levels = {8: 3, 9: 4, 10: 5}.get(satp >> 60, 0)
            if not self.levels:
                raise Unsupported(f"{arch}: satp {satp:#x} selects no Sv39/48/57 mode")
            self.entry, self.vpn = 8, 9
            root_ppn = satp & ((1 << 44) - 1)
            mode = _uc.UC_MODE_RISCV64
        self.va_bits = 32 if self.rv32 else 12 + 9 * self.levels
        self.root = root_ppn << 12
        self.uc = uc = _uc.Uc(_uc.UC_ARCH_RISCV, mode)
        uc.ctl_set_tlb_mode(_uc.UC_TLB_CPU)
        g = int(machine["frame_size"])
        frames: list[int] = machine["frames"]
        if len(phys) != g * len(frames):
            raise ValueError("phys.bin does not match machine.json")
        self._ram = _merge((pa, pa + g) for pa in frames)
        for lo, hi in self._ram:
            uc.mem_map(lo, hi - lo)
        for i, pa in enumerate(frames):
            uc.mem_write(pa, phys[i * g:(i + 1) * g])
        busy = self._ram + [(r["pa"], r["pa"] + r["size"]) for r in machine["mappings"]]
        self.harness_span = self._install_harness(_merge(busy))
        uc.reg_write(_rv.UC_RISCV_REG_SATP, satp)
        if uc.reg_read(_rv.UC_RISCV_REG_SATP) != satp:
            raise Unsupported(f"{arch}: the emulated CPU refused satp {satp:#x}")
        self._events: list[tuple[str, int]] = []
        uc.hook_add(_uc.UC_HOOK_INTR, self._on_intr)
        uc.hook_add(_uc.UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        self._ctx = uc.context_save()
        ev = self._run(self.code_va, self.code_va, self.code_va + 4, RV_PRIV_S, RV_SUM)
        if ev:
            raise Unsupported(f"{arch}: the probe code does not run: {ev}")

    # -- tables ----------------------------------------------------------------------------

    def _shift(self, i: int) -> int:
        """log2 of the VA span of one entry of a table ``i`` levels below the root."""
        return 12 + self.vpn * (self.levels - 1 - i)

    def _read_entry(self, pa: int) -> int:
        fmt = "<I" if self.rv32 else "<Q"
        return int(struct.unpack(fmt, self.uc.mem_read(pa, self.entry))[0])

    def _sext(self, va: int) -> int:
        if self.rv32 or not va >> (self.va_bits - 1) & 1:
            return va
        return va | ((1 << 64) - (1 << self.va_bits))

    def _free_entry(self, table: int, i: int, va: int) -> tuple[int, int, int] | None:
        shift = self._shift(i)
        n = 1 << self.vpn
        tables: list[tuple[int, int]] = []
        for k in list(range(1, n)) + [0]:
            e = self._read_entry(table + self.entry * k)
            if e == 0:
                return table + self.entry * k, i, va | k << shift
            if i + 1 < self.levels and e & RV_V and not e & (RV_R | RV_W | RV_X):
                tables.append((k, e))
        for k, e in tables:
            child = (e >> 10) << 12
            if any(lo <= child < hi for lo, hi in self._ram):
                hit = self._free_entry(child, i + 1, va | k << shift)
                if hit is not None:
                    return hit
        return None

    def _install_harness(self, busy: list[tuple[int, int]]) -> tuple[int, int]:
        found = self._free_entry(self.root, 0, 0)
        if found is None:
            raise Unsupported(f"{self.arch}: no empty entry to hang the probe code on")
        entry_pa, i, va = found
        tables = self.levels - 1 - i
        need = (tables + 1) * 0x1000
        base = 0x200000
        while any(base < hi and lo < base + need for lo, hi in busy):
            base += 0x200000
        self.uc.mem_map(base, need)
        self.code_pa = base + tables * 0x1000
        fmt = "<I" if self.rv32 else "<Q"
        cur = entry_pa
        for t in range(tables):
            self.uc.mem_write(cur, struct.pack(fmt, (base + t * 0x1000) >> 12 << 10 | RV_V))
            cur = base + t * 0x1000  # index 0 below: va has zero bits under the free entry
        leaf = self.code_pa >> 12 << 10 | RV_V | RV_R | RV_X | RV_A | RV_D | RV_G
        self.uc.mem_write(cur, struct.pack(fmt, leaf))
        self.uc.mem_write(self.code_pa, RV_LB + RV_SB)
        self.code_va = self._sext(va)
        return self.code_va, self.code_va + (1 << self._shift(i))

    # -- probing ---------------------------------------------------------------------------

    def _on_intr(self, uc: Any, intno: int, _ud: Any) -> None:
        self._events.append(("intr", intno))
        uc.emu_stop()

    def _on_unmapped(self, uc: Any, access: int, address: int, size: int, value: int,
                     _ud: Any) -> bool:
        self._events.append(("pa", address))
        return False

    def _run(self, va: int, start: int, end: int, priv: int, sstatus: int
             ) -> list[tuple[str, int]]:
        uc = self.uc
        self._events = []
        uc.context_restore(self._ctx)
        uc.reg_write(_rv.UC_RISCV_REG_A0, va)
        uc.reg_write(_rv.UC_RISCV_REG_SSTATUS, sstatus)
        uc.reg_write(_rv.UC_RISCV_REG_PRIV, priv)
        try:
            uc.emu_start(start, end)
        except _uc.UcError:
            pass  # the unmapped-memory stop; the hook has recorded it
        return self._events

    def _access(self, va: int, kind: str) -> tuple[int | None, int | None]:
        """(pa, None) when the access translates, (None, cause) when it faults.  Kinds:
        r/w = lb/sb in S-mode with SUM; s = lb without SUM; x/x0 = execute in S/U-mode."""
        if kind == "x":
            ev = self._run(va, va, va + 4, RV_PRIV_S, RV_SUM)
        elif kind == "x0":
            ev = self._run(va, va, va + 4, RV_PRIV_U, 0)
        else:
            off = 4 if kind == "w" else 0
            ev = self._run(va, self.code_va + off, self.code_va + off + 4, RV_PRIV_S,
                           0 if kind == "s" else RV_SUM)
        if not ev:
            raise Ambiguous(f"{va:#x}: the {kind} access hit mapped memory")
        what, n = ev[0]
        return (n, None) if what == "pa" else (None, n)

    def probe(self, va: int) -> Probe:
        lo, hi = self.harness_span
        if lo <= va < hi:
            raise ValueError(f"{va:#x} is inside the harness span [{lo:#x}, {hi:#x})")
        pa, exc = self._access(va, "r")
        if pa is None:
            return Probe(None, None, None, None, exc)
        wpa, _ = self._access(va, "w")
        spa, _ = self._access(va, "s")
        user = spa is None
        xpa, _ = self._access(va, "x0" if user else "x")
        for other in (wpa, xpa, spa):
            if other is not None and other != pa:
                raise AssertionError(f"{va:#x}: accesses reach different PAs {pa:#x}, "
                                     f"{other:#x}")
        return Probe(pa, wpa is not None, xpa is not None, user)


Mmu = UnicornX86Mmu | UnicornArm64Mmu | UnicornRiscvMmu


def pa_bits(arch: str) -> int | None:
    """Physical address bits this MMU reports faithfully, where fewer than the 40 of QEMU
    TCG's x86/arm64 models: Sv32 PAs have 34 bits, but QEMU 5.0 computes them in RV32's
    32-bit ``target_ulong`` (``get_physical_address``), so a PA at or above 2^32 comes
    back truncated."""
    if arch == "arm":  # classic arm: 32-bit PAs (Linux makes no supersection)
        return 32
    return 32 if arch.startswith("riscv32") else None


def load(machine: dict[str, Any], phys: bytes) -> Mmu:
    """The independent MMU for this export; :class:`Unsupported` says when there is none."""
    arch = machine["arch"]
    if arch.startswith("arm64"):
        return UnicornArm64Mmu(machine, phys)
    if arch.startswith("riscv"):
        return UnicornRiscvMmu(machine, phys)
    if arch.startswith(("x86", "i386")):
        return UnicornX86Mmu(machine, phys)
    if arch.startswith("ppc64-radix"):  # tests/independent_mmu_ppc64.py (imports this one)
        from tests.independent_mmu_ppc64 import UnicornPpc64RadixMmu
        return UnicornPpc64RadixMmu(machine, phys)  # type: ignore[return-value]
    if arch == "arm":  # tests/independent_mmu_arm.py (it imports this module)
        from tests.independent_mmu_arm import UnicornArmShortMmu
        return UnicornArmShortMmu(machine, phys)  # type: ignore[return-value]
    if arch == "arm-lpae":  # tests/independent_mmu_arm_lpae.py (it imports this module)
        from tests.independent_mmu_arm_lpae import UnicornArmLpaeMmu
        return UnicornArmLpaeMmu(machine, phys)  # type: ignore[return-value]
    if arch == "s390x":  # tests/independent_mmu_s390.py (it imports this module)
        from tests.independent_mmu_s390 import UnicornS390Mmu
        return UnicornS390Mmu(machine, phys)  # type: ignore[return-value]
    raise Unsupported(f"{arch}: no independent MMU for this architecture")
